"""Issue 15's pull benchmark: a 3-layer image with whiteouts, pulled from a local registry
(distribution 2.8 on 127.0.0.1) into one squashed gzip ACI, by acioci and by appc's
docker2aci, side by side in interleaved rounds (alternating which goes first).

    python bench/docker2aci_pull.py [--repeat 5] [--size-mb 150]

Target: acioci's wall time at most 0.5x docker2aci's; peak RSS under 100 MB.

The image is made here, deterministically (seeded): layer 1 a tree of ~SIZE MB (half text-like,
half random bytes, files of 1 KiB to 4 MiB, below usr/share/doc, var/cache, opt/data, ...);
layer 2 deletes a directory and some files (`.wh.` entries) and adds and replaces files;
layer 3 makes var/cache opaque (`.wh..wh..opq`) and adds a few files. The layout is written
uncompressed and pushed with `skopeo copy --dest-compress --format v2s2` (docker2aci reads
Docker v2 schema 2 manifests). Each round pulls from the same registry; neither tool caches.

docker2aci (https://github.com/appc/docker2aci, v0.17.2, Go) is found as $DOCKER2ACI,
/work/tools/docker2aci, or `docker2aci` on PATH. If none is there it is built, when `go` and a
git mirror of the repository are present ($DOCKER2ACI_MIRROR, default
/work/.mirror/appc+docker2aci/repo), like this:
    mkdir -p B/src/github.com/appc/docker2aci && cd $_
    git --git-dir=MIRROR archive HEAD | tar x
    # v0.17.2 spins forever on a layer entry named `.` (umoci and others write one): skip it
    # beside the existing `./` check in lib/internal/internal.go
    GO111MODULE=off GOPATH=B go build -o /work/tools/docker2aci .
(GOPATH mode, from its vendored tree: nothing is downloaded.) Without go or the mirror the
benchmark says so and exits 0 without measuring. The binary stays outside the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from common import compile_package, _measure_once  # noqa: E402
from registry_servers import start_registry  # noqa: E402

PY = sys.executable
TOOLS = Path("/work/tools")
MIRROR = Path(os.environ.get("DOCKER2ACI_MIRROR", "/work/.mirror/appc+docker2aci/repo"))
MiB = 1 << 20


# -- docker2aci ---------------------------------------------------------------------------

def find_docker2aci() -> str | None:
    for candidate in (os.environ.get("DOCKER2ACI"), str(TOOLS / "docker2aci"),
                      shutil.which("docker2aci")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    go = shutil.which("go")
    if go is None or not (MIRROR / "HEAD").exists():
        print(f"skipped: no docker2aci binary, and {'no go' if go is None else 'no mirror'} "
              f"to build one (see this script's docstring; mirror: {MIRROR})")
        return None
    build = TOOLS / "docker2aci-build"
    src = build / "src/github.com/appc/docker2aci"
    shutil.rmtree(build, ignore_errors=True)
    src.mkdir(parents=True)
    archive = subprocess.run(["git", f"--git-dir={MIRROR}", "archive", "HEAD"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        tf.extractall(src)
    internal = src / "lib/internal/internal.go"
    text = internal.read_text()
    old = '\t\tif name == "./" {'
    if old not in text:
        raise SystemExit(f"{internal}: the `./` check to patch is not where v0.17.2 has it")
    internal.write_text(text.replace(old, '\t\tif name == "./" || name == "." {'))
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(build), GOFLAGS="",
               GOCACHE=str(build / "cache"))
    subprocess.run([go, "build", "-o", str(TOOLS / "docker2aci"), "."], cwd=src, env=env,
                   check=True)
    return str(TOOLS / "docker2aci")


# -- the image ------------------------------------------------------------------------------

def _text(rnd: random.Random, size: int) -> bytes:
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
             for _ in range(400)]
    line = b" ".join(rnd.choice(words) for _ in range(2000)) + b"\n"
    return (line * (size // len(line) + 1))[:size]


class _Layer:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def dir(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
        self.tf.addfile(info)

    def file(self, name: str, data: bytes = b"") -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
        self.tf.addfile(info, io.BytesIO(data))

    def close(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()


def make_layers(size: int) -> list[bytes]:
    rnd = random.Random(15)
    base = _Layer()
    dirs = ["etc", "usr", "usr/share", "usr/share/doc", "usr/lib", "var", "var/cache",
            "var/cache/apt", "opt", "opt/data"]
    for d in dirs:
        base.dir(d)
    base.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    base.file("etc/motd", b"welcome\n")
    written, i = 0, 0
    while written < size:
        n = min(rnd.choice([1 << 10, 8 << 10, 64 << 10, 512 << 10, 4 * MiB]), size - written)
        where = dirs[3 + i % 7]
        if where == "usr/share/doc" and i % 3 == 0:
            base.dir(f"{where}/pkg{i}")
            where = f"{where}/pkg{i}"
        data = rnd.randbytes(n) if i % 2 else _text(rnd, n)
        base.file(f"{where}/f{i}", data)
        written, i = written + n, i + 1
    upper = _Layer()
    upper.dir("usr/share")
    upper.file("usr/share/.wh.doc")               # a whole directory deleted
    upper.dir("opt/data")
    for k in range(1, min(i, 60), 7):              # some files deleted
        if dirs[3 + k % 7] == "opt/data":
            upper.file(f"opt/data/.wh.f{k}")
    upper.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    upper.dir("usr/lib")
    for k in range(8):
        upper.file(f"usr/lib/new{k}", rnd.randbytes(MiB) if k % 2 else _text(rnd, MiB))
    top = _Layer()
    top.dir("var/cache")
    top.file("var/cache/.wh..wh..opq")             # everything below from lower layers goes
    top.file("var/cache/fresh", _text(rnd, 64 << 10))
    top.file("etc/.wh.motd")
    return [base.close(), upper.close(), top.close()]


def write_layout(root: Path, layers: list[bytes]) -> None:
    blobs = root / "blobs/sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    descs = [dict(mediaType="application/vnd.oci.image.layer.v1.tar", **put(layer))
             for layer in layers]
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(mediaType="application/vnd.oci.image.config.v1+json",
                               **put(json.dumps(config).encode())),
                "layers": descs}
    index = {"schemaVersion": 2, "manifests": [dict(
        mediaType="application/vnd.oci.image.manifest.v1+json",
        annotations={"org.opencontainers.image.ref.name": "bench"},
        **put(json.dumps(manifest).encode()))]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def rootfs_names(aci: Path) -> set[str]:
    with tarfile.open(aci) as tf:
        return {m.name.rstrip("/")[len("rootfs/"):] for m in tf
                if m.name.startswith("rootfs/")}


# -- rounds ---------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size-mb", type=int, default=150, help="the base layer's content")
    args = ap.parse_args()
    compile_package()
    docker2aci = find_docker2aci()
    if docker2aci is None:
        return
    tmp = Path(tempfile.mkdtemp(prefix="acioci-bench-d2a-"))
    reg = start_registry(tmp / "registry")
    try:
        layers = make_layers(args.size_mb * MiB)
        write_layout(tmp / "layout", layers)
        ref = f"docker://127.0.0.1:{reg.port}/bench/whiteouts:1"
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-compress",
                        "--format", "v2s2", f"oci:{tmp / 'layout'}:bench", ref], check=True)
        print(f"image: 3 layers, {sum(map(len, layers)) / 1e6:.0f} MB of tar, in {ref}")
        out = {"acioci": tmp / "acioci", "docker2aci": tmp / "docker2aci"}
        jobs = {
            "acioci": f"cd {out['acioci']} && {PY} -m convert convert {ref} pulled.aci "
                      "--tls-verify=false -q --overwrite",
            "docker2aci": f"cd {out['docker2aci']} && rm -f *.aci && "
                          f"{docker2aci} -insecure-allow-http {ref} "
                          "> /dev/null 2>&1"}
        for d in out.values():
            d.mkdir()
        runs: dict[str, list] = {label: [] for label in jobs}
        for r in range(args.repeat):
            order = list(jobs) if r % 2 == 0 else list(reversed(jobs))
            for label in order:
                runs[label].append(_measure_once(label, jobs[label], shell=True, output=None))
            a, d = runs["acioci"][-1], runs["docker2aci"][-1]
            print(f"round {r}: acioci {a.wall:.2f} s (cpu {a.cpu:.2f} s, {a.peak_rss_mb:.0f} MB "
                  f"peak), docker2aci {d.wall:.2f} s (cpu {d.cpu:.2f} s, {d.peak_rss_mb:.0f} MB "
                  "peak), "
                  f"ratio {a.wall / d.wall:.2f}", flush=True)
        ours = out["acioci"] / "pulled.aci"
        theirs = next(out["docker2aci"].glob("*.aci"))
        a_names, d_names = rootfs_names(ours), rootfs_names(theirs)
        print(f"rootfs entries: acioci {len(a_names)}, docker2aci {len(d_names)}, "
              f"differing {len(a_names ^ d_names)}; ACI sizes {ours.stat().st_size / 1e6:.1f} "
              f"and {theirs.stat().st_size / 1e6:.1f} MB (docker2aci applies no opaque "
              "whiteout and adds dev/ links)")
        ratios = sorted(a.wall / d.wall for a, d in zip(runs["acioci"], runs["docker2aci"]))
        med = statistics.median
        print(f"pull into a squashed ACI: acioci {med(r.wall for r in runs['acioci']):.2f} s, "
              f"docker2aci {med(r.wall for r in runs['docker2aci']):.2f} s (medians); "
              f"acioci/docker2aci median {med(ratios):.2f} (rounds "
              f"{', '.join(f'{x:.2f}' for x in ratios)}; target <= 0.5); peak RSS acioci "
              f"{max(r.peak_rss_mb for r in runs['acioci']):.0f} MB, docker2aci "
              f"{max(r.peak_rss_mb for r in runs['docker2aci']):.0f} MB (target < 100)")
    finally:
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
