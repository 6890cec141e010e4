"""Real servers and real keys for the appc discovery tests: no mocks.

- `Site`: what a server serves, a dict of path(+query) -> response that a test fills in and
  clears; every request is logged. One `Site` backs the HTTPS server on 127.0.0.1:443 (where
  discovery of `localhost/...` names goes) and plain HTTP servers on other loopback ports.
- `make_tls`: a private CA and a server certificate for `localhost` and 127.0.0.1, by openssl.
- `Gpg`: keys made by `gpg --quick-gen-key` in a temporary GNUPGHOME, detached signatures by
  `gpg --detach-sign`, and an rkt keystore to put them in. `close()` stops the gpg-agent that
  gpg started for that home, by its home directory.

Port 443 is process-wide, so `https_server` is module-scoped and guarded by a file lock:
two test processes (a second pytest, another worktree) wait for each other instead of failing.
"""

from __future__ import annotations

import fcntl
import html
import os
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOCK_FILE = "/tmp/acioci-test-port-443.lock"


class Site:
    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.log: list[str] = []
        self.release = threading.Event()  # lets stalled responses finish at teardown

    def reset(self) -> None:
        self.routes.clear()
        self.log.clear()

    def put(self, path: str, body: bytes, *, status: int = 200, headers=None) -> None:
        self.routes[path] = (status, dict(headers or {}), body)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = (status, {"Location": location}, b"")

    def page(self, path: str, *tags: tuple[str, str, str], body: str = "") -> None:
        """A discovery page at `path` with meta tags (kind, prefix, value); kind is
        'ac-discovery' or 'ac-discovery-pubkeys'."""
        metas = "\n".join(f'<meta name="{k}" content="{html.escape(p)} {html.escape(v)}">'
                          for k, p, v in tags)
        text = f"<!DOCTYPE html>\n<html><head>\n{metas}\n</head><body>{body}</body></html>\n"
        self.put(path, text.encode(), headers={"Content-Type": "text/html"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        site: Site = self.server.site  # type: ignore[attr-defined]
        site.log.append(self.path)
        route = site.routes.get(self.path)
        if route is None:
            route = (404, {}, b"not found\n")
        if callable(route):
            route(self, site)
            return
        status, headers, body = route
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that reject our certificate or hang up are what some tests are about


def serve(site: Site, host: str, port: int, tls: ssl.SSLContext | None = None):
    """A running server (call .shutdown() and .server_close()) on host:port."""
    server = _Server((host, port), _Handler)
    server.site = site  # type: ignore[attr-defined]
    if tls is not None:
        # the handshake happens in the handler thread, so a stuck client blocks only itself
        server.socket = tls.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


def stall_after(first: bytes, total: int):
    """A route that sends `first` of a `total`-byte body, then waits until the site is
    released: a download to interrupt."""
    def route(handler: BaseHTTPRequestHandler, site: Site) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        handler.wfile.write(first)
        handler.wfile.flush()
        site.release.wait(30)
    return route


def make_tls(d: Path) -> tuple[Path, Path, Path]:
    """(CA cert, server cert, server key) in d: a private CA, and a certificate it signed for
    localhost and 127.0.0.1."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.crt", "-days", "3",
            "-subj", "/CN=acioci test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", d / "server.key", "-out", d / "server.csr",
            "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "basicConstraints=critical,CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=serverAuth\n"
                               "subjectKeyIdentifier=hash\n"
                               "authorityKeyIdentifier=keyid,issuer\n")
    openssl("x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.crt", "-CAkey",
            d / "ca.key", "-CAcreateserial", "-out", d / "server.crt", "-days", "3",
            "-extfile", d / "ext.cnf")
    return d / "ca.crt", d / "server.crt", d / "server.key"


def need_root_for_443() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("binding 127.0.0.1:443 for the discovery tests needs root")
        pytest.skip("binding 127.0.0.1:443 needs root")


class Port443:
    """The HTTPS server on 127.0.0.1:443, held under a file lock across processes."""

    def __init__(self, site: Site, tls: ssl.SSLContext, *, wait: float = 300.0) -> None:
        self.lock = open(LOCK_FILE, "a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.lock.close()
                    pytest.fail("127.0.0.1:443 stayed locked by another test run")
                time.sleep(0.5)
        while True:
            try:
                self.server = serve(site, "127.0.0.1", 443, tls)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.lock.close()
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.lock.close()


class Gpg:
    """A throw-away GnuPG home that makes keys and signatures."""

    def __init__(self, home: Path) -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = home

    def run(self, *args, faked_time: str | None = None, check: bool = True):
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--pinentry-mode",
               "loopback", "--passphrase", ""]
        if faked_time:
            cmd += ["--faked-system-time", faked_time]
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, check=check,
                              env={**os.environ, "LC_ALL": "C"})

    def new_key(self, uid: str, *, expire: str = "never", faked_time: str | None = None) -> str:
        """A new ed25519 signing key; returns its fingerprint (lower-case hex)."""
        self.run("--quick-gen-key", uid, "ed25519", "sign", expire, faked_time=faked_time)
        out = self.run("--with-colons", "--list-keys", uid).stdout.decode()
        fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
        return fprs[-1].lower()

    def export(self, fpr: str, *, armor: bool = True) -> bytes:
        return self.run(*(["--armor"] if armor else []), "--export", fpr).stdout

    def sign(self, fpr: str, data: bytes, *, faked_time: str | None = None) -> bytes:
        """An armored detached signature of `data` by `fpr`."""
        src = self.home / "to-sign"
        src.write_bytes(data)
        out = self.home / "to-sign.asc"
        self.run("--local-user", fpr, "--armor", "--detach-sign", "--output", out, src,
                 faked_time=faked_time)
        return out.read_bytes()

    def trust(self, keystore: Path, fpr: str, prefix: str | None = None, *,
              armor: bool = True) -> Path:
        """Install a key in an rkt keystore: prefix.d/PREFIX/FPR, or root.d/FPR."""
        d = keystore / "root.d" if prefix is None else keystore / "prefix.d" / prefix
        d.mkdir(parents=True, exist_ok=True)
        path = d / fpr
        path.write_bytes(self.export(fpr, armor=armor))
        return path

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
                       capture_output=True)


def gpg_with_keys(home: Path) -> Gpg:
    """The keys every discovery test signs with: `good` and `other`, and `old`, valid for a
    day from 2020-01-01 (made and signed at that time): an expired key today. The caller
    closes it."""
    from helpers import need

    need("gpg"), need("gpgv")
    g = Gpg(home)
    g.good = g.new_key("Good <good@localhost>")
    g.other = g.new_key("Other <other@localhost>")
    g.old = g.new_key("Old <old@localhost>", expire="1d", faked_time="20200101T000000")
    return g
