"""The registry client against the real distribution 2.8 (`docker-registry`): plain HTTP
without auth; HTTPS with a self-signed certificate and htpasswd; Bearer tokens from a token
server of our own. Uploads, mounts, pulls, and how credentials and TLS trust are found."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from convert.registry.client import RegistryClient, connect
from convert.registry.errors import AuthenticationError, NotFoundError, RegistryError
from convert.registry.reference import parse
from registry_servers import TokenServer, htpasswd_file, scripted_env, self_signed, start_registry

pytestmark = pytest.mark.interop

PASSWORD = "pA55-w0rd-xyz"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": []}}).encode()


def push_image(c: RegistryClient, repo: str, tag: str, layer: bytes, **kw) -> str:
    """Push a config, one layer and the manifest (last); returns the manifest's digest."""
    cd, _ = blob(CONFIG)
    ld, _ = blob(layer)
    c.upload_blob(repo, io.BytesIO(CONFIG), digest=cd, size=len(CONFIG), **kw)
    c.upload_blob(repo, io.BytesIO(layer), digest=ld, size=len(layer), **kw)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                   "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld,
                    "size": len(layer)}]}).encode()
    return c.put_manifest(repo, tag, manifest, OCI_MANIFEST)


def read_blob(c: RegistryClient, repo: str, digest: str, size: int | None = None) -> bytes:
    with c.open_blob(repo, digest, size) as fh:
        out = b""
        while chunk := fh.read(1 << 16):
            out += chunk
    return out


# -- plain HTTP, no auth --------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain(registry):
    """conftest's plain-HTTP registry, named for this module's three kinds."""
    return registry


@pytest.fixture
def env(tmp_path):
    return scripted_env(tmp_path)


def test_push_then_pull(plain, env):
    layer = os.urandom(300_000)
    with connect(parse(plain.ref("t/app:v1")), tls_verify=False, env=env) as c:
        digest = push_image(c, "t/app", "v1", layer)
        got = c.get_manifest("t/app", "v1")
        assert got.digest == digest and got.media_type == OCI_MANIFEST
        assert c.get_manifest("t/app", digest).data == got.data
        assert c.head_manifest("t/app", "v1")["digest"] == digest
        assert read_blob(c, "t/app", blob(layer)[0], len(layer)) == layer
        assert c.blob_size("t/app", blob(layer)[0]) == len(layer)
        with pytest.raises(NotFoundError) as info:
            c.get_manifest("t/app", "nope")
        assert info.value.exit_code == 2 and "MANIFEST_UNKNOWN" in str(info.value)
        assert c.base().startswith("http://")  # https refused, plain HTTP allowed


def test_repush_heads_only_and_mount_moves_no_bytes(plain, env):
    layer = os.urandom(50_000)
    ld, _ = blob(layer)
    with connect(parse(plain.ref("m/src:v1")), tls_verify=False, env=env) as c:
        push_image(c, "m/src", "v1", layer)
        before = plain.access_log().count("PATCH /v2/")
        again = c.upload_blob("m/src", io.BytesIO(layer), digest=ld, size=len(layer))
        mounted = c.upload_blob("m/dst", lambda: pytest.fail("must not be read"), digest=ld,
                                size=len(layer), mount_from=["m/src"])
        assert c.mount_blob("m/dst2", ld, "m/src") is True
        assert c.mount_blob("m/dst3", ld, "m/nothing-here") is False
        assert read_blob(c, "m/dst", ld, len(layer)) == layer
    assert (again.how, mounted.how) == ("exists", "mounted")
    log = plain.access_log()
    assert log.count("PATCH /v2/") == before
    assert f"POST /v2/m/dst/blobs/uploads/?mount={ld}&from=m/src HTTP/1.1\" 201" in log


def test_streamed_upload_of_unknown_size(plain, env):
    parts = [os.urandom(70_000) for _ in range(5)]
    data = b"".join(parts)
    with connect(parse(plain.ref("s/app:v1")), tls_verify=False, env=env) as c:
        result = c.upload_blob("s/app", iter(parts))
        assert result.digest == blob(data)[0] and result.size == len(data)
        assert read_blob(c, "s/app", result.digest) == data


def test_big_blob_streams_in_bounded_memory(plain, tmp_path):
    """128 MiB up and down in a fresh process: its peak RSS stays far below the blob."""
    script = textwrap.dedent(f"""
        import hashlib
        from convert.registry.client import RegistryClient
        MiB = 1 << 20
        def chunks():
            block = bytes(range(256)) * 4096
            for _ in range(128):
                yield block
        c = RegistryClient({plain.host!r}, tls_verify=False, env={{"HOME": {str(tmp_path)!r}}})
        up = c.upload_blob("big/blob", chunks())
        h = hashlib.sha256()
        with c.open_blob("big/blob", up.digest, up.size) as fh:
            while chunk := fh.read(MiB):
                h.update(chunk)
        assert "sha256:" + h.hexdigest() == up.digest and up.size == 128 * MiB
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the pre-exec copy of
        # the (large) pytest process
        status = open("/proc/self/status").read()
        print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    print(f"peak RSS {out.strip()} MiB for a 128 MiB blob up and down")
    assert int(out) < 64, f"peak RSS {out} MiB"


# -- HTTPS with a self-signed certificate, htpasswd -----------------------------------------

@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secure")
    cert, key = self_signed(tmp)
    users = htpasswd_file(tmp, {"alice": PASSWORD})
    reg = start_registry(tmp / "reg", auth={"htpasswd": {"realm": "test", "path": str(users)}},
                         tls=(cert, key))
    certs = tmp / "certs"
    certs.mkdir()
    shutil.copy(cert, certs / "ca.crt")
    reg.cert_dir = certs
    yield reg
    reg.stop()


def test_tls_trusted_through_cert_dir_with_basic_auth(secure, env):
    with connect(parse(secure.ref("b/app:v1")), creds=f"alice:{PASSWORD}",
                 cert_dir=str(secure.cert_dir), env=env) as c:
        digest = push_image(c, "b/app", "v1", b"layer over tls")
        assert c.get_manifest("b/app", "v1").digest == digest
        assert c.base().startswith("https://")


def test_tls_trusted_through_a_certs_d_root(secure, env, tmp_path):
    per_registry = tmp_path / "certs.d" / secure.host
    shutil.copytree(secure.cert_dir, per_registry)
    with connect(parse(secure.ref("b/app:v1")), creds=f"alice:{PASSWORD}",
                 certs_roots=(str(tmp_path / "certs.d"),), env=env) as c:
        push_image(c, "b/app", "v2", b"layer over tls")


def test_untrusted_certificate(secure, env):
    with connect(parse(secure.ref("b/app:v1")), creds=f"alice:{PASSWORD}", certs_roots=(),
                 env=env) as c, pytest.raises(RegistryError) as info:
        c.get_manifest("b/app", "v1")
    assert "TLS failure" in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert "tls_verify=False" in str(info.value)
    with connect(parse(secure.ref("b/app:v1")), creds=f"alice:{PASSWORD}", certs_roots=(),
                 tls_verify=False, env=env) as c:
        push_image(c, "b/app", "v3", b"unverified")
        assert c.base().startswith("https://")  # unverified TLS, not plain HTTP


def test_wrong_password_is_never_printed(secure, env):
    wrong = "Wr0ng-" + PASSWORD
    with connect(parse(secure.ref("b/app:v1")), creds=f"alice:{wrong}",
                 cert_dir=str(secure.cert_dir), env=env) as c:
        with pytest.raises(AuthenticationError) as info:
            c.get_manifest("b/app", "v1")
        text = f"{info.value} | {info.value!r} | {c!r} | {c.auth.creds!r}"
    assert wrong not in text and PASSWORD not in text
    assert base64.b64encode(f"alice:{wrong}".encode()).decode() not in text
    assert "rejected the credentials from explicit credentials" in str(info.value)
    assert info.value.exit_code == 2


def test_no_credentials(secure, env):
    with connect(parse(secure.ref("b/app:v1")), cert_dir=str(secure.cert_dir), env=env) as c:
        with pytest.raises(AuthenticationError, match="no credentials were found"):
            c.get_manifest("b/app", "v1")


def test_credentials_from_auth_files(secure, tmp_path):
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    bad = base64.b64encode(b"alice:nope").decode()
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {secure.host: {"auth": bad},
                                          f"{secure.host}/team": {"auth": auth}}}))
    env = {"HOME": str(tmp_path), "REGISTRY_AUTH_FILE": str(path)}
    with connect(parse(secure.ref("team/app:v1")), cert_dir=str(secure.cert_dir),
                 env=env) as c:
        push_image(c, "team/app", "v1", b"namespace credentials")
    with connect(parse(secure.ref("other/app:v1")), cert_dir=str(secure.cert_dir),
                 authfile=str(path), env={"HOME": str(tmp_path)}) as c:
        with pytest.raises(AuthenticationError) as info:
            c.get_manifest("other/app", "v1")
        assert f"{path} ({secure.host})" in str(info.value) and bad not in str(info.value)


# -- Bearer tokens ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("token")
    server = TokenServer(tmp, users={"alice": PASSWORD, "reader": PASSWORD},
                         grants={"alice": ("pull", "push"), "reader": ("pull",)},
                         identity={"refresh-alice": "alice"})
    reg = start_registry(tmp / "reg", auth=server.registry_auth())
    reg.token_server = server
    yield reg
    reg.stop()
    server.stop()


def test_bearer_push_asks_for_push_scope_first_and_reuses_the_token(tokens, env):
    server = tokens.token_server
    server.requests.clear()
    with connect(parse(tokens.ref("tok/app:v1")), creds=f"alice:{PASSWORD}", tls_verify=False,
                 env=env) as c:
        digest = push_image(c, "tok/app", "v1", os.urandom(20_000))
        assert c.get_manifest("tok/app", "v1").digest == digest
        token = c.auth.headers(("repository:tok/app:pull",))["Authorization"].split()[1]
        assert token not in repr(c)
    assert len(server.requests) == 1, server.requests  # one pull,push token serves it all
    first = server.requests[0]
    assert first.scopes[0] == "repository:tok/app:pull,push" and first.user == "alice"
    assert first.service == server.service


def test_bearer_pull_only_user(tokens, env):
    with connect(parse(tokens.ref("tok/app:v1")), creds=f"alice:{PASSWORD}", tls_verify=False,
                 env=env) as c:
        digest = push_image(c, "tok/app", "v2", b"for the reader")
    with connect(parse(tokens.ref("tok/app:v2")), creds=f"reader:{PASSWORD}",
                 tls_verify=False, env=env) as c:
        assert c.get_manifest("tok/app", "v2").digest == digest
        with pytest.raises(AuthenticationError) as info:
            c.upload_blob("tok/app", io.BytesIO(b"not allowed"))
        assert PASSWORD not in str(info.value)


def test_bearer_anonymous_is_refused(tokens, env):
    with connect(parse(tokens.ref("tok/app:v1")), tls_verify=False, env=env) as c:
        with pytest.raises(AuthenticationError):
            c.get_manifest("tok/app", "v1")


def test_bearer_mount_asks_for_the_source_scope(tokens, env):
    server = tokens.token_server
    layer = os.urandom(10_000)
    ld, _ = blob(layer)
    with connect(parse(tokens.ref("tok/src:v1")), creds=f"alice:{PASSWORD}", tls_verify=False,
                 env=env) as c:
        push_image(c, "tok/src", "v1", layer)
        server.requests.clear()
        result = c.upload_blob("tok/dst", io.BytesIO(layer), digest=ld, size=len(layer),
                               mount_from=["tok/src"])
    assert result.how == "mounted"
    assert server.requests[0].scopes == ["repository:tok/dst:pull,push",
                                         "repository:tok/src:pull"]


def test_identity_token_from_auth_file(tokens, tmp_path):
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {tokens.host: {"identitytoken": "refresh-alice"}}}))
    server = tokens.token_server
    server.requests.clear()
    with connect(parse(tokens.ref("tok/id:v1")), authfile=str(path), tls_verify=False,
                 env={"HOME": str(tmp_path)}) as c:
        push_image(c, "tok/id", "v1", b"identity token")
    assert server.requests and all(r.refresh and r.user == "alice" for r in server.requests)
