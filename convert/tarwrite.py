"""Writing tar entries with deterministic headers, the way Go's archive/tar does: ustar when
every field fits and is ASCII, a PAX extended header otherwise (long or non-ASCII names, large
ids and sizes, xattrs); two zero blocks at the end and no record padding. The same entries
always give the same bytes, which is what makes image IDs and layer digests reproducible.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .errors import FormatError
from .tarbuffer import BLOCK, CHUNK
from .tarstream import _KIND_TYPEFLAG, _ZERO_BLOCK, Entry, _byte_sum, _enc, adler32

def _octal(value: int, width: int) -> bytes | None:
    """The ustar field, or None when it does not fit (the caller then uses PAX)."""
    if value < 0:
        return None
    text = b"%0*o" % (width - 1, value)
    return text + b"\0" if len(text) == width - 1 else None


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _split_ustar_name(name: bytes) -> tuple[bytes, bytes] | None:
    if len(name) <= 100:
        return b"", name
    for i in range(len(name) - 1, 0, -1):
        if name[i:i + 1] == b"/" and i <= 155 and len(name) - i - 1 <= 100 and i > 0:
            return name[:i], name[i + 1:]
    return None


_MAX7 = 0o7777777  # the largest number in an 8-byte field (7 digits and a NUL)
_MAX11 = 0o77777777777  # ... in a 12-byte field


def encode_header(e: Entry) -> bytes:
    """Header bytes for `e` (a PAX extended header first when needed). Directory names get a
    trailing slash, as GNU tar and Go write them.

    Most entries need nothing but a plain ustar block: short ASCII names, small numbers, no PAX
    records. They are packed directly (this runs once per entry of every layer); anything else
    takes the general path below, which gives the same bytes for those entries."""
    kind = e.kind
    name_s = (e.path + "/" if e.path else "./") if kind == "dir" else e.path
    link_s = e.linkname if kind == "symlink" or kind == "hardlink" else ""
    uname, gname = e.uname, e.gname
    if (not e.pax and len(name_s) <= 100 and len(link_s) <= 100 and len(uname) <= 32
            and len(gname) <= 32 and (name_s + link_s + uname + gname).isascii()
            and 0 <= (e.uid | e.gid | e.devmajor | e.devminor) <= _MAX7
            and 0 <= (e.size | e.mtime) <= _MAX11):
        h = _USTAR_FAST(name_s.encode(), b"%07o\0%07o\0%07o\0" % (e.mode & 0o7777, e.uid, e.gid),
                        b"%011o\0%011o\0" % (e.size, e.mtime), b"        ", _KIND_TYPEFLAG[kind],
                        link_s.encode(), b"ustar\x0000", uname.encode(), gname.encode(),
                        b"%07o\0%07o\0" % (e.devmajor, e.devminor)
                        if e.devmajor or e.devminor else _NO_DEVICE)
        # every byte is ASCII here, so one adler32 call gives the checksum (see _byte_sum)
        return h[:148] + b"%06o\0 " % ((adler32(h) & 0xFFFF) - 1) + h[156:]
    return _encode_general(e)


def _encode_general(e: Entry) -> bytes:
    name = _enc(e.path + ("/" if e.kind == "dir" and e.path else ""))
    if e.kind == "dir" and not e.path:
        name = b"./"
    link = _enc(e.linkname) if e.kind in ("symlink", "hardlink") else b""
    uname, gname = _enc(e.uname), _enc(e.gname)
    pax: list[tuple[str, bytes]] = []
    binary = False
    for val in (name, link, uname, gname):
        try:
            val.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
    split = _split_ustar_name(name) if name.isascii() else None
    if split is None:
        split = (b"", b"")
        pax.append(("path", name))
    if len(link) > 100 or not link.isascii():
        pax.append(("linkpath", link))
        link = b""
    fields: dict[str, bytes] = {}
    for key, value, width in (("uid", e.uid, 8), ("gid", e.gid, 8), ("size", e.size, 12),
                              ("mtime", e.mtime, 12)):
        enc = _octal(value, width)
        if enc is None:
            pax.append((key, str(value).encode()))
            enc = _octal(0, width)
        fields[key] = enc  # type: ignore[assignment]
    for key, value in (("uname", uname), ("gname", gname)):
        if len(value) > 32 or not value.isascii():
            pax.append((key, value))
            if key == "uname":
                uname = b""
            else:
                gname = b""
    for key in sorted(e.pax):
        if key == "mtime":
            pax = [p for p in pax if p[0] != "mtime"]
        pax.append((key, _enc(e.pax[key])))
    out = b""
    if pax:
        payload = (b"21 hdrcharset=BINARY\n" if binary else b"") + b"".join(
            _pax_record(k, v) for k, v in pax)
        pax_name = b"././@PaxHeader"
        zero8, zero12 = b"0000000\0", b"00000000000\0"
        size_field = _octal(len(payload), 12) or zero12
        out += _build(pax_name, b"", 0o644, zero8, zero8, size_field, zero12, b"x",
                      b"", b"", b"", 0, 0)
        out += payload + bytes(-len(payload) % BLOCK)
    out += _build(split[1], split[0], e.mode & 0o7777, fields["uid"], fields["gid"],
                  fields["size"], fields["mtime"], _KIND_TYPEFLAG[e.kind], link, uname, gname,
                  e.devmajor, e.devminor)
    return out


# the same block with adjacent numeric fields grouped, for encode_header's single format calls
_USTAR_FAST = struct.Struct("100s24s24s8s1s100s8s32s32s16s167x").pack
_NO_DEVICE = b"0000000\x000000000\x00"
_USTAR = struct.Struct("100s8s8s8s12s12s8s1s100s8s32s32s8s8s155s12x")
_ZERO8 = b"0000000\0"


def _build(name: bytes, prefix: bytes, mode: int, uid: bytes, gid: bytes, size: bytes,
           mtime: bytes, typeflag: bytes, link: bytes, uname: bytes, gname: bytes,
           devmajor: int, devminor: int) -> bytes:
    """One ustar header block: packed in one call, then the checksum patched in."""
    h = _USTAR.pack(name, _octal(mode, 8) or _ZERO8, uid, gid, size, mtime, b" " * 8, typeflag,
                    link, b"ustar\x0000", uname, gname,
                    _octal(devmajor, 8) or _ZERO8 if devmajor else _ZERO8,
                    _octal(devminor, 8) or _ZERO8 if devminor else _ZERO8, prefix)
    return h[:148] + b"%06o\0 " % _byte_sum(h) + h[156:]


_SMALL = 64 << 10  # files up to this size are read whole and queued with their header
_PADDING = [bytes(n) for n in range(BLOCK)]  # by length: no slice made per entry
# A view keeps the reader's whole buffer (~1 MiB) alive, however little of it it shows: a list
# of views handed down may keep at most this much more than its own bytes alive (see `_hold`)
_HELD_SLACK = 2 * CHUNK


class TarWriter:
    """Writes entries to a sink with `write(bytes)`. Ends with exactly two zero blocks.

    Headers and small files are gathered into writes of about 1 MiB: every write costs the
    hashing and compressing layers below a call each, which archives of small files felt."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.entries = 0
        self._pending: list[bytes] = []
        self._size = 0
        # the reader buffers that views in `_pending` keep alive: their bytes, counted in the
        # list that took the first view of each, and the buffer of the last view
        self._held = 0
        self._buffer: bytes | None = None
        # a sink that takes pieces gets the gathered list itself (see compression.writev)
        self._writev = getattr(sink, "writev", None)

    def _put(self, data: bytes) -> None:
        if self._size + len(data) > CHUNK and self._pending:
            self.flush()  # writes stay near 1 MiB: the queues below count writes, not bytes
        self._pending.append(data)
        self._size += len(data)
        if type(data) is memoryview:
            self._hold(data)
        if self._size >= CHUNK:
            self.flush()

    def _hold(self, view: memoryview) -> None:
        """Count the buffer behind a view just gathered. Views come in stream order, so a
        buffer's views follow one another: one comparison tells a new one. A list that keeps
        more of them alive than it carries (small files among data no one reads: entries a
        rendering drops, global PAX headers) is joined at once: it could otherwise hold a MiB
        per one-byte file, and the queues below count lists, not bytes."""
        buffer = view.obj
        if buffer is not self._buffer:
            self._buffer = buffer
            self._held += len(buffer)
            if self._held > self._size + _HELD_SLACK:
                self.flush()

    def flush(self) -> None:
        if self._pending:
            if self._writev is not None and self._held <= self._size + _HELD_SLACK:
                self._writev(self._pending)  # a new list follows: the sink may keep this one
            else:  # joined: the copy lets go of the buffers
                self.sink.write(b"".join(self._pending))
            self._pending, self._size, self._held = [], 0, 0

    def add(self, e: Entry, data: BinaryIO | None = None) -> None:
        header = encode_header(e)
        self.entries += 1
        size = e.size
        if e.kind != "file" or size == 0:
            self._put(header)
            return
        src = data if data is not None else e.data
        # a tar reader's entry data comes as views of its buffer, not copies (read_view);
        # with a sink taking pieces, nothing is copied on this thread
        read = getattr(src, "read_view", None) if self._writev is not None else None
        if read is None and src is not None:
            read = src.read
        if size <= _SMALL and src is not None:
            # a small file comes in one read: header, data and padding are queued at once
            chunk = read(size)
            if len(chunk) == size:
                pad = _PADDING[-size % BLOCK]
                self._pending += (header, chunk, pad)
                self._size += len(header) + size + len(pad)
                if type(chunk) is memoryview:
                    self._hold(chunk)
                if self._size >= CHUNK:
                    self.flush()
                return
            self._put(header)
            self._put(chunk)
            left = size - len(chunk)
        else:
            self._put(header)
            left = size
        while left:
            chunk = read(min(left, CHUNK)) if src is not None else b""
            if not chunk:
                raise FormatError(f"data of {e.path!r} ended {left} bytes early", entry=e.path)
            self._put(chunk)
            left -= len(chunk)
        if size % BLOCK:
            self._put(_PADDING[-size % BLOCK])

    def close(self) -> None:
        self._put(_ZERO_BLOCK * 2)
        self.flush()
