"""`acioci validate` on a layout with one large uncompressed layer: peak memory and speed next
to `sha256sum` of the same blob, run side by side.

    python bench/validate_layout.py [--size-mb 1024]

Target (issue 4): memory flat (it must not grow with the layer), and validation at no less than
80% of sha256sum's speed on the same file. Deep validation hashes the blob once (an
uncompressed layer's diff_id is its digest) while parsing the tar; --fast only hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aci_to_oci import WORK, make_aci  # noqa: E402
from common import compile_package, measure, table  # noqa: E402


def make_layout(root: Path, size: int) -> Path:
    """A layout whose single layer is the rootfs of the generated ACI, uncompressed."""
    aci = WORK / f"layer-src-{size >> 20}mb.aci"
    if not aci.exists():
        make_aci(aci, size)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    h = hashlib.sha256()
    tmp = blobs / "tmp"
    with open(aci, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    layer = h.hexdigest()
    size_b = tmp.stat().st_size
    tmp.rename(blobs / layer)

    def blob(doc) -> dict:
        data = json.dumps(doc).encode()
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    cfg = blob({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer}"]}})
    man = blob({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": f"sha256:{layer}", "size": size_b}]})
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **man}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return blobs / layer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    args = ap.parse_args()
    compile_package()
    WORK.mkdir(exist_ok=True)
    root = WORK / f"layout-{args.size_mb}mb"
    if not root.exists():
        print(f"generating {root} ...", file=sys.stderr)
        make_layout(root, args.size_mb << 20)
    layer = max((root / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    nbytes = layer.stat().st_size
    cmd = [sys.executable, "-m", "convert", "validate", str(root), "-q"]
    base = measure("baseline: sha256sum layer", ["sha256sum", str(layer)])
    runs = [base, measure("acioci validate (deep)", cmd),
            measure("acioci validate --fast", cmd + ["--fast"])]
    print(f"layer: {nbytes / 1e6:.0f} MB uncompressed; ratios: wall time against sha256sum")
    print(table(runs, base, nbytes))
    deep = runs[1]
    speed = base.wall / deep.wall
    print(f"deep validation runs at {speed:.0%} of sha256sum's speed (target >= 80%): "
          f"{'met' if speed >= 0.8 else 'NOT met'}; peak RSS {deep.peak_rss_mb:.0f} MB")
    shutil.rmtree(WORK / "unused", ignore_errors=True)


if __name__ == "__main__":
    main()
