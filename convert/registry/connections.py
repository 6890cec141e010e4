"""The registry client's transport, on the standard library's `http.client`: kept-alive
connections per origin, proxies from the environment, TLS from `tls.TlsSettings`, request
bodies streamed, response bodies read raw. Policy (retries, redirects, what an error says)
is `http.py`'s; this module only moves requests and answers.

Why not `requests`: the client already does by hand what it would add (redirects, retries,
auth headers, raw bodies), and on every `docker://` push it cost ~60 ms of imports and ~13 MB
of RSS, a push's whole margin against its speed target (issue 15). `http.client` imports in
~9 ms and is imported here, on the first request (in a push, the upload's thread).

Invariants:
- A connection goes back to its origin's idle pool only when its response was read to its end
  or had no body (HEAD, 204/304, `Content-Length: 0`; a declared rest of at most `DRAIN`
  bytes is read at close). A response closed earlier closes its connection: no connection
  carries unread bytes into the next request, and a hostile body is never read to its end
  just to save a connection.
- An idle connection is looked at before reuse: readable while idle means the server closed
  it (or sent something unasked), and it is dropped. One that still fails before its answer's
  status line is reported `reused`, so that the caller may resend a replayable request at
  once on a new connection; a request on a new connection is never resent here.
- Timeouts are (connect, read) seconds: the first bounds the TCP connect, a proxy's tunnel
  and the TLS handshake; then the socket's timeout is the second, for every wait after, and
  for an answer's status line and headers as a whole (from their first byte), a small
  document's body as a whole when its reader asks (`Response.in_time`), and a short rest
  drained at close as a whole.
- Proxies: `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` (either case, as urllib reads
  them, plus CIDR ranges in `NO_PROXY` for IP hosts), except for loopback registries, as Go's
  `ProxyFromEnvironment` does for skopeo. https goes through a `CONNECT` tunnel, plain http as
  an absolute-URI request to the proxy. urllib.request (~10 ms) is imported only when such a
  variable is set.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import ipaddress
import os
import select
import ssl
import threading
import time
from typing import Callable
from urllib.parse import quote, unquote, urlsplit

MAX_IDLE = 4         # idle connections kept per origin
DRAIN = 4096         # a declared rest this short is read at close to keep the connection
_SAFE = "!#$%&'()*+,/:;=?@[]~"  # what a request target keeps as it is (the rest is quoted)
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy"})
_INVALID = "the URL holds characters HTTP does not allow"  # http.client's text shows the URL


# what a kept-alive connection that the server closed while idle fails with (RemoteDisconnected
# is a ConnectionResetError; a broken pipe and an aborted connection are ConnectionErrors too)
_CLOSED = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class Failure(OSError):
    """A request that got no answer. `cause` is what failed; `reused`: on a kept-alive
    connection, closed by the server (while it was idle, as far as we can tell); `tls`: a TLS
    error other than the connection's end (a TLS connection closed under us is a closed
    connection, not a certificate or protocol problem to blame on TLS)."""

    def __init__(self, cause: BaseException, *, reused: bool = False) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.reused = reused and isinstance(cause, _CLOSED)  # not a timeout, say
        self.tls = isinstance(cause, ssl.SSLError) and not isinstance(cause, _CLOSED)


class ConnectTimeout(TimeoutError):
    """The connect timeout ran out (TCP, tunnel or TLS handshake)."""


class BrokenBody(ConnectionError):
    """A response body that did not arrive whole (cut short, or not valid HTTP framing)."""


class BadRequest(Exception):
    """A request that cannot be sent as asked (a URL http.client refuses, a proxy scheme
    this transport does not speak): nothing was sent, and resending would not help."""


class _SourceFailed(Exception):
    """The request body's own source raised: re-raised as it is, never taken for a
    connection failure."""


class Headers:
    """A response's header fields, names case-insensitive; a repeated field's values are
    joined with `, ` (RFC 9110 5.3; `WWW-Authenticate` may come as several fields)."""

    def __init__(self, message) -> None:
        self._fields: dict[str, str] = {}
        for name, value in message.items():
            key = name.lower()
            self._fields[key] = f"{self._fields[key]}, {value}" if key in self._fields else value

    def get(self, name: str, default=None):
        return self._fields.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]


class _Answer(http.client.HTTPResponse):
    """http.client's response with two bounds it lacks against a hostile server:
    - the status line and headers must arrive whole within the read timeout from their first
      byte (http.client only bounds each wait: a byte every few seconds would hold the
      request for hours while staying under its 64 KiB per line), and so must a small
      document's body once its reader asks for that (`Response.in_time`);
    - a chunk size below zero is broken framing (http.client would read on to the
      connection's end, into memory, whatever followed)."""

    def __init__(self, sock, *args, **kw) -> None:
        super().__init__(sock, *args, **kw)
        self.fp.close()  # http.client's own reader: replaced by one that keeps a deadline
        self.fp = io.BufferedReader(clock := _Deadline(sock))
        self.clock = clock

    def begin(self) -> None:
        self.clock.start(after_first_byte=True)
        try:
            super().begin()
        finally:
            self.clock.stop()

    def _read_next_chunk_size(self) -> int:
        size = super()._read_next_chunk_size()
        if size < 0:
            self._close_conn()
            raise ValueError("negative chunk size")  # http.client: IncompleteRead
        return size


class _Deadline(io.RawIOBase):
    """The socket's bytes for a response, all of them within one deadline while it runs
    (`start`): the read timeout from now, or from the first byte that comes."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._timeout = sock.gettimeout()
        self._deadline: float | None = None
        self._running = False

    def start(self, *, after_first_byte: bool = False) -> None:
        if self._timeout is not None:
            self._running = True
            self._deadline = None if after_first_byte else time.monotonic() + self._timeout

    def stop(self) -> None:
        if self._running:
            self._running = False
            with contextlib.suppress(OSError):  # closed already, by the answer's end
                self._sock.settimeout(self._timeout)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._running:
            return self._raw.readinto(buffer)
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the response did not arrive in time")
            self._sock.settimeout(min(self._timeout, left))
        n = self._raw.readinto(buffer)
        if self._deadline is None:
            self._deadline = time.monotonic() + self._timeout
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class Response:
    """One answer: `status_code`, `headers`, `url` (the URL this response is for), and its
    body through `read(n)`, raw as it arrived (we ask for `Accept-Encoding: identity`). Close
    it (or use `with`): a response read to its end gives its connection back to the pool."""

    def __init__(self, resp: http.client.HTTPResponse, conn, release: Callable, url: str) -> None:
        self._resp = resp
        self._conn = conn
        self._release = release
        self._broken = False
        self.url = url
        self.status_code = resp.status
        self.headers = Headers(resp.msg)

    def read(self, n: int | None = -1) -> bytes:
        """Up to `n` bytes (all that is left for None or a negative `n`); b"" at the end.
        A body cut short raises `BrokenBody` (http.client would return b"" early)."""
        resp = self._resp
        try:
            if n is None or n < 0:
                return resp.read()
            left = resp.length
            data = resp.read(n)
            if not data and n and left and not resp.chunked:
                raise BrokenBody(f"the body ended {left} bytes early")
            return data
        except http.client.IncompleteRead as exc:
            self._broken = True
            raise BrokenBody(f"the body ended {exc.expected or 'some'} bytes early") from None
        except http.client.HTTPException as exc:
            self._broken = True
            raise BrokenBody(f"bad HTTP framing ({type(exc).__name__})") from None
        except BaseException:
            self._broken = True
            raise

    def in_time(self) -> "Response":
        """From now on, the rest of the body must arrive within the read timeout as a whole,
        not only each part of it within it: for the small documents read whole (a
        manifest, a token, an error's text), which a server dripping a byte at a time would
        otherwise stretch over hours."""
        self._resp.clock.start()
        return self

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        resp = self._resp
        try:
            if (not self._broken and not resp.isclosed() and not resp.will_close
                    and not resp.chunked and resp.length is not None and resp.length <= DRAIN):
                resp.clock.start()  # a short rest dripped slowly: the read timeout in all
                resp.read()  # no body (HEAD, 204, Content-Length: 0) or a short rest
        except Exception:  # nothing more to learn from it: the connection is not reused
            self._broken = True
        finally:
            resp.clock.stop()  # the socket's whole read timeout again, for a next answer on it
        # an informational answer (1xx) that http.client took for the final one leaves the
        # real answer unread on the connection: never reused
        if self._broken or not resp.isclosed() or resp.will_close or self.status_code < 200:
            resp.close()
            conn.close()
        else:
            self._release(conn)

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Pool:
    """Connections to the origins one client talks to, for any thread: idle ones kept per
    (scheme, host, port, proxy), at most `MAX_IDLE` each."""

    def __init__(self, context: Callable[[], ssl.SSLContext],
                 timeout: tuple[float, float]) -> None:
        self._make_context = context
        self._context: ssl.SSLContext | None = None
        self.timeout = timeout
        self._idle: dict[tuple, list] = {}
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def request(self, method: str, url: str, headers: dict, body=None, *,
                proxy: str | None = None) -> Response:
        """Send one request and read its status line and headers. Failures of the connection
        raise `Failure`; what the body's source raises is raised as it is."""
        parts = urlsplit(url)
        scheme, host, port = origin(url)
        if scheme not in ("http", "https") or not host:  # a registry's Location, say: never
            raise BadRequest("not an HTTP URL")           # sent as HTTP to its host, or to :80
        key = (scheme, host, port, proxy)
        target = quote(parts.path or "/", safe=_SAFE) + (
            "?" + quote(parts.query, safe=_SAFE) if parts.query else "")
        headers = dict(headers)
        if proxy is not None and scheme == "http":  # the proxy forwards an absolute URI
            target = f"http://{parts.netloc.rpartition('@')[2]}{target}"
            headers.update(_proxy_auth(proxy))
        body = _body(body, headers)
        conn, reused = self._take(key), True
        if conn is None:
            conn, reused = self._connect(scheme, host, port, proxy), False
        early = False
        try:
            try:
                conn.request(method, target, body=body, headers=headers)
            except _CLOSED as sending:  # EPIPE, ECONNRESET, or a TLS connection's end
                # The server hung up before taking the whole body; it may have answered first
                # (Go's net/http closes after answering a handler that did not read a large
                # body): that answer, a refusal such as 411 or 413 or an expired token's 401,
                # is what to report, as urllib3 reads it too. None read: the failure stands.
                early = True
                try:
                    resp = conn.getresponse()
                except (OSError, http.client.HTTPException):
                    raise Failure(sending, reused=reused) from None
            else:
                resp = conn.getresponse()
        except _SourceFailed as exc:
            conn.close()
            raise exc.args[0] from None
        except Failure:
            conn.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if isinstance(exc, http.client.InvalidURL):
                raise BadRequest(_INVALID) from None
            raise Failure(exc, reused=reused) from None
        except (ValueError, UnicodeError):  # a header value http.client cannot send: CR or
            conn.close()                    # LF in it, or not Latin-1; never shown (a token?)
            raise BadRequest("a request header holds characters HTTP does not allow") from None
        except BaseException:
            conn.close()
            raise
        give = (lambda c: c.close()) if early else (lambda c: self._give(key, c))
        return Response(resp, conn, give, url)

    def _take(self, key):
        with self._lock:
            idle = self._idle.get(key) or []
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        return None

    def _give(self, key, conn) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                self._context = self._make_context()
            return self._context

    def _connect(self, scheme: str, host: str, port: int, proxy: str | None):
        connect, read = self.timeout
        tunnel = None
        if proxy is not None:
            p = urlsplit(proxy)
            if p.scheme != "http" or not p.hostname:
                raise BadRequest(f"unsupported proxy {p.scheme}://{p.hostname or ''} "
                                 f"(only http:// proxies are)")
            try:
                via = (p.hostname, p.port or 80)
            except ValueError:  # a port that is not a number: said without the URL's userinfo
                raise BadRequest(f"proxy {p.scheme}://{p.hostname}: not a valid port") from None
            tunnel = (host, port) if scheme == "https" else None
        else:
            via = (host, port)
        try:
            if scheme == "https":
                conn = http.client.HTTPSConnection(*via, timeout=connect,
                                                   context=self.context())
            else:
                conn = http.client.HTTPConnection(*via, timeout=connect)
            if tunnel is not None:
                conn.set_tunnel(*tunnel, headers=_proxy_auth(proxy))
        except http.client.InvalidURL:
            raise BadRequest(_INVALID) from None
        conn.response_class = _Answer
        try:
            conn.connect()
            conn.sock.settimeout(read)
        except TimeoutError as exc:
            conn.close()
            raise Failure(ConnectTimeout(str(exc))) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Failure(exc) from None
        except UnicodeError:  # IDNA, as the socket encodes a host: a label empty or too long
            conn.close()
            raise BadRequest("not a valid host name") from None
        return conn


def _body(body, headers: dict):
    """`body` as http.client sends it: bytes as they are; an iterable chunk by chunk (the
    client's upload bodies, `streams.UploadBody`), with Content-Length from `len()` when it
    has one and otherwise chunked (http.client's choice for a body of unknown length)."""
    if body is None or isinstance(body, (bytes, bytearray, memoryview)):
        return body
    if not any(k.lower() in ("content-length", "transfer-encoding") for k in headers):
        if hasattr(body, "__len__"):
            headers["Content-Length"] = str(len(body))
    return _guarded(iter(body))


def _guarded(chunks):
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except BaseException as exc:  # the source's failure, not the connection's
            raise _SourceFailed(exc) from exc
        yield chunk


def _dropped(conn) -> bool:
    """Whether an idle connection is unusable: gone, or readable (closed by the server, or
    bytes nobody asked for)."""
    sock = conn.sock
    if sock is None:
        return True
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _proxy_auth(proxy: str) -> dict:
    p = urlsplit(proxy)
    if p.username is None:
        return {}
    pair = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `url`, its port defaulted: what a connection goes to, and what
    credentials are kept for. A port that is not a number is a `BadRequest`."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadRequest("the URL's port is not a number") from None
    return parts.scheme, parts.hostname or "", port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_for(url: str, *, loopback: bool = False) -> str | None:
    """The proxy URL the environment names for `url`, or None: `<scheme>_proxy`, else
    `all_proxy`, unless `no_proxy` covers the host. Loopback hosts never go through a proxy
    unless `loopback` (a test routes a local registry through its proxy that way)."""
    if not any(v and k.lower() in _PROXY_VARS for k, v in os.environ.items()):
        return None  # the common case (NO_PROXY alone included): nothing to look up or import
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not loopback and is_loopback(host):
        return None
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    if _in_cidr(host, proxies.get("no", "")):
        return None
    try:
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:  # a port that is not a number: `Pool.request` refuses the URL itself
        return None
    if urllib.request.proxy_bypass_environment(netloc, proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _in_cidr(host: str, no_proxy: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in (e.strip() for e in no_proxy.split(",")):
        if "/" in entry:
            with contextlib.suppress(ValueError):  # not a network: no CIDR entry
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
    return False
