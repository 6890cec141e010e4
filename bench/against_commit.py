"""Is a change slower? The same conversions with this tree and with another commit's, side by
side in interleaved rounds, and the ratio of each pair.

    python bench/against_commit.py BASE_COMMIT [--size-mb 512] [--repeat 3]

BASE_COMMIT is checked out into a temporary git worktree and run with this tree's virtualenv
(the dependencies are the same unless pyproject.toml changed between the two). Workloads are
the large rootfs ACI of bench/aci_to_oci.py (ACI -> OCI gzip, with and without the image ID),
that image's layout back to an ACI (OCI -> ACI squashed), and a gzip oci-archive of it (the
archive path the transports rework touched). Ratios above 1 mean this tree is slower.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aci_to_oci import WORK, make_aci  # noqa: E402
from common import Job, compile_package, measure_rounds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--size-mb", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    aci = WORK / f"against-{args.size_mb}.aci"
    if not aci.exists():
        make_aci(aci, args.size_mb << 20)
    out = WORK / "against-out"
    layout = WORK / f"against-{args.size_mb}-layout"
    archive = WORK / f"against-{args.size_mb}.tar.gz"
    base = Path(tempfile.mkdtemp(prefix="acioci-base-"))
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base),
                        args.base], check=True)
        trees = {"this": ROOT, "base": base}
        for tree in trees.values():
            compile_package(tree)
        if not layout.exists():
            subprocess.run([sys.executable, "-m", "convert", "convert", str(aci),
                            f"oci:{layout}:1", "-q"], cwd=ROOT, check=True)
            subprocess.run(f"tar -C {layout} -cf - . | gzip -1 > {archive}", shell=True,
                           check=True)

        def clean():
            shutil.rmtree(out, ignore_errors=True)
            Path(str(out) + ".aci").unlink(missing_ok=True)

        work = {"ACI -> OCI gzip": [str(aci), str(out)],
                "ACI -> OCI --no-image-id": [str(aci), str(out), "--no-image-id"],
                "OCI -> ACI squashed": [f"oci:{layout}:1", str(out) + ".aci"],
                "oci-archive.gz -> ACI": [str(archive), str(out) + ".aci"]}
        jobs = []
        for label, argv in work.items():
            for who, tree in trees.items():
                cmd = f"cd {tree} && {sys.executable} -m convert convert {' '.join(argv)} -q"
                jobs.append(Job(f"{label} [{who}]", cmd, shell=True, before=clean))
        rounds = measure_rounds(jobs, args.repeat)
        print(f"{'conversion':28} {'this s':>8} {'base s':>8}  ratios this/base (sorted)")
        for label in work:
            ratios = rounds.ratios(f"{label} [this]", f"{label} [base]")
            print(f"{label:28} {rounds.best(f'{label} [this]').wall:8.2f} "
                  f"{rounds.best(f'{label} [base]').wall:8.2f}  "
                  + " ".join(f"{r:.2f}" for r in ratios))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                       check=False)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
