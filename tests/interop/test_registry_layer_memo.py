"""The layer memo against a real registry (distribution 2.8): a batch encodes a base ACI's
layer once, later pushes of it (as a chain's base, or the base alone) HEAD or mount it and
never read the file; the images are byte for byte those a single `convert` pushes; a file
rewritten under the same path, a registry that lacks the memo's blob, and a whitelist above
the base all fall back to encoding. See convert/registry/memo.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import build as fx
from convert import api
from convert.readers import aci
from helpers import acioci, need, run
from registry_servers import start_registry

pytestmark = pytest.mark.interop
E = fx.entry

BASE_ENTRIES = [E("etc", "dir"), E("etc/os", data=b"base"), E("bin", "dir"),
                E("bin/sh", data=b"#!sh\n" * 50), E("big", data=os.urandom(400_000))]


def write_base(path: Path, big: bytes | None = None, compression: str = "gzip") -> None:
    entries = BASE_ENTRIES if big is None else BASE_ENTRIES[:-1] + [E("big", data=big)]
    fx.write_aci(path, fx.manifest("example.com/base", version="1.0"), entries,
                 compression=compression)


def write_app(path: Path, name: str, **manifest) -> None:
    fx.write_aci(path, fx.manifest(f"example.com/{name}", version="2.0",
                                   dependencies=[{"imageName": "example.com/base"}],
                                   **manifest),
                 [E("etc", "dir"), E(f"etc/{name}", data=name.encode())])


def records(report: Path) -> dict:
    return {Path(r["source"]).stem: r for r in json.loads(report.read_text())["records"]}


def hows(rec: dict) -> dict:
    return {b["digest"]: b["how"] for b in rec["result"]["blobs"]}


def requests(log: str, method: str, what: str = "/blobs/uploads/") -> list[str]:
    return re.findall(rf'"{method} (/v2/[^ "]*{re.escape(what)}[^ "]*) HTTP/1.1"', log)


@pytest.fixture
def fresh(tmp_path):
    reg = start_registry(tmp_path / "fresh-registry")
    yield reg
    reg.stop()


def test_a_batch_encodes_the_base_layer_once(registry, fresh, tmp_path):
    """apps/ comes before zbase/ in the walk, so --jobs 1 pushes narrow, one, two, then the
    base alone: one encodes the base's layer, two and the base mount it unread; narrow's
    whitelist filters the base, so its lower layer is another blob, encoded."""
    src = tmp_path / "store"
    write_base(src / "zbase" / "base.aci")
    for name in ("one", "two"):
        write_app(src / "apps" / f"{name}.aci", name)
    write_app(src / "apps" / "narrow.aci", "narrow",
              path_whitelist=["/etc/os", "/etc/narrow", "/bin/sh"])
    marks = len(registry.access_log())
    proc = acioci("batch", src, "--out", f"docker://{registry.host}/memo", "--tls-verify=false",
                  "--jobs", "1", "--report", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    recs = records(tmp_path / "r.json")
    assert {r["status"] for r in recs.values()} == {"converted"}
    base_layer = recs["base"]["result"]["layers"][0]["digest"]
    for name in ("one", "two"):
        assert recs[name]["result"]["layers"][0]["digest"] == base_layer
    assert hows(recs["one"])[base_layer] == "uploaded"  # the first to need it
    assert hows(recs["two"])[base_layer] == "mounted"
    assert hows(recs["base"])[base_layer] == "mounted"
    narrow_lower = recs["narrow"]["result"]["layers"][0]["digest"]
    assert narrow_lower != base_layer and hows(recs["narrow"])[narrow_lower] == "uploaded"

    # on the wire: each upload session carried a blob that was then committed, none was
    # streamed and thrown away (without the memo, two's and the base's pushes each stream
    # the base's layer, find it by HEAD or mount at the end, and cancel the session)
    log = registry.access_log()[marks:]
    uploaded = sum(h == "uploaded" for r in recs.values() for h in hows(r).values())
    assert len(requests(log, "PATCH")) == uploaded
    assert requests(log, "DELETE") == []
    assert len(re.findall(rf'"PUT /v2/memo/[^ "]*digest={base_layer} HTTP/1.1" 201', log)) == 1
    for repo in ("memo/apps/two", "memo/zbase/base"):
        assert f'"HEAD /v2/{repo}/blobs/{base_layer} HTTP/1.1" 404' in log
        assert re.search(rf'"POST /v2/{repo}/blobs/uploads/\?mount={base_layer}&from=memo/apps/one'
                         r' HTTP/1.1" 201', log)

    # the same images a single convert pushes into a registry of its own, with no memo
    for name, path in (("two", "apps/two.aci"), ("base", "zbase/base.aci"),
                       ("narrow", "apps/narrow.aci")):
        acioci("convert", src / path, f"docker://{fresh.host}/single/{name}:x",
               "--store", src / "zbase", "--tls-verify=false", check=0)
    skopeo = need("skopeo")
    for name in ("two", "base", "narrow"):
        digest = json.loads(run(skopeo, "inspect", "--tls-verify=false",
                                f"docker://{fresh.host}/single/{name}:x"))["Digest"]
        assert digest == recs[name]["result"]["manifest"], name
        assert json.loads(run(skopeo, "inspect", "--tls-verify=false",
                              recs[name]["destination"]))["Digest"] == digest
    # and skopeo reads a memo-pushed image back whole
    run(skopeo, "copy", "--src-tls-verify=false", recs["two"]["destination"],
        f"oci:{tmp_path / 'back'}:two")
    run(need("umoci"), "unpack", "--rootless", "--image", f"{tmp_path / 'back'}:two",
        tmp_path / "bundle")
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "big").read_bytes() == BASE_ENTRIES[-1]["data"]
    assert (rootfs / "etc/two").read_bytes() == b"two"


class Reads:
    """Which ACI files are opened for their rootfs pass (the one that decompresses a layer's
    bytes for the writer; a scan for the chain's index is the other kind)."""

    def __init__(self, monkeypatch) -> None:
        self.seen: list[tuple[str, bool]] = []
        original = aci.AciArchive.entries

        def entries(archive, *args, **kwargs):
            self.seen.append((os.path.basename(archive.path), bool(kwargs.get("rootfs"))))
            return original(archive, *args, **kwargs)

        monkeypatch.setattr(aci.AciArchive, "entries", entries)

    def layer_passes(self, name: str) -> int:
        n = sum(1 for got in self.seen if got == (name, True))
        self.seen.clear()
        return n


def push(src: Path, dest: str, ledger: Path | None, store: Path, **options):
    return api.convert(str(src), dest, store=[str(store)], tls_verify=False,
                       mount_ledger=str(ledger) if ledger else None, **options)


def blob_hows(result) -> dict:
    return {d: how for d, how in result.blobs}


def base_app_ledger(tmp_path: Path, *apps: str) -> tuple[Path, Path]:
    """A store with the base, the apps on it beside it, and an empty ledger: (store, ledger)."""
    store = tmp_path / "store"
    write_base(store / "base.aci")
    for name in apps:
        write_app(tmp_path / f"{name}.aci", name)
    ledger = tmp_path / "ledger"
    ledger.touch()
    return store, ledger


def test_a_memo_hit_never_reads_the_base(registry, tmp_path, monkeypatch):
    store, ledger = base_app_ledger(tmp_path, "one", "two")
    reads = Reads(monkeypatch)
    first = push(tmp_path / "one.aci", registry.ref("hit/one:2.0"), ledger, store)
    assert reads.layer_passes("base.aci") == 1  # the counter sees a read when there is one
    base_layer = str(first.written.layers[0].digest)
    assert "#layer " in ledger.read_text()
    counted = {"total": 0, "done": 0}

    def progress(total):
        counted["total"] = total
        return lambda n: counted.__setitem__("done", counted["done"] + n)

    second = api.convert(str(tmp_path / "two.aci"), registry.ref("hit/two:2.0"),
                         store=[str(store)], tls_verify=False, mount_ledger=str(ledger),
                         progress=progress)
    assert reads.layer_passes("base.aci") == 0
    assert blob_hows(second)[base_layer] == "mounted"
    # progress still ends at its total: the skipped ACI's bytes count as done
    assert counted["done"] == counted["total"] > os.path.getsize(store / "base.aci")
    # the base alone, after the chains: its layer, and the image ID that the one-pass read
    # would have hashed while streaming it, come from the memo
    alone = push(store / "base.aci", registry.ref("hit/base:1.0"), ledger, store)
    assert reads.layer_passes("base.aci") == 0
    assert blob_hows(alone)[base_layer] == "mounted"
    plain = api.convert(str(store / "base.aci"), f"oci:{tmp_path / 'plain'}:1.0")
    assert alone.written.manifest == plain.manifest
    assert alone.written.source_image_id == plain.source_image_id is not None
    assert reads.layer_passes("base.aci") == 1  # that was the layout's conversion
    # again into the same repository: found by HEAD
    again = push(tmp_path / "two.aci", registry.ref("hit/two:2.1"), ledger, store)
    assert reads.layer_passes("base.aci") == 0 and blob_hows(again)[base_layer] == "exists"
    # with no ledger (a single convert) nothing is remembered: the base is read
    push(tmp_path / "two.aci", registry.ref("hit/two:2.2"), None, store)
    assert reads.layer_passes("base.aci") == 1


@pytest.mark.parametrize("image_id", [True, False])
def test_a_rewritten_base_gets_no_stale_hit(registry, tmp_path, monkeypatch, image_id):
    """Same path, same size, the old mtime put back; only ctime (and the bytes) differ.
    Without image IDs in the images, nothing but the key tells the two files apart."""
    store = tmp_path / "store"
    base = store / "base.aci"
    write_base(base, compression="tar")  # an uncompressed tar: the same length, the same size
    write_app(tmp_path / "one.aci", "one")
    ledger = tmp_path / "ledger"
    ledger.touch()
    reads = Reads(monkeypatch)
    old = push(tmp_path / "one.aci", registry.ref(f"stale/{str(image_id).lower()}:1"), ledger, store,
               image_id=image_id)
    old_layer = old.written.layers[0].digest
    st = os.stat(base)
    write_base(tmp_path / "new.aci", big=os.urandom(400_000), compression="tar")
    new = (tmp_path / "new.aci").read_bytes()
    assert len(new) == st.st_size and new != base.read_bytes()
    with open(base, "r+b") as fh:  # in place: the inode stays
        fh.write(new)
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(base)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == \
        (st.st_ino, st.st_size, st.st_mtime_ns)
    reads.layer_passes("base.aci")
    got = push(tmp_path / "one.aci", registry.ref(f"stale/{str(image_id).lower()}:2"), ledger, store,
               image_id=image_id)
    assert reads.layer_passes("base.aci") == 1
    layer = got.written.layers[0].digest
    assert layer != old_layer and blob_hows(got)[str(layer)] == "uploaded"
    plain = api.convert(str(tmp_path / "one.aci"), f"oci:{tmp_path / 'plain'}:2",
                        store=[str(store)], image_id=image_id)
    assert got.written.manifest == plain.manifest


def test_a_memo_blob_the_registry_lacks_is_encoded(registry, fresh, tmp_path, monkeypatch):
    """The ledger's memo names a blob of another registry: HEAD finds nothing, no repository
    of this one is known to hold it, so the layer is encoded and uploaded as without a memo."""
    store, ledger = base_app_ledger(tmp_path, "one")
    reads = Reads(monkeypatch)
    first = push(tmp_path / "one.aci", registry.ref("lost/one:1"), ledger, store)
    reads.layer_passes("base.aci")
    got = push(tmp_path / "one.aci", fresh.ref("lost/one:1"), ledger, store)
    assert reads.layer_passes("base.aci") == 1
    base_layer = str(first.written.layers[0].digest)
    assert blob_hows(got)[base_layer] == "uploaded"
    assert got.written.manifest == first.written.manifest


def test_a_whitelist_above_the_base_does_not_reuse_its_memo(registry, tmp_path, monkeypatch):
    store, ledger = base_app_ledger(tmp_path, "one")
    write_app(tmp_path / "narrow.aci", "narrow", path_whitelist=["/etc/os", "/etc/narrow"])
    reads = Reads(monkeypatch)
    whole = push(tmp_path / "one.aci", registry.ref("wl/one:1"), ledger, store)
    reads.layer_passes("base.aci")
    narrow = push(tmp_path / "narrow.aci", registry.ref("wl/narrow:1"), ledger, store)
    assert reads.layer_passes("base.aci") == 1
    lower = narrow.written.layers[0].digest
    assert lower != whole.written.layers[0].digest
    assert blob_hows(narrow)[str(lower)] == "uploaded"
    plain = api.convert(str(tmp_path / "narrow.aci"), f"oci:{tmp_path / 'plain'}:1",
                        store=[str(store)])
    assert narrow.written.manifest == plain.manifest


def test_two_workers_wanting_one_layer_encode_it_once(registry, tmp_path):
    """--jobs 2, two apps on one base given as a store: both workers reach the base's layer
    at about the same time. One claims it and encodes it, the other waits for its ledger line
    and mounts it: one upload session in all for the base, none thrown away."""
    write_base(tmp_path / "deps" / "base.aci", big=os.urandom(24 << 20))
    for name in ("one", "two"):
        write_app(tmp_path / "apps" / f"{name}.aci", name)
    marks = len(registry.access_log())
    proc = acioci("batch", tmp_path / "apps", "--store", tmp_path / "deps", "--out",
                  f"docker://{registry.host}/claim", "--tls-verify=false", "--jobs", "2",
                  "--report", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    recs = records(tmp_path / "r.json")
    base_layer = recs["one"]["result"]["layers"][0]["digest"]
    assert recs["two"]["result"]["layers"][0]["digest"] == base_layer
    assert sorted(hows(recs[n])[base_layer] for n in ("one", "two")) == ["mounted", "uploaded"]
    log = registry.access_log()[marks:]
    uploaded = sum(h == "uploaded" for r in recs.values() for h in hows(r).values())
    assert len(requests(log, "PATCH")) == uploaded
    assert requests(log, "DELETE") == []
