"""Inputs that made acioci loop or take memory without bound (issue 20, items 1, 6, 7, 8), run
through the real CLI in a subprocess under a hard memory limit and a timeout: each must end
quickly with exit 1 and one clear message naming the file, never a traceback, a hang or an
out-of-memory kill.

The limit is RLIMIT_DATA (the private writable memory a process may map), not RLIMIT_AS:
Python with the compression libraries' threads reserves far more address space than it uses.
Normal conversions need well under 100 MiB of it (an xz encoder at preset 6: about 95 MiB);
`test_normal_runs_fit_under_the_limit` holds the limit to that, so a failure below is the
input's doing, not the limit's. The hostile inputs are small on disk: compressed, or sparse.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import build as fx
import hostile
from hostile import CASES

DATA_LIMIT = 256 << 20
TIMEOUT = 60
_BIN = Path(sys.executable).parent / "acioci"
ACIOCI = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "convert"]


def limited(*args) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, DATA_LIMIT))

    return subprocess.run([*ACIOCI, *map(str, args)], capture_output=True, text=True,
                          preexec_fn=cap, timeout=TIMEOUT, cwd=Path(__file__).parent.parent)


def build(tmp_path: Path, name: str) -> str:
    d = tmp_path / "case"
    d.mkdir()
    return CASES[name][1](d)


def assert_refused(proc: subprocess.CompletedProcess, src: str, *needles: str,
                   validate: bool = False) -> None:
    said = proc.stdout if validate else proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-1000:], proc.stderr[-1000:])
    assert src in said, said
    for needle in needles:
        assert needle in said, said


def convert_and_validate(tmp_path: Path, src: str, *extra: str):
    dest = tmp_path / ("out.aci" if os.path.isdir(src) else "out")
    name = ["--name", "example.com/x"] if os.path.isdir(src) else []
    converted = limited("convert", src, dest, *name, *extra)
    assert not dest.exists()
    return converted, limited("validate", src, *extra)


def test_normal_runs_fit_under_the_limit(tmp_path):
    """The control: real conversions each way and every decompressor at the largest setting
    the limits admit (an xz -9 dictionary, a 64 MiB zstd window) pass under the same cap."""
    sample = "fixtures/sample/hello-1.0.0-linux-amd64.aci"
    store = ["--store", "fixtures/sample/store"]
    for comp in ("gzip", "zstd"):
        proc = limited("convert", sample, f"oci:{tmp_path / comp}:1", *store,
                       "--compression", comp)
        assert proc.returncode == 0, proc.stderr
    proc = limited("convert", tmp_path / "zstd", tmp_path / "back.aci", "--compression", "xz")
    assert proc.returncode == 0, proc.stderr
    proc = limited("validate", tmp_path / "gzip", tmp_path / "zstd", tmp_path / "back.aci")
    assert proc.returncode == 0, proc.stdout

    big_dict = tmp_path / "xz9.aci"
    big_dict.write_bytes(hostile.xz_with_dictionary(
        hostile.tar_of(hostile.aci_members(("rootfs/a", b"x" * 100_000, "f"))), 28))
    proc = limited("convert", big_dict, tmp_path / "xz9")
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "zstd26").mkdir()
    raw = fx.raw_tar([("a", b"x" * 100_000, "f")])
    src = hostile.blob_layout(tmp_path / "zstd26", raw, hostile.zstd_with_window(raw, 26), "+zstd")
    proc = limited("validate", src)
    assert proc.returncode == 0, proc.stdout


def test_negative_pax_size_ends_instead_of_looping(tmp_path):
    """Item 1: `validate` looped forever (the reader stepped back onto the same header)."""
    src = build(tmp_path, "oci-pax-negative-size")
    converted, validated = convert_and_validate(tmp_path, src)
    assert_refused(converted, src, "negsize", "bad PAX size")
    assert_refused(validated, src, "negsize", "bad PAX size", validate=True)


def test_pax_header_flood_is_refused_at_the_second_header(tmp_path):
    """Item 6: 150,000 PAX headers of 900-byte xattrs before one entry took 872 MB."""
    src = build(tmp_path, "oci-pax-flood")
    converted, validated = convert_and_validate(tmp_path, src)
    assert_refused(converted, src, "two PAX headers", "before")
    assert_refused(validated, src, "two PAX headers", validate=True)


def test_xz_dictionary_beyond_the_memory_limit_is_bad_input(tmp_path):
    """Item 7: an xz header asking for a 1.5 GiB dictionary had it allocated."""
    src = build(tmp_path, "aci-xz-huge-dictionary")
    converted, validated = convert_and_validate(tmp_path, src)
    assert_refused(converted, src, "needs more than 80 MiB of memory")
    assert_refused(validated, src, "needs more than 80 MiB of memory", validate=True)


def test_zstd_window_beyond_the_limit_is_bad_input(tmp_path):
    """Item 7: a zstd layer with window_log=27 took 178 MB."""
    src = build(tmp_path, "oci-zstd-huge-window")
    converted, validated = convert_and_validate(tmp_path, src)
    assert_refused(converted, src, "window larger than 64 MiB")
    assert_refused(validated, src, "window larger than 64 MiB", validate=True)


def test_gzip_nul_padding_is_skipped_in_constant_memory_and_counted(tmp_path):
    """Item 8: 200 MiB of NULs after a gzip stream grew one buffer (320 MB, no end in 20 s).
    The padding now passes in constant memory, and counts against --max-expand."""
    src = build(tmp_path, "aci-gzip-nul-padding")
    assert os.stat(src).st_blocks * 512 < 1 << 20  # sparse: the zeros take no disk
    converted, validated = convert_and_validate(tmp_path, src, "--max-expand", str(100 << 20))
    assert_refused(converted, src, "exceeds the limit of 104857600 bytes")
    assert_refused(validated, src, "exceeds the limit", validate=True)
    out = tmp_path / "ok"
    proc = limited("convert", src, out)  # the default limit: 64 GiB
    assert proc.returncode == 0, proc.stderr
    assert limited("validate", src).returncode == 0


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_padding_between_members_still_reads_and_counts(kind):
    """In-process: members separated and followed by NUL padding read back exactly, and the
    padding counts as output against the limit (each member of each kind)."""
    import io

    from convert.compression import open_decompressed
    from convert.errors import LimitError

    one, two = b"a" * 3000, b"b" * 5000
    blob = fx.compress(one, kind) + bytes(70_000) + fx.compress(two, kind) + bytes(300_000)
    _, reader = open_decompressed(io.BytesIO(blob), allowed=(kind,), limit=None)
    assert b"".join(iter(lambda: reader.read(1 << 16), b"")) == one + two
    _, reader = open_decompressed(io.BytesIO(blob), allowed=(kind,), limit=100_000)
    with pytest.raises(LimitError):
        while reader.read(1 << 16):
            pass


def test_small_files_among_unwritten_bytes_convert_in_bounded_memory(tmp_path):
    """A 0.5 MB gzip ACI of 400 one-byte files, each after a ~1 MiB global PAX header (read,
    then dropped): each file's data went down as a view that kept its ~1 MiB read buffer
    alive, ~1,000 of them to a list of ~1 MiB handed to the compressing thread (peak 550 MB
    here, 1.5 GB at 1,000 files). Under the cap, it converts, both ways."""
    import gzip

    glob = hostile.pax_header([(b"comment", b"a" * ((1 << 20) - 4096))], b"g")
    src = tmp_path / "image.aci"
    with gzip.open(src, "wb") as gz:
        gz.write(hostile.raw_file(b"manifest", hostile.MJ) +
                 hostile.raw_header(b"rootfs", typeflag=b"5"))
        for i in range(400):
            gz.write(glob + hostile.raw_file(b"rootfs/f%d" % i, b"x"))
        gz.write(hostile.END)
    assert src.stat().st_size < 1 << 20
    proc = limited("convert", src, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = limited("convert", tmp_path / "out", tmp_path / "back.aci")
    assert proc.returncode == 0, proc.stderr[-2000:]
