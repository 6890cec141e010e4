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

from .errors import FormatError, LimitError, UnsafePathError
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


# Numbers, header fields and PAX records alike, are read as Go's archive/tar reads them (the
# runtimes that unpack these archives are Go programs): a value Go refuses is refused here, and
# a value Go would accept but a runtime cannot use (a negative size, an id past 32 bits) too.
# Python's int() alone is laxer than Go's strconv: it takes "1_0", "+7", " 7\t" and any length.
_INT64 = (-(1 << 63), (1 << 63) - 1)
_ID = (0, (1 << 32) - 1)  # Linux uid_t, gid_t; and what dev_t's major and minor halves hold
_RANGE = {"size": (0, _INT64[1]), "uid": _ID, "gid": _ID, "devmajor": _ID, "devminor": _ID}
_TIMES = ("mtime", "atime", "ctime")


def _in_range(what: str, value: int, source: str = "") -> int:
    lo, hi = _RANGE.get(what, _INT64)
    if lo <= value <= hi:
        return value
    raise FormatError(f"{source}{what} {value} is out of range ({lo}..{hi})")


def _num(field_: bytes, what: str) -> int:
    """A numeric header field as Go's parseNumeric reads it: octal padded with spaces and NULs,
    or base-256 (two's complement) when the high bit is set (large ids and sizes, negative
    mtimes). Anything else is refused, as Go refuses it, and so is a value out of range."""
    if field_[:1] and field_[0] & 0x80:
        value = int.from_bytes(field_, "big") - (1 << (8 * len(field_) - 1))
        if field_[0] & 0x40:  # negative base-256
            value = int.from_bytes(field_, "big") - (1 << (8 * len(field_)))
        return _in_range(what, value)
    text = field_.strip(b" \0").split(b"\0", 1)[0]
    if not text:
        return 0
    if not text.isdigit() or b"8" in text or b"9" in text:
        raise FormatError(f"bad numeric field {what}: {field_!r}")
    return _in_range(what, int(text, 8))


def _pax_num(key: str, value: bytes) -> int:
    """A PAX number as Go's strconv.ParseInt(v, 10, 64) reads it, stricter only in refusing a
    leading '+' (no writer puts one there): decimal digits, a '-' for the times alone, then
    the same ranges as header fields. Times keep a fraction of digits (`1.5`); the integer
    seconds are returned. The exponents, infinities and NaN that float() would take are
    refused here, never converted."""
    digits, frac = value, b""
    if key in _TIMES:
        digits, _, frac = value.partition(b".")
        if digits[:1] == b"-":
            digits = digits[1:]
    if not digits.isdigit() or (frac and not frac.isdigit()):
        raise FormatError(f"bad PAX {key} {_dec(value[:40])!r}")
    if len(digits) > 19:  # past int64 (and past int()'s 4,300-digit limit for str)
        raise FormatError(f"PAX {key} {_dec(value[:40])!r} is out of range")
    number = int(digits)
    return _in_range(key, -number if value[:1] == b"-" else number, "PAX ")


_MAX_RECORDS = 10_000  # PAX records for one entry


def _parse_pax(payload: bytes) -> dict[str, bytes]:
    """The records of one PAX header, as Go's parsePAXRecord reads them (a decimal length of
    at least 5, `key=value\n`, no empty key, no NUL in a key or in a name). Trailing NUL
    padding is tolerated; each record costs its own length only (no slice of the rest)."""
    records: dict[str, bytes] = {}
    pos, end = 0, len(payload)
    while pos < end:
        if payload[pos] == 0 and payload.count(0, pos) == end - pos:
            break
        sp = payload.find(b" ", pos, pos + 21)
        digits = payload[pos:sp] if sp > pos else b""
        if not digits.isdigit():
            raise FormatError("malformed PAX record length")
        length = int(digits)
        if length < 5 or pos + length > end or payload[pos + length - 1] != 0x0A:
            raise FormatError("malformed PAX record")
        key, eq, value = payload[sp + 1: pos + length - 1].partition(b"=")
        if not eq or not key or 0 in key or (0 in value and key in _NAME_KEYS):
            raise FormatError("malformed PAX record")
        records[key.decode("utf-8", "surrogateescape")] = value
        if len(records) > _MAX_RECORDS:
            raise LimitError(f"more than {_MAX_RECORDS} PAX records for one entry")
        pos += length
    return records


_NAME_KEYS = (b"path", b"linkpath", b"uname", b"gname")
# Records whose empty value means "use the header field" (POSIX; Go's mergePAX skips them)
_EMPTY_MEANS_ABSENT = {"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime"}
# What GNU tar or Python's tarfile apply from a global header to every later entry and Go
# (every container runtime, actool, rkt) ignores: readers would disagree on those entries.
_GLOBAL_REFUSED = _EMPTY_MEANS_ABSENT | {"atime", "ctime", "charset"}
_GLOBAL_REFUSED_PREFIXES = ("SCHILY.", "GNU.", "LIBARCHIVE.", "RHT.")


def _prefix(header: bytes) -> bytes:
    """The name prefix (bytes 345-500) as Go's archive/tar takes it: always for ustar and
    star headers, never for GNU ones, which keep atime and ctime there (`tar --format=gnu`) --
    except where those do not parse as numbers: Go then reads the prefix all the same, for
    archives written by Go before 1.8, which put one in GNU headers."""
    magic = header[257:263]
    if magic == b"ustar\0":
        end = 476 if header[508:512] == b"tar\0" else 500  # star keeps its times at 476
        return header[345:end].split(b"\0", 1)[0]
    if magic != b"ustar " or header[263:265] != b" \0":
        return b""  # V7: no prefix
    try:
        for start in (345, 357):
            if header[start]:
                _num(header[start:start + 12], "atime")
    except FormatError:
        prefix = header[345:500].split(b"\0", 1)[0]
        return prefix if prefix.isascii() else b""
    return b""


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

    The stream is read as Go's archive/tar reads it, since Go programs (umoci, containerd,
    actool, rkt) unpack what this reads: where GNU tar or Python's tarfile would see other
    names or other data boundaries in the same bytes, the archive is refused rather than
    read one way of several. Global PAX headers are parsed and then ignored, as Go does.

    This loop runs once per entry of every archive; it is written for speed (one struct call
    per header, numbers parsed by `int` directly, no helper calls in the common case), and every
    unusual shape falls back to the general helpers above.
    """
    r = Reader(raw, length=length)
    pax: dict[str, bytes] | None = None
    long_name: bytes | None = None
    long_link: bytes | None = None
    meta = 0  # bytes of extended headers before the coming entry
    pending = False  # a PAX or GNU long-name header waits for its entry
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
        # Numeric fields: plain octal digits are read here, anything else by _num, the
        # strict reader (int() alone would take "1_0", "+7" or "0o7", which Go refuses)
        text = chk_f.rstrip(_NUL_SPACE)
        try:
            stored = int(text, 8) if text.isdigit() else _num(chk_f, "chksum")
        except (ValueError, FormatError):
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
        text = size_f.rstrip(_NUL_SPACE)
        try:
            size = int(text, 8) if text.isdigit() else _num(size_f, "size")
        except (ValueError, FormatError) as exc:  # the header's own name: none better yet
            bad = exc if isinstance(exc, FormatError) else \
                FormatError(f"bad numeric field size: {size_f!r}")
            bad.entry = _dec(name_f.split(b"\0", 1)[0]) or f"(header after {last!r})"
            raise bad from None
        if typeflag in (b"x", b"g", b"L", b"K"):
            meta += size
            if meta > _MAX_META:
                raise LimitError(f"extended headers of more than {_MAX_META} bytes for the entry "
                                 f"after {last!r}")
            payload = r.read_exact(size, f"extended header after {last!r}")
            r.skip(-size % BLOCK, "padding")
            if typeflag != b"g":
                pending = True
            if typeflag == b"x":
                if pax is not None:
                    raise FormatError(f"two PAX headers for the entry after {last!r}: Go and "
                                      "GNU tar use the second alone, Python's tarfile both")
                try:
                    pax = _parse_pax(payload)
                except FormatError as exc:
                    exc.message += f" (PAX header of the entry after {last!r})"
                    raise
                for key in _EMPTY_MEANS_ABSENT.intersection(pax):
                    if not pax[key]:
                        del pax[key]  # POSIX: the header field stands (Go's reading)
            elif typeflag == b"g":
                if pax is not None or long_name is not None or long_link is not None:
                    raise FormatError(f"a global PAX header between an extended header and "
                                      f"its entry after {last!r}: readers disagree on which "
                                      "entry gets it")
                try:
                    records = _parse_pax(payload)
                except FormatError as exc:
                    exc.message += f" (global PAX header after {last!r})"
                    raise
                refused = sorted(k for k in records if k in _GLOBAL_REFUSED
                                 or k.startswith(_GLOBAL_REFUSED_PREFIXES))
                if refused:
                    raise FormatError(f"global PAX header after {last!r} sets {refused[0]!r}: "
                                      "Go ignores it, GNU tar and Python's tarfile apply it to "
                                      "every later entry")
                meta = 0  # a global header is an entry of its own to Go: nothing carries over
            elif typeflag == b"L":
                long_name = payload.split(b"\0", 1)[0]
            else:
                long_link = payload.split(b"\0", 1)[0]
            continue
        records = pax if pax is not None else _NO_RECORDS
        if long_name:  # an empty one names nothing: Go keeps the header's name
            name_b = long_name
        elif "path" in records:
            name_b = records["path"]
        else:
            name_b = name_f.split(b"\0", 1)[0]
            if header[345]:  # a ustar prefix, or a GNU header's atime
                prefix = _prefix(header)
                if prefix:
                    name_b = prefix + b"/" + name_b
        if long_link:
            link_b = long_link
        elif "linkpath" in records:
            link_b = records["linkpath"]
        else:
            link_b = link_f.split(b"\0", 1)[0] if link_f[0] else b""
        if pending:
            pax = long_name = long_link = None
            meta, pending = 0, False
        raw_name = name_b.decode("utf-8", "surrogateescape")
        last = raw_name
        kind = _TYPEFLAG_KIND.get(typeflag)
        if kind is None:
            what = "sparse file" if typeflag == b"S" else f"entry type {typeflag!r}"
            raise FormatError(f"unsupported {what}", entry=raw_name)
        if kind == "file" and raw_name[-1:] == "/":
            if typeflag != b"\0":
                # Go and umoci extract a file and skip its data, GNU tar makes a directory and
                # reads that data as headers: the same bytes would unpack two ways
                raise FormatError("regular file entry whose name ends in '/' (a directory to "
                                  "GNU tar, a file to Go)", entry=raw_name)
            kind = "dir"  # a pre-POSIX directory (typeflag NUL): every reader agrees
        try:
            if records:
                if any(k.startswith("GNU.sparse.") for k in records):
                    raise FormatError("unsupported sparse file", entry=raw_name)
                size = _pax_num("size", records["size"]) if "size" in records else size
                uid = _pax_num("uid", records["uid"]) if "uid" in records else \
                    _num(header[108:116], "uid")
                gid = _pax_num("gid", records["gid"]) if "gid" in records else \
                    _num(header[116:124], "gid")
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
        text = mtime_f.rstrip(_NUL_SPACE)
        try:
            mtime = int(text, 8) if text.isdigit() else _num(mtime_f, "mtime")
        except ValueError:
            raise FormatError(f"bad numeric field mtime: {mtime_f!r}", entry=raw_name) from None
        except FormatError as exc:
            exc.entry = raw_name
            raise
        if records:
            mode = _num(header[100:108], "mode") & 0o7777
            extra = {k: _dec(v) for k, v in records.items() if k not in _STRUCTURAL_PAX}
            try:
                for key in ("atime", "ctime"):
                    if records.get(key):  # empty: unset, as Go reads it
                        _pax_num(key, records[key])
                mtime_text = records.get("mtime")
                if mtime_text is not None:
                    mtime = _pax_num("mtime", mtime_text)
                    if b"." in mtime_text:
                        extra["mtime"] = _dec(mtime_text)
            except FormatError as exc:
                exc.entry = raw_name
                raise
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

