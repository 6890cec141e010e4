"""HTTP for the registry client: one `requests` session with our TLS, timeouts, bounded
retries and redirects, and errors that name URLs without secrets.

`requests` is imported on first use, not with this module: it costs ~150 ms at start-up and
only `docker://` references need it (`import convert.registry` must stay free of it).

Choices, and why:
- `trust_env` is off: with it, requests would add `~/.netrc` credentials on its own (replacing
  a Bearer header) and trust `REQUESTS_CA_BUNDLE`. Proxies from the environment are still
  honoured, except for loopback addresses, as Go's `ProxyFromEnvironment` does for skopeo.
- `Accept-Encoding: identity`: blob bytes must arrive exactly as stored, since they are
  verified against their digest; a transparent gunzip would break that.
- Retries (with exponential backoff, `Retry-After` honoured up to the cap) only where the
  caller says the request can be replayed: GET, HEAD, manifest PUT, upload POST. Never for a
  PATCH whose body is a stream already consumed.
- Redirects are followed here, not by requests, for reads only and at most `max_redirects`:
  requests would read each redirect's body whole, unbounded. `Authorization` is dropped as
  soon as a redirect leaves the scheme, host and port it was meant for (a blob GET sent on
  to a CDN), which the tests check.
"""

from __future__ import annotations

import ipaddress
import time
import warnings
from typing import Callable
from urllib.parse import urljoin, urlsplit

from . import redact
from .errors import RegistryError
from .tls import TlsSettings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "acioci (registry client)"


def _requests():
    import requests

    return requests


_ADAPTER = None


def _adapter_class():
    """An HTTPAdapter that builds its connection pools with our SSL context (system CAs plus
    the registry's own, client certificates), defined on first use like the import."""
    global _ADAPTER
    if _ADAPTER is None:
        from requests.adapters import HTTPAdapter

        class ContextAdapter(HTTPAdapter):
            def __init__(self, context, **kw):
                self._context = context
                super().__init__(**kw)

            def init_poolmanager(self, *args, **kw):
                kw["ssl_context"] = self._context
                return super().init_poolmanager(*args, **kw)

            def proxy_manager_for(self, proxy, **kw):
                kw["ssl_context"] = self._context
                return super().proxy_manager_for(proxy, **kw)

        _ADAPTER = ContextAdapter
    return _ADAPTER


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Http:
    """Sends requests; never looks at what they mean (that is the client's job)."""

    def __init__(self, tls: TlsSettings, *, timeout: tuple[float, float] = (15.0, 60.0),
                 retries: int = 4, backoff: float = 0.5, max_backoff: float = 10.0,
                 max_redirects: int = 10, secrets: Callable[[], tuple[str, ...]] = tuple,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.tls = tls
        self.verify = tls.verify
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_redirects = max_redirects
        self.secrets = secrets
        self.sleep = sleep
        self._session = None

    @property
    def session(self):
        """Made on the first request, not with the client: `requests` and an SSL context
        cost ~80 ms to import and build, which a push spends in its upload's thread while
        the first layer is already being encoded (`upload.StreamedUpload`)."""
        if self._session is None:
            session = _requests().Session()
            session.trust_env = False
            session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
            adapter = _adapter_class()
            context = self.tls.context()
            session.mount("https://", adapter(context))
            session.mount("http://", adapter(context))
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    def _proxies(self, url: str) -> dict:
        if _is_loopback(url):
            return {}
        return _requests().utils.get_environ_proxies(url)

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        delay = self.backoff * (2 ** attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.sleep(min(delay, self.max_backoff))

    def error(self, message: str, url: str, **kw) -> RegistryError:
        return RegistryError(redact.scrub(message, self.secrets()),
                             file=redact.url(url), **kw)

    def send(self, method: str, url: str, *, headers: dict | None = None, data=None,
             redirects: bool = False, retry: bool = True):
        """The response to one request, after up to `retries` retries when `retry` allows
        (5xx, 429, connection failures), and with `redirects`, after following up to
        `max_redirects` of them. The body is always left unread (a hostile server's error
        page or redirect body is read only as far as the caller chooses); the caller closes
        the response."""
        headers = dict(headers or {})
        first = url
        for hop in range(self.max_redirects + 1):
            resp = self._send_once(method, url, headers, data, retry)
            location = resp.headers.get("Location")
            if not redirects or resp.status_code not in REDIRECTS or not location:
                return resp
            resp.close()
            target = urljoin(url, location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise self.error(f"{method}: redirected to a non-HTTP URL", first)
            if _origin(target) != _origin(url):  # credentials stay with the host they are for
                headers.pop("Authorization", None)
            if resp.status_code == 303 and method != "HEAD":
                method, data = "GET", None
            url = target
        raise self.error(f"{method}: more than {self.max_redirects} redirects", first)

    def _send_once(self, method: str, url: str, headers: dict, data, retry: bool):
        exc_mod = _requests().exceptions
        attempt = 0
        while True:
            try:
                with warnings.catch_warnings():
                    if not self.verify:  # asked for: not worth a warning on every request
                        warnings.simplefilter("ignore", _requests().urllib3.exceptions
                                              .InsecureRequestWarning)
                    resp = self.session.request(
                        method, url, headers=headers, data=data, stream=True,
                        allow_redirects=False, timeout=self.timeout, verify=self.verify,
                        proxies=self._proxies(url))
            except exc_mod.SSLError as exc:
                raise self.error(f"{method}: TLS failure: {reason(exc)}", url,
                                 tls=True) from None
            except (exc_mod.ConnectionError, exc_mod.Timeout,
                    exc_mod.ChunkedEncodingError) as exc:
                if retry and attempt < self.retries:
                    self._wait(attempt, None)
                    attempt += 1
                    continue
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                raise self.error(f"{method}: {reason(exc)}{tries}", url) from None
            except exc_mod.RequestException as exc:
                raise self.error(f"{method}: {reason(exc)}", url) from None
            if retry and resp.status_code in RETRY_STATUSES and attempt < self.retries:
                wait = _retry_after(resp.headers.get("Retry-After"))
                resp.close()
                self._wait(attempt, wait)
                attempt += 1
                continue
            return resp


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, parts.hostname, port


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from registries; the backoff applies


def reason(exc: BaseException) -> str:
    """What went wrong, without the URL (urllib3 puts the path and query, where an upload's
    state lives, into its messages): the innermost cause's own words."""
    exc_mod = _requests().exceptions
    if isinstance(exc, exc_mod.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, exc_mod.ReadTimeout):
        return "timed out waiting for the registry to answer"
    inner: BaseException = exc
    for _ in range(8):  # urllib3 nests: MaxRetryError -> reason -> ...
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) \
                else inner.__context__ if isinstance(inner.__context__, BaseException) else None
        if nxt is None or nxt is inner:
            break
        inner = nxt
    text = str(inner)
    if ": " in text and ("Connection" in type(inner).__name__ or "pool" in text):
        text = text.rsplit(": ", 1)[-1]
    if isinstance(inner, OSError) and inner.strerror:
        text = inner.strerror
    return text.strip() or type(inner).__name__


def read_failure(exc: BaseException, url: str, got: int, expected: int | None) -> RegistryError:
    """A response body that broke off: how far it got, out of how much."""
    if expected is not None and got < expected:
        text = f"the connection ended after {got} of {expected} bytes ({reason(exc)})"
    else:
        text = f"reading the response failed after {got} bytes: {reason(exc)}"
    return RegistryError(text, file=redact.url(url))
