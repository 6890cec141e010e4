"""Streaming tar: parse entries from a byte stream and pass every name through one path gate
(writing is in `tarwrite.py`).

Why not `tarfile`: in stream mode it ends iteration silently on a truncated or corrupt header
(a hostile archive would pass as a short one), it re-derives PAX records from stale copies when
a member is renamed, and it pads output to 10 KiB records, which changes image IDs. This module
reads ustar, GNU (long names and links) and PAX (per-entry and global) headers, verifies header
checksums, and is strict where `tarfile` is lenient.

Names are `str` decoded as UTF-8 with `surrogateescape`: bytes that are not UTF-8 survive a
read/write round trip exactly.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Iterator

from .errors import FormatError, UnsafePathError
from .tarbuffer import BLOCK, EntryData, Reader

try:  # zlib-ng's adler32 is vectorised: 4x zlib's on a 512-byte header, summed twice per entry
    from zlib_ng.zlib_ng import adler32
except ImportError:  # pragma: no cover - zlib-ng is a dependency
    from zlib import adler32

_ZERO_BLOCK = bytes(BLOCK)

KINDS = ("file", "dir", "symlink", "hardlink", "char", "block", "fifo")
_TYPEFLAG_KIND = {
    b"0": "file", b"\0": "file", b"7": "file",
    b"1": "hardlink", b"2": "symlink", b"3": "char", b"4": "block", b"5": "dir", b"6": "fifo",
}
_KIND_TYPEFLAG = {"file": b"0", "hardlink": b"1", "symlink": b"2", "char": b"3",
                  "block": b"4", "dir": b"5", "fifo": b"6"}
# PAX records that the header fields themselves carry; everything else is kept in Entry.pax.
_STRUCTURAL_PAX = {"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime",
                   "hdrcharset"}
XATTR_PREFIX = "SCHILY.xattr."
PATH_MAX = 4096  # Linux: longer names cannot be created, so they are refused as hostile


def _byte_sum(block: bytes) -> int:
    """Sum of a 512-byte block's bytes, in C: adler32's low half is 1 + the sum modulo 65521,
    exact while the sum stays below that. An ASCII block (nearly every header) sums to at most
    512 * 127 = 65,024, so one call is exact; otherwise each 256-byte half is (at most
    65,280). builtins.sum() was a tenth of all the time spent on archives of small files."""
    if block.isascii():
        return (adler32(block) & 0xFFFF) - 1
    return (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) - 2


def _dec(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass(slots=True)
class Entry:
    """One archive member. `path` is already through the path gate: relative, no `.` or `..`
    components, no trailing slash; `""` is the root itself. `linkname` is gated the same way for
    hardlinks and verbatim for symlinks. `pax` holds the PAX records that are not header fields
    (xattrs as `SCHILY.xattr.*`, atime, ctime, a fractional mtime, vendor records)."""

    path: str
    kind: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    mtime: int = 0
    size: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)
    data: BinaryIO | None = field(default=None, repr=False, compare=False)

    def xattrs(self) -> dict[str, bytes]:
        return {k[len(XATTR_PREFIX):]: _enc(v) for k, v in self.pax.items()
                if k.startswith(XATTR_PREFIX)}

    def hardlink_to(self, path: str, target: str) -> "Entry":
        """This entry's header, as a hardlink named `path` to `target` (no data)."""
        link = replace(self, path=path, kind="hardlink", linkname=target, size=0)
        link.data = None
        return link

    def renamed(self, path: str, linkname: str | None = None) -> "Entry":
        return replace(self, path=path, linkname=self.linkname if linkname is None else linkname)


_NEEDS_CLEANING = re.compile(r"(?:^|/)\.{1,2}(?:/|$)|//|^/|/$|\x00")


def normalize_path(name: str, *, what: str = "entry name", allow_absolute: bool = False) -> str:
    """The single path gate. Every member name and hardlink target goes through here before
    anything else looks at it. `..` is refused outright, even when it would stay inside, because
    a plain `tar -x` of our output must never be able to climb out of its root."""
    if 0 < len(name) < 1024 and not ("/." in name or "//" in name or "\0" in name
                                     or name[0] in "./" or name[-1] == "/"):
        return name  # plainly clean (the usual case): substring tests are 5x a regex scan
    if len(name) < 1024 and name and not _NEEDS_CLEANING.search(name):
        return name  # clean, with a dot file somewhere: still no split and join
    if "\0" in name:
        raise UnsafePathError(f"{what} contains a NUL byte", entry=repr(name))
    if len(name.encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise UnsafePathError(f"{what} is longer than {PATH_MAX} bytes (PATH_MAX); no file "
                              "system could hold it", entry=name[:60] + "…")
    if name.startswith("/") and not allow_absolute:
        raise UnsafePathError(f"absolute {what} {name!r}", entry=name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{what} {name!r} contains '..'", entry=name)
    return "/".join(parts)


def _num(field_: bytes, what: str) -> int:
    """Octal, or GNU base-256 when the high bit is set (large uids, sizes, negative mtimes)."""
    if field_[-1:] in (b"\0", b" "):  # the common shape, "0001234\0": one C call
        try:
            return int(field_[:-1], 8)
        except ValueError:
            pass
    if field_ and field_[0] & 0x80:
        value = int.from_bytes(field_, "big") - (1 << (8 * len(field_) - 1))
        if field_[0] & 0x40:  # negative base-256
            value = int.from_bytes(field_, "big") - (1 << (8 * len(field_)))
        return value
    text = field_.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise FormatError(f"bad numeric field {what}: {field_!r}") from None


def _parse_pax(payload: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(payload):
        if payload[pos:] .strip(b"\0") == b"":
            break
        sp = payload.find(b" ", pos)
        if sp < 0:
            raise FormatError("malformed PAX record (no length)")
        try:
            length = int(payload[pos:sp])
        except ValueError:
            raise FormatError("malformed PAX record length") from None
        rec = payload[sp + 1: pos + length]
        if length <= 0 or pos + length > len(payload) or not rec.endswith(b"\n") or b"=" not in rec:
            raise FormatError("malformed PAX record")
        key, value = rec[:-1].split(b"=", 1)
        records[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return records


_MAX_META = 1 << 20  # PAX or GNU long-name payloads larger than this are refused
_NO_RECORDS: dict[str, bytes] = {}  # shared, never written: most entries have no PAX records
# name, (mode, uid, gid), size, mtime, chksum, typeflag, linkname, (the rest): one C call
# splits a header into the fields every entry needs; the others are sliced out when needed
_HEADER = struct.Struct("100s24x12s12s8s1s100s255x")
_NUL_SPACE = b"\0 "


_CACHE_MAX = 4096  # values kept per field cache: a hostile archive must not grow memory


def _names(cache: dict[bytes, tuple[str, str]], raw: bytes) -> tuple[str, str]:
    """(uname, gname) from the 64 bytes of both fields: a handful of distinct pairs per
    archive, decoded once each and then found with one dict lookup."""
    got = cache.get(raw)
    if got is None:
        got = (_dec(raw[:32].split(b"\0", 1)[0]), _dec(raw[32:].split(b"\0", 1)[0]))
        if len(cache) < _CACHE_MAX:
            cache[raw] = got
    return got


def read_entries(raw: BinaryIO, *, allow_absolute: bool = False,
                 on_unsafe=None, length: int | None = None) -> Iterator[Entry]:
    """Yield the entries of an uncompressed tar stream.

    Stops at the first zero block (or at EOF exactly on a block boundary, as Go's reader does);
    any other short read, bad checksum or unknown entry type raises `FormatError` naming the
    entry. The caller drains the rest of `raw` if it hashes the whole stream.
    With `on_unsafe(raw_name, message)`, a name refused by the path gate is reported there and
    its entry skipped instead of ending the read (the validator reports every problem).
    `length`, given for a stream at its start whose `seek(offset)` reaches any offset from
    that start (a file, an archive member), is its size: data no one reads is then sought
    past, not read (an index of an archive then costs its headers only).

    This loop runs once per entry of every archive; it is written for speed (one struct call
    per header, numbers parsed by `int` directly, no helper calls in the common case), and every
    unusual shape falls back to the general helpers above.
    """
    r = Reader(raw, length=length)
    global_pax: dict[str, bytes] = {}
    pax: dict[str, bytes] = {}
    long_name: bytes | None = None
    long_link: bytes | None = None
    last = "(start of archive)"
    owners: dict[bytes, tuple[str, str]] = {}
    modes: dict[bytes, tuple[int, int, int]] = {}
    unpack = _HEADER.unpack
    while True:
        off = r.off
        if off + BLOCK <= len(r.buf):  # buffered (nearly always): no call
            header = r.buf[off:off + BLOCK]
            r.off = off + BLOCK
            r.pos += BLOCK
        else:
            header = r.read_upto(BLOCK)
        if len(header) < BLOCK:
            if not header:
                return
            raise FormatError(f"truncated archive: header after {last!r} ends after "
                              f"{len(header)} of {BLOCK} bytes")
        if header == _ZERO_BLOCK:
            return
        name_f, size_f, mtime_f, chk_f, typeflag, link_f = unpack(header)
        try:
            stored = int(chk_f.rstrip(_NUL_SPACE), 8)
        except ValueError:
            try:
                stored = _num(chk_f, "chksum")
            except FormatError:
                stored = -1
        if stored < 0:
            raise FormatError("not a tar archive (no valid header at the start)"
                              if last == "(start of archive)" else
                              f"corrupt tar header after {last!r}")
        # the sum with the checksum field counted as 8 spaces (256); _byte_sum inlined for
        # the usual ASCII header, and the field's own sum taken off (adler32 low half - 1)
        total = (adler32(header) & 0xFFFF) - 1 if header.isascii() else _byte_sum(header)
        if stored != total - (adler32(chk_f) & 0xFFFF) + 257 and \
                stored != _signed_sum(header):
            raise FormatError(f"bad tar header checksum after {last!r}")
        try:
            size = int(size_f.rstrip(_NUL_SPACE), 8)
        except ValueError:
            size = _num(size_f, "size")
        if size < 0:
            raise FormatError(f"negative size in header after {last!r}")
        if typeflag in (b"x", b"g", b"L", b"K"):
            if size > _MAX_META:
                raise FormatError(f"extended header of {size} bytes after {last!r} is too large")
            payload = r.read_exact(size, f"extended header after {last!r}")
            r.skip(-size % BLOCK, "padding")
            if typeflag == b"x":
                pax.update(_parse_pax(payload))
            elif typeflag == b"g":
                global_pax.update(_parse_pax(payload))
            elif typeflag == b"L":
                long_name = payload.split(b"\0", 1)[0]
            else:
                long_link = payload.split(b"\0", 1)[0]
            continue
        records = {**global_pax, **pax} if global_pax or pax else _NO_RECORDS
        if long_name is not None:
            name_b = long_name
        elif "path" in records:
            name_b = records["path"]
        else:
            name_b = name_f.split(b"\0", 1)[0]
            if header[345] and header[257:262] == b"ustar":  # a ustar prefix
                name_b = header[345:500].split(b"\0", 1)[0] + b"/" + name_b
        if long_link is not None:
            link_b = long_link
        elif "linkpath" in records:
            link_b = records["linkpath"]
        else:
            link_b = link_f.split(b"\0", 1)[0] if link_f[0] else b""
        if pax:
            pax = {}
        long_name = long_link = None
        raw_name = name_b.decode("utf-8", "surrogateescape")
        last = raw_name
        kind = _TYPEFLAG_KIND.get(typeflag)
        if kind is None:
            what = "sparse file" if typeflag == b"S" else f"entry type {typeflag!r}"
            raise FormatError(f"unsupported {what}", entry=raw_name)
        if kind == "file" and raw_name[-1:] == "/" and typeflag in (b"0", b"\0"):
            kind = "dir"  # pre-POSIX directories
        try:
            if records:
                if any(k.startswith("GNU.sparse.") for k in records):
                    raise FormatError("unsupported sparse file", entry=raw_name)
                size = int(records["size"]) if "size" in records else size
                uid = int(records["uid"]) if "uid" in records else _num(header[108:116], "uid")
                gid = int(records["gid"]) if "gid" in records else _num(header[116:124], "gid")
            else:
                # mode, uid and gid are a handful of distinct triples per archive: parsed once
                triple = modes.get(header[100:124])
                if triple is None:
                    triple = (_num(header[100:108], "mode") & 0o7777,
                              _num(header[108:116], "uid"), _num(header[116:124], "gid"))
                    if len(modes) < _CACHE_MAX:
                        modes[header[100:124]] = triple
                mode, uid, gid = triple
            path = normalize_path(raw_name, allow_absolute=allow_absolute)
            linkname = link_b.decode("utf-8", "surrogateescape") if link_b else ""
            if kind == "hardlink":
                try:
                    linkname = normalize_path(linkname, what="hardlink target",
                                              allow_absolute=allow_absolute)
                except FormatError as exc:
                    exc.entry = raw_name  # the culprit is the link, not its target
                    raise
        except UnsafePathError as exc:
            if on_unsafe is None:
                exc.entry = raw_name
                raise
            on_unsafe(raw_name, exc.message)
            skipped = size if kind == "file" else 0
            r.skip(skipped + (-skipped % BLOCK), "data of", raw_name)
            continue
        except FormatError as exc:
            exc.entry = exc.entry or raw_name
            raise
        except ValueError:
            raise FormatError("bad numeric PAX record", entry=raw_name) from None
        try:
            mtime = int(mtime_f.rstrip(_NUL_SPACE), 8)
        except ValueError:
            mtime = _num(mtime_f, "mtime")
        if records:
            mode = _num(header[100:108], "mode") & 0o7777
            extra = {k: _dec(v) for k, v in records.items() if k not in _STRUCTURAL_PAX}
            mtime_text = records.get("mtime")
            if mtime_text is not None:
                try:
                    mtime = int(float(mtime_text))
                except ValueError:
                    raise FormatError("bad PAX mtime", entry=raw_name) from None
                if b"." in mtime_text:
                    extra["mtime"] = _dec(mtime_text)
            uname, gname = _names(owners, header[265:329])
            if "uname" in records:
                uname = _dec(records["uname"])
            if "gname" in records:
                gname = _dec(records["gname"])
        else:
            extra = {}
            uname, gname = owners.get(header[265:329]) or _names(owners, header[265:329])
        if kind == "file":
            devmajor = devminor = 0
        else:
            size = 0
            devmajor = _num(header[329:337], "devmajor") if kind in ("char", "block") else 0
            devminor = _num(header[337:345], "devminor") if kind in ("char", "block") else 0
        data = EntryData(r, size, raw_name)
        data.start = r.pos  # offset of the data in the uncompressed stream (random access)
        yield Entry(path, kind, mode, uid, gid, uname, gname, mtime, size, linkname,
                    devmajor, devminor, extra, data)
        # Whatever the consumer did not read is skipped, then the block padding.
        n = data.left + (-size % BLOCK)
        if r.off + n <= len(r.buf):  # buffered (small files): no call
            r.off += n
            r.pos += n
        else:
            r.skip(n, "data of", raw_name)


def _signed_sum(header: bytes) -> int:
    chk = header[:148] + b" " * 8 + header[156:]
    return sum(b - 256 if b > 127 else b for b in chk)

