"""Issue 15's push benchmark: the ~200 MB Debian minbase ACI pushed by acioci, against skopeo
pushing the same content from an uncompressed layout with `--dest-compress`, each round into a
fresh registry (distribution 2.8 on 127.0.0.1), side by side.

    python bench/registry_push.py [--repeat 3]      # after bench/minbase.py made the ACI

Target: acioci's wall time at most 0.67x skopeo's; peak RSS under 100 MB.
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
from common import _measure_once  # noqa: E402
from registry_servers import start_registry  # noqa: E402

PY = sys.executable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    aci = WORK / "minbase.aci"
    if not aci.exists():
        raise SystemExit("run bench/minbase.py first (it makes bench/work/minbase.aci)")
    plain = WORK / "minbase-plain-layout"
    if not plain.exists():
        _measure_once("plain", [PY, "-m", "convert", "convert", str(aci), f"oci:{plain}:x",
                                "--compression", "none", "-q"], shell=False, output=None)
    ratios, ours_rss = [], []
    for r in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="acioci-bench-registry-"))
        reg = start_registry(tmp)
        try:
            host = f"127.0.0.1:{reg.port}"
            ours = _measure_once(
                "acioci", [PY, "-m", "convert", "convert", str(aci),
                           f"docker://{host}/bench/acioci:12", "--tls-verify=false", "-q"],
                shell=False, output=None)
            theirs = _measure_once(
                "skopeo", ["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-compress",
                           f"oci:{plain}:x", f"docker://{host}/bench/skopeo:12"],
                shell=False, output=None)
        finally:
            reg.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        ratios.append(ours.wall / theirs.wall)
        ours_rss.append(ours.peak_rss_mb)
        print(f"round {r}: acioci {ours.wall:.2f} s ({ours.peak_rss_mb:.0f} MB peak), "
              f"skopeo {theirs.wall:.2f} s ({theirs.peak_rss_mb:.0f} MB peak), "
              f"ratio {ratios[-1]:.2f}")
    print(f"push of {aci.stat().st_size / 1e6:.0f} MB: acioci/skopeo median "
          f"{statistics.median(ratios):.2f} (target <= 0.67), acioci peak RSS "
          f"{max(ours_rss):.0f} MB (target < 100)")


if __name__ == "__main__":
    main()
