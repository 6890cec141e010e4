"""The hostile corpus (fixtures/hostile.py) against convert, validate and inspect: exit 1, one
clear message naming the culprit, no traceback, nothing at the destination, nothing outside
it, and the source untouched. Legal-but-odd content (devices, FIFOs, non-UTF-8 names, an entry
below a symlink that stays inside the root) must convert instead, byte-exact."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from helpers import acioci
from hostile import CASES

NAMES = sorted(CASES)
LIMIT = str(16 << 20)


def fingerprint(root: Path) -> dict:
    out = {}
    for p in sorted([root, *root.rglob("*")]):
        st = os.lstat(p)
        data = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() \
            else os.readlink(p) if p.is_symlink() else None
        out[str(p)] = (st.st_mode, st.st_size, data)
    return out


def run_all(src: str, fmt: str, case_dir: Path, out_dir: Path):
    store = ["--store", str(case_dir)] if fmt == "aci" else []
    dest = out_dir / ("out" if fmt == "aci" else "out.aci")
    extra = [] if fmt == "aci" else ["--name", "example.com/x"]
    return dest, {
        "convert": acioci("convert", src, dest, *store, *extra, "--max-expand", LIMIT),
        "validate": acioci("validate", src, *store, "--max-expand", LIMIT),
        "inspect": acioci("inspect", src, *store, "--max-expand", LIMIT),
    }


@pytest.mark.parametrize("name", NAMES)
def test_hostile_case(tmp_path, name):
    fmt, build, culprit, outcome = CASES[name]
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    src = build(case_dir)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = fingerprint(case_dir)
    dest, procs = run_all(src, fmt, case_dir, out_dir)
    assert fingerprint(case_dir) == before, "the source changed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case", "out"], "wrote outside"
    for command, proc in procs.items():
        text = proc.stderr + proc.stdout
        assert "Traceback" not in text, (command, text)
        if outcome == "error":
            assert proc.returncode == 1, (command, proc.returncode, text)
            said = proc.stderr if command != "validate" else proc.stdout
            if command != "validate":
                assert len(said.strip().splitlines()) == 1, said
            assert str(case_dir) in said, said  # the message names the culprit's file
            assert culprit in said, (command, culprit, said)
        else:
            assert proc.returncode == 0, (command, text)
    if outcome == "error":
        assert list(out_dir.iterdir()) == [], "something was left at the destination"
    else:
        assert dest.exists()


def _names_in(dest: Path) -> set[bytes]:
    """Member names (raw bytes) of every tar in an output: the ACI, or a layout's layers."""
    import gzip

    blobs = [dest] if dest.is_file() else list((dest / "blobs" / "sha256").iterdir())
    names = set()
    for blob in blobs:
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if len(data) < 512 or data[257:262] != b"ustar":
            continue
        with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                          errors="surrogateescape") as tf:
            names |= {m.name.encode("utf-8", "surrogateescape") for m in tf}
    return names


@pytest.mark.parametrize("name", ["aci-non-utf8-name", "oci-non-utf8-name"])
def test_non_utf8_names_are_carried_byte_exact(tmp_path, name):
    fmt, build, _, _ = CASES[name]
    src = build(tmp_path)
    dest = tmp_path / ("out" if fmt == "aci" else "out.aci")
    acioci("convert", src, dest, *([] if fmt == "aci" else ["--name", "example.com/x"]),
           check=0)
    names = _names_in(dest)
    assert any(n.endswith(b"caf\xe9") for n in names), names


def test_non_utf8_names_are_refused_where_json_must_list_them(tmp_path):
    fmt, build, _, _ = CASES["oci-non-utf8-name"]
    src = build(tmp_path)
    proc = acioci("convert", src, tmp_path / "chain", "--to", "aci", "--layered",
                  "--name", "example.com/x")
    assert proc.returncode == 1 and "not UTF-8" in proc.stderr and "pathWhitelist" in proc.stderr
    assert not (tmp_path / "chain").exists()


def test_symlink_parent_inside_root_is_resolved_and_warned(tmp_path):
    _, build, _, _ = CASES["oci-symlink-inside"]
    src = build(tmp_path)
    out = tmp_path / "out.aci"
    acioci("convert", src, out, "--name", "example.com/x", check=0)
    names = _names_in(out)
    assert b"rootfs/etc/passwd" in names and b"rootfs/evil/passwd" not in names
    proc = acioci("validate", src)
    assert proc.returncode == 0 and "oci.layer.through-symlink" in proc.stdout
    assert acioci("validate", src, "--strict").returncode == 1
