"""The command's allocator settings (convert/allocator.py): set on glibc, never over the
user's own, worth it (the same conversion faults in far fewer pages), and set by the processes
that convert (the command's and a cluster converter's `main()`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from convert import allocator
from helpers import ROOT

GLIBC = (getattr(os, "confstr", lambda name: "")("CS_GNU_LIBC_VERSION") or "").startswith("glibc")


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                  "GLIBC_TUNABLES"])
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
            "elif sys.argv[1] == 'acioci':  # the command's main(), as `acioci version` runs it\n"
            "    from convert import cli\n"
            "    sys.argv = ['acioci', 'version']\n"
            "    try:\n"
            "        cli.main()\n"
            "    except SystemExit as exc:\n"
            "        assert not exc.code, exc.code\n"
            "elif sys.argv[1] == 'cluster-child':  # a cluster's converter, given no job\n"
            "    from convert import cluster_child\n"
            "    assert cluster_child.main() == 0\n"
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
    for mode in ("default", "tuned", "acioci", "cluster-child"):
        env = {k: v for k, v in os.environ.items() if k not in allocator._USERS_OWN}
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                             cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        faults[mode] = int(out.stdout.split()[-1])
    assert faults["tuned"] * 5 < faults["default"], faults
    # and the processes that convert set them: the command, and a cluster's converter
    assert faults["acioci"] * 5 < faults["default"], faults
    assert faults["cluster-child"] * 5 < faults["default"], faults
