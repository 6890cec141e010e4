"""Source and destination references, and format detection.

Destinations follow skopeo's transports where they overlap: `oci:DIR[:TAG]`,
`oci-archive:FILE[:TAG]`; a bare path picks the format from its shape (`*.aci` -> ACI, `*.tar`
-> oci-archive, anything else -> layout directory) unless `--to` says otherwise.
Sources are detected by content (magic bytes and top-level tar names), never by extension.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .compression import open_decompressed
from .errors import AciociError, FormatError, SourceUnreadableError, UsageError
from .tarstream import read_entries

TARGETS = ("aci", "oci", "oci-archive")


@dataclass(frozen=True)
class Destination:
    format: str  # one of TARGETS
    path: str
    tag: str | None = None


def parse_destination(text: str, to: str | None = None) -> Destination:
    fmt, path, tag = None, text, None
    for prefix, kind in (("oci-archive:", "oci-archive"), ("oci:", "oci")):
        if text.startswith(prefix):
            rest = text[len(prefix):]
            path, _, tag = rest.partition(":")
            fmt, tag = kind, tag or None
            break
    if not path:
        raise UsageError(f"destination {text!r} names no path")
    if to is not None:
        if to not in TARGETS:
            raise UsageError(f"--to must be one of {', '.join(TARGETS)}")
        if fmt is not None and fmt != to:
            raise UsageError(f"destination {text!r} is {fmt}, but --to says {to}")
        fmt = to
    if fmt is None:
        if path.endswith(".aci"):
            fmt = "aci"
        elif path.endswith(".tar"):
            fmt = "oci-archive"
        else:
            fmt = "oci"
    return Destination(fmt, path, tag)


@dataclass(frozen=True)
class Source:
    format: str  # "aci", "oci", "oci-archive", "docker-archive"
    path: str
    ref: str | None = None


def detect_source(text: str) -> Source:
    for prefix, kind in (("oci-archive:", "oci-archive"), ("oci:", "oci"),
                         ("docker-archive:", "docker-archive")):
        if text.startswith(prefix):
            path, _, ref = text[len(prefix):].partition(":")
            return Source(kind, path, ref or None)
    if os.path.isdir(text):
        return Source("oci", text)
    if not os.path.exists(text):
        raise SourceUnreadableError("no such file or directory", file=text)
    return Source(_sniff_archive(text), text)


def _sniff_archive(path: str) -> str:
    """Look at the top-level names of a (possibly compressed) tar until one is decisive."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise SourceUnreadableError(f"cannot open: {exc.strerror}", file=path) from None
    with fh:
        try:
            _, stream = open_decompressed(fh, allowed=("tar", "gzip", "bzip2", "xz", "zstd"),
                                          limit=None, what="image archive")
            for entry in read_entries(stream, allow_absolute=True):
                top = entry.path.split("/", 1)[0]
                if top in ("rootfs", "manifest"):
                    return "aci"
                if top == "manifest.json":
                    return "docker-archive"
                if top in ("oci-layout", "index.json"):
                    return "oci-archive"
        except AciociError as exc:
            raise exc.at(file=path)
    raise FormatError("not an ACI, an oci-archive or a docker archive: no manifest, "
                      "rootfs/, index.json or manifest.json at the top", file=path)
