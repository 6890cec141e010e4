"""Do refactors keep output byte-identical? Convert every fixture every way, print digests.

    python bench/same_bytes.py > before.txt      # on the old commit
    python bench/same_bytes.py > after.txt       # on the new one
    diff before.txt after.txt                    # empty: same bytes

Each line is `<conversion>  <sha256 of the output>`: a file's bytes, or for a directory every
file's relative path, mode and bytes in sorted order. An error is printed in place of the digest
(exit code and the error line), so a conversion that starts or stops failing shows up too.
Runs the CLI as a user does, in a temporary directory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FX = ROOT / "fixtures"
SAMPLE = FX / "sample" / "hello-1.0.0-linux-amd64.aci"
STORE = FX / "sample" / "store"
VALID = FX / "valid"

# (label, source, destination name, extra options)
CASES = [
    ("sample->layout", SAMPLE, "oci:out:1.0.0", ["--store", STORE]),
    ("sample->layout squash zstd", SAMPLE, "out", ["--store", STORE, "--squash",
                                                   "--compression", "zstd"]),
    ("sample->oci-archive", SAMPLE, "out.tar", ["--store", STORE]),
    ("sample->oci none no-image-id", SAMPLE, "out", ["--store", STORE, "--compression", "none",
                                                     "--no-image-id"]),
    ("sample->aci flatten", SAMPLE, "out.aci", ["--store", STORE]),
    ("sample->spec whitelist", SAMPLE, "out", ["--store", STORE, "--whitelist-mode", "spec"]),
    ("base->layout", STORE / "base-1.0.0-linux-amd64.aci", "out", []),
    ("xz-everything->layout", VALID / "valid-aci-xz-everything" / "image.aci", "out", []),
    ("layout->aci", VALID / "valid-layout" / "layout", "out.aci", []),
    ("layout->aci xz", VALID / "valid-layout" / "layout", "out.aci", ["--compression", "xz"]),
    ("layout->layered", VALID / "valid-layout" / "layout", "out", ["--to", "aci", "--layered"]),
    ("layout->all", VALID / "valid-layout" / "layout", "out", ["--to", "aci", "--all",
                                                            "--name", "example.com/x"]),
    ("layout->layout squash", VALID / "valid-layout" / "layout", "out", ["--squash"]),
    ("oci-archive->aci", VALID / "valid-oci-archive" / "image.tar", "out.aci", []),
    ("docker-archive->aci", VALID / "valid-docker-archive" / "image.tar", "out.aci", []),
    ("docker-archive->layout", VALID / "valid-docker-archive" / "image.tar", "out", []),
]


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    for dirpath, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = Path(dirpath) / name
            h.update(f"{full.relative_to(path)} {stat.S_IMODE(full.stat().st_mode):o}\n".encode())
            h.update(full.read_bytes())
    return h.hexdigest()


def main() -> int:
    exe = [sys.executable, "-m", "convert"]
    for label, src, dest, extra in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            if "--all" in extra or "--layered" in extra:
                os.mkdir(Path(tmp) / dest)
            proc = subprocess.run([*exe, "convert", str(src), dest, "-q", *map(str, extra)],
                                  cwd=tmp, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            out = Path(tmp) / dest.split(":")[1 if dest.startswith("oci:") else 0]
            if proc.returncode:
                last = (proc.stderr.strip().splitlines() or [""])[-1]
                print(f"{label}  exit {proc.returncode}: {last}")
            else:
                print(f"{label}  {tree_digest(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
