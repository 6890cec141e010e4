"""Squashing OCI layers where a path is resolved through a regular file (issue 20, item 4).

The old squash replaced a non-directory met as a parent by a new empty directory: `f` a file,
`s -> f/../f/..`, then `s/x` turned `f` into an empty directory, its content silently lost.
umoci resolves `..` by name (securejoin), so `f/..` is the root and `f` stays a file; a file
that must serve as a parent (`s -> f`, then `s/x`) makes umoci fail with ENOTDIR. Both are
checked against umoci itself where it is installed."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import build as fx
from helpers import acioci
from hostile import layout, symlink_through_file


def aci_rootfs(path: Path) -> dict[str, tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(path.read_bytes()))) as tf:
        out = {}
        for m in tf:
            if m.name.startswith("rootfs/"):
                kind = "file" if m.isfile() else "dir" if m.isdir() else "symlink"
                out[m.name[len("rootfs/"):]] = (
                    kind, tf.extractfile(m).read() if m.isfile() else m.linkname.encode())
        return out


def umoci_rootfs(tmp_path: Path, src: str) -> tuple[int, dict | None]:
    umoci = shutil.which("umoci")
    if umoci is None:
        return -1, None
    bundle = tmp_path / "bundle"
    proc = subprocess.run([umoci, "unpack", "--rootless", "--image", f"{src}:v1", str(bundle)],
                          capture_output=True, text=True)
    if proc.returncode:
        return proc.returncode, None
    root = bundle / "rootfs"
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = ("symlink", str(p.readlink()).encode())
        elif p.is_dir():
            out[rel] = ("dir", b"")
        else:
            out[rel] = ("file", p.read_bytes())
    return 0, out


def test_dotdot_through_a_file_keeps_the_file(tmp_path):
    src = layout(tmp_path, fx.raw_tar([("f", b"content", "f"), ("s", "f/../f/..", "s"),
                                       ("s/x", b"X", "f")]))
    out = tmp_path / "out.aci"
    acioci("convert", src, out, "--name", "example.com/x", check=0)
    got = aci_rootfs(out)
    assert got["f"] == ("file", b"content")  # the old squash: ("dir", b"")
    assert got["x"] == ("file", b"X") and "f/x" not in got
    rc, theirs = umoci_rootfs(tmp_path, src)
    if theirs is not None:
        assert {k: v for k, v in got.items() if k} == theirs


def test_file_as_a_parent_through_a_symlink_is_refused(tmp_path):
    (tmp_path / "case").mkdir()
    src = symlink_through_file(tmp_path / "case")
    out = tmp_path / "out.aci"
    proc = acioci("convert", src, out, "--name", "example.com/x")
    assert proc.returncode == 1, proc.stderr
    assert "s/x" in proc.stderr and "'f' is a regular file, not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    rc, _ = umoci_rootfs(tmp_path, src)
    assert rc != 0  # umoci: mkdir f: not a directory (or not installed: -1)


@pytest.mark.parametrize("layers", [
    [[("f", b"content", "f"), ("f/x", b"X", "f")]],  # one layer
    [[("f", b"content", "f")], [("f/x", b"X", "f")]],  # the file below, its child above
])
def test_file_as_a_parent_is_refused_not_replaced(tmp_path, layers):
    from test_oci_to_aci import Layout

    lay = Layout(tmp_path / "lay")
    lay.image([fx.raw_tar(members) for members in layers], ref="v1")
    out = tmp_path / "out"
    for dest, option in ((out.with_suffix(".aci"), ["--name", "example.com/x"]),
                         (f"oci:{out}:v1", ["--squash"])):
        proc = acioci("convert", lay.root, dest, *option)
        assert proc.returncode == 1, proc.stderr
        assert "f/x" in proc.stderr and "not a directory" in proc.stderr
    assert not out.exists() and not out.with_suffix(".aci").exists()
