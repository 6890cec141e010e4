"""Buffered reading of a tar stream, under the parser in `tarstream.py`: exact reads for
headers, data handed on in the stream's own pieces, skips that seek when the stream's length
is known. Every short read that the format does not allow is a `FormatError`.
"""

from __future__ import annotations

from typing import BinaryIO

from .errors import FormatError

BLOCK = 512
CHUNK = 1 << 20
DIRECT = 1 << 16  # data reads this large skip the buffer when it is empty


class Reader:
    """Buffered reads of exact sizes; short reads are errors, not silent ends.

    The buffer is consumed by moving an offset, never by deleting from the front (which
    copies the rest every time: ruinous with 512-byte headers); entry data bypasses it
    (`read_some`)."""

    def __init__(self, raw: BinaryIO, *, length: int | None = None) -> None:
        self.raw = raw
        self.buf = b""
        self.off = 0
        self.pos = 0  # offset in the uncompressed stream of the next byte handed out
        # With its length known, `raw.seek(offset from its start)` replaces reading unread
        # data, and the length tells truncation.
        self.end = length
        self._view: memoryview | None = None  # of `buf`, made when first asked for

    def view(self) -> memoryview:
        """A memoryview of `buf` (bytes, never changed in place: a view stays valid after the
        buffer is replaced)."""
        view = self._view
        if view is None or view.obj is not self.buf:
            view = self._view = memoryview(self.buf)
        return view

    def _fill(self, n: int) -> None:
        avail = len(self.buf) - self.off
        if avail >= n:
            return
        parts = [self.buf[self.off:]] if avail else []
        while avail < n:
            chunk = self.raw.read(max(CHUNK, n - avail))
            if not chunk:
                break
            parts.append(chunk)
            avail += len(chunk)
        self.buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self.off = 0

    def read_upto(self, n: int) -> bytes:
        """n bytes, fewer only at the end of the stream: for headers and their PAX or GNU
        payloads (at most 1 MiB); entry data goes through `read_some`."""
        self._fill(n)
        return self._take(n)

    def _take(self, n: int) -> bytes:
        out = self.buf[self.off:self.off + n]
        self.off += len(out)
        self.pos += len(out)
        return out

    def read_some(self, n: int) -> bytes:
        """At most n bytes and at least one, unless the stream has ended: the buffered rest,
        or one read of the stream. Never joins: a decompressor hands out pieces smaller than
        asked for, and joining them into exact sizes cost 0.5 s per GB of layer."""
        avail = len(self.buf) - self.off
        if not avail:
            if n >= DIRECT:
                out = self.raw.read(n)
                self.pos += len(out)
                return out
            self._fill(n)
        return self._take(n)

    def read_exact(self, n: int, what: str) -> bytes:
        out = self.read_upto(n)
        if len(out) != n:
            raise FormatError(f"truncated archive: {what} ends after {len(out)} of {n} bytes")
        return out

    def skip(self, n: int, what: str, name: str = "") -> None:
        """Skip n bytes; `what` and `name` make the message of a truncation (the hot path
        builds no string). An error skipping the data of entry `name` names that entry: the
        stream below may fail there (a compression bomb reaching its limit in data no one
        read), after whoever reads the entries has moved on from it."""
        if n <= 0:
            return
        if self.off + n <= len(self.buf):  # already buffered: just move on
            self.off += n
            self.pos += n
            return
        try:
            self._skip_unbuffered(n, what, name)
        except FormatError as exc:
            raise exc.at(entry=name)

    def _skip_unbuffered(self, n: int, what: str, name: str) -> None:
        if self.end is not None and n >= CHUNK:
            # Indexing a multi-GB archive would otherwise read every layer once more.
            target = self.pos + n
            if target > self.end:
                label = f"{what} {name!r}" if name else what
                raise FormatError(f"truncated archive: {label} is missing {target - self.end} "
                                  "bytes")
            self.raw.seek(target)
            self.buf, self.off, self.pos = b"", 0, target
            return
        while n > 0:
            got = len(self.read_some(min(n, CHUNK)))
            if got == 0:
                label = f"{what} {name!r}" if name else what
                raise FormatError(f"truncated archive: {label} is missing {n} bytes")
            n -= got


class EntryData:
    """The data of the current entry: reads stop at its size and may return less than asked
    (as a raw stream's do); data that ends early is an error.
    A plain slotted class: one is made per entry, and io.RawIOBase's constructor is costly."""

    __slots__ = ("reader", "left", "name", "start")

    def __init__(self, reader: Reader, size: int, name: str) -> None:
        self.start = 0
        self.reader = reader
        self.left = size
        self.name = name

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if n is None or n < 0 or n > self.left:
            n = self.left
        n = min(n, CHUNK * 8)
        r = self.reader
        off = r.off
        if off + n <= len(r.buf):  # a small file, already buffered: slice it out
            r.off = off + n
            r.pos += n
            self.left -= n
            return r.buf[off:off + n]
        try:
            out = r.read_some(n)
        except FormatError as exc:
            # The stream below failed (a compression bomb's limit, corrupt compressed bytes)
            # while a consumer read this entry's data: outside the reader's loop, where nothing
            # else knows which entry it was. (A try costs nothing until it catches.)
            raise exc.at(entry=self.name)
        if not out:
            raise FormatError(f"truncated archive: data of {self.name!r} is missing "
                              f"{self.left} bytes")
        self.left -= len(out)
        return out

    def read_view(self, n: int):
        """As `read`, but what the reader has buffered comes as a memoryview of its buffer
        rather than a copy: for a consumer that only passes the bytes on (`TarWriter`), so that
        small files are not copied on the way through."""
        r = self.reader
        off = r.off
        avail = len(r.buf) - off
        if avail <= 0 or self.left <= 0:
            return self.read(n)
        if n is None or n < 0 or n > self.left:
            n = self.left
        n = min(n, avail)
        r.off = off + n
        r.pos += n
        self.left -= n
        return r.view()[off:off + n]

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)
