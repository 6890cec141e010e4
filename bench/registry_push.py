"""Issue 15's push benchmark: the ~200 MB Debian minbase ACI pushed by acioci, against skopeo
pushing the same content from an uncompressed layout with `--dest-compress`, each round into a
fresh registry (distribution 2.8 on 127.0.0.1), side by side.

    python bench/registry_push.py [--repeat 5]      # after bench/minbase.py made the ACI

Target: acioci's wall time at most 0.67x skopeo's; peak RSS under 100 MB. Rounds alternate
which tool goes first (a neighbour's load then falls on both alike); the summary is the median
of the per-round ratios, with the median wall time of each tool.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from aci_to_oci import WORK  # noqa: E402
from common import compile_package, _measure_once  # noqa: E402
from registry_servers import start_registry  # noqa: E402

PY = sys.executable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    compile_package()
    aci = WORK / "minbase.aci"
    if not aci.exists():
        raise SystemExit("run bench/minbase.py first (it makes bench/work/minbase.aci)")
    plain = WORK / "minbase-plain-layout"
    if not plain.exists():
        _measure_once("plain", [PY, "-m", "convert", "convert", str(aci), f"oci:{plain}:x",
                                "--compression", "none", "-q"], shell=False, output=None)
    ratios, ours_rss, walls = [], [], {"acioci": [], "skopeo": []}
    for r in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="acioci-bench-registry-"))
        reg = start_registry(tmp)
        try:
            host = f"127.0.0.1:{reg.port}"
            jobs = {
                "acioci": [PY, "-m", "convert", "convert", str(aci),
                           f"docker://{host}/bench/acioci:12", "--tls-verify=false", "-q"],
                "skopeo": ["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-compress",
                           f"oci:{plain}:x", f"docker://{host}/bench/skopeo:12"]}
            order = list(jobs) if r % 2 == 0 else list(reversed(jobs))
            runs = {label: _measure_once(label, jobs[label], shell=False, output=None)
                    for label in order}
        finally:
            reg.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        ours, theirs = runs["acioci"], runs["skopeo"]
        ratios.append(ours.wall / theirs.wall)
        ours_rss.append(ours.peak_rss_mb)
        walls["acioci"].append(ours.wall)
        walls["skopeo"].append(theirs.wall)
        print(f"round {r}: acioci {ours.wall:.2f} s (cpu {ours.cpu:.2f} s, "
              f"{ours.peak_rss_mb:.0f} MB peak), skopeo {theirs.wall:.2f} s (cpu "
              f"{theirs.cpu:.2f} s, {theirs.peak_rss_mb:.0f} MB peak), "
              f"ratio {ratios[-1]:.2f}", flush=True)
    med = statistics.median
    print(f"push of {aci.stat().st_size / 1e6:.0f} MB: acioci {med(walls['acioci']):.2f} s, "
          f"skopeo {med(walls['skopeo']):.2f} s (medians); acioci/skopeo median "
          f"{med(ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in sorted(ratios))}; "
          f"target <= 0.67), acioci peak RSS {max(ours_rss):.0f} MB (target < 100)")


if __name__ == "__main__":
    main()
