"""Spool files of the registry transport (`ScriptedServer` plays the registry). Pushing to a
registry that will not take a streamed upload: the layer is encoded again into a spool file
and sent with its size, later layers go that way at once, and the bytes are still the layout
writer's. Pulling: a blob read to its end and verified is kept on disk for the second pass,
seekable both ways; one with the wrong bytes is not kept."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from convert import api, prepare
from convert.errors import AciociError, DigestMismatchError
from convert.graph import Digest
from convert.registry.blobs import open_source
from convert.options import OciOutput
from convert.registry.push import push_image
from helpers import ROOT, acioci
from registry_servers import Reply, scripted_env

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"


def test_registry_refusing_a_streamed_patch_gets_spooled_blobs(server, tmp_path):
    server.script("POST", "/v2/r/blobs/uploads/",
                  *[Reply(202, headers={"Location": f"/up/{i}"}) for i in (1, 2, 3, 4)])
    server.script("PATCH", "/up/1", Reply(411))  # "Length Required"
    server.script("DELETE", "/up/1", Reply(204))
    for i in (2, 3, 4):
        server.script("PATCH", f"/up/{i}", Reply(202, headers={"Location": f"/up/{i}"}))
        server.script("PUT", f"/up/{i}", Reply(201))
    server.script("PUT", "/v2/r/manifests/1.0.0", Reply(201))
    image = prepare.for_oci(api.read(str(SAMPLE), store=[str(STORE)]), OciOutput())
    written, pushed = push_image(image, f"docker://{server.host}/r:1.0.0", tls_verify=False,
                                 retries=0, env=scripted_env(tmp_path))

    acioci("convert", SAMPLE, f"oci:{tmp_path / 'layout'}:1.0.0", "--store", STORE, check=0)
    blobs = tmp_path / "layout/blobs/sha256"
    want = json.loads((tmp_path / "layout/index.json").read_text())["manifests"][0]["digest"]
    assert pushed.digest == want == str(written.manifest)
    manifest = server.seen("PUT", "/v2/r/manifests/1.0.0")[0].body
    assert manifest == (blobs / want.split(":")[1]).read_bytes()

    refused = server.seen("PATCH", "/up/1")
    assert len(refused) == 1 and refused[0].headers.get("Transfer-Encoding") == "chunked"
    assert server.seen("DELETE", "/up/1")  # the refused session is cancelled
    layers = [d["digest"] for d in json.loads(manifest)["layers"]]
    for i, digest in zip((2, 3), layers):  # each layer once, whole, with its size
        patch = server.seen("PATCH", f"/up/{i}")[0]
        assert patch.headers["Content-Length"] == str(len(patch.body))
        assert patch.body == (blobs / digest.split(":")[1]).read_bytes()
        assert server.seen("PUT", f"/up/{i}")[0].path.endswith(f"digest={digest}")
    assert [b.how for b in pushed.blobs] == ["uploaded"] * 3


# -- pulling: a blob read twice crosses the network once ----------------------------------

def _blob_server(server, data: bytes, digest: str, length: int | None = None) -> None:
    server.script("GET", f"/v2/r/blobs/{digest}",
                  Reply(200, data, headers={"Content-Length": str(length or len(data))}))


def test_a_blob_read_to_its_end_is_kept_and_read_again_from_disk(server, tmp_path):
    data = bytes(range(256)) * 4096
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob_server(server, data, digest)
    with open_source(f"docker://{server.host}/r:1", spool=True, tls_verify=False,
                     env=scripted_env(tmp_path)) as blobs:
        rel = f"blobs/sha256/{digest.split(':')[1]}"
        with blobs.open(rel) as fh:
            assert fh.read(1000) == data[:1000]
            fh.seek(10)                      # back: from the copy
            assert fh.read(20) == data[10:30]
            fh.seek(500_000)                 # forward: fetched
            assert fh.read(100) == data[500_000:500_100]
        # the rest was drained at close (under DRAIN), checked, and kept
        assert len(server.seen("GET")) == 2  # the ping and the blob
        with blobs.open_verified(rel, Digest.parse(digest), len(data)) as fh:
            assert fh.read() == data
        assert len(server.seen("GET")) == 2
        spool = blobs._spool_dir
        assert os.listdir(spool) == [digest.replace(":", "-")]
    assert not os.path.exists(spool)


def test_a_blob_with_the_wrong_bytes_is_not_kept(server, tmp_path):
    data = b"x" * 5000
    digest = "sha256:" + hashlib.sha256(b"other").hexdigest()
    _blob_server(server, data, digest)
    with open_source(f"docker://{server.host}/r:1", spool=True, tls_verify=False,
                     env=scripted_env(tmp_path)) as blobs:
        rel = f"blobs/sha256/{digest.split(':')[1]}"
        with blobs.open(rel) as fh:
            fh.read(100)
        assert os.listdir(blobs._spool_dir) == []  # neither kept nor left as a .part
        with pytest.raises(DigestMismatchError), \
                blobs.open_verified(rel, Digest.parse(digest), None) as fh:
            fh.read()
        assert len(server.seen("GET", f"/v2/r/blobs/{digest}")) == 2  # asked again


def test_a_patch_refused_for_another_reason_is_reported_not_spooled(server, tmp_path):
    """Only a refusal of the streamed form (411 and its kin) is retried from a spool file; a
    404 (the repository is gone, say) is the error, reported after one attempt."""
    server.script("POST", "/v2/r/blobs/uploads/", Reply(202, headers={"Location": "/up/1"}))
    server.script("PATCH", "/up/1", Reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}'))
    server.script("DELETE", "/up/1", Reply(204))
    image = prepare.for_oci(api.read(str(SAMPLE), store=[str(STORE)]), OciOutput())
    with pytest.raises(AciociError) as err:
        push_image(image, f"docker://{server.host}/r:1.0.0", tls_verify=False, retries=0,
                   env=scripted_env(tmp_path))
    assert "404" in str(err.value) or "NAME_UNKNOWN" in str(err.value) or \
        "not found" in str(err.value).lower(), str(err.value)
    assert len(server.seen("POST")) == 1  # no second session for a spooled upload
    assert not server.seen("PUT")


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_refusal_sent_before_the_body_was_read_is_heard_and_the_layer_spooled(tls, tmp_path,
                                                                                request):
    """A registry that answers a streamed PATCH without reading it and hangs up (Go's
    net/http closes such a connection) cuts the upload mid-body: its answer, read after the
    failed send, is what decides, so the 411 still leads to a spooled upload, not to a
    connection error (over TLS the send fails with the TLS connection's end, which is no
    TLS failure either)."""
    import random

    import build as fx
    from registry_servers import ScriptedServer, self_signed

    server = ScriptedServer(tls=self_signed(tmp_path) if tls else None)
    request.addfinalizer(server.stop)
    server.script("GET", "/v2/", Reply(200, b"{}"))

    rnd = random.Random(3)
    aci = tmp_path / "big.aci"
    fx.write_aci(aci, fx.manifest("example.com/big", version="1"),
                 [fx.entry(f"f{i}", data=rnd.randbytes(1 << 20)) for i in range(16)],
                 compression="none")
    server.script("POST", "/v2/r/blobs/uploads/",
                  *[Reply(202, headers={"Location": f"/up/{i}"}) for i in (1, 2, 3)])
    server.script("PATCH", "/up/1", Reply(411, early=True))
    server.script("DELETE", "/up/1", Reply(204))
    for i in (2, 3):
        server.script("PATCH", f"/up/{i}", Reply(202, headers={"Location": f"/up/{i}"}))
        server.script("PUT", f"/up/{i}", Reply(201))
    server.script("PUT", "/v2/r/manifests/1", Reply(201))
    image = prepare.for_oci(api.read(str(aci)), OciOutput())
    written, pushed = push_image(image, f"docker://{server.host}/r:1", tls_verify=False,
                                 retries=0, env=scripted_env(tmp_path))
    assert [b.how for b in pushed.blobs] == ["uploaded", "uploaded"]
    refused = server.seen("PATCH", "/up/1")
    assert len(refused) == 1 and refused[0].headers.get("Transfer-Encoding") == "chunked"
    layer = server.seen("PATCH", "/up/2")[0]
    assert layer.headers["Content-Length"] == str(len(layer.body)) == str(written.layers[0].size)


def test_a_tag_whose_head_has_no_digest_is_compared_by_its_bytes(server, tmp_path):
    """Not every registry sends Docker-Content-Digest on a manifest HEAD: the manifest is
    then fetched to learn its digest, so a rerun onto the same content still moves nothing
    (without it, the image was written to a temporary layout and pushed again)."""
    layout = tmp_path / "layout"
    acioci("convert", SAMPLE, f"oci:{layout}:1.0.0", "--store", STORE, check=0)
    index = json.loads((layout / "index.json").read_text())["manifests"][0]
    data = (layout / "blobs/sha256" / index["digest"].split(":")[1]).read_bytes()
    oci = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    server.script("HEAD", "/v2/r/manifests/1.0.0", Reply(200, data, headers=oci))
    server.script("GET", "/v2/r/manifests/1.0.0", Reply(200, data, headers=oci))
    out = acioci("convert", SAMPLE, f"docker://{server.host}/r:1.0.0", "--store", STORE,
                 "--tls-verify=false", "--json", check=0)
    result = json.loads(out.stdout)[0]
    assert result["unchanged"] is True and result["pushed"].endswith(index["digest"])
    assert not server.seen("POST") and not server.seen("PUT")
