"""Recognising a bare source path by content: magic bytes and top-level names, never the
extension (a `.tar` may be an ACI, an `.aci` may be gzip or xz)."""

from __future__ import annotations

import os
import stat

from ..compression import open_decompressed
from ..errors import AciociError, FormatError, SourceUnreadableError
from ..tarstream import read_entries

ARCHIVE_COMPRESSIONS = ("tar", "gzip", "bzip2", "xz", "zstd")


def sniff_source(path: str) -> str:
    """The transport that reads `path`: a directory is an OCI layout; a tar (plain or
    compressed) is an ACI, a docker archive or an oci-archive by its top-level names."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceUnreadableError("no such file or directory", file=path) from None
    except OSError as exc:
        raise SourceUnreadableError(f"cannot read: {exc.strerror}", file=path) from None
    if stat.S_ISDIR(st.st_mode):
        return "oci"
    if not stat.S_ISREG(st.st_mode):
        raise SourceUnreadableError("not a regular file or a directory", file=path)
    return sniff_archive(path)


def sniff_archive(path: str) -> str:
    """Look at the top-level names of a (possibly compressed) tar until one is decisive."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise SourceUnreadableError(f"cannot open: {exc.strerror}", file=path) from None
    with fh:
        try:
            _, stream = open_decompressed(fh, allowed=ARCHIVE_COMPRESSIONS, limit=None,
                                          what="image archive")
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
