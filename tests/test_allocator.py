"""The command's allocator settings (convert/allocator.py): set on glibc, never over the
user's own, and worth it: the same conversion faults in far fewer pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from convert import allocator
from helpers import ROOT

GLIBC = (getattr(os, "confstr", lambda name: "")("CS_GNU_LIBC_VERSION") or "").startswith("glibc")


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                  "MALLOC_ARENA_MAX", "GLIBC_TUNABLES"])
def test_the_users_own_malloc_settings_stand(name):
    assert allocator.tune_for_streaming({name: "131072"}) is False


@pytest.mark.skipif(not GLIBC, reason="mallopt's thresholds are glibc's")
def test_buffers_passed_between_threads_are_reused_not_faulted_in_again():
    """1-4 MiB buffers made and freed by turns, as a conversion's threads make them: with the
    settings, a few hundred page faults; with glibc's defaults, one per 4 KiB of nearly every
    buffer (measured: ~3,700 against ~36,000 here)."""
    code = ("import resource, sys\n"
            "from convert import allocator\n"
            "if sys.argv[1] == 'tuned':\n"
            "    assert allocator.tune_for_streaming({})\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "keep = []\n"
            "for i in range(200):\n"
            "    size = (1 << 20) * (1 + i % 4) + 512 * i\n"
            "    buf = bytearray(size)\n"
            "    buf[::4096] = b'x' * len(range(0, size, 4096))\n"
            "    keep.append(buf)\n"
            "    if len(keep) > 3:\n"
            "        keep.pop(0)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    faults = {}
    for mode in ("default", "tuned"):
        env = {k: v for k, v in os.environ.items() if k not in allocator._USERS_OWN}
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                             cwd=ROOT, env=env)
        assert out.returncode == 0, out.stderr
        faults[mode] = int(out.stdout)
    assert faults["tuned"] * 5 < faults["default"], faults


@pytest.mark.skipif(not GLIBC, reason="mallopt's arenas are glibc's")
def test_threads_that_make_buffers_share_one_heap():
    """Six threads making and freeing 2 MiB buffers at once, as a push's reader, compressors
    and sender do: with an arena per thread, each keeps its own free memory under the trim
    threshold (measured: 71 MB peak); with one arena, they reuse each other's (43-49 MB)."""
    code = ("import ctypes, sys, threading\n"
            "from convert import allocator\n"
            "if sys.argv[1] == 'tuned':\n"
            "    assert allocator.tune_for_streaming({})\n"
            "else:  # the thresholds alone\n"
            "    mallopt = ctypes.CDLL(None).mallopt\n"
            "    mallopt(allocator._M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD)\n"
            "    mallopt(allocator._M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD)\n"
            "def work():\n"
            "    keep = []\n"
            "    for i in range(60):\n"
            "        buf = bytearray((2 << 20) + 4096 * (i % 7))\n"
            "        buf[::4096] = b'x' * len(range(0, len(buf), 4096))\n"
            "        keep.append(buf)\n"
            "        if len(keep) > 2:\n"
            "            keep.pop(0)\n"
            "    barrier.wait()\n"
            "barrier = threading.Barrier(6)\n"
            "threads = [threading.Thread(target=work) for _ in range(6)]\n"
            "for t in threads: t.start()\n"
            "for t in threads: t.join()\n"
            # this process's own high-water mark (ru_maxrss would keep a larger parent's
            # across fork and exec)
            "status = open('/proc/self/status').read()\n"
            "print(int(status.split('VmHWM:')[1].split()[0]) // 1024)\n")
    peak = {}
    for mode in ("thresholds", "tuned"):
        env = {k: v for k, v in os.environ.items() if k not in allocator._USERS_OWN}
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                             cwd=ROOT, env=env)
        assert out.returncode == 0, out.stderr
        peak[mode] = int(out.stdout)
    assert peak["tuned"] + 12 < peak["thresholds"], peak
