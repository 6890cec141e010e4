"""`acioci batch --cluster local:2` against `--jobs 2` on the same inputs, on this two-core
machine: what running through Dask costs when it buys no extra cores. Target: at least 0.85 of
the local throughput on a store big enough to be worth a cluster (default 48 ACIs of 100 MB,
hard links to one file, so the disk holds one).

Two costs, shown apart: a fixed one, paid once per batch (importing Dask, starting the local
cluster's scheduler and worker processes, closing them), seen on a batch of one small image;
and one per image (a task, a message to the converter process, a stop-event poll every 0.5 s),
which the big store's ratio shows. Rounds are interleaved (common.measure_rounds), and each
ratio is the median of the per-round ratios, so a slow spell of the machine hits both sides.

    python bench/cluster.py [--images 48] [--size-mb 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aci_to_oci import WORK, make_aci  # noqa: E402
from common import Job, compile_package, measure_rounds, ratio_text, table  # noqa: E402

TARGET = 0.85


def inputs(images: int, size_mb: int) -> Path:
    src = WORK / f"cluster-{images}x{size_mb}mb"
    if not src.exists():
        src.mkdir(parents=True)
        one = WORK / f"one-{size_mb}mb.aci"
        if not one.exists():
            make_aci(one, size_mb << 20)
        for i in range(images):
            os.link(one, src / f"img{i}.aci")
    return src


def batch_jobs(src: Path, tag: str) -> list[Job]:
    jobs = []
    for label, how in (("--jobs 2", ["--jobs", "2"]),
                       ("--cluster local:2", ["--cluster", "local:2"])):
        out = WORK / f"cluster-out-{src.name}-{how[-1].replace(':', '-')}"
        jobs.append(Job(f"{tag}: batch {label}",
                        [sys.executable, "-m", "convert", "batch", str(src), "--to", "oci",
                         "--out", str(out), "-q", *how], output=out,
                        before=lambda out=out: shutil.rmtree(out, ignore_errors=True)))
    return jobs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    compile_package()
    big = inputs(args.images, args.size_mb)
    small = inputs(1, 1)
    jobs = batch_jobs(small, "1 x 1 MB") + batch_jobs(big, f"{args.images} x {args.size_mb} MB")
    rounds = measure_rounds(jobs, args.rounds)
    for j in jobs:
        shutil.rmtree(j.output, ignore_errors=True)
    best = [rounds.best(j.label) for j in jobs]
    print(f"ACIs to gzip OCI layouts, {args.rounds} interleaved rounds, fastest run of each "
          "shown; x base: against the first row")
    print(table(best[2:], best[2], sum(p.stat().st_size for p in big.iterdir())))
    print("(both rows' cpu s count their converters: local:N's workers are threads of the "
          "batch's process, whose children the converters are)")
    fixed = sorted(a.wall - b.wall for a, b in zip(rounds.runs[jobs[1].label],
                                                   rounds.runs[jobs[0].label]))
    print(f"fixed cost of --cluster local:2 (one 1 MB image, cluster wall - local wall): "
          f"median {fixed[len(fixed) // 2]:.2f} s (rounds {', '.join(f'{v:.2f}' for v in fixed)})")
    ratios = rounds.ratios(jobs[2].label, jobs[3].label)  # local wall / cluster wall
    mid = ratios[len(ratios) // 2]
    print(f"throughput --cluster local:2 / --jobs 2 on {args.images} x {args.size_mb} MB: "
          f"{ratio_text(ratios)} (target >= {TARGET}): {'met' if mid >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
