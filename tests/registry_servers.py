"""Real servers for the registry tests, all on 127.0.0.1 with bounded waits:

- `start_registry`: distribution 2.8 (`docker-registry serve`) as a process on a port of its
  choosing (read from its log), storage in a temporary directory, optionally with htpasswd
  auth, TLS, or Bearer tokens from `TokenServer`; stopped by its PID.
- `TokenServer`: a token endpoint of our own issuing ES256 JWTs (`x5c` header, the claims
  distribution checks), logging every request so tests can check scopes and credentials.
- `ScriptedServer`: an HTTP server that answers from a script (status, headers, body, or a
  body cut short), for the faults a good registry never produces.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from helpers import need

START_TIMEOUT = 20.0


# -- distribution ---------------------------------------------------------------------------

@dataclass
class Registry:
    proc: subprocess.Popen
    port: int
    root: Path
    log: Path
    tls: bool

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ref(self, rest: str) -> str:
        return f"docker://{self.host}/{rest}"

    def access_log(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_registry(tmp: Path, *, auth: dict | None = None,
                   tls: tuple[Path, Path] | None = None) -> Registry:
    """distribution 2.8 on 127.0.0.1:<free port>. `auth` is the config's `auth` section;
    `tls` a (certificate, key) pair."""
    program = need("docker-registry")
    tmp.mkdir(parents=True, exist_ok=True)
    http_cfg: dict = {"addr": "127.0.0.1:0", "secret": "test-only"}
    if tls:
        http_cfg["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    config = {"version": 0.1, "log": {"level": "info"},
              "storage": {"filesystem": {"rootdirectory": str(tmp / "data")},
                          "delete": {"enabled": True}},
              "http": http_cfg}
    if auth:
        config["auth"] = auth
    cfg = tmp / "config.yml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    log = tmp / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([program, "serve", str(cfg)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if match:
            return Registry(proc, int(match.group(1)), tmp, log, tls is not None)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    Registry(proc, 0, tmp, log, False).stop()
    raise RuntimeError(f"docker-registry did not start:\n{log.read_text(errors='replace')}")


def self_signed(tmp: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost) with its key, made by openssl."""
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    subprocess.run([need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def htpasswd_file(tmp: Path, users: dict[str, str]) -> Path:
    program = need("htpasswd")
    path = tmp / "htpasswd"
    lines = [subprocess.run([program, "-Bbn", user, password], check=True,
                            capture_output=True, text=True).stdout.strip()
             for user, password in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- threads serving HTTP -------------------------------------------------------------------

class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up mid-answer (TLS probes, cut bodies) are expected here


def _serve(handler_cls, owner, tls: tuple[Path, Path] | None = None):
    server = _Server(("127.0.0.1", 0), handler_cls)
    server.owner = owner
    if tls:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        # the handshake in the handler's thread, not in accept(): a client that stalls in
        # it (a test's plain-HTTP probe, a cut connection) must not block every other one
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    return server, thread


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- token server ---------------------------------------------------------------------------

@dataclass
class TokenRequest:
    method: str
    service: str | None
    scopes: list[str]
    user: str | None      # the Basic user, if credentials were sent and matched
    refresh: bool         # an OAuth2 refresh-token grant


class TokenServer:
    """Issues tokens for `users` (name -> password); `grants` (name -> actions, `*` any
    repository) says what each may do; anonymous gets `anonymous` actions. `identity` maps
    refresh tokens to users."""

    def __init__(self, tmp: Path, *, users: dict[str, str],
                 grants: dict[str, tuple[str, ...]] | None = None,
                 anonymous: tuple[str, ...] = (), identity: dict[str, str] | None = None,
                 service: str = "acioci-test-registry", issuer: str = "acioci-test-issuer",
                 lifetime: int = 300) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users = users
        self.grants = grants or {u: ("pull", "push") for u in users}
        self.anonymous = anonymous
        self.identity = identity or {}
        self.service, self.issuer, self.lifetime = service, issuer, lifetime
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acioci test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = tmp / "token-signer.crt"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[TokenRequest] = []
        self.server, self.thread = _serve(_TokenHandler, self)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def registry_auth(self) -> dict:
        return {"token": {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                          "rootcertbundle": str(self.bundle)}}

    def jwt(self, subject: str, access: list[dict]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now +
                  self.lifetime, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8),
                  "access": access}
        signing = (_b64url(json.dumps(header).encode()) + "." +
                   _b64url(json.dumps(claims).encode()))
        der = self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        allowed = set(self.grants.get(user, ()) if user else self.anonymous)
        access = []
        for text in scopes:
            for one in text.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind != "repository" or not name:
                    continue
                give = [a for a in actions.split(",") if a in allowed]
                access.append({"type": kind, "name": name, "actions": give})
        return access

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _basic_user(self, owner: TokenServer) -> tuple[bool, str | None]:
        header = self.headers.get("Authorization")
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return owner.users.get(user) == password, user

    def do_GET(self) -> None:
        owner: TokenServer = self.server.owner
        query = parse_qs(urlsplit(self.path).query)
        good, user = self._basic_user(owner)
        owner.requests.append(TokenRequest("GET", (query.get("service") or [None])[0],
                                           query.get("scope", []), user if good else None,
                                           False))
        if not good:
            return self._answer(401, {"errors": [{"code": "UNAUTHORIZED",
                                                  "message": "bad credentials"}]})
        token = owner.jwt(user or "", owner.grant(user, query.get("scope", [])))
        self._answer(200, {"token": token, "access_token": token,
                           "expires_in": owner.lifetime})

    def do_POST(self) -> None:
        owner: TokenServer = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        user = owner.identity.get((form.get("refresh_token") or [""])[0])
        scopes = (form.get("scope") or [""])[0].split(" ")
        owner.requests.append(TokenRequest("POST", (form.get("service") or [None])[0], scopes,
                                           user, True))
        if form.get("grant_type") != ["refresh_token"] or user is None:
            return self._answer(401, {"error": "invalid_grant"})
        token = owner.jwt(user, owner.grant(user, scopes))
        self._answer(200, {"access_token": token, "expires_in": owner.lifetime})


# -- scripted misbehaving server ------------------------------------------------------------

@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    cut: int | None = None          # send a full Content-Length but only this many bytes
    length: bool = True             # False: no Content-Length, the body ends when we close
    delay: float = 0.0              # seconds before answering (read timeouts)
    drop: bool = False              # hang up without answering (a connection reset)
    hangup: bool = False            # answer in full, then close without saying so first
    early: bool = False             # answer before reading the request's body, then close
                                    # (Go's net/http, to a handler that did not read it)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes
    peer: tuple = ()                # the client's (address, port): one per connection


class ScriptedServer:
    """Answers `(METHOD, path)` (the path without its query) from a list of replies, in
    order; the last one repeats. Anything unscripted is a 404. Every request is logged. With
    `tls` (a certificate and its key), it speaks https."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.log: list[Seen] = []
        self.server, self.thread = _serve(_ScriptedHandler, self, tls)
        self.scheme = "https" if tls else "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.log if (method is None or s.method == method)
                and (path is None or urlsplit(s.path).path == path)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        owner: ScriptedServer = self.server.owner
        replies = owner.routes.get((self.command, urlsplit(self.path).path))
        reply = (replies.pop(0) if len(replies) > 1 else replies[0]) if replies else Reply(404)
        body = b"" if reply.early else self._body()
        owner.log.append(Seen(self.command, self.path, dict(self.headers), body,
                              self.client_address))
        if reply.early:
            reply = replace(reply, headers={**reply.headers, "Connection": "close"})
            self.close_connection = True
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value.replace("{host}", owner.host))
        if reply.length:
            self.send_header("Content-Length", str(len(reply.body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if reply.hangup:
            self.close_connection = True
        if self.command == "HEAD":
            return
        if reply.cut is not None:
            self.wfile.write(reply.body[: reply.cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(reply.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def scripted_env(tmp: Path) -> dict:
    """An environment with no auth files, for clients that must find no credentials."""
    return {"HOME": str(tmp / "home"), "PATH": os.environ.get("PATH", "")}


# an empty OCI manifest as a ScriptedServer serves one, its digest and its Content-Type
MANIFEST = json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {}, "layers": []}).encode()
MD = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OCI = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}


def scripted_client(server: "ScriptedServer", tmp: Path, **kw):
    """A registry client for `server`'s repository `r`: plain HTTP allowed, no credentials,
    quick retries and short timeouts (faults are what these servers are for)."""
    from convert.registry.client import RegistryClient

    opts = {"tls_verify": False, "retries": 2, "backoff": 0.001, "timeout": (2.0, 2.0),
            "env": scripted_env(tmp), **kw}
    return RegistryClient(server.host, repository="r", **opts)


# -- a forward proxy ------------------------------------------------------------------------

class ForwardProxy:
    """An HTTP proxy on 127.0.0.1, as a client meets one: `CONNECT host:port` opens a tunnel
    (https), and an absolute-URI request (`GET http://host:port/path`) is passed to its
    origin, whose connection is then joined to the client's byte for byte (later requests on
    it go the same way). Each connection's first request line is logged with the
    Proxy-Authorization it came with; with `auth` ("user:password"), any other gets a 407."""

    def __init__(self, auth: str | None = None) -> None:
        self.auth = auth
        self.log: list[tuple[str, str | None]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (a close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=10)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client) -> None:
        with client:
            client.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            given = next((line.partition(":")[2].strip() for line in lines[1:]
                          if line.lower().startswith("proxy-authorization:")), None)
            self.log.append((lines[0], given))
            if self.auth and given != "Basic " + base64.b64encode(self.auth.encode()).decode():
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                               b"Proxy-Authenticate: Basic realm=\"proxy\"\r\n"
                               b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=30)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = rest
            else:
                parts = urlsplit(target)
                upstream = socket.create_connection((parts.hostname, parts.port or 80),
                                                    timeout=30)
                kept = [line for line in lines
                        if not line.lower().startswith("proxy-authorization:")]
                first = ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1") + rest
            with upstream:
                if first:
                    upstream.sendall(first)
                back = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
                back.start()
                _copy(client, upstream)
                back.join(timeout=30)


def _copy(src, dst) -> None:
    """Bytes from `src` to `dst` until `src` ends; then `dst` is told no more will come."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
