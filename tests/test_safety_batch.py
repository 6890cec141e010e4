"""Issue 20, item 5: `batch` and the temporaries of other processes, and `batch` on SIGTERM.

Cleanup used to take a temporary for stale when `os.kill(pid, 0)` raised PermissionError (a
live process of another user) or when no process had its PID here (a writer on another host,
the folder being on shared storage), and deleted it under a live writer. A temporary's name
now carries the host (and boot) and the writer's start time, and one is removed only when it
is provably stale: made here, and its PID dead or now another process.

On SIGTERM, pending inputs are cancelled at once and running ones stopped and cleaned, with a
FIFO among the inputs too."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import build as fx
from helpers import ROOT, acioci

from convert.atomic import host_tag, process_start

BASE = ROOT / "fixtures" / "sample" / "store" / "base-1.0.0-linux-amd64.aci"
DEAD = 2 ** 22 + 1  # above pid_max's default: no such process


def test_batch_removes_only_provably_stale_temporaries(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(BASE, src / "base.aci")
    out = tmp_path / "out"
    out.mkdir()
    other = subprocess.Popen(["sleep", "60"])  # a live writer (another user's, say)
    try:
        here, start = host_tag(), process_start(other.pid)
        keep = {
            "live": f".a.acioci-tmp-{other.pid}-{here}-{start}-0001",
            "other-host": f".b.acioci-tmp-{DEAD}-{'f' * 12}-{start}-0002",
            "unmarked": f".c.acioci-tmp-{DEAD}-0003",  # no host, no start: cannot be proved
            "unmarked-live": f".d.acioci-tmp-{other.pid}-0004",
        }
        gone = {
            "dead": f".e.acioci-tmp-{DEAD}-{here}-{start}-0005",
            "pid-reused": f".f.acioci-tmp-{other.pid}-{here}-{start + 1}-0006",
        }
        for name in [*keep.values(), *gone.values()]:
            (out / name).mkdir()
        acioci("batch", src, "--to", "oci", "--out", out, "-q", check=0)
        left = {p.name for p in out.iterdir()}
        assert {k for k, n in keep.items() if n not in left} == set()
        assert {k for k, n in gone.items() if n in left} == set()
    finally:
        other.kill()
        other.wait()


def test_sigterm_stops_batch_at_once_with_a_fifo_among_inputs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "a-fifo.aci")
    for i in range(6):
        fx.write_aci(src / f"img{i}.aci", fx.manifest(f"example.com/img{i}", version="1"),
                     [fx.entry("big", data=os.urandom(24 << 20))], compression="gzip")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "convert", "batch", str(src), "--to", "oci",
                             "--out", str(out), "--jobs", "2"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            ".acioci-tmp-" in p.name for p in out.glob(".*")):
        time.sleep(0.05)  # until a conversion is running
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert took < 10, took
    assert "Traceback" not in stdout + stderr, stderr[-2000:]
    assert proc.returncode == 130, (proc.returncode, stderr[-2000:])
    time.sleep(0.5)  # workers are gone; nothing of theirs is left
    assert [p.name for p in out.rglob("*acioci-tmp*")] == []
    done = [p for p in out.iterdir() if (p / "index.json").exists()]
    assert len(done) < 6, "pending inputs were converted after SIGTERM"
