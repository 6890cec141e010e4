"""Empty layers (issue 18): buildah and podman commit a step that changes no file as an
uncompressed layer of exactly 1024 zero bytes, the end-of-archive marker alone
(sha256:5f70bf18...). GNU tar, Go's archive/tar and umoci read it, and 512 zero bytes or a
zero-length blob, as an empty archive; acioci refused all three as "not a tar layer"."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

import build as fx
from helpers import acioci
from test_oci_to_aci import Layout

BUILDAH_EMPTY = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def layout_with_empty_layer(root, empty: bytes, *, compress_first: bool):
    """Two layers: files, then `empty` stored uncompressed (as buildah stores it)."""
    lay = Layout(root)
    first = fx.layer_tar([fx.entry("etc", "dir"), fx.entry("etc/hostname", data=b"box\n")])
    info = lay.image([first, empty], ref="v1", compress=False)
    if compress_first:  # the usual mix: a gzip layer below, the empty one as buildah wrote it
        import json

        man_path = lay.path(info["manifest"])
        man = json.loads(man_path.read_text())
        man["layers"][0] = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            **lay.blob(gzip.compress(first, mtime=0))}
        mdesc = {"mediaType": man["mediaType"], **lay.blob(json.dumps(man).encode())}
        lay.index["manifests"] = [{**mdesc, "annotations": {
            "org.opencontainers.image.ref.name": "v1"}}]
        lay.save()
    return lay.root


@pytest.mark.parametrize("empty", [bytes(1024), bytes(512), b""],
                         ids=["buildah-1024-zeros", "one-zero-block", "zero-length"])
def test_empty_layer_converts_and_validates(tmp_path, empty):
    if len(empty) == 1024:
        assert "sha256:" + hashlib.sha256(empty).hexdigest() == BUILDAH_EMPTY
    root = layout_with_empty_layer(tmp_path / "lay", empty, compress_first=len(empty) == 1024)
    proc = acioci("validate", root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out.aci"
    acioci("convert", root, out, "--name", "example.com/empty", check=0)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(out.read_bytes()))) as tf:
        assert tf.extractfile("rootfs/etc/hostname").read() == b"box\n"
    chain = tmp_path / "chain"
    acioci("convert", root, chain, "--to", "aci", "--layered", "--name", "example.com/empty",
           check=0)
    assert len(list(chain.glob("*.aci"))) == 2
    oci = tmp_path / "oci"
    acioci("convert", root, f"oci:{oci}:v1", "--squash", check=0)
    assert acioci("validate", oci).returncode == 0


def test_a_short_run_of_zeros_is_still_a_truncated_archive(tmp_path):
    """Zeros that are not whole blocks are no end-of-archive marker: refused as truncated,
    not as an unknown format."""
    root = layout_with_empty_layer(tmp_path / "lay", bytes(100), compress_first=False)
    proc = acioci("convert", root, tmp_path / "out.aci", "--name", "example.com/empty")
    assert proc.returncode == 1 and "truncated" in proc.stderr, proc.stderr


def test_an_aci_of_zeros_alone_is_refused_for_what_it_lacks(tmp_path):
    """An ACI that is an empty archive opens now, and is refused for having no manifest."""
    aci = tmp_path / "empty.aci"
    aci.write_bytes(bytes(1024))
    proc = acioci("convert", aci, tmp_path / "out")
    assert proc.returncode == 1 and "manifest" in proc.stderr, proc.stderr
    assert "no known compression magic" not in proc.stderr
