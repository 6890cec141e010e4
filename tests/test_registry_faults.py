"""The registry client against a server that misbehaves on purpose (`ScriptedServer`):
retries, wrong or cut bytes, oversized manifests, redirect loops, credentials that must not
leak, and the upload protocol's corners. Every fault is one clear error naming the URL."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import subprocess
import sys
import time

import pytest

from convert.errors import DigestMismatchError, FormatError, LimitError
from convert.registry.client import MAX_MANIFEST, RegistryClient
from convert.registry.errors import AuthenticationError, RegistryError
from helpers import ROOT
from registry_servers import (MANIFEST, MD, OCI, Reply, ScriptedServer, scripted_env,
                              self_signed)
from registry_servers import scripted_client as client

DATA = b"layer bytes " * 100
D = "sha256:" + hashlib.sha256(DATA).hexdigest()
OTHER = b"x" * len(DATA)
PASSWORD = "s3cret-Pa55"


@pytest.fixture
def other():
    s = ScriptedServer()
    yield s
    s.stop()


def read_all(fh) -> bytes:
    out = b""
    while chunk := fh.read(100):
        out += chunk
    return out


def no_secrets(text: str, user: str = "alice") -> None:
    assert PASSWORD not in text
    assert base64.b64encode(f"{user}:{PASSWORD}".encode()).decode() not in text


# -- reading --------------------------------------------------------------------------------

def test_5xx_then_success_is_retried(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}", Reply(500), Reply(503), Reply(200, DATA))
    progress = []
    with client(server, tmp_path, progress=progress.append) as c:
        with c.open_blob("r", D, len(DATA)) as fh:
            assert read_all(fh) == DATA
    assert len(server.seen("GET", f"/v2/r/blobs/{D}")) == 3
    assert sum(progress) == len(DATA)


def test_dropped_connection_is_retried(server, tmp_path):
    server.script("GET", "/v2/r/manifests/v1", Reply(drop=True), Reply(200, MANIFEST,
                                                                       headers=OCI))
    with client(server, tmp_path) as c:
        assert c.get_manifest("r", "v1").digest == MD
    assert len(server.seen("GET", "/v2/r/manifests/v1")) == 2


def test_429_waits_as_told(server, tmp_path):
    server.script("HEAD", f"/v2/r/blobs/{D}", Reply(429, headers={"Retry-After": "0.05"}),
                  Reply(200, DATA))
    waits = []
    with client(server, tmp_path) as c:
        c.http.sleep = waits.append
        assert c.blob_size("r", D) == len(DATA)
    assert waits and waits[0] >= 0.05


def test_retries_are_bounded(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}", Reply(503))
    with client(server, tmp_path) as c, pytest.raises(RegistryError) as info:
        c.open_blob("r", D)
    assert info.value.exit_code == 2 and info.value.status == 503
    assert f"/v2/r/blobs/{D}" in str(info.value)
    assert len(server.seen("GET", f"/v2/r/blobs/{D}")) == 3  # retries=2


def test_wrong_bytes_for_a_digest(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}", Reply(200, OTHER))
    with client(server, tmp_path) as c, c.open_blob("r", D, len(DATA)) as fh:
        with pytest.raises(DigestMismatchError) as info:
            read_all(fh)
    assert info.value.exit_code == 1
    assert f"{server.url}/v2/r/blobs/{D}" in str(info.value) and D in str(info.value)


def test_larger_than_the_descriptor(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}", Reply(200, DATA + b"more", length=False))
    with client(server, tmp_path) as c, c.open_blob("r", D, len(DATA)) as fh:
        with pytest.raises(DigestMismatchError, match="larger than expected"):
            read_all(fh)


def test_truncated_body(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}", Reply(200, DATA, cut=100))
    with client(server, tmp_path) as c, c.open_blob("r", D, len(DATA)) as fh:
        with pytest.raises(RegistryError) as info:
            read_all(fh)
    assert f"after 100 of {len(DATA)} bytes" in str(info.value)
    assert f"/v2/r/blobs/{D}" in str(info.value)


@pytest.mark.parametrize("length", [True, False])
def test_manifest_over_the_size_limit(server, tmp_path, length):
    huge = b"{" + b" " * MAX_MANIFEST + b"}"
    server.script("GET", "/v2/r/manifests/v1", Reply(200, huge, headers=OCI, length=length))
    with client(server, tmp_path) as c, pytest.raises(LimitError) as info:
        c.get_manifest("r", "v1")
    assert "/v2/r/manifests/v1" in str(info.value) and info.value.exit_code == 1


def test_manifest_digest_is_checked(server, tmp_path):
    wrong = "sha256:" + "0" * 64
    server.script("GET", "/v2/r/manifests/v1",
                  Reply(200, MANIFEST, headers={**OCI, "Docker-Content-Digest": wrong}))
    server.script("GET", f"/v2/r/manifests/{wrong}", Reply(200, MANIFEST, headers=OCI))
    server.script("GET", "/v2/r/manifests/v2", Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path) as c:
        with pytest.raises(DigestMismatchError):
            c.get_manifest("r", "v1")
        with pytest.raises(DigestMismatchError):
            c.get_manifest("r", wrong)
        got = c.get_manifest("r", "v2")
    assert got.digest == MD and got.media_type == OCI["Content-Type"]
    accept = server.seen("GET", "/v2/r/manifests/v2")[0].headers["Accept"]
    for media_type in ("application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.oci.image.index.v1+json",
                       "application/vnd.docker.distribution.manifest.v2+json",
                       "application/vnd.docker.distribution.manifest.list.v2+json"):
        assert media_type in accept


@pytest.mark.parametrize("content_type", [
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json", "application/json"])
def test_schema1_is_refused(server, tmp_path, content_type):
    body = json.dumps({"schemaVersion": 1, "name": "r", "tag": "v1", "fsLayers": []}).encode()
    server.script("GET", "/v2/r/manifests/v1",
                  Reply(200, body, headers={"Content-Type": content_type}))
    with client(server, tmp_path) as c, pytest.raises(FormatError, match="schema 1"):
        c.get_manifest("r", "v1")


def test_a_manifest_nested_100000_deep_is_one_error_naming_its_url(server, tmp_path):
    """Python's parser raises RecursionError (no JSON error) on such a document."""
    deep = b"[" * 100000 + b"]" * 100000
    server.script("GET", "/v2/r/manifests/v1", Reply(200, deep, headers=OCI))
    with client(server, tmp_path) as c, pytest.raises(LimitError) as info:
        c.get_manifest("r", "v1")
    assert "nested too deeply" in str(info.value) and info.value.exit_code == 1
    assert "/v2/r/manifests/v1" in str(info.value)


def test_endless_redirects_are_cut(server, tmp_path):
    server.script("GET", f"/v2/r/blobs/{D}",
                  Reply(307, headers={"Location": f"/v2/r/blobs/{D}"}))
    with client(server, tmp_path, max_redirects=5) as c, pytest.raises(RegistryError) as info:
        c.open_blob("r", D)
    assert "more than 5 redirects" in str(info.value)
    assert len(server.seen("GET", f"/v2/r/blobs/{D}")) == 6


def test_redirect_to_another_host_drops_credentials(server, other, tmp_path):
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    server.script("GET", f"/v2/r/blobs/{D}",
                  Reply(307, headers={"Location": f"{other.url}/cdn/blob?sig=abc"}))
    other.script("GET", "/cdn/blob", Reply(200, DATA))
    with client(server, tmp_path, creds=f"alice:{PASSWORD}") as c, c.open_blob("r", D) as fh:
        assert read_all(fh) == DATA
    assert server.seen("GET", f"/v2/r/blobs/{D}")[0].headers["Authorization"].startswith("Basic")
    assert "Authorization" not in other.seen("GET", "/cdn/blob")[0].headers


@pytest.mark.parametrize("ping", ["open", "basic"])
def test_a_challenge_from_the_host_a_redirect_went_to_gets_no_credentials(server, other,
                                                                         tmp_path, ping):
    """A blob redirected to another host, which answers 401 with a Bearer challenge whose
    realm is its own: that host's challenge is no business of the registry's credentials
    (neither as the first challenge, the registry's ping being open, nor as a fresh one)."""
    if ping == "basic":
        server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    server.script("GET", f"/v2/r/blobs/{D}",
                  Reply(307, headers={"Location": f"{other.url}/cdn/blob"}))
    ch = f'Bearer realm="{other.url}/token",service="svc",scope="repository:r:pull"'
    other.script("GET", "/cdn/blob", Reply(401, headers={"WWW-Authenticate": ch}))
    other.script("GET", "/token", Reply(200, b'{"token": "t"}'))
    with client(server, tmp_path, creds=f"alice:{PASSWORD}") as c:
        with pytest.raises(AuthenticationError) as info:
            c.open_blob("r", D)
    for seen in other.log:
        assert "Authorization" not in seen.headers, seen
    assert not other.seen("GET", "/token")
    assert info.value.status == 401 and "/cdn/blob" in str(info.value)
    assert len(server.seen("GET", f"/v2/r/blobs/{D}")) == 1


def test_wrong_credentials_never_show(server, tmp_path):
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    echo = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                   "message": f"bad password {PASSWORD} / {basic}"}]}).encode()
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    server.script("GET", "/v2/r/manifests/v1",
                  Reply(401, echo, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    with client(server, tmp_path, creds=f"alice:{PASSWORD}") as c:
        with pytest.raises(AuthenticationError) as info:
            c.get_manifest("r", "v1")
        text = f"{info.value} {info.value!r} {c!r} {c.auth.creds!r} {info.value.args}"
    no_secrets(text)
    assert "rejected the credentials" in str(info.value) and "UNAUTHORIZED" in str(info.value)
    assert info.value.exit_code == 2


def test_no_credentials_says_where_it_looked(server, tmp_path):
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    server.script("GET", "/v2/r/manifests/v1", Reply(401))
    with client(server, tmp_path) as c, pytest.raises(AuthenticationError) as info:
        c.get_manifest("r", "v1")
    assert "no credentials were found" in str(info.value) and "config.json" in str(info.value)


def test_bearer_token_fetched_once_push_scope_first(server, tmp_path):
    realm = "http://{host}/token"
    challenge = f'Bearer realm="{realm}",service="svc",scope="repository:r:pull"'
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": challenge}))
    server.script("GET", "/token", Reply(200, json.dumps({"access_token": "T0KEN"}).encode()))
    server.script("HEAD", f"/v2/r/blobs/{D}", Reply(404))
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/1"}))
    server.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1", "Range": "0-1199"}))
    server.script("PUT", "/up/1", Reply(201, headers={"Docker-Content-Digest": D}))
    with client(server, tmp_path, creds=f"alice:{PASSWORD}") as c:
        c.upload_blob("r", io.BytesIO(DATA), digest=D, size=len(DATA), mount_from=())
    tokens = server.seen("GET", "/token")
    assert len(tokens) == 1
    assert "scope=repository%3Ar%3Apull%2Cpush" in tokens[0].path and "service=svc" in tokens[0].path
    assert tokens[0].headers["Authorization"].startswith("Basic ")
    for method in ("HEAD", "POST", "PATCH", "PUT"):
        assert server.seen(method)[0].headers["Authorization"] == "Bearer T0KEN"


def test_insufficient_scope_gets_a_fresh_token(server, tmp_path):
    ch = 'Bearer realm="http://{host}/token",service="svc"'
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": ch}))
    server.script("GET", "/token", Reply(200, b'{"token": "first"}'),
                  Reply(200, b'{"token": "second"}'))
    more = ch + ',scope="repository:r:pull",error="insufficient_scope"'
    server.script("GET", "/v2/r/manifests/v1", Reply(401, headers={"WWW-Authenticate": more}),
                  Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path) as c:
        assert c.get_manifest("r", "v1").digest == MD
    auths = [s.headers.get("Authorization") for s in server.seen("GET", "/v2/r/manifests/v1")]
    assert auths == ["Bearer first", "Bearer second"]


def test_token_is_renewed_before_it_expires(server, tmp_path):
    ch = 'Bearer realm="http://{host}/token",service="svc"'
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": ch}))
    server.script("GET", "/token", Reply(200, b'{"token": "t", "expires_in": 0.4}'))
    server.script("GET", "/v2/r/manifests/v1", Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path) as c:
        c.get_manifest("r", "v1")
        c.get_manifest("r", "v1")
        assert len(server.seen("GET", "/token")) == 1
        time.sleep(0.35)  # past three quarters of its life
        c.get_manifest("r", "v1")
        assert len(server.seen("GET", "/token")) == 2


def test_token_server_refusal(server, tmp_path):
    ch = 'Bearer realm="http://{host}/token",service="svc"'
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": ch}))
    server.script("GET", "/token", Reply(401))
    with client(server, tmp_path, creds=f"alice:{PASSWORD}") as c:
        with pytest.raises(AuthenticationError) as info:
            c.get_manifest("r", "v1")
    assert "token server refused" in str(info.value) and "/token" in str(info.value)
    no_secrets(str(info.value))


@pytest.mark.parametrize("token", ["secret-tok\r\nX-Injected: 1", "secret tok", "secret-t\u00f6k"])
def test_a_token_that_cannot_go_in_a_header_is_one_error_that_does_not_show_it(server, tmp_path,
                                                                              token):
    """A token server's answer goes into the next request's Authorization header: one with a
    line break would inject headers (http.client refuses it with a traceback that shows it),
    one with a space or a non-ASCII letter is no RFC 6750 token."""
    ch = 'Bearer realm="http://{host}/token",service="svc"'
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": ch}))
    server.script("GET", "/token", Reply(200, json.dumps({"token": token}).encode()))
    ref = f"docker://{server.host}/r:v1"
    proc = subprocess.run([sys.executable, "-m", "convert", "inspect", ref, "--tls-verify=false"],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**scripted_env(tmp_path), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "not one" in proc.stderr and "secret" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not server.seen("GET", "/v2/r/manifests/v1")  # nothing was sent with it


def test_a_token_lifetime_too_large_for_a_float_is_bounded(server, tmp_path):
    """`expires_in` of 10**400: a JSON integer that float() refuses (OverflowError)."""
    ch = 'Bearer realm="http://{host}/token",service="svc"'
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": ch}))
    server.script("GET", "/token", Reply(200, b'{"token": "t", "expires_in": 1' + b"0" * 400
                                          + b"}"))
    server.script("GET", "/v2/r/manifests/v1", Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path) as c:
        assert c.get_manifest("r", "v1").digest == MD
    assert server.seen("GET", "/v2/r/manifests/v1")[0].headers["Authorization"] == "Bearer t"


def test_a_token_answer_cut_short_is_one_error_naming_the_realm(server, tmp_path):
    ch = 'Bearer realm="http://{host}/token",service="svc"'
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": ch}))
    server.script("GET", "/token", Reply(200, b'{"token": "abcdefgh"}', cut=5))
    with client(server, tmp_path, retries=0) as c, pytest.raises(RegistryError) as info:
        c.get_manifest("r", "v1")
    assert "after 5 of 21 bytes" in str(info.value) and "/token" in str(info.value)
    assert not server.seen("GET", "/v2/r/manifests/v1")


def test_credentials_never_go_to_a_plain_http_realm_of_an_https_registry(tmp_path, other):
    """An https registry whose challenge names an http:// token server: the password would
    cross the network in the clear. Refused before anything is sent there; without
    credentials the token is fetched (nothing of ours to leak)."""
    cert, key = self_signed(tmp_path)
    tls = ScriptedServer(tls=(cert, key))
    try:
        ch = f'Bearer realm="http://{other.host}/token",service="svc"'
        tls.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": ch}))
        tls.script("GET", "/v2/r/manifests/v1", Reply(200, MANIFEST, headers=OCI))
        other.script("GET", "/token", Reply(200, b'{"token": "t"}'))
        with client(tls, tmp_path, creds=f"alice:{PASSWORD}") as c:
            with pytest.raises(AuthenticationError) as info:
                c.get_manifest("r", "v1")
        assert "plain HTTP" in str(info.value) and info.value.exit_code == 2
        no_secrets(str(info.value))
        assert not other.log
        with client(tls, tmp_path) as c:
            assert c.get_manifest("r", "v1").digest == MD
        assert "Authorization" not in other.seen("GET", "/token")[0].headers
    finally:
        tls.stop()


# -- connecting -----------------------------------------------------------------------------

def test_unreachable_registry(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = RegistryClient(f"127.0.0.1:{port}", tls_verify=False, retries=1, backoff=0.001,
                       env=scripted_env(tmp_path))
    with c, pytest.raises(RegistryError) as info:
        c.get_manifest("r", "v1")
    assert info.value.exit_code == 2 and f"127.0.0.1:{port}/v2/" in str(info.value)
    assert "refused" in str(info.value).lower()


def test_read_timeout_is_bounded(server, tmp_path):
    server.script("GET", "/v2/r/manifests/v1", Reply(200, MANIFEST, headers=OCI, delay=1.0))
    with client(server, tmp_path, timeout=(1.0, 0.3), retries=1) as c:
        with pytest.raises(RegistryError, match="timed out"):
            c.get_manifest("r", "v1")
    assert len(server.seen("GET", "/v2/r/manifests/v1")) == 2


def test_plain_http_only_without_tls_verification(server, tmp_path):
    server.script("GET", "/v2/r/manifests/v1", Reply(200, MANIFEST, headers=OCI))
    with client(server, tmp_path, tls_verify=True) as c, pytest.raises(RegistryError) as info:
        c.get_manifest("r", "v1")
    assert "TLS" in str(info.value) and "tls_verify=False" in str(info.value)
    with client(server, tmp_path, tls_verify=False) as c:
        assert c.get_manifest("r", "v1").digest == MD
        assert c.base() == server.url


# -- uploading ------------------------------------------------------------------------------

def script_upload(server, first_location: str, second_location: str, put_path: str):
    server.script("HEAD", f"/v2/r/blobs/{D}", Reply(404))
    server.script("POST", "/v2/r/blobs/uploads/",
                  Reply(202, headers={"Location": first_location}))
    server.script("PATCH", first_location.split("?")[0].replace("http://{host}", ""),
                  Reply(202, headers={"Location": second_location}))
    server.script("PUT", put_path, Reply(201, headers={"Docker-Content-Digest": D}))


def test_upload_follows_relative_and_absolute_locations_with_queries(server, tmp_path):
    script_upload(server, "/up/1?_state=a%3Db", "http://{host}/up/2?_state=c", "/up/2")
    progress = []
    with client(server, tmp_path, progress=progress.append) as c:
        result = c.upload_blob("r", io.BytesIO(DATA), digest=D, size=len(DATA))
    assert (result.digest, result.size, result.how) == (D, len(DATA), "uploaded")
    patch = server.seen("PATCH", "/up/1")[0]
    assert patch.path == "/up/1?_state=a%3Db" and patch.body == DATA
    assert patch.headers["Content-Length"] == str(len(DATA))
    assert server.seen("PUT", "/up/2")[0].path == f"/up/2?_state=c&digest={D}"
    assert sum(progress) == len(DATA)


def test_upload_of_unknown_size_streams_chunked_and_computes_the_digest(server, tmp_path):
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/1"}))
    server.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1"}))
    server.script("PUT", "/up/1", Reply(201))
    chunks = (DATA[i:i + 100] for i in range(0, len(DATA), 100))
    with client(server, tmp_path) as c:
        result = c.upload_blob("r", chunks)
    assert result.digest == D and result.size == len(DATA)
    patch = server.seen("PATCH", "/up/1")[0]
    assert patch.headers.get("Transfer-Encoding") == "chunked" and patch.body == DATA
    assert not server.seen("HEAD")  # no digest known: nothing to ask first


def test_failed_patch_is_not_replayed_and_the_upload_is_cancelled(server, tmp_path):
    server.script("HEAD", f"/v2/r/blobs/{D}", Reply(404))
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/1"}))
    server.script("PATCH", "/up/1", Reply(500))
    with client(server, tmp_path) as c, pytest.raises(RegistryError, match="HTTP 500"):
        c.upload_blob("r", io.BytesIO(DATA), digest=D, size=len(DATA))
    assert len(server.seen("PATCH")) == 1 and len(server.seen("DELETE", "/up/1")) == 1


def test_content_not_matching_its_digest_is_never_committed(server, tmp_path):
    script_upload(server, "/up/1", "/up/1", "/up/1")
    with client(server, tmp_path) as c, pytest.raises(DigestMismatchError):
        c.upload_blob("r", io.BytesIO(OTHER), digest=D, size=len(OTHER))
    assert not server.seen("PUT") and server.seen("DELETE", "/up/1")
    with client(server, tmp_path) as c, pytest.raises(DigestMismatchError, match="stated"):
        c.upload_blob("r", io.BytesIO(DATA), digest=D, size=len(DATA) - 1)
    assert not server.seen("PUT")


def test_existing_blob_is_not_read(server, tmp_path):
    server.script("HEAD", f"/v2/r/blobs/{D}", Reply(200, DATA))
    opened = []
    with client(server, tmp_path) as c:
        result = c.upload_blob("r", lambda: opened.append(1) or io.BytesIO(DATA), digest=D,
                               size=len(DATA))
    assert result.how == "exists" and not opened


def test_refused_mount_falls_back_to_upload_in_the_offered_session(server, tmp_path):
    script_upload(server, "/up/9", "/up/9", "/up/9")
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/9"}))
    with client(server, tmp_path) as c:
        result = c.upload_blob("r", io.BytesIO(DATA), digest=D, size=len(DATA),
                               mount_from=["src/repo"])
    assert result.how == "uploaded"
    posts = server.seen("POST", "/v2/r/blobs/uploads/")
    assert len(posts) == 1 and f"mount={D}&from=src/repo" in posts[0].path


def test_location_on_another_host_gets_no_credentials(server, other, tmp_path):
    server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    server.script("POST", "/v2/r/blobs/uploads/",
                  Reply(202, headers={"Location": f"{other.url}/up/1"}))
    other.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1"}))
    other.script("PUT", "/up/1", Reply(201))
    with client(server, tmp_path, creds=f"alice:{PASSWORD}") as c:
        c.upload_blob("r", io.BytesIO(DATA))
    assert all("Authorization" not in s.headers for s in other.log)
    assert server.seen("POST")[0].headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher"])
def test_a_location_that_is_not_http_is_one_error_and_nothing_is_sent(server, other, tmp_path,
                                                                     scheme):
    """An upload's Location is followed as the registry gives it: one naming another scheme
    went out as HTTP to its host and port (or, with no host, to localhost:80)."""
    server.script("POST", "/v2/r/blobs/uploads/",
                  Reply(202, headers={"Location": f"{scheme}://{other.host}/up/1"}))
    other.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1"}))
    with client(server, tmp_path) as c, pytest.raises(RegistryError) as info:
        c.upload_blob("r", io.BytesIO(DATA))
    assert "not an HTTP URL" in str(info.value) and info.value.exit_code == 2
    assert not other.log


def test_a_servers_text_in_an_error_is_one_line_without_terminal_escapes(server, tmp_path):
    """The registry's error message and its headers reach the terminal inside our error: a
    line break or an escape sequence in them is shown escaped, never acted on."""
    echo = json.dumps({"errors": [{"code": "DENIED",
                                   "message": "no\nacioci: all fine \x1b[2J"}]}).encode()
    server.script("GET", "/v2/r/manifests/v1", Reply(418, echo))
    server.script("GET", "/v2/r/manifests/v2",
                  Reply(200, b'{"schemaVersion": 2}', headers={"Content-Type": "text/x\x1b[31m"}))
    with client(server, tmp_path) as c:
        for tag in ("v1", "v2"):
            with pytest.raises(RegistryError if tag == "v1" else FormatError) as info:
                c.get_manifest("r", tag)
            text = str(info.value)
            assert "\n" not in text and "\x1b" not in text, text
            assert "\\x1b" in text


@pytest.mark.parametrize("where", ["realm", "redirect", "upload"])
def test_a_url_urllib_cannot_parse_is_one_error(server, tmp_path, where):
    """`http://[::1/x` (an unclosed IPv6 bracket) made urllib raise ValueError, a traceback,
    from a token realm, a redirect's Location and an upload's Location alike."""
    bad = "http://[::1/x"
    if where == "realm":
        server.script("GET", "/v2/", Reply(401, headers={"WWW-Authenticate":
                                                         f'Bearer realm="{bad}"'}))
    server.script("GET", f"/v2/r/blobs/{D}", Reply(307, headers={"Location": bad}))
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": bad}))
    with client(server, tmp_path) as c, pytest.raises(RegistryError) as info:
        if where == "upload":
            c.upload_blob("r", io.BytesIO(DATA))
        else:
            c.open_blob("r", D)
    assert "usable" in str(info.value) and "Traceback" not in str(info.value)


@pytest.mark.parametrize("end", ["\u00b2", "9" * 5000])
def test_a_range_that_is_no_number_python_reads_is_not_a_traceback(server, tmp_path, end):
    """`str.isdigit` holds for `²` (a Latin-1 header byte) and for 5,000 digits, which
    `int()` refuses with ValueError: the Range is then no count to check, as any other."""
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/1"}))
    server.script("PATCH", "/up/1", Reply(202, headers={"Location": "/up/1",
                                                        "Range": f"0-{end}"}))
    server.script("PUT", "/up/1", Reply(201, headers={"Docker-Content-Digest": D}))
    with client(server, tmp_path) as c:
        assert c.upload_blob("r", io.BytesIO(DATA), digest=D, size=len(DATA)).how == "uploaded"


@pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".example"])
def test_a_host_no_dns_name_can_be_is_one_error(server, tmp_path, host):
    """A label empty or over 63 characters: the socket's IDNA encoding raises UnicodeError
    (no OSError) before anything is sent, from a redirect's Location as from any URL."""
    server.script("GET", f"/v2/r/blobs/{D}",
                  Reply(307, headers={"Location": f"http://{host}/blob?sig=secret"}))
    with client(server, tmp_path) as c, pytest.raises(RegistryError) as info:
        c.open_blob("r", D)
    assert "not a valid host name" in str(info.value) and "secret" not in str(info.value)
