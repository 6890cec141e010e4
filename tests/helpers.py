"""Shared test helpers: run the CLI, snapshot extracted trees, require real tools."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def acioci(*args, check=None):
    """Run the real CLI in a subprocess (exit codes and stderr as a user sees them)."""
    proc = subprocess.run([sys.executable, "-m", "convert", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def need(tool: str) -> str:
    """The tool's path; without it the test skips locally and fails under CI=true."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is not installed (run ../shared/tools/install-peers.sh)")
        pytest.skip(f"{tool} not installed")
    return path


def run(*cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def snapshot(root: Path, *, xattrs: str = "user-files") -> dict[str, dict]:
    """Every path below root with what must survive a conversion: type, mode, owner, mtime,
    content hash, link target, device numbers, xattrs, and which paths share an inode."""
    out: dict[str, dict] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = os.lstat(full)
            info = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid, "gid": st.st_gid, "mtime": int(st.st_mtime)}
            if stat.S_ISREG(st.st_mode):
                info["sha256"] = hashlib.sha256(full.read_bytes()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                info["target"] = os.readlink(full)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if xattrs == "all" or (xattrs == "user-files" and stat.S_ISREG(st.st_mode)):
                try:
                    names = os.listxattr(full, follow_symlinks=False)
                except OSError:
                    names = []
                info["xattrs"] = {n: os.getxattr(full, n, follow_symlinks=False)
                                  for n in sorted(names)
                                  if n.startswith("user.") or n.startswith("security.capability")}
            out[rel] = info
    for paths in inodes.values():
        for p in paths:
            out[p]["links"] = sorted(paths)
    return out


def diff_trees(ours: dict, theirs: dict, *, ignore_mtime=frozenset()) -> list[str]:
    problems = []
    for path in sorted(set(ours) | set(theirs)):
        a, b = ours.get(path), theirs.get(path)
        if a is None or b is None:
            problems.append(f"{path}: only in {'theirs' if a is None else 'ours'}")
            continue
        for key in sorted(set(a) | set(b)):
            if key == "mtime" and path in ignore_mtime:
                continue
            if a.get(key) != b.get(key):
                problems.append(f"{path}: {key} ours={a.get(key)!r} theirs={b.get(key)!r}")
    return problems


def modules_after(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` are imported once `code` has run in a fresh interpreter."""
    code += f"\nimport sys\nprint(sorted(m for m in {names!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


def modules_after_convert(src, out, which: str) -> list[str]:
    """The modules matching the expression `which` (over `m`, a module name) that a real
    `acioci convert SRC OUT -q` has imported by its end, in a fresh interpreter: what a
    command's start-up costs is what it imports."""
    code = ("import sys, runpy; sys.argv = ['acioci', 'convert', sys.argv[1], sys.argv[2], '-q']\n"
            "try:\n    runpy.run_module('convert', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            f"print(sorted(m for m in list(sys.modules) if {which}))")
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert (Path(out) / "index.json").exists()
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


def interrupt_when(proc, ready, what: str, *, poll: float = 0.005, timeout: float = 30) -> str:
    """SIGINT to `proc` as soon as `ready()` holds (within `timeout` s, while `proc` runs);
    its stderr once it has ended. A `proc` still running after that is killed."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{what} never started"
            time.sleep(poll)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
