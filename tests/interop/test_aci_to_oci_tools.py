"""ACI -> OCI judged by real tools: the tree `umoci unpack` makes from our layout must equal,
file for file, the rootfs `acirender` (appc's own renderer, as rkt) makes from the same ACIs;
skopeo must read the image and oci-image-tool must validate it.

Known, documented differences are asserted case by case, never ignored wholesale:
- parent directories no image provides are written by us as 0755 root with mtime 0; acirender
  creates them at render time, so only their mtime differs (`synthesised` below).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import build as fx
from helpers import acioci, diff_trees, need, run, snapshot

pytestmark = pytest.mark.interop


def convert_and_compare(tmp_path: Path, top: Path, store: Path | None, *, synthesised=(),
                        extra_args=(), whitelist_mode="rkt", compression="gzip"):
    """Convert, unpack with umoci, render with acirender, compare. Returns both snapshots."""
    umoci, acirender = need("umoci"), need("acirender")
    layout = tmp_path / "layout"
    args = ["convert", top, f"oci:{layout}:test", "--compression", compression,
            "--whitelist-mode", whitelist_mode, *extra_args]
    if store is not None:
        args += ["--store", store]
    acioci(*args, check=0)
    bundle = tmp_path / "bundle"
    unpack_from = layout
    if compression == "zstd":
        # umoci 0.4.7 cannot read zstd layers; skopeo recompresses them for it, which also
        # proves skopeo reads our zstd blobs and diff_ids.
        unpack_from = tmp_path / "decompressed"
        run(need("skopeo"), "copy", "--dest-compress", "--dest-compress-format", "gzip",
            f"oci:{layout}:test",
            f"oci:{unpack_from}:test")
    run(umoci, "unpack", "--image", f"{unpack_from}:test", bundle)
    rendered = tmp_path / "rendered"
    cmd = [acirender]
    if store is not None:
        cmd += ["--store", store]
    run(*cmd, top, rendered)
    ours = snapshot(bundle / "rootfs")
    theirs = snapshot(rendered / "rootfs")
    zero_dirs = {p for p, i in ours.items() if i["type"] == stat.S_IFDIR and i["mtime"] == 0}
    assert zero_dirs == set(synthesised), "synthesised parent directories changed"
    assert diff_trees(ours, theirs, ignore_mtime=zero_dirs) == []
    return layout, ours, theirs


def every_type_entries():
    long_dir = "deep/" + "/".join(["d" * 60] * 5)  # a 300+ byte path: PAX names
    return [
        fx.entry("etc", "dir", mtime=1_500_000_000),
        fx.entry("etc/hostname", data=b"box\n", mode=0o644, uid=1, gid=2, uname="", gname=""),
        fx.entry("usr", "dir"), fx.entry("usr/bin", "dir"),
        fx.entry("usr/bin/tool", data=b"\x7fELF" + bytes(range(256)) * 40, mode=0o755,
                 xattrs={"user.checksum": "abc", "user.binary": b"\x00\xff\x01"}),
        fx.entry("usr/bin/tool-link", "hardlink", target="usr/bin/tool", mode=0o755),
        fx.entry("usr/bin/suid", data=b"s", mode=0o4755),
        fx.entry("usr/bin/sgid", data=b"g", mode=0o2711, gid=50),
        fx.entry("tmp", "dir", mode=0o1777),
        fx.entry("bin", "symlink", target="usr/bin"),
        fx.entry("etc/abs-link", "symlink", target="/etc/hostname"),
        fx.entry("etc/long-target", "symlink", target="/" + "t" * 150),
        fx.entry("dev", "dir"),
        fx.entry("dev/null", "char", devmajor=1, devminor=3, mode=0o666),
        fx.entry("dev/loop0", "block", devmajor=7, devminor=0, mode=0o660, gid=6),
        fx.entry("run", "dir"), fx.entry("run/fifo", "fifo", mode=0o600),
        fx.entry("deep", "dir"),
        *[fx.entry("/".join(long_dir.split("/")[:i]), "dir") for i in range(2, 7)],
        fx.entry(long_dir + "/file-with-a-long-name-" + "x" * 80, data=b"deep\n", mtime=1234),
        fx.entry(long_dir + "/hard", "hardlink",
                 target=long_dir + "/file-with-a-long-name-" + "x" * 80, mtime=1234),
        fx.entry("srv", "dir", mode=0o700, uid=1000, gid=1000),
        fx.entry("srv/ünïcødé-名前.txt", data=b"utf-8 names\n"),
        fx.entry("srv/empty", data=b""),
    ]


@pytest.mark.parametrize("compression", ["gzip", "none", "zstd"])
def test_single_image_every_entry_type(tmp_path, compression):
    top = tmp_path / "one.aci"
    fx.write_aci(top, fx.manifest("example.com/one", version="1"), every_type_entries(),
                 compression="xz")
    layout, ours, _ = convert_and_compare(tmp_path, top, None, compression=compression)
    # the things most converters lose, checked on the unpacked tree itself
    assert ours["usr/bin/suid"]["mode"] == 0o4755
    assert ours["usr/bin/sgid"]["mode"] == 0o2711 and ours["usr/bin/sgid"]["gid"] == 50
    assert ours["tmp"]["mode"] == 0o1777
    assert ours["usr/bin/tool"]["xattrs"] == {"user.binary": b"\x00\xff\x01",
                                              "user.checksum": b"abc"}
    assert ours["usr/bin/tool"]["links"] == ["usr/bin/tool", "usr/bin/tool-link"]
    assert ours["dev/loop0"]["rdev"] == (7, 0)
    assert ours["etc/long-target"]["target"] == "/" + "t" * 150
    if compression != "zstd":  # oci-image-tool rejects zstd layers (oci.md §7)
        out = run(need("oci-image-tool"), "validate", "--type", "image", layout)
        assert "Validation succeeded" in out


def chain(tmp_path: Path):
    """C <- B <- A, three deep; A has a pathWhitelist; B overrides C; B's symlink hides C's
    subtree; A's whitelist drops C and B content, including a directory."""
    store = tmp_path / "store"
    c = fx.manifest("example.com/c", version="1")
    fx.write_aci(store / "c.aci", c, [
        fx.entry("etc", "dir"), fx.entry("etc/os-release", data=b"C\n"),
        fx.entry("etc/c-only", data=b"c\n"), fx.entry("lib", "dir"),
        fx.entry("lib/libc.so", data=b"libc from C"), fx.entry("opt", "dir", mode=0o700),
        fx.entry("opt/dropped", data=b"x"), fx.entry("var", "dir"),
        fx.entry("var/kept", data=b"kept"),
    ], compression="bzip2")
    b = fx.manifest("example.com/b", version="1",
                    dependencies=[{"imageName": "example.com/c",
                                   "labels": [{"name": "version", "value": "1"}]}])
    fx.write_aci(store / "sub" / "b.aci", b, [
        fx.entry("etc", "dir", mode=0o750), fx.entry("etc/os-release", data=b"B wins\n"),
        fx.entry("lib", "symlink", target="usr/lib"), fx.entry("usr", "dir"),
        fx.entry("usr/lib", "dir"), fx.entry("usr/lib/libb.so", data=b"libb"),
    ])
    whitelist = ["/etc", "/etc/os-release", "/lib", "/usr", "/usr/lib", "/usr/lib/libb.so",
                 "/var/kept", "/app", "/app/run"]
    a = fx.manifest("example.com/a", version="2.0",
                    app={"exec": ["/app/run"], "user": "0", "group": "0"},
                    dependencies=[{"imageName": "example.com/b"}], path_whitelist=whitelist)
    top = tmp_path / "a.aci"
    fx.write_aci(top, a, [fx.entry("app", "dir"), fx.entry("app/run", data=b"run", mode=0o755),
                          fx.entry("app/not-listed", data=b"dropped by own whitelist")],
                 manifest_first=False)
    return top, store


def test_three_deep_chain_with_whitelist(tmp_path):
    top, store = chain(tmp_path)
    # /var is not whitelisted, so /var/kept survives without its parent: synthesised
    _, ours, _ = convert_and_compare(tmp_path, top, store, synthesised={"var"})
    assert set(ours) == {"app", "app/run", "etc", "etc/os-release", "lib", "usr", "usr/lib",
                         "usr/lib/libb.so", "var", "var/kept"}
    assert ours["lib"]["target"] == "usr/lib"


def test_three_deep_chain_squashed(tmp_path):
    top, store = chain(tmp_path)
    layout, _, _ = convert_and_compare(tmp_path, top, store, synthesised={"var"},
                                       extra_args=["--squash"])
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    assert len(manifest["layers"]) == 1


def test_reference_verified_example(tmp_path):
    """aci.md §3.3: A keeps /lib, /top, /topdir; B keeps only /a/f (its /a is dropped by the
    inherited whitelist, so /a is synthesised)."""
    store = tmp_path / "store"
    fx.write_aci(store / "b.aci", fx.manifest("example.com/b"), [
        fx.entry("a", "dir"), fx.entry("a/f", data=b"f"), fx.entry("a/g", data=b"g"),
        fx.entry("lib", "dir"), fx.entry("lib/x", data=b"x"), fx.entry("c", "dir"),
        fx.entry("c/own", data=b"own")])
    top = tmp_path / "a.aci"
    fx.write_aci(top, fx.manifest("example.com/a", path_whitelist=["/a/f", "/lib", "/lib/x", "/top"],
                                  dependencies=[{"imageName": "example.com/b"}]), [
        fx.entry("lib", "symlink", target="/usr/lib"), fx.entry("top", data=b"top"),
        fx.entry("notinpwl", data=b"no"), fx.entry("topdir", "dir")])
    _, ours, _ = convert_and_compare(tmp_path, top, store, synthesised={"a"})
    assert set(ours) == {"a", "a/f", "lib", "top", "topdir"}


def diamond_with_sibling(tmp_path):
    """A(no whitelist) -> [B, C(whitelist)], C -> [D]: list A C D B; rkt lets B inherit C's
    whitelist (aci.md §3.3, the getUpperPWLM quirk)."""
    store = tmp_path / "store"
    fx.write_aci(store / "d.aci", fx.manifest("example.com/d"), [
        fx.entry("d-kept", data=b"d"), fx.entry("d-dropped", data=b"d")])
    fx.write_aci(store / "b.aci", fx.manifest("example.com/b"), [
        fx.entry("b-file", data=b"b"), fx.entry("d-kept", data=b"b overrides? no, C's list wins")])
    fx.write_aci(store / "c.aci", fx.manifest(
        "example.com/c", path_whitelist=["/c-file", "/d-kept"],
        dependencies=[{"imageName": "example.com/d"}]), [fx.entry("c-file", data=b"c")])
    top = tmp_path / "a.aci"
    fx.write_aci(top, fx.manifest("example.com/a", dependencies=[
        {"imageName": "example.com/b"}, {"imageName": "example.com/c"}]),
        [fx.entry("a-file", data=b"a")])
    return top, store


def test_sibling_whitelist_quirk_rkt_mode_matches_rkt(tmp_path):
    top, store = diamond_with_sibling(tmp_path)
    _, ours, _ = convert_and_compare(tmp_path, top, store)
    # rkt: B inherits C's whitelist, so b-file vanishes and B's d-kept wins over D's? No: D
    # comes before B in the list, so D's d-kept is claimed first.
    assert set(ours) == {"a-file", "c-file", "d-kept"}
    assert ours["d-kept"]["sha256"] == fx_sha(b"d")


def test_sibling_whitelist_spec_mode_differs_from_rkt(tmp_path):
    """The deliberate difference: with --whitelist-mode spec, B (not a descendant of C) keeps
    b-file. Everything else is as rkt renders it."""
    top, store = diamond_with_sibling(tmp_path)
    umoci, acirender = need("umoci"), need("acirender")
    layout = tmp_path / "layout"
    acioci("convert", top, f"oci:{layout}:test", "--store", store, "--whitelist-mode", "spec",
           check=0)
    run(umoci, "unpack", "--image", f"{layout}:test", tmp_path / "bundle")
    run(acirender, "--store", store, top, tmp_path / "rendered")
    ours = snapshot(tmp_path / "bundle" / "rootfs")
    theirs = snapshot(tmp_path / "rendered" / "rootfs")
    assert diff_trees(ours, theirs) == ["b-file: only in ours"]


def fx_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_diamond_is_rendered_in_appc_order(tmp_path):
    """A -> [B, C], B -> [D], C -> [D]: list A C D B D, D scanned twice; the later dependency
    (C) overrides the earlier (B)."""
    store = tmp_path / "store"
    fx.write_aci(store / "d.aci", fx.manifest("example.com/d"), [
        fx.entry("shared", data=b"from D"), fx.entry("only-d", data=b"d")])
    fx.write_aci(store / "b.aci", fx.manifest("example.com/b", dependencies=[
        {"imageName": "example.com/d"}]), [fx.entry("shared", data=b"from B"),
                                           fx.entry("bc", data=b"from B")])
    fx.write_aci(store / "c.aci", fx.manifest("example.com/c", dependencies=[
        {"imageName": "example.com/d"}]), [fx.entry("bc", data=b"from C")])
    top = tmp_path / "a.aci"
    fx.write_aci(top, fx.manifest("example.com/a", dependencies=[
        {"imageName": "example.com/b"}, {"imageName": "example.com/c"}]), [])
    layout, ours, _ = convert_and_compare(tmp_path, top, store)
    assert ours["bc"]["sha256"] == fx_sha(b"from C")
    assert ours["shared"]["sha256"] == fx_sha(b"from D")  # C's D sits above B
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    names = [l["annotations"]["io.acioci.aci.name"] for l in manifest["layers"]]
    assert names == ["example.com/d", "example.com/b", "example.com/d", "example.com/c",
                     "example.com/a"]


def test_sample_fixture_and_skopeo(tmp_path):
    top = Path(__file__).resolve().parents[2] / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
    store = top.parent / "store"
    layout, ours, _ = convert_and_compare(tmp_path, top, store, synthesised={"share"})
    info = json.loads(run(need("skopeo"), "inspect", f"oci:{layout}:test"))
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Env"] == ["PATH=/usr/bin:/bin", "GREETING=hello"]
    assert len(info["Layers"]) == 2
    cfg = json.loads(run(need("skopeo"), "inspect", "--config", f"oci:{layout}:test"))
    assert cfg["config"]["Entrypoint"] == ["/usr/bin/hello", "--greeting", "hi"]
    assert cfg["config"]["User"] == "1000:1000"
    assert cfg["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert cfg["config"]["Volumes"] == {"/var/data": {}}
    assert cfg["config"]["WorkingDir"] == "/home"
    assert ours["usr/bin/hello"]["xattrs"] == {"user.origin": b"acioci-sample"}


def test_oci_archive_output_is_read_by_skopeo(tmp_path):
    top = Path(__file__).resolve().parents[2] / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
    out = tmp_path / "hello.tar"
    acioci("convert", top, out, "--store", top.parent / "store", check=0)
    info = json.loads(run(need("skopeo"), "inspect", f"oci-archive:{out}:1.0.0"))
    assert len(info["Layers"]) == 2


def test_multi_member_gzip_layers_are_read_by_every_tool(tmp_path):
    """A layer over 4 MiB is several gzip members, some ISA-L's and some zlib-ng's
    (compression.gzip_member). umoci must unpack it whole, skopeo must decompress it to the
    diff_id, oci-image-tool must accept it, and the ACI made back from it (gzip members too)
    must pass actool and render to the same tree."""
    import hashlib
    import random

    from test_compression import members

    rng = random.Random(5)
    entries = [fx.entry("data", "dir")]
    for i in range(3):
        entries.append(fx.entry(f"data/random{i}.bin", data=rng.randbytes((3 << 20) + i)))
        text = b"".join(b"file %d " % n * rng.randint(1, 40) for n in range(i, 60_000, 3))
        entries.append(fx.entry(f"data/text{i}.txt", data=text))
    top = tmp_path / "big.aci"
    fx.write_aci(top, fx.manifest("example.com/big", version="1"), entries, compression="none")
    layout, ours, _ = convert_and_compare(tmp_path, top, None)
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:])
                          .read_text())
    blob = (layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]).read_bytes()
    os_bytes = [os_byte for os_byte, _ in members(blob)]
    assert len(os_bytes) >= 4 and {255, 3} <= set(os_bytes)  # both kinds of member
    assert "Validation succeeded" in run(need("oci-image-tool"), "validate", "--type", "image",
                                         layout)
    # skopeo recompressing to zstd reads our gzip through Go's reader, every member of it
    zst = tmp_path / "zst"
    run(need("skopeo"), "copy", "--dest-compress", "--dest-compress-format", "zstd",
        f"oci:{layout}:test", f"oci:{zst}:test")
    zst_manifest = json.loads(run(need("skopeo"), "inspect", "--raw", f"oci:{zst}:test"))
    assert zst_manifest["layers"][0]["mediaType"].endswith("+zstd")
    import zstandard

    layer = zstandard.ZstdDecompressor().decompressobj().decompress(
        (zst / "blobs/sha256" / zst_manifest["layers"][0]["digest"][7:]).read_bytes())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    assert "sha256:" + hashlib.sha256(layer).hexdigest() == config["rootfs"]["diff_ids"][0]
    back = tmp_path / "back.aci"
    acioci("convert", f"oci:{layout}:test", back, check=0)
    run(need("actool"), "validate", back)
    run(need("acirender"), back, tmp_path / "back-rendered")
    assert diff_trees(snapshot(tmp_path / "back-rendered" / "rootfs"), ours) == []


def test_images_added_to_one_layout_are_read_by_every_tool(tmp_path):
    """skopeo, umoci and oci-image-tool each find every tag of a layout that acioci added
    images to one by one, with the shared blobs stored once; skopeo adds one of its own too."""
    root = Path(__file__).resolve().parents[2] / "fixtures" / "sample"
    layout = tmp_path / "store"
    acioci("convert", root / "hello-1.0.0-linux-amd64.aci", f"oci:{layout}:hello",
           "--store", root / "store", "-q", check=0)
    other = tmp_path / "other.aci"
    fx.write_aci(other, fx.manifest("example.com/other"),
                 [fx.entry("etc", "dir"), fx.entry("etc/other", data=b"other\n")])
    acioci("convert", other, f"oci:{layout}:other", "-q", check=0)
    # skopeo adds to our layout, and we add after skopeo, in the same index
    run(need("skopeo"), "copy", "-q", f"oci:{layout}:other", f"oci:{layout}:copied")
    acioci("convert", other, f"oci:{layout}:after", "--squash", "-q", check=0)
    index = json.loads((layout / "index.json").read_bytes())
    assert [d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]] \
        == ["after", "hello", "other", "copied"]  # ours go in before the first tag after
    for desc in index["manifests"]:
        tag = desc["annotations"]["org.opencontainers.image.ref.name"]
        info = json.loads(run(need("skopeo"), "inspect", f"oci:{layout}:{tag}"))
        assert info["Os"] == "linux"
        bundle = tmp_path / f"bundle-{tag}"
        run(need("umoci"), "unpack", "--rootless", "--image", f"{layout}:{tag}", bundle)
        assert (bundle / "rootfs" / ("usr/bin/hello" if tag == "hello" else "etc/other")).is_file()
    # every entry of index.json, blobs' sizes and digests included (its --ref selectors call
    # any of several entries "not unique", so the whole layout is checked at once)
    assert "Validation succeeded" in run(need("oci-image-tool"), "validate", "--type", "image",
                                         layout)


def test_batch_one_layout_is_read_by_every_tool(tmp_path):
    """A store gathered by `batch --one-layout` with two workers: every tag is an image that
    skopeo inspects and umoci unpacks, and oci-image-tool validates the whole layout."""
    root = Path(__file__).resolve().parents[2] / "fixtures" / "sample"
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for aci in (root / "store").glob("*.aci"):
        (src / "sub" / aci.name).write_bytes(aci.read_bytes())
    top = src / "hello-1.0.0-linux-amd64.aci"
    top.write_bytes((root / top.name).read_bytes())
    out = tmp_path / "migrated"
    acioci("batch", src, "--to", "oci", "--out", out, "--one-layout", "--jobs", "2", "-q",
           check=0)
    index = json.loads((out / "index.json").read_bytes())
    tags = [d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]]
    assert tags[0] == "hello-1.0.0-linux-amd64" and len(tags) == 2
    for tag in tags:
        info = json.loads(run(need("skopeo"), "inspect", f"oci:{out}:{tag}"))
        assert info["Architecture"] == "amd64"
        run(need("umoci"), "unpack", "--rootless", "--image", f"{out}:{tag}",
            tmp_path / tag.replace("/", "_"))
    assert (tmp_path / "hello-1.0.0-linux-amd64" / "rootfs" / "usr/bin/hello").is_file()
    assert "Validation succeeded" in run(need("oci-image-tool"), "validate", "--type", "image",
                                         out)
