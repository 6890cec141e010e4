"""Pushing a converted image straight into a real registry (distribution 2.8): the same
manifest digest as the layout writer's, layers uploaded while they are still being encoded,
duplicates found after the fact and not committed twice, and a failure that leaves no tag."""

from __future__ import annotations

import json
import random
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

import build as fx
from convert import api, prepare
from convert.options import OciOutput
from convert.registry.client import connect
from convert.registry.push import push_image
from convert.registry.reference import parse
from helpers import ROOT, acioci, interrupt_when, need, run
from registry_servers import scripted_env

pytestmark = pytest.mark.interop

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"
MiB = 1 << 20


def layout_manifest(layout: Path) -> str:
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def uploading(reg) -> int:
    """Bytes in the registry's open upload sessions (distribution's `_uploads/*/data`)."""
    return sum(p.stat().st_size for p in reg.root.glob("data/**/_uploads/*/data"))


def big_aci(path: Path, size: int) -> None:
    """An ACI of incompressible files: gzip passes its bytes on at once, in 4 MiB segments."""
    rnd = random.Random(15)
    entries = [fx.entry(f"f{i}", data=rnd.randbytes(MiB)) for i in range(size // MiB)]
    fx.write_aci(path, fx.manifest("example.com/big", version="1"), entries,
                 compression="none")


@pytest.mark.parametrize("args", [(), ("--squash",), ("--compression", "zstd"),
                                  ("--compression", "none")])
def test_pushed_manifest_is_the_layout_writers(registry, tmp_path, args):
    """Byte-identical to `convert ... oci:DIR`: the manifest digest names the same image."""
    name = "-".join(a.strip("-") for a in args) or "default"
    ref = registry.ref(f"same/{name}:1.0.0")
    out = acioci("convert", SAMPLE, ref, "--store", STORE, "--tls-verify=false", "--json",
                 *args, check=0)
    pushed = json.loads(out.stdout)[0]
    acioci("convert", SAMPLE, f"oci:{tmp_path / 'layout'}:1.0.0", "--store", STORE, *args,
           check=0)
    want = layout_manifest(tmp_path / "layout")
    assert pushed["manifest"] == want and pushed["pushed"].endswith("@" + want)
    with connect(parse(ref), tls_verify=False, env=scripted_env(tmp_path)) as c:
        got = c.get_manifest(parse(ref).repository, "1.0.0")
    blobs = tmp_path / "layout/blobs/sha256"
    assert got.digest == want and got.data == (blobs / want.split(":")[1]).read_bytes()
    # skopeo reads it back (every blob's digest and size checked) to the same manifest; it
    # would gzip an uncompressed layer on the way unless told to keep the digests
    run(need("skopeo"), "copy", "-q", "--preserve-digests", "--src-tls-verify=false", ref,
        f"oci:{tmp_path / 'copied'}:x")
    assert layout_manifest(tmp_path / "copied") == want


def test_layers_go_up_while_they_are_encoded(registry, tmp_path):
    """The registry holds part of the layer before the encoder has read the rest of it (a
    layout written first and pushed afterwards would show nothing here)."""
    big_aci(tmp_path / "big.aci", 24 * MiB)
    image = prepare.for_oci(api.read(str(tmp_path / "big.aci")), OciOutput())
    seen = []

    def watched(opener):
        @contextmanager
        def open_():
            with opener() as entries:
                yield _watch(entries)

        def _watch(entries):
            for i, entry in enumerate(entries):
                if i == 20:  # 20 MiB in, 4 still to come
                    deadline = time.monotonic() + 10
                    while uploading(registry) < 4 * MiB and time.monotonic() < deadline:
                        time.sleep(0.05)
                    seen.append(uploading(registry))
                yield entry
        return open_

    image = replace(image, layers=tuple(replace(la, open=watched(la.open))
                                        for la in image.layers))
    written, pushed = push_image(image, registry.ref("stream/big:1"), tls_verify=False,
                                 env=scripted_env(tmp_path))
    assert seen and seen[0] >= 4 * MiB, seen
    assert [b.how for b in pushed.blobs] == ["uploaded", "uploaded"]
    assert written.layers[0].size > 24 * MiB and uploading(registry) == 0


def test_duplicates_are_found_after_the_fact_and_not_committed(registry, tmp_path):
    env = scripted_env(tmp_path)
    image = prepare.for_oci(api.read(str(SAMPLE), store=[str(STORE)]), OciOutput())
    _, first = push_image(image, registry.ref("dup/a:1"), tls_verify=False, env=env)
    puts = registry.access_log().count("PUT /v2/dup/a/blobs/uploads/")
    _, again = push_image(image, registry.ref("dup/a:2"), tls_verify=False, env=env)
    _, mounted = push_image(image, registry.ref("dup/b:1"), tls_verify=False, env=env,
                            mount_from=("dup/a",))
    assert [b.how for b in first.blobs] == ["uploaded"] * 3
    assert [b.how for b in again.blobs] == ["exists"] * 3
    assert [b.how for b in mounted.blobs] == ["mounted"] * 3
    assert first.digest == again.digest == mounted.digest
    log = registry.access_log()
    assert log.count("PUT /v2/dup/a/blobs/uploads/") == puts  # nothing committed again
    assert "PUT /v2/dup/b/blobs/uploads/" not in log
    assert log.count("DELETE /v2/dup/") >= 2  # the streamed sessions, cancelled
    assert uploading(registry) == 0


def test_failure_mid_layer_leaves_no_tag_and_no_session(registry, tmp_path):
    """The session opens beside the encoding, so the tar breaks off far past what the queues
    between encoder and upload hold (~40 MiB of incompressible bytes at most): by then the
    PATCH has taken bytes, whatever the timing."""
    big_aci(tmp_path / "big.aci", 64 * MiB)
    data = (tmp_path / "big.aci").read_bytes()
    (tmp_path / "cut.aci").write_bytes(data[: 60 * MiB])  # a tar that ends mid-file
    ref = registry.ref("fail/cut:1")
    proc = acioci("convert", tmp_path / "cut.aci", ref, "--tls-verify=false")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    with connect(parse(ref), tls_verify=False, env=scripted_env(tmp_path)) as c:
        assert c.head_manifest("fail/cut", "1") is None
    assert "PATCH /v2/fail/cut/blobs/uploads/" in registry.access_log()  # it had started
    assert "DELETE /v2/fail/cut/blobs/uploads/" in registry.access_log()
    assert uploading(registry) == 0


def test_ctrl_c_mid_push_leaves_no_tag_no_session_and_no_traceback(registry, tmp_path):
    """SIGINT while a layer streams into its PATCH: exit 130 with one line, the upload
    session cancelled (its bytes gone from the registry), no tag, nothing in $TMPDIR."""
    import os
    import subprocess
    import sys

    big_aci(tmp_path / "big.aci", 160 * MiB)
    tmpdir = tmp_path / "TMPDIR"
    tmpdir.mkdir()
    ref = registry.ref("stop/here:1")
    proc = subprocess.Popen([sys.executable, "-m", "convert", "convert", tmp_path / "big.aci",
                             ref, "--tls-verify=false"], cwd=ROOT,
                            env={**os.environ, "TMPDIR": str(tmpdir)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = interrupt_when(proc, lambda: uploading(registry) > 0, "the upload")  # bytes came
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    with connect(parse(ref), tls_verify=False, env=scripted_env(tmp_path)) as c:
        assert c.head_manifest("stop/here", "1") is None
    assert uploading(registry) == 0
    assert "DELETE /v2/stop/here/blobs/uploads/" in registry.access_log()
    assert os.listdir(tmpdir) == []
