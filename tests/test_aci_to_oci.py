"""ACI -> OCI through the CLI: determinism, atomicity, options, exit codes and messages."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

import build as fx
from helpers import acioci

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = SAMPLE.parent / "store"


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def read_layout(layout: Path):
    index = json.loads((layout / "index.json").read_bytes())
    blob = lambda d: (layout / "blobs" / "sha256" / d.split(":")[1]).read_bytes()  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    return index, manifest, config, blob


@pytest.mark.parametrize("dest,extra", [("oci:{d}/a:v1", []), ("{d}/a.tar", []),
                                        ("oci:{d}/a:v1", ["--squash", "--compression", "zstd"])])
def test_converting_twice_gives_identical_bytes(tmp_path, dest, extra):
    outs = []
    for run in ("one", "two"):
        d = tmp_path / run
        d.mkdir()
        acioci("convert", SAMPLE, dest.format(d=d), "--store", STORE, *extra, check=0)
        target = d / ("a.tar" if dest.endswith(".tar") else "a")
        outs.append(tree_bytes(target) if target.is_dir() else {"tar": target.read_bytes()})
    assert outs[0] == outs[1]
    assert outs[0]  # not vacuous


def test_config_and_annotations_carry_every_field(tmp_path):
    acioci("convert", SAMPLE, tmp_path / "out", "--store", STORE, check=0)
    index, manifest, config, blob = read_layout(tmp_path / "out")
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1.0.0"
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
    ann = manifest["annotations"]
    assert ann["io.acioci.aci.name"] == "example.com/hello"
    assert json.loads(ann["io.acioci.aci.app.isolators"]) == [
        {"name": "resource/memory", "value": {"limit": "256Mi"}}]
    assert json.loads(ann["io.acioci.aci.app.ports"])[0]["name"] == "http"
    assert json.loads(ann["io.acioci.aci.app.mountPoints"])[0]["name"] == "data"
    assert json.loads(ann["io.acioci.aci.dependencies"]) == [
        {"imageName": "example.com/base", "labels": [{"name": "version", "value": "1.0.0"}]}]
    assert ann["org.opencontainers.image.url"] == "https://example.com/hello"
    assert config["created"] == "2020-09-13T12:26:40Z"
    assert config["author"] == "acioci developers"
    assert len(config["history"]) == len(manifest["layers"]) == len(config["rootfs"]["diff_ids"])
    # every diff_id is the sha256 of the decompressed layer, every digest of the blob
    for desc, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        raw = blob(desc["digest"])
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == desc["digest"]
        assert len(raw) == desc["size"]
        assert "sha256:" + hashlib.sha256(gzip.decompress(raw)).hexdigest() == diff_id


def test_layer_names_are_stripped_of_rootfs_and_links_rewritten(tmp_path):
    acioci("convert", SAMPLE, tmp_path / "out", "--store", STORE, check=0)
    _, manifest, _, blob = read_layout(tmp_path / "out")
    top = blob(manifest["layers"][-1]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(top))) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert "manifest" not in members and not any(n.startswith("rootfs") for n in members)
    assert members["usr/bin/hi"].islnk() and members["usr/bin/hi"].linkname == "usr/bin/hello"
    assert members["usr/bin/su-hello"].mode == 0o4755
    assert members["usr/bin/hello"].pax_headers["SCHILY.xattr.user.origin"] == "acioci-sample"


def test_tag_option_and_version_fallback(tmp_path):
    acioci("convert", SAMPLE, f"oci:{tmp_path}/a", "--store", STORE, "--tag", "stable", check=0)
    index, *_ = read_layout(tmp_path / "a")
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "stable"
    top = tmp_path / "noversion.aci"
    fx.write_aci(top, fx.manifest("example.com/nv", version="1.0_rc+build 7"), [])
    acioci("convert", top, tmp_path / "b", check=0)
    index, *_ = read_layout(tmp_path / "b")
    assert index["manifests"][0]["annotations"][
        "org.opencontainers.image.ref.name"] == "1.0_rc+build-7"


def test_arm_platform_mapping(tmp_path):
    top = tmp_path / "arm.aci"
    fx.write_aci(top, fx.manifest("example.com/arm", arch="armv7l"), [])
    acioci("convert", top, tmp_path / "out", check=0)
    _, _, config, _ = read_layout(tmp_path / "out")
    assert (config["architecture"], config.get("variant")) == ("arm", "v7")


def test_missing_platform_is_an_error_not_a_guess(tmp_path):
    top = tmp_path / "any.aci"
    fx.write_aci(top, fx.manifest("example.com/any", os_=None, arch=None), [])
    proc = acioci("convert", top, tmp_path / "out")
    assert proc.returncode == 2 and "--platform" in proc.stderr
    assert not (tmp_path / "out").exists()
    acioci("convert", top, tmp_path / "out", "--platform", "linux/arm64", check=0)
    _, _, config, _ = read_layout(tmp_path / "out")
    assert config["architecture"] == "arm64"


def test_existing_destination_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    acioci("convert", SAMPLE, out, "--store", STORE, check=0)
    proc = acioci("convert", SAMPLE, out, "--store", STORE)
    assert proc.returncode == 2 and "exists" in proc.stderr
    acioci("convert", SAMPLE, out, "--store", STORE, "--overwrite", "--squash", check=0)
    _, manifest, _, _ = read_layout(out)
    assert len(manifest["layers"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def write_raw(path: Path, members, compression="gzip"):
    """A compressed tar of arbitrary members (see fixtures/build.py raw_tar)."""
    path.write_bytes(fx.compress(fx.raw_tar(members), compression))


GOOD_MANIFEST = json.dumps(fx.manifest("example.com/x")).encode()

BAD = {
    "not-json": ([("manifest", b"{not json", "f"), ("rootfs", None, "d")], "manifest",
                 "not JSON"),
    "schema": ([("manifest", json.dumps({"acKind": "ImageManifest", "acVersion": "0.8.11",
                                          "name": "Bad_Name"}).encode(), "f"),
                ("rootfs", None, "d")], "manifest#/name", "fails its schema"),
    "outside-rootfs": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                        ("README", b"x", "f")], "README", "outside rootfs"),
    "dotdot": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                ("rootfs/../../etc/passwd", b"x", "f")], "rootfs/../../etc/passwd", "'..'"),
    "absolute": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                  ("/rootfs/etc/passwd", b"x", "f")], "/rootfs/etc/passwd", "absolute"),
    "hardlink-outside": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                          ("rootfs/h", b"manifest", "l")], "rootfs/h", "outside rootfs"),
    "hardlink-escape": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                         ("rootfs/h", b"rootfs/../../etc/shadow", "l")], "rootfs/h", "'..'"),
    "hardlink-later": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                        ("rootfs/h", b"rootfs/f", "l"), ("rootfs/f", b"x", "f")], "rootfs/h",
                       "not an earlier entry"),
    "through-symlink": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                         ("rootfs/etc", b"/etc", "s"), ("rootfs/etc/passwd", b"x", "f")],
                        "rootfs/etc/passwd", "symlink"),
    "duplicate": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs", None, "d"),
                   ("rootfs/a", b"1", "f"), ("rootfs/./a", b"2", "f")], "rootfs/a", "duplicate"),
    "no-rootfs": ([("manifest", GOOD_MANIFEST, "f"), ("rootfs/a", b"1", "f")], None,
                  "no rootfs directory"),
    "no-manifest": ([("rootfs", None, "d")], None, "no manifest"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_aci_gets_one_clear_error(tmp_path, case):
    members, entry, text = BAD[case]
    src = tmp_path / f"{case}.aci"
    write_raw(src, members)
    before = src.read_bytes()
    out = tmp_path / "out"
    proc = acioci("convert", src, out)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(src) in lines[0] and text in lines[0]
    if entry is not None:
        assert f"::{entry}" in lines[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [src.name]
    assert src.read_bytes() == before


@pytest.mark.parametrize("cut", [100, 700, -30])
def test_truncated_archives(tmp_path, cut):
    raw = fx.aci_bytes(fx.manifest("example.com/t"), [fx.entry("f", data=b"y" * 5000)])
    src = tmp_path / "t.aci"
    src.write_bytes(gzip.compress(raw, mtime=0)[:cut] if cut < 0 else raw[:1024 + cut])
    proc = acioci("convert", src, tmp_path / "out")
    assert proc.returncode == 1 and "truncated" in proc.stderr and str(src) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unreadable_source_and_usage_errors_exit_2(tmp_path):
    proc = acioci("convert", tmp_path / "missing.aci", tmp_path / "out")
    assert proc.returncode == 2 and "missing.aci" in proc.stderr
    proc = acioci("convert", SAMPLE, tmp_path / "out", "--compression", "lz4",
                  "--store", STORE)
    assert proc.returncode == 2 and "--compression" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_failure_midway_leaves_nothing(tmp_path):
    """The top image is fine, its dependency is corrupt in its data: the error comes while
    layers are being written, and the half-built layout must vanish."""
    store = tmp_path / "store"
    raw = fx.aci_bytes(fx.manifest("example.com/dep"), [fx.entry("big", data=os.urandom(70000))])
    store.mkdir()
    (store / "dep.aci").write_bytes(raw)
    top = tmp_path / "top.aci"
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=[
        {"imageName": "example.com/dep"}]), [fx.entry("f", data=b"x")])
    # corrupt the dependency after it has been indexed: same ID check must catch it
    from convert import api
    image = api.read(str(top), store=[str(store)])
    data = bytearray(raw)
    data[3000] ^= 0xFF
    (store / "dep.aci").write_bytes(bytes(data))
    from convert.errors import DigestMismatchError
    from convert.writers import oci

    with pytest.raises(DigestMismatchError):
        oci.write(api.render(image), str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store", "top.aci"]


def test_aci_chain_flattens_to_one_aci(tmp_path):
    """ACI -> ACI renders the dependencies in and drops them (and the whitelist) from the
    manifest; labels, annotations and app come through as they were."""
    out = tmp_path / "flat.aci"
    acioci("convert", SAMPLE, out, "--store", STORE, check=0)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(out.read_bytes()))) as tf:
        names = tf.getnames()
        m = json.loads(tf.extractfile("manifest").read())
    assert names[:2] == ["manifest", "rootfs"]
    assert {"rootfs/etc/passwd", "rootfs/usr/bin/hello", "rootfs/usr/bin/hi"} <= set(names)
    assert "dependencies" not in m and "pathWhitelist" not in m
    assert m["app"]["isolators"][0]["name"] == "resource/memory"
    assert [a["name"] for a in m["annotations"]] == ["created", "authors", "homepage"]


def test_an_empty_directory_is_a_destination_a_non_empty_one_is_not(tmp_path):
    """`mkdir out` before converting into it is common (skopeo allows it): an empty directory
    counts as no destination. One with anything in it is still refused, untouched."""
    out = tmp_path / "out"
    out.mkdir()
    acioci("convert", SAMPLE, out, "--store", STORE, "-q", check=0)
    index, manifest, _, _ = read_layout(out)
    assert len(manifest["layers"]) == 2
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    proc = acioci("convert", SAMPLE, busy, "--store", STORE, check=2)
    assert "destination exists" in proc.stderr
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "out"]


def test_base_layer_is_the_same_blob_alone_and_as_the_base_of_a_chain(tmp_path):
    """A base ACI's layer was different bytes as the base of a chain whose upper image also
    has `etc/`: the base layer got a synthesised `etc/` (mode 0755, mtime 0, no owner names)
    instead of its own entry, so a registry or a shared layout stored the base twice. Each
    layer now writes its own entry for a directory both images have; the upper one is
    applied later and wins on unpack, as rkt's rendering does."""
    store = tmp_path / "store"
    store.mkdir()
    fx.write_aci(store / "base.aci", fx.manifest("example.com/base", version="1"), [
        fx.entry("etc", "dir", mode=0o750, uname="root", gname="root"),
        fx.entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
        fx.entry("bin", "dir"), fx.entry("bin/sh", data=b"#!sh\n", mode=0o755)])
    app = tmp_path / "app.aci"
    fx.write_aci(app, fx.manifest(
        "example.com/app", version="1", dependencies=[
            {"imageName": "example.com/base", "labels": [{"name": "version", "value": "1"}]}]),
        [fx.entry("etc", "dir", mode=0o700), fx.entry("etc/hostname", data=b"app\n")])
    acioci("convert", store / "base.aci", f"oci:{tmp_path / 'alone'}:1", check=0)
    acioci("convert", app, f"oci:{tmp_path / 'chain'}:1", "--store", store,
           check=0)
    _, alone, _, _ = read_layout(tmp_path / "alone")
    _, chain, _, blob = read_layout(tmp_path / "chain")
    assert chain["layers"][0]["digest"] == alone["layers"][0]["digest"]
    # unpacking applies the layers in order: the app's etc/ (0700) comes last and wins
    upper = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(chain["layers"][1]["digest"]))))
    assert upper.getmember("etc").mode == 0o700
    # squashed, a path is written once, and it is the app's
    acioci("convert", app, f"oci:{tmp_path / 'flat'}:1", "--store", store, "--squash", check=0)
    _, flat, _, blob = read_layout(tmp_path / "flat")
    one = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(flat["layers"][0]["digest"]))))
    assert [m.mode for m in one.getmembers() if m.name.rstrip("/") == "etc"] == [0o700]
