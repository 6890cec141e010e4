"""ACI -> OCI on a large generated ACI: peak memory and throughput, side by side with
`gzip | sha256sum` over the same bytes (the floor: compress once, hash once).

    python bench/aci_to_oci.py [--size-mb 1024] [--keep]

The ACI is generated deterministically (a seeded mix of large incompressible-ish binaries and
small text files, roughly as compressible as real software) into bench/work/ and reused.
Target (issue 2): peak RSS under 150 MB for a >= 1 GiB image.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, measure, table  # noqa: E402

WORK = Path(__file__).resolve().parent / "work"


def make_aci(path: Path, size: int) -> None:
    """A plain-tar ACI of about `size` bytes."""
    rng = random.Random(42)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(2000)]
    manifest = (b'{"acKind":"ImageManifest","acVersion":"0.8.11","name":"bench.example/big",'
                b'"labels":[{"name":"version","value":"1"},{"name":"os","value":"linux"},'
                b'{"name":"arch","value":"amd64"}]}')
    written = 0
    with open(path, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("manifest")
        ti.size = len(manifest)
        tf.addfile(ti, __import__("io").BytesIO(manifest))
        d = tarfile.TarInfo("rootfs")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tf.addfile(d)
        n = 0
        while written < size:
            n += 1
            if n % 20 == 0:  # a large binary-like file: half random, half repetitive
                chunk = rng.randbytes(1 << 20) + bytes(rng.randrange(4)) * (1 << 20)
                data = chunk * 4
            else:
                data = b" ".join(rng.choice(words) for _ in range(rng.randint(50, 3000))) + b"\n"
            ti = tarfile.TarInfo(f"rootfs/usr/share/d{n % 97}/file{n}")
            ti.size, ti.mtime, ti.mode = len(data), 1_600_000_000, 0o644
            tf.addfile(ti, __import__("io").BytesIO(data))
            written += len(data)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--keep", action="store_true", help="keep the outputs in bench/work")
    args = ap.parse_args()
    compile_package()
    WORK.mkdir(exist_ok=True)
    aci = WORK / f"big-{args.size_mb}mb.aci"
    if not aci.exists():
        print(f"generating {aci} ...", file=sys.stderr)
        make_aci(aci, args.size_mb << 20)
    nbytes = aci.stat().st_size
    acioci = [sys.executable, "-m", "convert", "convert", str(aci)]
    runs = []
    baseline = measure("floor: gzip -6 | sha256sum", f"gzip -6 -c < {aci} | sha256sum",
                       shell=True)
    runs.append(baseline)
    runs.append(measure("floor: sha256sum", ["sha256sum", str(aci)]))
    for comp in ("gzip", "zstd", "none"):
        out = WORK / f"out-{comp}"
        runs.append(measure(f"acioci convert --compression {comp}",
                            acioci + [str(out), "--compression", comp, "-q"], output=out,
                            before=lambda: shutil.rmtree(out, ignore_errors=True)))
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    print(f"input: {aci.name}, {nbytes / 1e6:.0f} MB uncompressed tar; ratios are wall time "
          f"against the first row, run side by side in this process")
    print(table(runs, baseline, nbytes))
    worst = max(r.peak_rss_mb for r in runs if r.label.startswith("acioci"))
    print(f"peak RSS of acioci: {worst:.0f} MB (target < 150 MB): "
          f"{'met' if worst < 150 else 'NOT met'}")


if __name__ == "__main__":
    main()
