"""The registry client's transport (`convert/registry/connections.py`) against real servers on
127.0.0.1: kept-alive connections and when they are given up, a connection the server closed
while idle, and proxies from the environment (a real CONNECT and forwarding proxy,
`registry_servers.ForwardProxy`)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import itertools
import socket
import threading
import time

import pytest

from convert.registry.client import RegistryClient
from convert.registry.connections import proxy_for
from convert.registry.errors import RegistryError
from helpers import modules_after
from registry_servers import (MANIFEST, MD, OCI, ForwardProxy, Reply, ScriptedServer, scripted_env,
                              self_signed)
from registry_servers import scripted_client as client

DATA = b"layer bytes " * 10000
D = "sha256:" + hashlib.sha256(DATA).hexdigest()
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    """Each test starts with no proxy variable set (a CI machine may have some)."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def peers(server) -> list:
    return [s.peer for s in server.log]


# -- keep-alive -----------------------------------------------------------------------------

def test_one_connection_serves_a_whole_exchange(server, tmp_path):
    server.script("HEAD", f"/v2/r/blobs/{D}", Reply(200, DATA))
    server.script("GET", f"/v2/r/blobs/{D}", Reply(200, DATA))
    server.script("GET", "/v2/r/manifests/v1", Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path) as c:
        assert c.blob_size("r", D) == len(DATA)
        with c.open_blob("r", D, len(DATA)) as fh:
            assert fh.read(len(DATA) + 1) == DATA and fh.read(1) == b""
        assert c.get_manifest("r", "v1").digest == MD
        assert c.blob_size("r", D) == len(DATA)
    assert len(server.log) == 5 and len(set(peers(server))) == 1


def test_a_response_closed_early_closes_its_connection(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}", Reply(200, DATA))
    with client(server, tmp_path) as c:
        with c.open_blob("r", D, len(DATA)) as fh:
            assert fh.read(100) == DATA[:100]
        assert c.blob_size("r", D) is None  # unscripted HEAD: 404, on a new connection
    ping, get, head = peers(server)
    assert ping == get != head


def test_a_connection_closed_while_idle_is_not_used(server, tmp_path):
    """The request after the server's hang-up is a streamed PATCH, which is never resent:
    only the look at the idle connection keeps it off the closed one."""
    from convert.registry.auth import scope

    server.script("GET", "/v2/", Reply(200, b"{}", hangup=True))
    server.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1",
                                                        "Range": f"0-{len(DATA) - 1}"}))
    chunks = (DATA[i:i + 4096] for i in range(0, len(DATA), 4096))
    with client(server, tmp_path) as c:
        c.base()
        time.sleep(0.2)  # the server's close reaches us while the connection is idle
        c.patch_upload(f"{server.url}/up/1", chunks, (scope("r", ("pull", "push")),),
                       lambda: len(DATA))
    assert server.seen("PATCH")[0].body == DATA
    assert len(set(peers(server))) == 2


def test_a_kept_alive_connection_dropped_under_a_request_is_resent_at_once(server, tmp_path):
    """The server takes the request on the kept-alive connection and hangs up without an
    answer (as one does that closes an idle connection at that moment): a replayable request
    goes again on a new connection, without a retry's wait."""
    server.script("GET", "/v2/r/manifests/v1", Reply(drop=True),
                  Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path) as c:
        waits = []
        c.http.sleep = waits.append
        assert c.get_manifest("r", "v1").digest == MD
    assert waits == []
    ping, dropped, again = peers(server)
    assert ping == dropped != again


def test_a_drop_on_a_new_connection_waits_as_a_retry(server, tmp_path):
    server.script("GET", "/v2/", Reply(drop=True), Reply(200, b"{}"))
    with client(server, tmp_path) as c:
        waits = []
        c.http.sleep = waits.append
        c.base()
    assert len(waits) == 1 and len(server.seen("GET", "/v2/")) == 2


def test_a_dropped_patch_is_never_replayed(server, tmp_path):
    server.script("HEAD", f"/v2/r/blobs/{D}", Reply(404))
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/1"}))
    server.script("PATCH", "/up/1", Reply(drop=True))
    chunks = (DATA[i:i + 4096] for i in range(0, len(DATA), 4096))
    with client(server, tmp_path) as c, pytest.raises(RegistryError, match="PATCH"):
        c.upload_blob("r", chunks, digest=D)
    assert len(server.seen("PATCH")) == 1 and server.seen("DELETE", "/up/1")


def test_a_blob_of_known_size_goes_with_its_length_not_chunked(server, tmp_path):
    """upload_blob with a size sends it as the PATCH's Content-Length (a registry that wants
    the length first takes it), streamed from the source, never gathered whole."""
    big = bytes(range(256)) * (3 * (1 << 20) // 256 + 7)
    digest = "sha256:" + hashlib.sha256(big).hexdigest()
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/1"}))
    server.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1"}))
    server.script("PUT", "/up/1", Reply(201))
    reads = []

    class Source(io.BytesIO):
        def read(self, n=-1):
            reads.append(n)
            return super().read(n)

    with client(server, tmp_path) as c:
        assert c.upload_blob("r", Source(big), digest=digest, size=len(big)).how == "uploaded"
    patch = server.seen("PATCH", "/up/1")[0]
    assert patch.body == big and patch.headers["Content-Length"] == str(len(big))
    assert "Transfer-Encoding" not in patch.headers
    assert reads and max(reads) < len(big)  # read in pieces


# -- proxies --------------------------------------------------------------------------------

def test_proxy_selection(monkeypatch):
    assert proxy_for("https://registry.example/v2/") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")
    monkeypatch.setenv("http_proxy", "http://plain.example:8080")
    assert proxy_for("https://registry.example/v2/") == "http://proxy.example:3128"
    assert proxy_for("http://registry.example:5000/v2/") == "http://plain.example:8080"
    # loopback registries are never proxied, unless a test says so
    assert proxy_for("https://127.0.0.1:5000/v2/") is None
    assert proxy_for("https://localhost/v2/") is None
    assert proxy_for("https://[::1]:5000/v2/") is None
    assert proxy_for("https://127.0.0.1:5000/v2/", loopback=True) == "http://proxy.example:3128"
    monkeypatch.setenv("no_proxy", "example.org, .internal,10.0.0.0/8,host.test:5000")
    assert proxy_for("https://registry.example.org/v2/") is None
    assert proxy_for("https://example.org/v2/") is None
    assert proxy_for("https://a.b.internal/v2/") is None
    assert proxy_for("https://10.1.2.3:5000/v2/") is None
    assert proxy_for("https://11.1.2.3:5000/v2/") == "http://proxy.example:3128"
    assert proxy_for("https://host.test:5000/v2/") is None
    assert proxy_for("https://host.test:5001/v2/") == "http://proxy.example:3128"
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://all.example:1080")
    assert proxy_for("https://registry.example/v2/") == "http://all.example:1080"
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv("no_proxy")
    assert proxy_for("https://registry.example/v2/") is None


def test_no_proxy_variable_imports_no_urllib_request():
    """Nor does NO_PROXY alone, which many machines set."""
    code = ("import os\n"
            "for k in list(os.environ):\n"
            "    if k.lower().endswith('_proxy'): del os.environ[k]\n"
            "os.environ['NO_PROXY'] = 'localhost,.internal'\n"
            "from convert.registry.connections import proxy_for\n"
            "assert proxy_for('https://registry.example/v2/') is None")
    assert modules_after(code, ("urllib.request",)) == []


@pytest.fixture
def proxy():
    p = ForwardProxy(auth="pxuser:px-Secret-1")
    yield p
    p.stop()


@pytest.fixture
def tls_server(tmp_path):
    cert, key = self_signed(tmp_path)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(cert.read_bytes())
    s = ScriptedServer(tls=(cert, key))
    s.script("GET", "/v2/", Reply(200, b"{}"))
    s.certs = certs
    yield s
    s.stop()


def test_https_goes_through_a_connect_tunnel(tls_server, proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("//", "//pxuser:px-Secret-1@"))
    tls_server.script("GET", f"/v2/r/blobs/{D}", Reply(200, DATA))
    with client(tls_server, tmp_path, tls_verify=True, cert_dir=str(tls_server.certs)) as c:
        assert c.blob_size("r", D) is None  # loopback: straight to the registry
        assert proxy.log == []
    with client(tls_server, tmp_path, tls_verify=True, cert_dir=str(tls_server.certs)) as c:
        c.http.proxy_loopback = True
        with c.open_blob("r", D, len(DATA)) as fh:
            assert fh.read(len(DATA) + 1) == DATA and fh.read(1) == b""
        assert c.blob_size("r", D) is None
    basic = "Basic " + base64.b64encode(b"pxuser:px-Secret-1").decode()
    assert proxy.log == [(f"CONNECT {tls_server.host} HTTP/1.0", basic)]  # one tunnel, kept
    assert [s.path for s in tls_server.log[-3:]] == ["/v2/", f"/v2/r/blobs/{D}",
                                                     f"/v2/r/blobs/{D}"]
    assert all("Proxy-Authorization" not in s.headers for s in tls_server.log)


def test_plain_http_goes_to_the_proxy_as_an_absolute_uri(server, proxy, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("http_proxy", proxy.url.replace("//", "//pxuser:px-Secret-1@"))
    server.script("GET", "/v2/r/manifests/v1", Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path) as c:
        c.http.proxy_loopback = True
        assert c.base() == server.url  # https was tried first, straight (no https_proxy)
        assert c.get_manifest("r", "v1").digest == MD
    basic = "Basic " + base64.b64encode(b"pxuser:px-Secret-1").decode()
    assert proxy.log == [(f"GET {server.url}/v2/ HTTP/1.1", basic)]  # one connection, kept
    ping, seen = server.seen("GET", "/v2/")[0], server.seen("GET", "/v2/r/manifests/v1")[0]
    assert seen.path == f"{server.url}/v2/r/manifests/v1" and seen.headers["Host"] == server.host
    assert ping.path == f"{server.url}/v2/" and "Proxy-Authorization" not in ping.headers


def test_no_proxy_is_honoured_and_proxy_credentials_never_show(tls_server, proxy, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("//", "//pxuser:wrong-Secret-2@"))
    with client(tls_server, tmp_path, tls_verify=True, cert_dir=str(tls_server.certs),
                retries=0) as c:
        c.http.proxy_loopback = True
        with pytest.raises(RegistryError) as info:
            c.base()
    assert "407" in str(info.value) and "wrong-Secret-2" not in f"{info.value!r} {info.value}"
    assert proxy.log and not tls_server.log
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with client(tls_server, tmp_path, tls_verify=True, cert_dir=str(tls_server.certs)) as c:
        c.http.proxy_loopback = True
        c.base()
    assert len(proxy.log) == 1 and len(tls_server.log) == 1


def test_a_location_is_sent_quoted_and_a_bad_host_is_one_error_without_its_query(
        server, tmp_path):
    server.script("POST", "/v2/r/blobs/uploads/",
                  Reply(202, headers={"Location": "/up/1?_state=a b\x01c"}))
    server.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1"}))
    server.script("PUT", "/up/1", Reply(201))
    server.script("GET", f"/v2/r/blobs/{D}",
                  Reply(307, headers={"Location": "http://cdn\x01host/blob?sig=s3cr3t"}))
    with client(server, tmp_path) as c:
        c.upload_blob("r", io.BytesIO(b"abc"))
        with pytest.raises(RegistryError) as info:
            c.open_blob("r", D)
    assert server.seen("PATCH")[0].path == "/up/1?_state=a%20b%01c"
    assert "characters HTTP does not allow" in str(info.value)
    assert "s3cr3t" not in str(info.value) and info.value.exit_code == 2


def test_an_unverified_context_loads_no_ca_and_a_verified_one_the_systems():
    """With verification off no CA is consulted, so none is parsed (the system bundle takes
    ~27 ms, on every push to a registry whose TLS is not checked); with it on, the system's
    are there for the check."""
    import ssl

    from convert.registry.tls import TlsSettings

    unverified = TlsSettings(verify=False).context()
    assert unverified.cert_store_stats()["x509_ca"] == 0
    assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname
    verified = TlsSettings(verify=True).context()
    assert verified.cert_store_stats() == ssl.create_default_context().cert_store_stats()
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname


def test_a_proxy_with_a_bad_port_is_one_error_without_its_credentials(server, tmp_path,
                                                                       monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://pxuser:px-Secret-2@proxy.example:80x")
    with client(server, tmp_path) as c, pytest.raises(RegistryError) as info:
        c.http.proxy_loopback = True
        c.base()
    assert "not a valid port" in str(info.value) and "Secret" not in repr(info.value)
    assert not server.log


def test_a_redirect_to_a_port_that_is_not_a_number_is_one_error(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}",
                  Reply(307, headers={"Location": "http://cdn.example:80x/blob"}))
    with client(server, tmp_path) as c, pytest.raises(RegistryError, match="cannot be sent"):
        with c.open_blob("r", D, len(DATA)) as fh:
            fh.read()


def raw_server(answer) -> socket.socket:
    """A server that hands each connection, and its number from 0, to `answer`: for replies
    no HTTP server library would send."""
    sock = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        for n in itertools.count():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn, n), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return sock


def _request_head(conn) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)


@contextlib.contextmanager
def raw_client(tmp_path, answer, timeout: float = 1.0):
    """(a registry client, its host) over a `raw_server(answer)`, no retries, the server
    closed after the client."""
    sock = raw_server(answer)
    host = f"127.0.0.1:{sock.getsockname()[1]}"
    try:
        with RegistryClient(host, tls_verify=False, retries=0, timeout=(timeout, timeout),
                            env=scripted_env(tmp_path)) as c:
            yield c, host
    finally:
        sock.close()


def test_an_early_hint_taken_for_the_answer_never_leaves_its_connection_for_reuse():
    """http.client skips only `100 Continue`: a 103 comes back as the answer, the real one
    still to come on that connection, so the connection must not serve the next request."""
    from convert.registry.connections import Pool

    def answer(conn, n) -> None:
        with conn:
            _request_head(conn)
            if n == 0:  # the hint; the first request's own answer comes only when the
                # connection is used again, so the look at an idle connection sees nothing
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
                _request_head(conn)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
            time.sleep(0.5)

    sock = raw_server(answer)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v2/"
    pool = Pool(lambda: None, (2.0, 2.0))
    try:
        with pool.request("GET", url, {}) as hint:
            assert hint.status_code == 103
        with pool.request("GET", url, {}) as resp:
            assert resp.read() == b"fresh"
    finally:
        pool.close()
        sock.close()


def test_a_servers_garbage_status_line_is_not_quoted_whole_in_the_error(tmp_path):
    def answer(conn, n) -> None:
        with conn:
            _request_head(conn)
            conn.sendall(b"HTTP/1.1 " + b"x" * 20000 + b"\r\n\r\n")

    with raw_client(tmp_path, answer, 2.0) as (c, host), pytest.raises(RegistryError) as info:
        c.http.send("GET", f"http://{host}/v2/")
    assert "x" * 300 not in str(info.value) and len(str(info.value)) < 600


def test_a_negative_chunk_size_is_a_broken_body_not_a_read_to_the_end():
    """http.client takes a chunk size of `-1` for "read on until the connection ends" (into
    memory, whatever a hostile server sends after it): refused at the size line, so the
    server gets to send little more than the socket buffers hold."""
    from convert.registry.connections import BrokenBody, Pool

    sent = []

    def answer(conn, n) -> None:
        with conn:
            _request_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n")
            block = b"x" * (1 << 20)
            try:
                for _ in range(64):
                    conn.sendall(block)
                    sent.append(len(block))
            except OSError:
                pass

    sock = raw_server(answer)
    pool = Pool(lambda: None, (2.0, 2.0))
    try:
        with pool.request("GET", f"http://127.0.0.1:{sock.getsockname()[1]}/v2/", {}) as resp:
            with pytest.raises(BrokenBody):
                resp.read(1 << 20)
    finally:
        pool.close()
        sock.close()
    time.sleep(0.2)
    assert len(sent) < 16  # of 64 MiB: the client stopped at the size line


@pytest.mark.parametrize("drip", [b"X", b"HTTP/1.1 100 Continue\r\n\r\n"])
def test_a_status_line_and_headers_dripped_slowly_are_bounded_as_a_whole(tmp_path, drip):
    """Each byte (or each `100 Continue`, which http.client skips without end) within the
    read timeout, but the head never done in it: the read timeout bounds the whole head
    (from its first byte), not only each wait."""
    def answer(conn, n) -> None:
        with conn:
            _request_head(conn)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n" if drip == b"X" else b"")
                for _ in range(40):
                    conn.sendall(drip)
                    time.sleep(0.25)
                conn.sendall(b": y\r\nContent-Length: 0\r\n\r\n" if drip == b"X" else
                             b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass

    start = time.monotonic()
    with raw_client(tmp_path, answer) as (c, host), \
            pytest.raises(RegistryError, match="timed out"):
        c.http.send("GET", f"http://{host}/v2/", retry=False)
    assert time.monotonic() - start < 5


def test_a_manifest_dripped_slowly_is_bounded_as_a_whole(tmp_path):
    """A small document read whole (here a manifest) must come within the read timeout in
    all, not a byte per read timeout for up to its 4 MiB limit."""
    def answer(conn, n) -> None:
        with conn:
            try:
                while True:
                    _request_head(conn)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n"
                                 b"Content-Type: " + OCI["Content-Type"].encode() + b"\r\n\r\n")
                    for _ in range(40):
                        conn.sendall(b" ")
                        time.sleep(0.25)
            except OSError:
                pass

    start = time.monotonic()
    with raw_client(tmp_path, answer) as (c, host), \
            pytest.raises(RegistryError, match="timed out") as info:
        c._base = f"http://{host}"  # no ping: the manifest is the first request
        c.get_manifest("r", "v1")
    assert time.monotonic() - start < 5 and "/v2/r/manifests/v1" in str(info.value)


def test_a_body_read_in_time_leaves_its_kept_alive_connection_the_whole_read_timeout(tmp_path):
    """The deadline of a small document's body shortens the socket's timeout as it runs out;
    the connection it goes back to the pool with must have the whole read timeout again for
    the next answer (here one that takes 75 % of it)."""
    def answer(conn, n) -> None:
        with conn:
            try:
                for k in itertools.count():
                    _request_head(conn)
                    if k == 0:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " +
                                     str(len(MANIFEST)).encode() + b"\r\nContent-Type: " +
                                     OCI["Content-Type"].encode() + b"\r\n\r\n")
                        time.sleep(0.4)
                        conn.sendall(MANIFEST[:20])
                        time.sleep(0.4)  # the socket's timeout is left at 0.6 s here
                        conn.sendall(MANIFEST[20:])
                    else:
                        time.sleep(0.75)
                        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass

    with raw_client(tmp_path, answer) as (c, host):
        c._base = f"http://{host}"
        assert c.get_manifest("r", "v1").digest == MD
        assert c.blob_size("r", D) is None  # the same connection, 0.75 s to answer


def test_a_short_rest_drained_at_close_is_bounded_as_a_whole():
    """A response closed unread whose declared rest is short enough to drain (to keep its
    connection): a server dripping that rest a byte per read timeout would hold `close()`
    for as many read timeouts as it has bytes. The drain gets the read timeout in all, and
    a rest not in by then closes the connection."""
    from convert.registry.connections import Pool

    def answer(conn, n) -> None:
        with conn:
            _request_head(conn)
            try:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 40\r\n\r\n")
                for _ in range(40):
                    time.sleep(0.25)
                    conn.sendall(b"x")
            except OSError:
                pass

    sock = raw_server(answer)
    pool = Pool(lambda: None, (1.0, 1.0))
    try:
        start = time.monotonic()
        with pool.request("GET", f"http://127.0.0.1:{sock.getsockname()[1]}/v2/", {}) as resp:
            assert resp.status_code == 404
        assert time.monotonic() - start < 5
    finally:
        pool.close()
        sock.close()
