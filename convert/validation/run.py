"""`acioci validate`: detect what each path is and run the matching validator.

Types: a directory is an OCI layout; a tar (plain or compressed) is an ACI, an oci-archive or a
docker archive by its top-level names; a JSON file is an ACI manifest (acKind), an OCI index
(manifests), manifest (layers), config (rootfs) or oci-layout file (imageLayoutVersion).
"""

from __future__ import annotations

import os

from .. import jsonio
from ..compression import sniff
from ..errors import AciociError
from ..readers.blobs import DirBlobs, TarBlobs
from ..refs import _sniff_archive
from . import schemas
from .aci import manifest_findings, validate_aci
from .oci import validate_docker, validate_layout
from .report import FileReport

TYPES = ("oci-layout", "oci-archive", "docker-archive", "aci", "aci-manifest", "oci-index",
         "oci-manifest", "oci-config", "oci-layout-file")
_JSON_KIND = {"oci-index": "oci-index", "oci-manifest": "oci-manifest",
              "oci-config": "oci-config", "oci-layout-file": "oci-layout"}


def detect(path: str) -> str:
    if os.path.isdir(path):
        return "oci-layout"
    with open(path, "rb") as fh:
        head = fh.read(512)
    if sniff(head) != "unknown":
        return _sniff_archive(path)
    doc = jsonio.loads(open(path, "rb").read())
    if isinstance(doc, dict):
        if "acKind" in doc or "ackind" in {k.lower() for k in doc}:
            return "aci-manifest"
        if "imageLayoutVersion" in doc:
            return "oci-layout-file"
        if "layers" in doc and "config" in doc:
            return "oci-manifest"
        if "manifests" in doc:
            return "oci-index"
        if "rootfs" in doc or "architecture" in doc:
            return "oci-config"
    return "unknown"


def validate_path(path: str, *, type_: str | None = None, fast: bool = False,
                  max_expand=None, store: tuple[str, ...] = ()) -> FileReport:
    report = FileReport(file=path, type=type_ or "unknown")
    try:
        kind = type_ or detect(path)
        report.type = kind
        if kind == "oci-layout":
            validate_layout(DirBlobs(path), report, fast=fast, max_expand=max_expand)
        elif kind == "oci-archive":
            blobs = TarBlobs(path, max_expand=max_expand)
            try:
                validate_layout(blobs, report, fast=fast, max_expand=max_expand)
            finally:
                blobs.close()
        elif kind == "docker-archive":
            blobs = TarBlobs(path, max_expand=max_expand)
            try:
                validate_docker(blobs, report, fast=fast, max_expand=max_expand)
                if blobs.exists("index.json"):
                    validate_layout(blobs, report, fast=fast, max_expand=max_expand)
            finally:
                blobs.close()
        elif kind == "aci":
            validate_aci(path, report, max_expand=max_expand, store=store)
        elif kind == "aci-manifest":
            manifest_findings(open(path, "rb").read(), report, "")
        elif kind in _JSON_KIND:
            doc = jsonio.loads(open(path, "rb").read())
            for ptr, msg in schemas.problems(_JSON_KIND[kind], doc):
                report.error(f"{_JSON_KIND[kind]}.schema", f"#{ptr}" if ptr else "", msg)
        else:
            report.error("input.unknown-type", "", "not an image layout, archive or known JSON "
                         "document (give --type)")
    except FileNotFoundError:
        report.unreadable = True
        report.error("input.unreadable", "", "no such file or directory")
    except PermissionError:
        report.unreadable = True
        report.error("input.unreadable", "", "permission denied")
    except AciociError as exc:
        if exc.exit_code == 2 and "unreadable" in type(exc).__name__.lower():
            report.unreadable = True
            report.error("input.unreadable", exc.entry or "", exc.message)
        else:
            report.error("input.invalid", exc.entry or exc.pointer or "", exc.message)
    return report


def _known_json(path: str) -> bool:
    """In a recursive walk, JSON files that are no image document are not inputs."""
    try:
        return detect(path) != "unknown"
    except AciociError:
        return True  # broken JSON that claims to be an input: report it


def expand(paths: list[str], recursive: bool) -> list[str]:
    """With --recursive, a directory that is not itself a layout stands for every image in it."""
    out = []
    for p in paths:
        if recursive and os.path.isdir(p) and not os.path.exists(os.path.join(p, "oci-layout")):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                if "oci-layout" in files:
                    out.append(root)
                    dirs[:] = []
                    continue
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if f.endswith((".aci", ".tar", ".tar.gz", ".tgz")):
                        out.append(full)
                    elif f.endswith(".json") and _known_json(full):
                        out.append(full)
        else:
            out.append(p)
    return out
