"""A real rootfs at the size users convert most (50-500 MB): Debian 12's minbase, as an ACI,
through the same side-by-side table as bench/speed.py (acioci against its floor and against
skopeo, interleaved rounds), plus where a conversion's fixed cost goes and what its time
beyond the floor is made of (main-thread Python: what 100 ms of it costs the floor, and how
much more of it acioci has).

    python bench/minbase.py [--rootfs DIR] [--repeat 3]

The rootfs is made once with `debootstrap --variant=minbase bookworm` into bench/work/ (needs
root and Debian's mirror; `--rootfs DIR` takes one made elsewhere). The ACI is a plain tar of
`manifest` and `rootfs/` written by GNU tar with numeric owners and sorted names; an existing
bench/work/minbase.aci is reused as it is when no `--rootfs` is given (copy one in to measure
without the rootfs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import speed  # noqa: E402
from aci_to_oci import WORK  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def make_rootfs(dest: Path) -> None:
    if os.geteuid() != 0:
        sys.exit("bench/minbase.py: debootstrap needs root (or give --rootfs DIR)")
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(dest),
                    "http://deb.debian.org/debian"], check=True, stdout=subprocess.DEVNULL)


def make_aci(rootfs: Path, aci: Path) -> int:
    """The ACI, and its number of rootfs entries."""
    stage = WORK / "minbase-stage"
    stage.mkdir(exist_ok=True)
    manifest = {"acKind": "ImageManifest", "acVersion": "0.8.11",
                "name": "bench.example/debian-minbase",
                "labels": [{"name": "version", "value": "12"}, {"name": "os", "value": "linux"},
                           {"name": "arch", "value": "amd64"}],
                "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"}}
    (stage / "manifest").write_text(json.dumps(manifest))
    # rootfs/ by renaming member names (and hardlink targets), never symlink targets
    subprocess.run(["tar", "--numeric-owner", "--sort=name", "-cf", str(aci),
                    "-C", str(stage), "manifest", "-C", str(rootfs),
                    r"--transform=flags=rh;s,^\./,rootfs/,;s,^\.$,rootfs,", "."], check=True)
    out = subprocess.run(["tar", "-tf", str(aci)], capture_output=True, text=True, check=True)
    return sum(1 for line in out.stdout.splitlines() if line.startswith("rootfs/"))


def startup() -> None:
    """The fixed cost: interpreter and imports up to the first byte read (an error on a file
    that does not exist is the earliest point where a conversion has decided what to do)."""
    cmd = [sys.executable, "-m", "convert", "convert", "/nonexistent.aci", "x.aci"]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"  start-up to the first read: best {min(times):.3f} s of 5")
    imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import convert.cli"],
                         cwd=ROOT, capture_output=True, text=True).stderr.splitlines()
    rows = sorted((int(line.split("|")[1]), line.split("|")[2].strip()) for line in imp
                  if line.startswith("import time:") and line.split("|")[1].strip().isdigit())
    print("  heaviest imports (cumulative us): "
          + ", ".join(f"{name} {us:,}" for us, name in rows[-6:][::-1]))


_MAIN_THREAD_CPU = """import atexit, runpy, sys, time
atexit.register(lambda: print(time.thread_time(), file=sys.stderr))
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__")
"""


def main_thread_cpu(target: str, args: list[str], out: Path) -> float:
    """The CPU time of a command's main thread (the thread whose Python holds the GIL for the
    tar work), taken at exit: the best of 3."""
    best = float("inf")
    for _ in range(3):
        subprocess.run(["rm", "-rf", str(out)], check=True)
        done = subprocess.run([sys.executable, "-c", _MAIN_THREAD_CPU, target, *args],
                              cwd=ROOT, capture_output=True, text=True, check=True)
        best = min(best, float(done.stderr.strip().splitlines()[-1]))
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return best


def beyond_the_floor(aci: Path) -> None:
    """Where the gzip conversion's time beyond its floor goes, measured: what main-thread
    Python costs this pipeline (the floor given 100 ms of it), and how much more of it the
    conversion has than the floor (its start-up and its tar work both run there)."""
    out = WORK / "beyond-out"
    floor = [str(ROOT / "bench" / "floor.py"), "gzip", str(aci), str(out)]
    budget = [floor[0], "--python-ms", "100", *floor[1:]]
    rounds = common.measure_rounds([
        common.Job("floor", [sys.executable, *floor], before=lambda: out.unlink(missing_ok=True)),
        common.Job("floor + 100 ms", [sys.executable, *budget],
                   before=lambda: out.unlink(missing_ok=True))])
    out.unlink(missing_ok=True)
    ours = main_thread_cpu("convert", ["convert", str(aci), str(out), "-q"], out)
    theirs = main_thread_cpu(floor[0], floor[1:], out)
    print("  beyond the floor (gzip): the floor with 100 ms of Python on its main thread "
          f"takes {common.ratio_text(rounds.ratios('floor + 100 ms', 'floor'))} of its time; "
          f"the main thread's CPU is {ours:.3f} s in acioci against {theirs:.3f} s in the "
          f"floor ({(ours - theirs) * 1000:+.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rootfs", type=Path)
    ap.add_argument("--repeat", type=int, default=common.REPEAT)
    args = ap.parse_args()
    common.REPEAT = args.repeat
    WORK.mkdir(exist_ok=True)
    common.compile_package()
    rootfs = args.rootfs or WORK / "minbase-rootfs"
    aci = WORK / "minbase.aci"
    if args.rootfs is None and aci.exists():
        out = subprocess.run(["tar", "-tf", str(aci)], capture_output=True, text=True,
                             check=True)
        entries = sum(1 for line in out.stdout.splitlines() if line.startswith("rootfs/"))
    else:
        if not (rootfs / "etc" / "debian_version").exists():
            make_rootfs(rootfs)
        entries = make_aci(rootfs.resolve(), aci)
    print(f"Debian 12 minbase: {aci.stat().st_size / 1e6:.0f} MB, {entries:,} entries")
    startup()
    speed.aci_to_oci("minbase", aci, entries, floor_target=1.2)
    beyond_the_floor(aci)


if __name__ == "__main__":
    main()
