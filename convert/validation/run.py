"""`acioci validate`: resolve each argument and run the matching validator.

Image references resolve through `transports`, exactly as `convert` and `inspect` resolve
them (`oci:DIR`, `oci-archive:FILE`, a bare path recognised by content), and each transport
validates what it reads. A regular file that is no archive is a JSON document: an ACI manifest
(acKind), an OCI index (manifests), manifest (layers), config (rootfs) or oci-layout file
(imageLayoutVersion). `--type` skips detection.
"""

from __future__ import annotations

import errno
import os
import stat

from .. import jsonio, transports
from ..compression import sniff
from ..errors import AciociError, LimitError, SourceUnreadableError
from ..options import ReadOptions
from ..regular import NotRegularFileError, open_regular
from ..spec import schemas
from ..transports.base import Reference
from . import oci as oci_validation
from .aci import manifest_findings
from .report import FileReport

# --type values that name a transport's whole image, and those that name one JSON document
IMAGE_TYPES = {"oci-layout": "oci", "oci-archive": "oci-archive",
               "docker-archive": "docker-archive", "aci": "aci"}
_JSON_KIND = {"oci-index": "oci-index", "oci-manifest": "oci-manifest",
              "oci-config": "oci-config", "oci-layout-file": "oci-layout",
              "oci-descriptor": "oci-descriptor"}
TYPES = (*IMAGE_TYPES, "aci-manifest", *_JSON_KIND)
MAX_DOCUMENT = jsonio.MAX_JSON_BYTES
_TYPE_OF_TRANSPORT = {v: k for k, v in IMAGE_TYPES.items()}


def _read_document(path: str) -> bytes:
    """A JSON document, refused unread when it is larger than any document may be (a 2 GiB
    file named x.json is not read into memory to find that out) or not a regular file."""
    try:  # a FIFO is refused without blocking (open() would wait for a writer)
        fh = open_regular(path)
    except NotRegularFileError as exc:
        if exc.errno == errno.EISDIR:
            raise IsADirectoryError(exc.errno, exc.strerror, path) from None
        raise SourceUnreadableError("not a regular file", file=path) from None
    with fh:
        st = os.fstat(fh.fileno())
        if st.st_size > MAX_DOCUMENT:
            raise LimitError(f"{st.st_size} bytes is over the {MAX_DOCUMENT}-byte limit of a "
                              "JSON document", file=path)
        return fh.read(MAX_DOCUMENT + 1)


def _is_archive(path: str) -> bool:
    with open(path, "rb") as fh:
        return sniff(fh.read(512)) != "unknown"


def detect(text: str) -> tuple[str, Reference | None]:
    """(type, reference): a reference for images, None for JSON documents."""
    try:
        st = os.stat(text)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and not _is_archive(text):
        return _document_type(jsonio.loads(_read_document(text), file=text)), None
    ref = transports.source(text)
    return _TYPE_OF_TRANSPORT.get(ref.transport, ref.transport), ref


def _document_type(doc) -> str:
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
                  options: ReadOptions = ReadOptions()) -> FileReport:
    """`options` carries how to read: the expansion limit, the `--store` of ACI dependencies,
    and what remote sources need (trusted keys, CAs)."""
    report = FileReport(file=path, type=type_ or "unknown")
    try:
        if type_ in IMAGE_TYPES:
            kind, ref = type_, transports.module(IMAGE_TYPES[type_]).parse(path, path)
        elif type_ is not None:
            kind, ref = type_, None
        else:
            kind, ref = detect(path)
        report.type = kind
        if ref is not None:
            transports.module(ref.transport).validate(ref, report, fast=fast, options=options)
        elif kind == "aci-manifest":
            manifest_findings(_read_document(path), report, "")
        elif kind in _JSON_KIND:
            doc = jsonio.loads(_read_document(path), file=path)
            for ptr, msg in schemas.problems(_JSON_KIND[kind], doc):
                report.error(f"{_JSON_KIND[kind]}.schema", f"#{ptr}" if ptr else "", msg)
            oci_validation.document_findings(_JSON_KIND[kind], doc, report)
        else:
            report.error("input.unknown-type", "", "not an image layout, archive or known JSON "
                         "document (name its type to validate it as one)")
    except FileNotFoundError:
        report.unreadable = True
        report.error("input.unreadable", "", "no such file or directory")
    except PermissionError:
        report.unreadable = True
        report.error("input.unreadable", "", "permission denied")
    except IsADirectoryError:
        report.unreadable = True
        report.error("input.unreadable", "", "is a directory, not a document")
    except AciociError as exc:
        if isinstance(exc, SourceUnreadableError):
            report.unreadable = True
            report.error("input.unreadable", exc.entry or "", exc.message)
        elif exc.exit_code == 2:
            raise  # a usage error (an unknown transport) is the command's, not the file's
        else:
            report.error("input.invalid", exc.entry or exc.pointer or "", exc.message)
    return report


def _known_json(path: str) -> bool:
    """In a recursive walk, JSON files that are no image document are not inputs."""
    try:
        return detect(path)[0] != "unknown"
    except AciociError:
        return True  # broken JSON that claims to be an input: report it


def expand(paths: list[str], recursive: bool) -> list[str]:
    """With --recursive, a directory that is not itself a layout stands for every image in it.
    Directory symlinks are not followed (a link to `.` or `/` would never end), and only
    regular files are taken (a FIFO would block the walk forever)."""
    out = []
    suffixes = transports.file_suffixes()
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
                    if not stat.S_ISREG(os.lstat(full).st_mode):
                        continue
                    if f.endswith(suffixes):
                        out.append(full)
                    elif f.endswith(".json") and _known_json(full):
                        out.append(full)
        else:
            out.append(p)
    return out
