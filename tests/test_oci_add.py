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
    return set().union(*(reachable_one(layout, d) for _, d in tags(layout)))


def reachable_one(layout: Path, digest: str) -> set[str]:
    """The blob file names one manifest reaches: itself, its config, its layers."""
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())
    digests = {digest, manifest["config"]["digest"]} | {x["digest"] for x in manifest["layers"]}
    return {d.split(":")[1] for d in digests}


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
    assert [t for t, _ in got] == ["again", "b", "chain"]  # in tag order
    assert got[0][1] != got[2][1]  # two manifests (one records image IDs, one does not)
    assert blob_names(layout) == reachable(layout)  # nothing unreferenced, nothing missing
    first = json.loads((layout / "blobs" / "sha256" / got[2][1].split(":")[1]).read_bytes())
    second = json.loads((layout / "blobs" / "sha256" / got[0][1].split(":")[1]).read_bytes())
    assert [x["digest"] for x in first["layers"]] == [x["digest"] for x in second["layers"]]
    # what was there is untouched but for index.json
    now = files(layout)
    assert {k: v for k, v in alone.items() if k != "index.json"}.items() <= now.items()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_taken_tag_is_refused_and_nothing_changes(tmp_path):
    layout = tmp_path / "store"
    acioci("convert", lone(tmp_path, "a", b"a"), f"oci:{layout}:v1", "-q", check=0)
    before = files(layout)
    proc = acioci("convert", lone(tmp_path, "c", b"c"), f"oci:{layout}:v1", check=2)
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
    proc = acioci("convert", lone(tmp_path, "c", b"c"), f"oci:{layout}:v2", check=2)
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


def _store(root: Path) -> Path:
    """A folder of ACIs to migrate: the sample chain's base in a subfolder, its top, and two
    lone images (one name the ref grammar refuses as it is)."""
    src = root / "in"
    (src / "sub").mkdir(parents=True)
    for aci in (STORE).glob("*.aci"):
        (src / "sub" / aci.name).write_bytes(aci.read_bytes())
    (src / SAMPLE.name).write_bytes(SAMPLE.read_bytes())
    lone(src, "b", b"b" * 70_000)
    fx.write_aci(src / "c d!.aci", fx.manifest("example.com/c"), [fx.entry("f", data=b"c")])
    return src


def test_batch_one_layout_gathers_a_store_deterministically(tmp_path):
    src = _store(tmp_path)
    outs = []
    for name, jobs in (("one", "1"), ("two", "2")):
        out = tmp_path / name
        proc = acioci("batch", src, "--to", "oci", "--out", out, "--one-layout", "--jobs", jobs,
                      "--json", check=0)
        report = json.loads(proc.stdout)
        assert report["summary"]["converted"] == 4
        outs.append(files(out))
    assert outs[0] == outs[1]  # whatever order the workers finished in
    layout = tmp_path / "one"
    assert [t for t, _ in tags(layout)] == [
        "b", "c-d", SAMPLE.name[:-4], "sub/" + next(STORE.glob("*.aci")).name[:-4]]
    assert blob_names(layout) == reachable(layout)
    # the chain's base layer is stored once though two images hold it
    per_image = sum(len(reachable_one(layout, d)) for _, d in tags(layout))
    assert len(blob_names(layout)) < per_image
    # a rerun skips every tag; --force converts them again into the same bytes
    report = json.loads(acioci("batch", src, "--to", "oci", "--out", layout, "--one-layout",
                               "--json", check=0).stdout)
    assert report["summary"]["skipped"] == 4
    acioci("batch", src, "--to", "oci", "--out", layout, "--one-layout", "--force", "-q",
           check=0)
    assert files(layout) == outs[0]


def test_batch_one_layout_a_bad_input_fails_alone(tmp_path):
    src = _store(tmp_path)
    (src / "broken.aci").write_bytes(b"\x1f\x8b" + b"\0" * 100)
    out = tmp_path / "out"
    proc = acioci("batch", src, "--to", "oci", "--out", out, "--one-layout", "--json", check=1)
    report = json.loads(proc.stdout)
    assert report["summary"] == {"converted": 4, "skipped": 0, "failed": 1,
                                 "interrupted": False}
    assert "broken" not in json.dumps(tags(out))
    assert blob_names(out) == reachable(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_batch_one_layout_refuses_what_it_cannot_do(tmp_path):
    src = _store(tmp_path)
    proc = acioci("batch", src, "--to", "aci", "--out", tmp_path / "o", "--one-layout", check=2)
    assert "the one-layout option is for OCI output" in proc.stderr
    (tmp_path / "file").write_bytes(b"x")
    proc = acioci("batch", src, "--to", "oci", "--out", tmp_path / "file", "--one-layout")
    assert proc.returncode != 0 and "not an OCI layout" in proc.stderr
    assert (tmp_path / "file").read_bytes() == b"x"


def test_the_same_images_added_in_any_order_give_the_same_layout(tmp_path):
    acis = [lone(tmp_path, n, n.encode()) for n in ("x", "y", "z")]
    outs = []
    for name, order in (("fwd", acis), ("rev", acis[::-1]), ("mid", [acis[1], acis[2], acis[0]])):
        layout = tmp_path / name
        for aci in order:
            acioci("convert", aci, f"oci:{layout}:{aci.stem}", "-q", check=0)
        outs.append(files(layout))
    assert outs[0] == outs[1] == outs[2]


def test_batch_one_layout_removes_what_killed_workers_left(tmp_path):
    """SIGKILL leaves a worker's scratch beside the layout and maybe a half-written index
    beside index.json; the next batch removes them (a live writer's are kept)."""
    src = _store(tmp_path)
    out = tmp_path / "out"
    acioci("batch", src, "--to", "oci", "--out", out, "--one-layout", "-q", check=0)
    from convert.atomic import host_tag, process_start
    dead = 2 ** 22 + 1  # above pid_max's default: no such process
    here = f"{host_tag()}-{process_start(os.getpid())}"  # the name marks host and start time
    stale = [tmp_path / f".out.acioci-tmp-{dead}-{here}-ab12",
             out / f".index.json.acioci-tmp-{dead}-{here}-cd"]
    live = tmp_path / f".out.acioci-tmp-{os.getpid()}-{here}-ef34"
    stale[0].mkdir()
    stale[1].write_bytes(b"{")
    live.mkdir()
    acioci("batch", src, "--to", "oci", "--out", out, "--one-layout", "-q", check=0)
    assert not any(p.exists() for p in stale) and live.exists()
