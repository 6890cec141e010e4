"""HTTP for the registry client: requests sent through `connections.Pool` (the standard
library's http.client, kept-alive connections, our TLS and timeouts), with bounded retries and
redirects, and errors that name URLs without secrets.

Nothing network-related is imported with this module: `connections` (http.client) is imported
and the SSL context built on the first request, which a push makes in its upload's thread
while the first layer is already being encoded (`upload.StreamedUpload`);
`import convert.registry` stays free of both.

Choices, and why:
- Nothing from the environment but proxies: no `~/.netrc` credentials added on their own (they
  would replace a Bearer header), no CA bundle variables. Proxies are honoured except for
  loopback addresses, as Go's `ProxyFromEnvironment` does for skopeo (`connections.proxy_for`).
- `Accept-Encoding: identity`: blob bytes must arrive exactly as stored, since they are
  verified against their digest; bodies are never decoded.
- Retries (with exponential backoff, `Retry-After` honoured up to the cap) only where the
  caller says the request can be replayed: GET, HEAD, manifest PUT, upload POST. Never for a
  PATCH whose body is a stream already consumed. A replayable request that fails on a
  kept-alive connection before any answer (the server closed it while idle) is resent at once
  on a new connection, without counting as a retry.
- Redirects are followed here, for reads only and at most `max_redirects`, their bodies never
  read. `Authorization` is dropped as soon as a redirect leaves the scheme, host and port it
  was meant for (a blob GET sent on to a CDN), which the tests check.
"""

from __future__ import annotations

import time
from typing import Callable
from urllib.parse import urljoin, urlsplit

from . import redact
from .errors import RegistryError
from .tls import TlsSettings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "acioci (registry client)"
MAX_REASON = 200  # characters of a failure's own text in an error


class Http:
    """Sends requests; never looks at what they mean (that is the client's job)."""

    def __init__(self, tls: TlsSettings, *, timeout: tuple[float, float] = (15.0, 60.0),
                 retries: int = 4, backoff: float = 0.5, max_backoff: float = 10.0,
                 max_redirects: int = 10, secrets: Callable[[], tuple[str, ...]] = tuple,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.tls = tls
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_redirects = max_redirects
        self.secrets = secrets
        self.sleep = sleep
        # route loopback URLs through a proxy from the environment too (tests only: a
        # registry in a test is on 127.0.0.1, which is never proxied otherwise)
        self.proxy_loopback = False
        self._pool = None

    @property
    def pool(self):
        """Made on the first request, not with the client: http.client and an SSL context
        cost ~20 ms to import and build, which a push spends in its upload's thread while
        the first layer is already being encoded (`upload.StreamedUpload`). The SSL context
        is built on the first https connection."""
        if self._pool is None:
            from .connections import Pool

            self._pool = Pool(self.tls.context, self.timeout)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

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
        from .connections import BadRequest, origin

        headers = dict(headers or {})
        first = url
        for hop in range(self.max_redirects + 1):
            resp = self._send_once(method, url, headers, data, retry)
            location = resp.headers.get("Location")
            if not redirects or resp.status_code not in REDIRECTS or not location:
                return resp
            resp.close()
            target = follow(url, location, method)
            if urlsplit(target).scheme not in ("http", "https"):
                raise self.error(f"{method}: redirected to a non-HTTP URL", first)
            try:
                moved = origin(target) != origin(url)
            except BadRequest as exc:
                raise self.error(f"{method}: redirected to a URL that cannot be sent ({exc})",
                                 first) from None
            if moved:  # credentials stay with the scheme, host and port they are for
                headers.pop("Authorization", None)
            if resp.status_code == 303 and method != "HEAD":
                method, data = "GET", None
            url = target
        raise self.error(f"{method}: more than {self.max_redirects} redirects", first)

    def _send_once(self, method: str, url: str, headers: dict, data, retry: bool):
        from .connections import BadRequest, Failure, proxy_for

        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        attempt, resent = 0, False
        while True:
            try:
                resp = self.pool.request(method, url, headers, data,
                                         proxy=proxy_for(url, loopback=self.proxy_loopback))
            except BadRequest as exc:
                raise self.error(f"{method}: {exc}", url) from None
            except Failure as exc:
                if exc.tls:
                    raise self.error(f"{method}: TLS failure: {reason(exc)}", url,
                                     tls=True) from None
                if exc.reused and retry and not resent:
                    resent = True  # closed while idle: not the registry's failure
                    continue
                if retry and attempt < self.retries:
                    self._wait(attempt, None)
                    attempt += 1
                    continue
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                raise self.error(f"{method}: {reason(exc)}{tries}", url) from None
            if retry and resp.status_code in RETRY_STATUSES and attempt < self.retries:
                wait = _retry_after(resp.headers.get("Retry-After"))
                resp.close()
                self._wait(attempt, wait)
                attempt += 1
                continue
            return resp


def header_int(value: str | None) -> int | None:
    """A header's number, or None for none Python reads (`str.isdigit` is no test: it holds
    for `²` and for more digits than `int()` takes)."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from registries; the backoff applies


def reason(exc: BaseException) -> str:
    """What went wrong, in a few words and without the URL (the path and query, where an
    upload's state lives, are the caller's to show, redacted)."""
    from .connections import ConnectTimeout, Failure

    if isinstance(exc, Failure):
        exc = exc.cause
    if isinstance(exc, ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the registry to answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()  # http.client's may quote a server's bad status line whole
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON] + "..."
    return text or type(exc).__name__


def read_failure(exc: BaseException, url: str, got: int, expected: int | None) -> RegistryError:
    """A response body that broke off: how far it got, out of how much."""
    if expected is not None and got < expected:
        text = f"the connection ended after {got} of {expected} bytes ({reason(exc)})"
    else:
        text = f"reading the response failed after {got} bytes: {reason(exc)}"
    return RegistryError(text, file=redact.url(url))


def read_whole(resp, limit: int, url: str, length: int | None) -> bytes:
    """A small document's body (a manifest, a token answer), up to `limit` bytes: read to
    its end within the read timeout as a whole (`Response.in_time`), a body cut short or
    late one error naming `url`."""
    chunks, got = [], 0
    try:
        resp.in_time()
        while got < limit:
            data = resp.read(min(1 << 20, limit - got))
            if not data:
                break
            chunks.append(data)
            got += len(data)
    except OSError as exc:  # the transport's failures are all OSErrors
        raise read_failure(exc, url, got, length) from None
    return b"".join(chunks)


def follow(url: str, location: str, method: str) -> str:
    """The URL a `Location` given in the answer to `url` names (relative to it, or not). One
    urllib cannot parse (`http://[::1/x`, an unclosed IPv6 bracket) is one error, not
    urllib's ValueError."""
    try:
        return urljoin(url, location)
    except ValueError:
        raise RegistryError(f"{method}: the registry's Location is not a usable URL",
                            file=redact.url(url)) from None
