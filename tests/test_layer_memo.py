"""The layer memo's key (convert/registry/memo.py): which rendered layers get one, and that a
file rewritten under the same path gets another. Real ACIs read by the real reader and
rendered; the registry side is in tests/interop/test_registry_layer_memo.py."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import build as fx
from convert import render
from convert.readers import aci_chain
from convert.registry import memo

E = fx.entry


def _store(d: Path, app_entries, **app_manifest) -> tuple[str, str]:
    base = d / "store" / "base.aci"
    fx.write_aci(base, fx.manifest("example.com/base", version="1"),
                 [E("etc", "dir"), E("etc/os", data=b"base"), E("bin", "dir"),
                  E("bin/sh", data=b"sh" * 1000), E("bin/ash", "hardlink", target="bin/sh"),
                  E("usr/lib", "dir"), E("usr/lib/x", data=b"x")])
    app = d / "app.aci"
    fx.write_aci(app, fx.manifest("example.com/app", version="2",
                                  dependencies=[{"imageName": "example.com/base"}],
                                  **app_manifest), app_entries)
    return str(base), str(app)


def _digest(layer) -> str:
    """The layer's blob digest, encoded as a push encodes it (gzip)."""
    import hashlib

    from convert.writers.oci import encode_layer

    class Sink:
        def __init__(self):
            self.hash = hashlib.sha256()

        def write(self, data):
            self.hash.update(data)

    sink = Sink()
    encode_layer(layer, sink, "gzip")
    return sink.hash.hexdigest()


def _alone(path: str):
    return render.render(aci_chain.read(path, once=True)).layers[0]


def _layers(app: str, store: str, mode="rkt"):
    image = aci_chain.read(app, store=[store], once=True)
    return render.render(image, mode=render.WhitelistMode(mode)).layers


def test_a_base_kept_whole_has_the_key_it_has_alone(tmp_path):
    base, app = _store(tmp_path, [E("etc", "dir"), E("etc/app", data=b"a")])
    lower, upper = _layers(app, str(tmp_path / "store"))
    assert lower.source == base and lower.whole_file is not None
    assert upper.whole_file is not None  # the app's own layer is all of the app too
    alone = _alone(base)
    assert alone.whole_file == (base, None)  # read once: no scan to compare with
    assert _digest(lower) == _digest(alone)  # what the key promises
    for compression in ("gzip", "zstd"):
        assert memo.key(lower, compression).text == memo.key(alone, compression).text
    assert memo.key(lower, "gzip").text != memo.key(lower, "zstd").text


def test_a_whitelist_above_the_base_gives_no_key(tmp_path):
    _, app = _store(tmp_path, [E("etc", "dir"), E("etc/app", data=b"a")],
                    path_whitelist=["/etc/os", "/etc/app", "/bin/sh"])
    for mode in ("rkt", "spec"):
        lower, upper = _layers(app, str(tmp_path / "store"), mode)
        assert lower.whole_file is None and memo.key(lower, "gzip") is None
        # the app's whitelist filters the app itself too: memo less, never wrongly
        assert upper.whole_file is None


def test_an_upper_file_over_a_base_file_gives_no_key(tmp_path):
    _, app = _store(tmp_path, [E("etc", "dir"), E("etc/os", data=b"app")])
    lower, upper = _layers(app, str(tmp_path / "store"))
    assert lower.whole_file is None and upper.whole_file is not None
    assert _digest(lower) != _digest(_alone(str(tmp_path / "store/base.aci")))


def test_an_upper_file_over_a_base_hardlink_target_gives_no_key(tmp_path):
    # the base's bin/sh is dropped, so its link bin/ash is materialised: not the base alone
    _, app = _store(tmp_path, [E("bin", "dir"), E("bin/sh", data=b"other")])
    lower, _ = _layers(app, str(tmp_path / "store"))
    assert lower.whole_file is None


def test_a_parent_the_base_lacks_but_an_image_below_has_gives_no_key(tmp_path):
    """mid (on root) has `opt/x` but no `opt`: by itself it gets a synthesised `opt`; above
    root, which has `opt`, it does not. Another blob than the file's own rendering, so no key
    for mid; root is whole. (The key stands for the file rendered with nothing around it.)"""
    store = tmp_path / "store"
    fx.write_aci(store / "root.aci", fx.manifest("example.com/root", version="1"),
                 [E("opt", "dir", mode=0o700), E("r", data=b"r")])
    fx.write_aci(store / "mid.aci", fx.manifest(
        "example.com/mid", version="1", dependencies=[{"imageName": "example.com/root"}]),
        [E("opt/x", data=b"x")], )
    app = tmp_path / "app.aci"
    fx.write_aci(app, fx.manifest("example.com/app", version="1",
                                  dependencies=[{"imageName": "example.com/mid"}]),
                 [E("a", data=b"a")])
    root, mid, top = _layers(str(app), str(store))
    assert root.whole_file is not None and top.whole_file is not None
    assert mid.whole_file is None
    # why: the blobs do differ
    chain = aci_chain.read(str(app), store=[str(store)], once=True)
    mid_image = chain.dependencies[0].image
    by_itself = render.render(replace(mid_image, dependencies=())).layers[0]
    assert by_itself.whole_file is not None
    assert _digest(mid) != _digest(by_itself)
    assert _digest(root) == _digest(_alone(str(store / "root.aci")))


def test_a_squashed_layer_has_no_key(tmp_path):
    _, app = _store(tmp_path, [E("etc", "dir"), E("etc/app", data=b"a")])
    image = aci_chain.read(app, store=[str(tmp_path / "store")], once=True)
    (layer,) = render.render(image, squash=True).layers
    assert layer.whole_file is None and memo.key(layer, "gzip") is None


def test_a_file_rewritten_in_place_gets_another_key(tmp_path):
    """Same path, same inode, same size, even the old mtime put back: ctime still moves."""
    base = tmp_path / "base.aci"
    fx.write_aci(base, fx.manifest("example.com/base", version="1"), [E("f", data=b"one")])
    layer = render.render(aci_chain.read(str(base), once=True)).layers[0]
    before = memo.key(layer, "gzip")
    st = os.stat(base)
    raw = base.read_bytes()
    fx.write_aci(tmp_path / "other.aci", fx.manifest("example.com/base", version="1"),
                 [E("f", data=b"two")])
    other = (tmp_path / "other.aci").read_bytes()
    assert len(other) == len(raw) and other != raw
    with open(base, "r+b") as fh:  # in place: the inode stays
        fh.write(other)
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = memo.key(layer, "gzip")
    assert os.stat(base).st_ino == st.st_ino and os.stat(base).st_mtime_ns == st.st_mtime_ns
    assert after is not None and after.text != before.text
    assert not before.unchanged()


def test_a_scanned_file_that_changed_since_has_no_key(tmp_path):
    base, app = _store(tmp_path, [E("etc", "dir"), E("etc/app", data=b"a")])
    lower, _ = _layers(app, str(tmp_path / "store"))
    assert memo.key(lower, "gzip") is not None
    with open(base, "ab") as fh:
        fh.write(b"\0" * 512)  # another size than the scan saw
    assert memo.key(lower, "gzip") is None


def test_a_scanned_file_rewritten_in_place_with_its_mtime_put_back_has_no_key(tmp_path):
    """The scan's stat has the ctime too: same inode, size and mtime are not the same file."""
    import time

    base, app = _store(tmp_path, [E("etc", "dir"), E("etc/app", data=b"a")])
    lower, _ = _layers(app, str(tmp_path / "store"))
    assert memo.key(lower, "gzip") is not None
    st = os.stat(base)
    raw = Path(base).read_bytes()
    with open(base, "r+b") as fh:  # in place (its bytes do not matter: the stat is compared)
        fh.write(raw)
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns))
    while os.stat(base).st_ctime_ns == st.st_ctime_ns:  # a clock tick too coarse to tell
        time.sleep(0.01)
        os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = os.stat(base)
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)
    assert memo.key(lower, "gzip") is None


def _ledger(tmp_path):
    from convert.transports.docker import Ledger

    path = tmp_path / "ledger"
    path.touch()
    return Ledger(str(path), "registry.example")


def test_a_claim_is_taken_once_and_a_stale_one_taken_over(tmp_path):
    import subprocess
    import sys

    ledger = _ledger(tmp_path)
    found, claim = memo.obtain(ledger, "k1")
    assert found is None and claim is not None
    assert (tmp_path / "ledger.claim-k1").read_text() == str(os.getpid())
    # held by a live process (this one): another push waits, then encodes without a claim
    assert memo.obtain(ledger, "k1", wait=0.3) == (None, None)
    claim.release()
    # a claim whose process has exited is stale
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "ledger.claim-k2").write_text(dead)
    found, claim = memo.obtain(ledger, "k2", wait=0.3)
    assert found is None and claim is not None
    claim.release()
    assert not (tmp_path / "ledger.claim-k2").exists()


def test_a_waiting_push_gets_the_published_line(tmp_path):
    import threading

    ledger = _ledger(tmp_path)
    _, claim = memo.obtain(ledger, "k")
    value = {"digest": "sha256:" + "a" * 64, "size": 1}

    def publish():
        ledger.publish("apps/one", value["digest"], "k", value)
        claim.release()

    timer = threading.Timer(0.3, publish)
    timer.start()
    try:
        assert memo.obtain(ledger, "k", wait=10) == (value, None)
    finally:
        timer.join()
    assert ledger.holders(value["digest"]) == ["apps/one"]
    # no ledger file (a cluster's workers): no claims, no memo
    os.remove(ledger.path)
    assert memo.obtain(ledger, "k") == (None, None)


def test_a_symlink_pointed_elsewhere_after_the_key_is_no_longer_unchanged(tmp_path):
    """The reader opens the path it was given; if that is a symlink pointed at another file
    between the key and the read, the blob read is the other file's and must not be recorded
    under this key."""
    base, _ = _store(tmp_path, [E("etc", "dir")])
    other = tmp_path / "other.aci"
    fx.write_aci(other, fx.manifest("example.com/other", version="1"), [E("o", data=b"o")])
    link = tmp_path / "current.aci"
    link.symlink_to(base)
    key = memo.key(_alone(str(link)), "gzip")
    assert key is not None and key.unchanged()
    link.unlink()
    link.symlink_to(other)
    assert not key.unchanged()


def test_a_hostile_claim_file_neither_hangs_nor_counts_as_alive(tmp_path):
    """Claims sit beside the ledger, in the batch's own 0700 directory; still, a FIFO or a
    link there must not hang `obtain`, and a PID of 0 (kill(0) asks about a process group)
    is no live holder."""
    ledger = _ledger(tmp_path)
    os.mkfifo(tmp_path / "ledger.claim-fifo")
    (tmp_path / "ledger.claim-link").symlink_to(tmp_path / "ledger.claim-fifo")
    for name in ("fifo", "link"):
        assert memo.obtain(ledger, name, wait=0.3) == (None, None)  # waited, then encodes
    (tmp_path / "ledger.claim-zero").write_text("0")
    found, claim = memo.obtain(ledger, "zero", wait=0.3)
    assert found is None and claim is not None
    claim.release()


def test_a_damaged_ledger_is_read_past(tmp_path):
    """Bytes that are not UTF-8, and a line for the key that does not parse, before a good
    one: the push reads past them."""
    ledger = _ledger(tmp_path)
    good = {"digest": "sha256:" + "b" * 64, "size": 2}
    with open(ledger.path, "ab") as fh:
        fh.write(b"\xff\xfe registry.example apps/x sha256:" + b"c" * 64 + b"\n")
        fh.write(b"#layer k {not json\n")
    ledger.publish("apps/one", good["digest"], "k", good)
    assert ledger.lookup("k") == good
    assert ledger.holders(good["digest"]) == ["apps/one"]


def test_the_ledger_is_read_from_where_it_was_left(tmp_path):
    """A waiting push polls the ledger every 0.1 s: each look reads what was appended since
    the last one, a line still being written is not taken until its end, and what was read
    stays known."""
    ledger = _ledger(tmp_path)
    value = {"digest": "sha256:" + "d" * 64, "size": 3}
    assert ledger.lookup("k") is None
    with open(ledger.path, "ab") as fh:
        fh.write(b"#layer k " + json.dumps(value).encode()[:10])  # torn: no end of line yet
    assert ledger.lookup("k") is None
    with open(ledger.path, "ab") as fh:
        fh.write(json.dumps(value).encode()[10:] + b"\n")
    assert ledger.lookup("k") == value
    read_to = ledger._offset
    assert read_to == os.path.getsize(ledger.path)
    ledger.publish("apps/two", "sha256:" + "e" * 64, "k2", value)
    assert ledger.lookup("k2") == value and ledger.lookup("k") == value
    assert ledger._offset > read_to
