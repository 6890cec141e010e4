"""Dependency resolution from --store, as rkt resolves (aci.md §3.1), and its errors."""

from __future__ import annotations

import os
import time

import pytest

import build as fx
from convert.errors import DigestMismatchError, ResolutionError
from convert.readers import aci_chain
from convert.readers.aci import AciFiles
from helpers import acioci


def make(tmp_path, deps, *, extra_store=()):
    store = tmp_path / "store"
    ids = {}
    ids["v1"] = fx.write_aci(store / "dep-1.aci", fx.manifest("example.com/dep", version="1"),
                             [fx.entry("v", data=b"1")])
    ids["v2"] = fx.write_aci(store / "nested" / "dep-2.aci",
                             fx.manifest("example.com/dep", version="2"), [fx.entry("v", data=b"2")])
    for name, man, entries in extra_store:
        ids[name] = fx.write_aci(store / f"{name}.aci", man, entries)
    top = tmp_path / "top.aci"
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=deps), [])
    return top, store, ids


def dep_of(tmp_path, deps, **kw):
    top, store, ids = make(tmp_path, deps, **kw)
    image = aci_chain.read(str(top), store=[str(store)])
    return image.dependencies[0].image, ids


def test_by_name_and_labels(tmp_path):
    dep, ids = dep_of(tmp_path, [{"imageName": "example.com/dep",
                                  "labels": [{"name": "version", "value": "2"}]}])
    assert dep.image_id == ids["v2"] and dep.source.endswith("nested/dep-2.aci")


def test_by_image_id_prefix_ignores_name_and_labels(tmp_path):
    top, store, ids = make(tmp_path, [])
    prefix = ids["v1"][:20]
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=[
        {"imageName": "example.com/dep", "imageID": prefix,
         "labels": [{"name": "version", "value": "2"}]}]), [])
    image = aci_chain.read(str(top), store=[str(store)])
    assert image.dependencies[0].image.image_id == ids["v1"]


def test_missing_dependency(tmp_path):
    with pytest.raises(ResolutionError, match="example.com/nope is not in the store") as e:
        dep_of(tmp_path, [{"imageName": "example.com/nope"}])
    assert e.value.entry == "manifest#/dependencies/0"


def test_ambiguous_name(tmp_path):
    with pytest.raises(ResolutionError, match="ambiguous"):
        dep_of(tmp_path, [{"imageName": "example.com/dep"}])


def test_image_id_that_matches_no_file(tmp_path):
    with pytest.raises(ResolutionError, match="its ID differs") as e:
        dep_of(tmp_path, [{"imageName": "example.com/dep", "imageID": "sha512-" + "0" * 128}])
    assert e.value.expected == "sha512-" + "0" * 128


def test_cycle_and_self_dependency(tmp_path):
    store = tmp_path / "store"
    fx.write_aci(store / "a.aci", fx.manifest("example.com/a", dependencies=[
        {"imageName": "example.com/b"}]), [])
    fx.write_aci(store / "b.aci", fx.manifest("example.com/b", dependencies=[
        {"imageName": "example.com/a"}]), [])
    with pytest.raises(ResolutionError, match="cycle: example.com/a -> example.com/b -> "
                                               "example.com/a"):
        aci_chain.read(str(store / "a.aci"), store=[str(store)])
    selfish = tmp_path / "self.aci"
    fx.write_aci(selfish, fx.manifest("example.com/self", dependencies=[
        {"imageName": "example.com/self"}]), [])
    proc = acioci("convert", selfish, tmp_path / "out", "--store", tmp_path)
    assert proc.returncode == 1
    assert "dependency cycle: example.com/self -> example.com/self" in proc.stderr
    assert "self.aci::manifest#/dependencies/0" in proc.stderr


def bomb_chain(tmp_path):
    """top.aci depends by name on a store's base.aci: a 64 KB gzip that expands to 64 MB."""
    from hostile import MAN, _bomb_gzip

    store = tmp_path / "store"
    store.mkdir()
    base = store / "base.aci"
    base.write_bytes(_bomb_gzip())
    top = tmp_path / "top.aci"
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=[
        {"imageName": MAN["name"]}]), [])
    return top, store, base


def test_a_bomb_at_the_base_of_a_chain_stops_at_the_limit_given_once(tmp_path):
    """The limit is given once, in the `AciFiles` that opens the top ACI; the chain hands it to
    the store, so the dependency stops there too, with the file and the entry that hit it."""
    from convert.errors import LimitError
    from convert.readers.aci import AciFiles
    from convert.readers.aci_store import AciStore
    from convert.validation.report import FileReport
    from convert.validation.aci import validate_aci
    from hostile import MAN

    top, store, base = bomb_chain(tmp_path)
    small = AciFiles(max_expand=1 << 20)
    image = aci_chain.read(str(top), store=[str(store)])  # the default limit lets 64 MB by
    assert image.dependencies[0].image.source == str(base)

    with pytest.raises(LimitError, match="exceeds the limit of 1048576 bytes") as chain:
        aci_chain.read(str(top), store=[str(store)], acis=small)
    with pytest.raises(LimitError, match="exceeds the limit of 1048576 bytes") as direct:
        AciStore([str(store)], small).resolve({"imageName": MAN["name"]}, needed_by=str(top),
                                              pointer="/dependencies/0")
    for err in (chain.value, direct.value):
        assert (err.file, err.entry) == (str(base), "rootfs/zeros")

    report = FileReport(file=str(top), type="aci")
    validate_aci(str(top), report, acis=small, store=(str(store),))
    assert [(f.rule, f.place) for f in report.findings] == [
        ("aci.dependency.resolve", f"{base}::rootfs/zeros")]

    proc = acioci("convert", top, tmp_path / "out.tar", "--store", store, "--max-expand", "1M")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"acioci: error: {base}::rootfs/zeros: decompressed size exceeds the limit of 1048576 "
        "bytes (a compression bomb?); the limit is the max-expand option (use --max-expand "
        "SIZE)"]
    assert not (tmp_path / "out.tar").exists()


def test_validate_path_reads_the_limit_and_the_store_from_the_read_options(tmp_path):
    """`validate` hands transports one ReadOptions, as `convert` does: its limit reaches the
    base of the chain through the store it names."""
    from convert.options import ReadOptions
    from convert.validation.run import validate_path

    top, store, base = bomb_chain(tmp_path)
    small = ReadOptions(max_expand=1 << 20, store=(str(store),))
    report = validate_path(str(top), options=small)
    assert [(f.rule, f.place) for f in report.findings] == [
        ("aci.dependency.resolve", f"{base}::rootfs/zeros")]
    assert validate_path(str(top), options=ReadOptions(store=(str(store),))).findings == []
    report = validate_path(str(base), options=small)
    assert [(f.rule, f.place) for f in report.findings] == [
        ("aci.archive.unreadable", "rootfs/zeros")]


def bomb_store(tmp_path, files, dep):
    """A store of `files` (name -> "bomb", "fifo" or the content of a readable image of the
    bomb's name) and top.aci depending on `dep` (a function of the readable images' IDs)."""
    from hostile import MAN, _bomb_gzip

    store = tmp_path / "store"
    store.mkdir()
    ids = {}
    for name, kind in files.items():
        if kind == "bomb":
            (store / name).write_bytes(_bomb_gzip())
        elif kind == "fifo":
            os.mkfifo(store / name)
        else:
            ids[name] = fx.write_aci(store / name, MAN, [fx.entry("v", data=kind.encode())])
    top = tmp_path / "top.aci"
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=[
        {"imageName": MAN["name"], **dep(ids)}]), [])
    return top, store, ids


LIMIT_SAID = ("decompressed size exceeds the limit of 1048576 bytes (a compression bomb?); the "
              "limit is the max-expand option")
NO_SUCH_ID = "sha512-" + "ab" * 64


def test_a_bomb_pinned_by_image_id_is_named_not_reported_missing(tmp_path):
    """The one file whose manifest names an imageID-pinned dependency is a bomb: its own error
    (file and entry), as for a dependency by name; before, the store skipped it in silence and
    said the dependency was not in the store."""
    from convert.errors import LimitError
    from convert.validation.aci import validate_aci
    from convert.validation.report import FileReport

    top, store, _ = bomb_store(tmp_path, {"base.aci": "bomb"},
                               lambda ids: {"imageID": NO_SUCH_ID[:30]})
    base = store / "base.aci"
    with pytest.raises(LimitError) as err:
        aci_chain.read(str(top), store=[str(store)], acis=AciFiles(max_expand=1 << 20))
    assert (err.value.file, err.value.entry) == (str(base), "rootfs/zeros")

    report = FileReport(file=str(top), type="aci")
    validate_aci(str(top), report, acis=AciFiles(max_expand=1 << 20), store=(str(store),))
    assert [(f.rule, f.place) for f in report.findings] == [
        ("aci.dependency.resolve", f"{base}::rootfs/zeros")]

    out = tmp_path / "out"
    proc = acioci("convert", top, out, "--store", store, "--max-expand", "1M")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"acioci: error: {base}::rootfs/zeros: {LIMIT_SAID} (use --max-expand SIZE)"]
    assert not out.exists()


def test_unresolved_dependency_names_the_files_that_could_not_be_read(tmp_path):
    """Two files could hold the pinned image and neither can be read (a bomb, a FIFO named
    .aci): "not in the store" says which and why, and hints at the limit as well as the
    store."""
    top, store, _ = bomb_store(tmp_path, {"base.aci": "bomb", "other.aci": "1",
                                          "pipe.aci": "fifo"},
                               lambda ids: {"imageID": NO_SUCH_ID})
    with pytest.raises(ResolutionError) as err:
        aci_chain.read(str(top), store=[str(store)], acis=AciFiles(max_expand=1 << 20))
    e = err.value
    assert (e.file, e.entry) == (str(top), "manifest#/dependencies/0")
    assert e.message.startswith(f"dependency example.com/hostile with imageID {NO_SUCH_ID} is "
                                "not in the store; an image named example.com/hostile exists "
                                f"but its ID differs ({store / 'other.aci'} is sha512-")
    assert e.message.endswith(
        f"(searched 3 .aci files; 2 could not be read and may hold it: {store / 'base.aci'}"
        f"::rootfs/zeros: {LIMIT_SAID}; {store / 'pipe.aci'}: is a FIFO, not a regular file)")
    assert e.hint_option == ("store", "max_expand")

    proc = acioci("convert", top, tmp_path / "out", "--store", store, "--max-expand", "1M")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"{store / 'base.aci'}::rootfs/zeros: decompressed size exceeds" in proc.stderr
    assert proc.stderr.strip().endswith("(use --store DIR or --max-expand SIZE)")
    assert not (tmp_path / "out").exists()


def test_several_unreadable_candidates_by_name_are_all_named(tmp_path):
    top, store, _ = bomb_store(tmp_path, {"a.aci": "bomb", "b.aci": "bomb"}, lambda ids: {})
    with pytest.raises(ResolutionError) as err:
        aci_chain.read(str(top), store=[str(store)], acis=AciFiles(max_expand=1 << 20))
    assert err.value.message == (
        "dependency example.com/hostile is not in the store (searched 2 .aci files; 2 could "
        f"not be read and may hold it: {store / 'a.aci'}::rootfs/zeros: {LIMIT_SAID}; "
        f"{store / 'b.aci'}::rootfs/zeros: {LIMIT_SAID})")


def test_a_file_whose_manifest_cannot_be_read_is_named_when_nothing_matches(tmp_path):
    top, store, _ = bomb_store(tmp_path, {"a.aci": "1", "pipe.aci": "fifo"},
                               lambda ids: {"labels": [{"name": "version", "value": "9"}]})
    with pytest.raises(ResolutionError) as err:
        aci_chain.read(str(top), store=[str(store)])
    assert err.value.message == (
        "dependency example.com/hostile version=9 is not in the store (searched 2 .aci files; "
        f"1 could not be read and may hold it: {store / 'pipe.aci'}: is a FIFO, not a regular "
        "file)")


@pytest.mark.parametrize("order", [("a.aci", "b.aci"), ("b.aci", "a.aci")])
def test_a_readable_candidate_resolves_whichever_file_comes_first(tmp_path, order):
    """An unreadable file is not an image of the store: beside a readable match it changes
    nothing, in either order of the files (before, a bomb sorted first ended the conversion
    and one sorted second vanished). A pinned ID resolves the same way."""
    bomb, good = order
    top, store, ids = bomb_store(tmp_path, {bomb: "bomb", good: "1"}, lambda ids: {})
    small = AciFiles(max_expand=1 << 20)
    image = aci_chain.read(str(top), store=[str(store)], acis=small)
    assert image.dependencies[0].image.source == str(store / good)
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=[
        {"imageName": "example.com/hostile", "imageID": ids[good]}]), [])
    image = aci_chain.read(str(top), store=[str(store)], acis=small)
    assert image.dependencies[0].image.source == str(store / good)


def test_an_aci_rewritten_in_place_after_its_scan_is_refused(tmp_path):
    """The rootfs pass trusts the scan's image ID and does not hash again: it checks the file
    is the one scanned. A rewrite in place (same inode, same size, the old mtime put back) is
    still caught, by its ctime."""
    path = tmp_path / "app.aci"
    fx.write_aci(path, fx.manifest("example.com/app", version="1"), [fx.entry("f", data=b"one")])
    fx.write_aci(tmp_path / "other.aci", fx.manifest("example.com/app", version="1"),
                 [fx.entry("f", data=b"two")])
    other = (tmp_path / "other.aci").read_bytes()
    assert len(other) == path.stat().st_size and other != path.read_bytes()
    files = AciFiles()
    scanned = files.scan(str(path))
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.write(other)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    while path.stat().st_ctime_ns == st.st_ctime_ns:  # a clock tick too coarse to tell
        time.sleep(0.01)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    layer = files.rootfs_layer(str(path), scanned.image_id, scanned.index, stat=scanned.stat)
    with pytest.raises(DigestMismatchError, match="changed while it was being converted"):
        with layer.open() as entries:
            for _ in entries:
                pass
