"""Faults while writing: a full disk, a read-only destination, and SIGINT/SIGTERM mid-write
each end with one clear error and no partial output. Small file systems are tmpfs mounts
(root is needed, as in CI; elsewhere these tests skip, and under CI=true they fail)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import build as fx
from helpers import ROOT, acioci


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount tmpfs: {proc.stderr}")
        pytest.skip(f"cannot mount tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def big_aci(path: Path, mb: int) -> Path:
    fx.write_aci(path, fx.manifest("example.com/big"),
                 [fx.entry(f"f{i}", data=os.urandom(1 << 20)) for i in range(mb)],
                 compression="none")
    return path


@pytest.mark.parametrize("dest", ["out", "out.aci", "out.tar"])
def test_full_disk(tmp_path, dest):
    src = big_aci(tmp_path / "big.aci", 4)
    with tmpfs(tmp_path / "small", "size=1m") as small:
        extra = ["--name", "example.com/big"] if dest == "out.aci" else []
        if dest == "out.aci":  # OCI -> ACI: first make an OCI source outside the small disk
            acioci("convert", src, tmp_path / "layout", "--compression", "none", check=0)
            src = tmp_path / "layout"
        proc = acioci("convert", src, small / dest, *extra)
        assert proc.returncode == 2, proc.stderr  # the destination's fault, not the image's
        assert "No space left on device" in proc.stderr and str(small / dest) in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
        assert list(small.iterdir()) == []


def test_read_only_destination(tmp_path):
    sample = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        proc = acioci("convert", sample, ro / "out", "--store", sample.parent / "store")
        assert proc.returncode == 2 and "Read-only file system" in proc.stderr
        assert str(ro / "out") in proc.stderr and "Traceback" not in proc.stderr
        assert list(ro.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_write_leaves_nothing(tmp_path, sig):
    src = big_aci(tmp_path / "big.aci", 256)  # about 2 s of work: the signal lands mid-write
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "convert", "convert", str(src),
                             str(out / "layout")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not list(out.iterdir()):
        time.sleep(0.02)  # wait until the temporary output exists: we are mid-write
    time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(out.iterdir()) == []


def test_overwrite_that_fails_between_its_renames_keeps_the_old_output(tmp_path, monkeypatch):
    """Replacing a layout is two renames (old aside, new in): when the second fails (or an
    interrupt comes between them), the old output goes back; never neither."""
    import convert.atomic as atomic

    dest = tmp_path / "layout"
    dest.mkdir()
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    (dest / "blobs").mkdir()
    before = sorted(p.name for p in dest.iterdir())
    real, calls = os.rename, []

    def rename(src, dst):
        calls.append((str(src), str(dst)))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worst moment: the old one aside, the new one not in
        real(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_destination(dest, directory=True, overwrite=True) as tmp:
            (tmp / "new").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout"]  # nothing else left
