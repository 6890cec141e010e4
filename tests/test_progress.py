"""Progress is counted in source bytes read by the writing pass (`convert/meter.py`): every
conversion has a total up front, and the count ends exactly on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import build as fx
from convert import api

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample" / "hello-1.0.0-linux-amd64.aci"
STORE = SAMPLE.parent / "store"


def converted_with_progress(src, dest, to=None, **options) -> tuple[int, int, int]:
    """(total announced, bytes reported, number of reports)."""
    seen = {"total": None, "read": 0, "calls": 0}

    def start(total: int):
        assert seen["total"] is None, "the total is announced once"
        seen["total"] = total

        def update(n: int) -> None:
            seen["read"] += n
            seen["calls"] += 1
        return update

    api.convert(str(src), str(dest), to=to, options=api.ConvertOptions(**options),
                progress=start)
    return seen["total"], seen["read"], seen["calls"]


def layer_blob_sizes(layout: Path) -> int:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    return sum(d["size"] for d in manifest["layers"])


@pytest.mark.parametrize("compression", ["gzip", "none", "xz"])
def test_a_lone_aci_counts_its_file_whatever_its_compression(tmp_path, compression):
    """A compressed ACI read once has no known uncompressed size: the total is the file's."""
    aci = tmp_path / "x.aci"
    fx.write_aci(aci, fx.manifest("example.com/x"),
                 [fx.entry("etc", "dir"), fx.entry("etc/data", data=bytes(range(256)) * 4000)],
                 compression=compression)
    total, read, calls = converted_with_progress(aci, tmp_path / "out")
    assert total == read == aci.stat().st_size and calls > 0


def test_a_chain_counts_every_aci_it_renders(tmp_path):
    total, read, _ = converted_with_progress(SAMPLE, tmp_path / "out", store=[str(STORE)])
    files = SAMPLE.stat().st_size + sum(p.stat().st_size for p in STORE.glob("*.aci"))
    assert total == read == files


@pytest.mark.parametrize("extra", [{}, {"layered": True, "to": "aci"}])
def test_oci_to_aci_counts_layer_blobs_once_though_squash_reads_them_twice(tmp_path, extra):
    layout = tmp_path / "layout"
    api.convert(str(SAMPLE), f"oci:{layout}:1", options=api.ConvertOptions(store=[str(STORE)]))
    dest = tmp_path / ("chain" if extra else "out.aci")
    total, read, _ = converted_with_progress(f"oci:{layout}:1", dest, name="example.com/x",
                                             **extra)
    assert total == read == layer_blob_sizes(layout) > 0


def test_a_second_go_with_an_index_is_not_counted_twice(tmp_path):
    """A lone ACI that brings a directory after its contents is converted a second time with
    a full index (render.OutOfOrder); that index pass is not progress."""
    aci = tmp_path / "late-dir.aci"
    fx.write_aci(aci, fx.manifest("example.com/x"),
                 [fx.entry("etc/data", data=b"x" * 5000), fx.entry("etc", "dir")])
    total, read, _ = converted_with_progress(aci, tmp_path / "out")
    assert total == read == aci.stat().st_size


def test_a_legacy_docker_archive_counts_its_layer_members(tmp_path):
    """docker save's legacy layers come without descriptors: the member's size is the total."""
    import tarfile

    import hostile

    src = hostile.docker_of(tmp_path, [("app", None, "d"), ("app/bin", b"\x7fELF" * 3000, "f")])
    with tarfile.open(src) as tf:
        layer = tf.getmember("l1/layer.tar").size
    total, read, _ = converted_with_progress(f"docker-archive:{src}", tmp_path / "out.aci")
    assert total == read == layer > 0
