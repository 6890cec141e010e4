"""Measuring helpers for the benchmarks: wall time, CPU time and peak RSS of a command.

Peak RSS comes from GNU time (`/usr/bin/time -f %M`), which forks the command from its own
small process: Linux carries the parent's RSS high-water mark across fork and exec, so a
command started straight from this Python process would report Python's RSS as its own floor.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    peak_rss_mb: float
    output_bytes: int | None = None


REPEAT = 3  # bench/speed.py --repeat sets it


def measure(label: str, cmd: list[str] | str, *, shell: bool = False, output=None,
            before=None) -> Run:
    """The fastest of `REPEAT` runs (its CPU time and peak RSS with it). This machine moves
    10-30% from run to run with its neighbours' load; the fastest run is the least disturbed
    one, and every row, baselines included, is measured the same way. `before` runs ahead of
    each run (to remove the previous run's output)."""
    runs = []
    for _ in range(REPEAT):
        if before is not None:
            before()
        runs.append(_measure_once(label, cmd, shell=shell, output=output))
    return min(runs, key=lambda r: r.wall)


def _measure_once(label: str, cmd: list[str] | str, *, shell: bool, output) -> Run:
    if not os.path.exists("/usr/bin/time"):
        raise SystemExit("the benchmarks need GNU time: apt-get install time")
    line = cmd if shell else shlex.join(cmd)
    with tempfile.NamedTemporaryFile("r") as stats:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%U %S %M", "-o", stats.name,
                               "sh", "-c", line], stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{label}: exit {proc.returncode}: {line}")
        user, system, maxrss_kb = stats.read().split()[-3:]
    size = None
    if output is not None:
        size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file()) \
            if output.is_dir() else output.stat().st_size
    return Run(label, wall, float(user) + float(system), int(maxrss_kb) / 1024, size)


def table(runs: list[Run], baseline: Run, nbytes: int) -> str:
    lines = [f"{'run':<44} {'wall s':>8} {'×base':>6} {'cpu s':>8} {'MB/s':>8} {'peak MB':>8} "
             f"{'output MB':>10}"]
    for r in runs:
        out = f"{r.output_bytes / 1e6:10.1f}" if r.output_bytes is not None else f"{'-':>10}"
        lines.append(f"{r.label:<44} {r.wall:8.2f} {r.wall / baseline.wall:6.2f} {r.cpu:8.2f} "
                     f"{nbytes / r.wall / 1e6:8.1f} {r.peak_rss_mb:8.1f} {out}")
    return "\n".join(lines)


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                stat = fh.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/status") as fh:
                kb = next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
        rss[int(name)] = kb
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def measure_tree(label: str, cmd: list[str], output=None) -> Run:
    """Like measure(), but the peak is the sum over the whole process tree (parallel workers
    count together), sampled every 50 ms."""
    import threading

    start = time.perf_counter()
    t0 = os.times()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            done.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    proc.wait()
    done.set()
    thread.join()
    wall = time.perf_counter() - start
    t1 = os.times()
    if proc.returncode not in (0,):
        raise SystemExit(f"{label}: exit {proc.returncode}")
    cpu = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    size = None
    if output is not None:
        size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    return Run(label, wall, cpu, peak[0] / 1024, size)
