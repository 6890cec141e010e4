"""`acioci batch` with one worker and with two on this two-core machine: the speed-up (target
at least 1.6x) and the peak memory of the whole process tree for each, side by side.

    python bench/batch.py [--images 8] [--size-mb 40]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aci_to_oci import WORK, make_aci  # noqa: E402
from common import compile_package, measure_tree, table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size-mb", type=int, default=40)
    args = ap.parse_args()
    compile_package()
    src = WORK / f"batch-{args.images}x{args.size_mb}mb"
    if not src.exists():
        src.mkdir(parents=True)
        one = WORK / f"one-{args.size_mb}mb.aci"
        if not one.exists():
            make_aci(one, args.size_mb << 20)
        for i in range(args.images):
            shutil.copy(one, src / f"img{i}.aci")
    nbytes = sum(p.stat().st_size for p in src.iterdir())
    runs = []
    for jobs in (1, 2):
        out = WORK / f"batch-out-{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        runs.append(measure_tree(f"acioci batch --jobs {jobs}",
                                 [sys.executable, "-m", "convert", "batch", str(src), "--to",
                                  "oci", "--out", str(out), "--jobs", str(jobs), "-q"], out))
        shutil.rmtree(out, ignore_errors=True)
    print(f"{args.images} ACIs of {args.size_mb} MB, to gzip OCI layouts; ratios: wall time "
          "against --jobs 1; peak = summed RSS of the process tree")
    print(table(runs, runs[0], nbytes))
    speedup = runs[0].wall / runs[1].wall
    print(f"speed-up --jobs 1 -> 2: {speedup:.2f}x (target >= 1.6x): "
          f"{'met' if speedup >= 1.6 else 'NOT met'}")


if __name__ == "__main__":
    main()
