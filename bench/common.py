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
from pathlib import Path


def compile_package(root: str | Path = Path(__file__).resolve().parents[1]) -> None:
    """Bytecode for every module of `root`/convert, before anything is timed: an installed
    package runs from bytecode, but a checkout with PYTHONDONTWRITEBYTECODE set (as on the
    machines here) would recompile each edited or new module on every run and count that as
    the tool's time; a tree with none (a base commit's worktree) would compile them all."""
    import compileall

    compileall.compile_dir(str(Path(root) / "convert"), quiet=1)


@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    peak_rss_mb: float
    output_bytes: int | None = None


REPEAT = 3  # bench/speed.py --repeat sets it


@dataclass
class Job:
    """One row of a table: a command, what it writes (for the output size), and what to do
    ahead of each run (remove the previous run's output)."""
    label: str
    cmd: list[str] | str
    shell: bool = False
    output: object = None
    before: object = None


@dataclass
class Rounds:
    """Every run of every job: `runs[label][i]` is round i."""
    runs: dict[str, list[Run]]

    def best(self, label: str) -> Run:
        """The fastest run (its CPU time and peak RSS with it): the least disturbed one."""
        return min(self.runs[label], key=lambda r: r.wall)

    def ratios(self, label: str, other: str) -> list[float]:
        """label's wall over other's, round by round, sorted: both ran minutes apart at most,
        so a slow spell of the machine hits both."""
        return sorted(a.wall / b.wall for a, b in zip(self.runs[label], self.runs[other]))


def measure_rounds(jobs: list[Job], repeat: int | None = None) -> Rounds:
    """`repeat` rounds (default `REPEAT`), each running every job once, in order. This machine moves 10-30%
    with its neighbours' load, for spells longer than one command: measuring each row's
    repeats back to back let a slow spell land on one row only. Interleaved, each round
    compares rows under the same conditions, and the table takes each row's fastest run."""
    runs: dict[str, list[Run]] = {j.label: [] for j in jobs}
    for _ in range(REPEAT if repeat is None else repeat):
        for j in jobs:
            if j.before is not None:
                j.before()
            runs[j.label].append(_measure_once(j.label, j.cmd, shell=j.shell, output=j.output))
    return Rounds(runs)


def ratio_text(values: list[float]) -> str:
    """The median of per-round ratios, with their range."""
    mid = values[len(values) // 2] if len(values) % 2 else \
        (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    return f"{mid:.2f} (rounds {', '.join(f'{v:.2f}' for v in values)})"


def measure(label: str, cmd: list[str] | str, *, shell: bool = False, output=None,
            before=None) -> Run:
    """The fastest of `REPEAT` runs of one command, back to back."""
    job = Job(label, cmd, shell, output, before)
    return measure_rounds([job]).best(label)


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
