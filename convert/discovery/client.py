"""HTTP(S) for discovery: one `requests` session, redirects followed by hand, bodies streamed.

Why by hand: every hop of a redirect chain must pass the same URL policy as the first URL
(https only, http only when allowed; never `file:` or anything else), and the chain must be
bounded; requests' automatic redirects would check neither. Bodies are read raw
(`Accept-Encoding: identity`, never decoded) because a signature covers the bytes as
distributed, and a decoder could also turn a small body into a huge one.

`requests` is imported when a client is made, not when this module is: it costs ~150 ms and
only this transport needs it (`pip install acioci[discovery]`).

TLS is verified by default. `cert_dir` adds its `*.crt` files (`ca.crt` among them) to the
default CA bundle, for a private CA; `insecure_tls` turns verification off, and nothing else
does.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import warnings
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import LimitError, SourceUnreadableError, UsageError
from .template import url_problem

CHUNK = 1 << 20
MAX_REDIRECTS = 10
USER_AGENT = "acioci (appc discovery)"


class Unreachable(SourceUnreadableError):
    """The host could not be talked to: connection, TLS or protocol failure."""


class RefusedURL(SourceUnreadableError):
    """A URL (a redirect target, typically) is outside the fetch policy."""


class HttpStatusError(SourceUnreadableError):
    """The server answered, but not with 200."""

    def __init__(self, message: str, *, status: int, url: str) -> None:
        super().__init__(message, file=url)
        self.status = status
        self.url = url


@dataclass(frozen=True)
class Page:
    url: str      # after redirects
    status: int
    body: bytes   # empty unless status is 200


def _tls_reason(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"certificate verify failed: ([^(')\]]+)", text)
    if m:
        return "certificate verify failed: " + m.group(1).strip()
    m = re.search(r"\[SSL[^\]]*\] ([^(')\]]+)", text)
    return m.group(1).strip() if m else "handshake failed"


class Client:
    def __init__(self, *, workdir: str, insecure_http: bool = False,
                 insecure_tls: bool = False, cert_dir: str | None = None,
                 timeout: float = 60.0, max_redirects: int = MAX_REDIRECTS) -> None:
        try:
            import requests  # lazily: see the module docstring
        except ImportError:
            raise UsageError("appc: sources need the requests package "
                             "(pip install 'acioci[discovery]')") from None

        self._requests = requests
        self.insecure_http = insecure_http
        self.insecure_tls = insecure_tls
        self.timeout = (min(timeout, 30.0), timeout)
        self.max_redirects = max_redirects
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        self.verify: bool | str = True
        if insecure_tls:
            self.verify = False
        elif cert_dir is not None:
            self.verify = _bundle(cert_dir, os.path.join(workdir, "ca-bundle.crt"), requests)

    def close(self) -> None:
        self.session.close()

    def _check(self, url: str, *, via: str | None = None) -> None:
        problem = url_problem(url, insecure_http=self.insecure_http)
        if problem:
            where = f" (redirected from {via})" if via else ""
            raise RefusedURL(f"{url}{where} {problem}", file=via or url)

    @contextlib.contextmanager
    def get(self, url: str):
        """The response to GET `url` after redirects, unread; status not checked."""
        first = url
        for _hop in range(self.max_redirects + 1):
            self._check(url, via=None if url == first else first)
            resp = self._send(url)
            try:
                location = resp.headers.get("Location")
                if resp.status_code in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                yield resp
                return
            finally:
                resp.close()
        raise Unreachable(f"more than {self.max_redirects} redirects", file=first)

    def _send(self, url: str):
        requests = self._requests
        host = urlsplit(url).hostname
        try:
            with warnings.catch_warnings():
                # with insecure_tls urllib3 warns on every request; the caller reports it once
                warnings.simplefilter("ignore")
                return self.session.get(url, stream=True, allow_redirects=False,
                                        timeout=self.timeout, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise Unreachable(
                f"TLS with {host} failed ({_tls_reason(exc)}); trust its CA with a cert dir, "
                "or skip verification (insecure options: tls)",
                file=url, hint_option=("cert_dir", "insecure")) from None
        except requests.exceptions.Timeout:
            raise Unreachable(f"{host} did not answer within {self.timeout[1]:g} s",
                              file=url) from None
        except requests.exceptions.RequestException as exc:
            reason = _short(exc)
            raise Unreachable(f"cannot reach {host}: {reason}", file=url) from None

    def _chunks(self, resp, url: str):
        import urllib3  # requests' own transport, so already loaded with it

        broken = (self._requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                  OSError)
        try:
            yield from resp.raw.stream(CHUNK, decode_content=False)
        except broken as exc:
            raise Unreachable(f"download broke off: {_short(exc)}", file=url) from None

    def page(self, url: str, *, limit: int) -> Page:
        """A discovery page: its status, and its body (at most `limit` bytes) when 200."""
        with self.get(url) as resp:
            if resp.status_code != 200:
                return Page(url=resp.url, status=resp.status_code, body=b"")
            body = bytearray()
            for chunk in self._chunks(resp, url):
                body += chunk
                if len(body) > limit:
                    raise LimitError(f"discovery page is larger than {limit} bytes", file=url)
            return Page(url=resp.url, status=200, body=bytes(body))

    def download(self, url: str, dest: str, *, limit: int) -> int:
        """Stream `url` into the new file `dest`, at most `limit` bytes; returns the size.
        A status other than 200 raises HttpStatusError."""
        with self.get(url) as resp:
            if resp.status_code != 200:
                raise HttpStatusError(f"HTTP {resp.status_code}", status=resp.status_code,
                                      url=url)
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise LimitError(f"{declared} bytes exceed the download limit of {limit}",
                                 file=url)
            size = 0
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in self._chunks(resp, url):
                    size += len(chunk)
                    if size > limit:
                        raise LimitError(f"more than {limit} bytes (the download limit)",
                                         file=url)
                    out.write(chunk)
            return size


def _short(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"(Connection refused|Name or service not known|No route to host|"
                  r"Connection reset by peer|timed out|IncompleteRead\([^)]*\))", text)
    return m.group(1) if m else (text[:200] or type(exc).__name__)


def _bundle(cert_dir: str, dest: str, requests) -> str:
    """The default CA bundle plus every `*.crt` of `cert_dir`, written to `dest`."""
    if not os.path.isdir(cert_dir):
        raise UsageError(f"cert dir {cert_dir} is not a directory")
    extra = sorted(glob.glob(os.path.join(glob.escape(cert_dir), "*.crt")))
    if not extra:
        raise UsageError(f"cert dir {cert_dir} holds no *.crt file")
    base = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") \
        or requests.certs.where()
    with open(dest, "wb") as out:
        for path in [base, *extra]:
            with open(path, "rb") as f:
                data = f.read(8 << 20)
            out.write(data.rstrip(b"\n") + b"\n")
    return dest
