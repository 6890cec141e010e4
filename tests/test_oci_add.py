"""An image written into an existing OCI layout is added beside the others (writers/oci_add):
tags stay apart, blobs are shared, a taken tag is refused, --overwrite replaces only that
image, and a failure leaves the layout exactly as it was."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import build as fx
from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures" / "sample" / "hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures" / "sample" / "store"


def files(root: Path) -> dict[str, str]:
    """Every file under root with the SHA-256 of its bytes."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def reachable(layout: Path) -> set[str]:
    """The blob file names every tagged image reaches (manifest, config, layers)."""
    out = set()
    for desc in json.loads((layout / "index.json").read_bytes())["manifests"]:
        digest = desc["digest"].split(":")[1]
        manifest = json.loads((layout / "blobs" / "sha256" / digest).read_bytes())
        out |= {digest, manifest["config"]["digest"].split(":")[1]}
        out |= {layer["digest"].split(":")[1] for layer in manifest["layers"]}
    return out


def tags(layout: Path) -> list[tuple[str, str]]:
    index = json.loads((layout / "index.json").read_bytes())
    return [(d["annotations"]["org.opencontainers.image.ref.name"], d["digest"])
            for d in index["manifests"]]


def blob_names(layout: Path) -> set[str]:
    return {p.name for p in (layout / "blobs" / "sha256").iterdir()}


def lone(tmp_path: Path, name: str, data: bytes) -> Path:
    aci = tmp_path / f"{name}.aci"
    fx.write_aci(aci, fx.manifest(f"example.com/{name}"), [fx.entry("f", data=data)])
    return aci


def test_images_are_added_beside_each_other_and_share_blobs(tmp_path):
    layout = tmp_path / "store"
    acioci("convert", SAMPLE, f"oci:{layout}:chain", "--store", STORE, "-q", check=0)
    alone = files(layout)
    # the same chain once more under another tag, and squashed under a third: the per-ACI
    # layers of the first two are the same blobs, stored once
    acioci("convert", SAMPLE, f"oci:{layout}:again", "--store", STORE, "--no-image-id", "-q",
           check=0)
    acioci("convert", lone(tmp_path, "b", b"b"), f"oci:{layout}:b", "-q", check=0)
    got = tags(layout)
    assert [t for t, _ in got] == ["chain", "again", "b"]
    assert got[0][1] != got[1][1]  # two manifests (one records image IDs, one does not)
    assert blob_names(layout) == reachable(layout)  # nothing unreferenced, nothing missing
    first = json.loads((layout / "blobs" / "sha256" / got[0][1].split(":")[1]).read_bytes())
    second = json.loads((layout / "blobs" / "sha256" / got[1][1].split(":")[1]).read_bytes())
    assert [x["digest"] for x in first["layers"]] == [x["digest"] for x in second["layers"]]
    # what was there is untouched but for index.json
    now = files(layout)
    assert {k: v for k, v in alone.items() if k != "index.json"}.items() <= now.items()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_taken_tag_is_refused_and_nothing_changes(tmp_path):
    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:v1", "-q", check=0)
    before = files(layout)
    proc = acioci("convert", lone(tmp_path, "c", b"c"), f"oci:{layout}:v1", check=1)
    assert "tag 'v1' already exists" in proc.stderr and str(layout) in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert files(layout) == before


def test_overwrite_replaces_only_that_tag_and_its_blobs(tmp_path):
    layout = tmp_path / "store"
    acioci("convert", SAMPLE, f"oci:{layout}:a", "--store", STORE, "-q", check=0)
    acioci("convert", lone(tmp_path, "b", b"b"), f"oci:{layout}:b", "-q", check=0)
    [(_, old_a), (_, b)] = tags(layout)
    old_blobs = blob_names(layout)
    acioci("convert", SAMPLE, f"oci:{layout}:a", "--store", STORE, "--squash", "--overwrite",
           "-q", check=0)
    [(tag_a, new_a), (tag_b, b_after)] = tags(layout)
    assert (tag_a, tag_b, b_after) == ("a", "b", b) and new_a != old_a  # in place
    assert old_a.split(":")[1] not in blob_names(layout)
    assert blob_names(layout) == reachable(layout)
    assert blob_names(layout) != old_blobs


def test_a_failure_while_adding_leaves_the_layout_as_it_was(tmp_path):
    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:v1", "-q", check=0)
    before = files(layout)
    # a large file, then a corrupt header: blobs are being written when the error comes
    good = fx.aci_bytes(fx.manifest("example.com/bad"),
                        [fx.entry("big", data=os.urandom(3 << 20)), fx.entry("z", data=b"z")])
    cut = good.rindex(b"rootfs/z")
    bad = tmp_path / "bad.aci"
    bad.write_bytes(good[:cut] + b"\xff" * 512 + good[cut + 512:])
    proc = acioci("convert", bad, f"oci:{layout}:v2", check=1)
    assert "bad.aci" in proc.stderr
    assert files(layout) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.aci", "bad.aci", "store"]


def test_a_layout_that_is_not_one_is_refused(tmp_path):
    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:v1", "-q", check=0)
    (layout / "index.json").write_bytes(b'{"schemaVersion": 2, "manifests": 7}')
    proc = acioci("convert", lone(tmp_path, "c", b"c"), f"oci:{layout}:v2", check=1)
    assert "index.json" in proc.stderr and "/manifests" in proc.stderr


def test_adders_wait_for_each_other(tmp_path):
    """The layout is locked while its index is rewritten: an adder that finds it locked waits,
    so two adders cannot both start from the same old index.json."""
    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:a", "-q", check=0)
    before = files(layout)
    fd = os.open(layout, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-m", "convert", "convert",
                                 str(lone(tmp_path, "b", b"b")), f"oci:{layout}:b", "-q"],
                                cwd=ROOT)
        time.sleep(4)  # the conversion itself takes well under a second
        assert proc.poll() is None and files(layout) == before
    finally:
        os.close(fd)
    assert proc.wait(timeout=60) == 0
    assert [t for t, _ in tags(layout)] == ["a", "b"]


def test_a_failure_after_blobs_moved_in_takes_them_out_again(tmp_path, monkeypatch):
    """The last step, replacing index.json, fails: the blobs already renamed into the layout
    are removed, and the layout is byte for byte what it was."""
    import pytest

    from convert import api, errors
    from convert.writers import oci_add

    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:v1", "-q", check=0)
    before = files(layout)

    def full_disk(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(oci_add.os, "replace", full_disk)
    with pytest.raises(errors.DestinationError, match="No space left"):
        api.convert(str(lone(tmp_path, "c", b"c" * 100_000)), f"oci:{layout}:v2")
    assert files(layout) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.aci", "c.aci", "store"]


def test_batch_force_still_replaces_its_own_output_whole(tmp_path):
    """batch owns one layout per input: --force rewrites it as it was first written, whatever
    was added to it since."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    lone(src, "a", b"a")
    acioci("batch", src, "--to", "oci", "--out", out, "-q", check=0)
    [layout] = [p for p in out.iterdir() if (p / "index.json").exists()]
    first = files(layout)
    acioci("convert", lone(tmp_path, "x", b"x"), f"oci:{layout}:extra", "-q", check=0)
    assert len(tags(layout)) == 2
    acioci("batch", src, "--to", "oci", "--out", out, "--force", "-q", check=0)
    assert files(layout) == first


def test_overwrite_never_removes_outside_blobs_for_a_hostile_manifest(tmp_path):
    """The replaced image is a manifest someone else wrote, naming a layer `sha256:../../x`:
    nothing outside blobs/ is touched, and the rest of the layout is left uncollected."""
    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:v1", "-q", check=0)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    index = json.loads((layout / "index.json").read_bytes())
    desc = index["manifests"][0]
    path = layout / "blobs" / "sha256" / desc["digest"].split(":")[1]
    manifest = json.loads(path.read_bytes())
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                               "digest": "sha256:../../../victim", "size": 7})
    data = json.dumps(manifest).encode()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    desc.update(digest=f"sha256:{digest}", size=len(data))
    (layout / "index.json").write_text(json.dumps(index))
    acioci("convert", lone(tmp_path, "c", b"c"), f"oci:{layout}:v1", "--overwrite", "-q",
           check=0)
    assert victim.read_bytes() == b"keep me"
    assert (layout / "blobs" / "sha256" / digest).exists()  # not collected: not walkable


def test_a_layout_whose_blobs_is_a_symlink_is_refused(tmp_path):
    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:v1", "-q", check=0)
    elsewhere = tmp_path / "elsewhere"
    (layout / "blobs").rename(elsewhere)
    (layout / "blobs").symlink_to(elsewhere)
    before = files(elsewhere)
    proc = acioci("convert", lone(tmp_path, "c", b"c"), f"oci:{layout}:v2", check=1)
    assert "symlink" in proc.stderr
    assert files(elsewhere) == before


def test_a_layout_reached_through_a_symlink_on_another_directory(tmp_path):
    """The image is built beside the layout itself, not beside the link, so its blobs can be
    renamed in; the link stays a link."""
    (tmp_path / "real").mkdir()
    layout = tmp_path / "real" / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:a", "-q", check=0)
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "store"
    link.symlink_to(layout)
    acioci("convert", lone(tmp_path, "b", b"b"), f"oci:{link}:b", "-q", check=0)
    assert link.is_symlink() and [t for t, _ in tags(layout)] == ["a", "b"]
    assert blob_names(layout) == reachable(layout)
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["store"]
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["store"]
