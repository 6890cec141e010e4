"""Detect, open and write compressed streams, and hash bytes as they pass.

Detection is by magic bytes only, never by file name or media type: ACIs of every compression
share the `.aci` extension, and docker/skopeo archives mislabel layer compression.

Writers are deterministic: gzip with mtime 0, no file name, fixed levels and fixed segment
boundaries (`GzipMembers`), so the same input always yields the same blob digest.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import sys
import zlib
from typing import BinaryIO

try:  # ISA-L deflate: ~10x zlib's speed at level 6 for <1% more bytes (see the README)
    from isal import isal_zlib as gzlib
except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps us working without
    gzlib = zlib
try:  # zlib-ng: zlib's output sizes at 2-3x its speed, for the segments ISA-L does poorly on
    from zlib_ng import zlib_ng as strong_zlib
except ImportError:  # pragma: no cover - a dependency, as isal
    strong_zlib = zlib

from .errors import FormatError, LimitError

MAGIC = {
    "gzip": b"\x1f\x8b",
    "bzip2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
}


# Decompressor memory, which the input chooses (an xz dictionary, a zstd window): the limits
# admit every preset of both tools' usual levels (xz -9/-9e: a 64 MiB dictionary, 65 MiB to
# decode; zstd to level 21 and --long=26) and refuse the rest as bad input
XZ_MEMLIMIT = 80 << 20
ZSTD_MAX_WINDOW = 1 << 26


def sniff(head: bytes) -> str:
    """'gzip', 'bzip2', 'xz', 'zstd', 'tar' (ustar magic at 257) or 'unknown'."""
    for name, magic in MAGIC.items():
        if head.startswith(magic):
            return name
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    return "unknown"


class _Peek:
    """A read-only wrapper that lets us look at the first bytes without seeking (pipes work)."""

    def __init__(self, raw: BinaryIO, n: int = 512) -> None:
        self.raw = raw
        self.head = raw.read(n)

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                out, self.head = self.head + self.raw.read(), b""
                return out
            out, self.head = self.head[:n], self.head[n:]
            if len(out) < n:
                out += self.raw.read(n - len(out))
            return out
        return self.raw.read(n)


class _Decompressed:
    """A streaming decompressor with a guard against compression bombs: more than `limit`
    output bytes raises `LimitError` before they can reach the disk. Multi-member gzip, bzip2
    and xz streams are legal and read to the end; NUL padding after a member is skipped, and
    counted as output against `limit` (it costs as much time as output does). The memory a
    decompressor may take is bounded too (`XZ_MEMLIMIT`, `ZSTD_MAX_WINDOW`)."""

    def __init__(self, raw, kind: str, limit: int | None) -> None:
        self.raw = raw
        self.kind = kind
        self.limit = limit
        self.out = 0
        self._in = b""  # compressed bytes read but not yet fed
        if kind == "zstd":
            import zstandard

            from .zstd_frames import Tee, ZstdFrames

            self._frames = ZstdFrames()
            self._zstd_error = zstandard.ZstdError
            self._zr = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
                Tee(raw, self._frames.feed), read_across_frames=True, closefd=False)
        else:
            self._d = self._new()

    def _new(self):
        if self.kind == "gzip":
            return gzlib.decompressobj(31)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)

    def _more(self) -> bytes:
        chunk = self.raw.read(1 << 18)
        if not chunk:
            raise FormatError(f"truncated {self.kind} stream")
        return chunk

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        try:
            data = self._zr.read(n) if self.kind == "zstd" else self._read(n)
            if not data and self.kind == "zstd" and not self._frames.complete():
                raise FormatError("truncated zstd stream")
        except lzma.LZMAError as exc:
            # liblzma's LZMA_MEMLIMIT_ERROR reaches Python only as this message: the one error
            # told apart by its words, because the stdlib gives it no other mark
            if "memory usage limit" in str(exc).lower():
                raise LimitError(f"xz stream needs more than {XZ_MEMLIMIT >> 20} MiB of memory "
                                 "to decompress (a dictionary larger than xz -9's)") from None
            raise FormatError(f"corrupt xz stream: {exc}") from None
        except (zlib.error, gzlib.error, OSError, EOFError, ValueError) as exc:
            raise FormatError(f"corrupt {self.kind} stream: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError, imported lazily
            if self.kind == "zstd" and isinstance(exc, self._zstd_error):
                if self._frames.window > ZSTD_MAX_WINDOW:
                    raise LimitError(f"zstd frame needs a window larger than "
                                     f"{ZSTD_MAX_WINDOW >> 20} MiB to decompress (zstd level 22, or "
                                     "a long-distance window of 128 MiB and up)") from None
                raise FormatError(f"corrupt zstd stream: {exc}") from None
            raise
        self._count(len(data))
        return data

    def _count(self, n: int) -> None:
        self.out += n
        if self.limit is not None and self.out > self.limit:
            raise LimitError(f"decompressed size exceeds the limit of {self.limit} bytes "
                             "(a compression bomb?); the limit is the max-expand option",
                             hint_option="max_expand")

    def _read(self, n: int) -> bytes:
        while True:
            if self._d.eof:
                rest = self._d.unused_data  # zlib also leaves it in unconsumed_tail
                while True:  # NUL padding: skipped a chunk at a time, never gathered
                    data = rest.lstrip(b"\0")
                    self._count(len(rest) - len(data))
                    if data:
                        break
                    rest = self.raw.read(1 << 18)
                    if not rest:
                        return b""
                self._in = data
                self._d = self._new()
            if self.kind == "gzip":
                if not self._in:
                    self._in = self._more()
                out = self._d.decompress(self._in, n)
                self._in = self._d.unconsumed_tail
            else:
                if self._d.needs_input:
                    chunk, self._in = self._in or self._more(), b""
                else:
                    chunk = b""
                out = self._d.decompress(chunk, max_length=n)
            if out:
                return out


def open_decompressed(raw: BinaryIO, *, allowed: tuple[str, ...], limit: int | None = None,
                      what: str = "archive"):
    """Return (kind, reader) for a possibly compressed tar stream. `allowed` lists the kinds
    this format permits ('tar' meaning uncompressed)."""
    peek = _Peek(raw)
    kind = sniff(peek.head)
    if kind == "unknown" and not peek.head.strip(b"\0"):
        # Nothing, or an end-of-archive marker alone: an empty archive to every tar reader,
        # and what buildah and podman write for a commit that changes no file (1024 zeros).
        # A short run of zeros is handed on too: the tar reader names the truncation.
        kind = "tar"
    if kind not in allowed:
        if kind == "unknown":
            raise FormatError(f"not a tar {what}: no known compression magic and no ustar header")
        raise FormatError(f"{kind} compression is not allowed for a {what} "
                          f"(allowed: {', '.join(k for k in allowed if k != 'tar')} or none)")
    if kind == "tar":
        return kind, peek
    return kind, _Decompressed(peek, kind, limit)


class HashingReader:
    """Hashes everything read through it; `count` is the number of bytes seen. With `threaded`,
    the hash runs in a thread of its own (`ThreadedHash`: call `hash.close()` on every way
    out); with no `algorithm`, it only counts."""

    def __init__(self, raw, algorithm: str | None = "sha256", *, threaded: bool = False,
                 depth: int = 8) -> None:
        self.raw = raw
        h = hashlib.new(algorithm) if algorithm else None
        self.hash = ThreadedHash(h, depth) if threaded and h is not None else h
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if self.hash is not None and data:
            self.hash.update(data)
        self.count += len(data)
        return data


class ThreadedHash:
    """hash.update() in a worker thread, fed through a queue of `depth` chunks (MiB in flight):
    hashlib releases the GIL, so a hash of a whole stream overlaps the work of the thread that
    feeds it. `close()` (or `hexdigest()`) must be called however the stream ends, or the
    worker waits forever."""

    def __init__(self, h, depth: int = 8) -> None:
        import queue
        import threading

        self.h = h
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        update = self.h.update
        while (item := self.q.get()) is not None:
            if type(item) is list:  # pieces (`update_all`)
                for piece in item:
                    update(piece)
            else:
                update(item)

    def update(self, data: bytes) -> None:
        self.q.put(data)

    def update_all(self, pieces: list) -> None:
        """Every piece, in order, as one item of the queue (the list must not change after)."""
        self.q.put(pieces)

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        if self.thread.is_alive():
            self.q.put(None)
            self.thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self.h.hexdigest()


class HashingWriter:
    """Hashes and counts everything written, then passes it on; with `threaded`, the hash runs
    in a thread of its own (see `ThreadedHash`; then `hash.close()` on every way out)."""

    def __init__(self, sink, algorithm: str = "sha256", *, threaded: bool = False) -> None:
        self.sink = sink
        h = hashlib.new(algorithm)
        self.hash = ThreadedHash(h) if threaded else h
        self.count = 0

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.count += len(data)
        self.sink.write(data)

    def writev(self, pieces: list) -> None:
        if isinstance(self.hash, ThreadedHash):
            self.hash.update_all(pieces)
        else:
            for piece in pieces:
                self.hash.update(piece)
        self.count += sum(map(len, pieces))
        writev(self.sink, pieces)


def writev(sink, pieces: list) -> None:
    """`pieces` (bytes or memoryviews) written to `sink` in order: handed on whole to a sink
    that takes pieces (`writev`, as the writers in this module have), else joined into one
    write. `TarWriter` gathers headers and data into lists of ~1 MiB; joining them on the main
    thread was a copy of every byte of a layer there, which is the one thread a conversion's
    tar work cannot leave (the copy now happens once, where gzip cuts its segments). Files
    are not given pieces (their `writelines` makes a small write of each)."""
    method = getattr(sink, "writev", None)
    if method is not None:
        method(pieces)
    else:
        sink.write(b"".join(pieces))


GZIP_SEGMENT = 4 << 20  # uncompressed bytes per gzip member
GZIP_LEVEL = 2 if gzlib is not zlib else 6  # ISA-L runs 0-3; 2 is its smallest fast output
STRONG_LEVEL = 5  # on the small-file benchmark: as small as level 6 (4.84 MB), 40% faster
STRONG_BELOW = 1 / 8  # a segment ISA-L shrinks below this ratio is tried with zlib-ng too


def gzip_member(segment: bytes | memoryview) -> bytes:
    """One gzip member for one segment: ISA-L, or zlib-ng where that is smaller. ISA-L is
    about 1 GB/s but leaves 6-7% on the table for very redundant data (trees of small text
    files); zlib-ng level 5 is fast on exactly such data, so only segments ISA-L already
    shrinks more than 8x pay for the second try (on the benchmarks' 1 GiB rootfs, 1 of 260)."""
    out = gzlib.compress(segment, GZIP_LEVEL, 31)
    if len(out) < len(segment) * STRONG_BELOW:
        other = strong_zlib.compress(segment, STRONG_LEVEL, 31)
        if len(other) < len(out):
            return other
    return out


class GzipMembers:
    """A compressobj for gzip that writes one member per `GZIP_SEGMENT` bytes of input, at
    fixed offsets.

    Fixed offsets make the blob a function of the bytes alone: ISA-L's output depends on how
    its input is split into calls, so a stream fed as the writer above happens to buffer would
    change its digest whenever that buffering changes. Separate members also let each segment
    take the compressor that suits it (`gzip_member`). A multi-member file is one gzip stream
    to every reader (RFC 1952 §2.2: GNU gzip, Go's gzip.Reader, Python's gzip), and the
    dictionary reset every 4 MiB costs well under 0.1%."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.size = 0
        self.members = 0

    def compress(self, data: bytes) -> bytes:
        return self.compress_all([data])

    def compress_all(self, pieces: list) -> bytes:
        """`compress` of the pieces' bytes in order: the segments are cut from the joined
        pieces, so where the pieces begin and end does not change the output."""
        self.pending += pieces
        self.size += sum(map(len, pieces))
        if self.size < GZIP_SEGMENT:
            return b""
        buf = b"".join(self.pending)
        whole = len(buf) - len(buf) % GZIP_SEGMENT
        view = memoryview(buf)
        out = [gzip_member(view[off:off + GZIP_SEGMENT]) for off in range(0, whole, GZIP_SEGMENT)]
        self.members += len(out)
        rest = buf[whole:]
        self.pending, self.size = ([rest] if rest else []), len(rest)
        return b"".join(out)

    def flush(self) -> bytes:
        if not self.pending and self.members:
            return b""
        self.members += 1  # an empty stream is still one (empty) member
        out = gzip_member(b"".join(self.pending))
        self.pending, self.size = [], 0
        return out


def encoder_id(kind: str) -> str:
    """What a compressed blob's bytes depend on besides its input: the kind, the libraries and
    their levels. A memo of encoded layers (`registry/memo.py`) keys on it, so a blob made
    with another library or level is never taken for this one's."""
    def lib(module) -> str:
        package = sys.modules.get(module.__name__.partition(".")[0], module)
        return f"{module.__name__}/{getattr(package, '__version__', '')}" \
            f"/{getattr(module, 'ZLIB_RUNTIME_VERSION', '')}"

    if kind == "gzip":
        return (f"gzip:{lib(gzlib)}:{GZIP_LEVEL}:{GZIP_SEGMENT}:{lib(strong_zlib)}:"
                f"{STRONG_LEVEL}:{STRONG_BELOW}")
    if kind == "zstd":
        import zstandard

        return f"zstd:{zstandard.__version__}:{Compressor.ZSTD_LEVEL}"
    if kind == "bzip2":
        return f"bzip2:{Compressor.BZIP2_LEVEL}"
    if kind == "xz":
        return f"xz:check{Compressor.XZ_CHECK}"
    return kind


# Input per call into the slow compressors (xz ~1 MB/s on text, bzip2 ~10 MB/s): a
# cancelled conversion waits for one slice at most, not for a whole ~1 MiB write. Both
# libraries' output does not depend on how the input is split (test_compression checks it).
SLOW_SLICE = 64 << 10


class Compressor:
    """Deterministic compressing writer: `write()` in, compressed bytes to `sink`.

    `cancel()` (from another thread) makes the write in progress stop at its next slice and
    every later write do nothing: the output is being thrown away
    (`background.BackgroundWriter.abort`)."""

    ZSTD_LEVEL = 3
    BZIP2_LEVEL = 9
    XZ_CHECK = lzma.CHECK_CRC64  # the default preset otherwise

    def __init__(self, kind: str, sink) -> None:
        self.kind = kind
        self.sink = sink
        self.cancelled = False
        self._slice = SLOW_SLICE if kind in ("xz", "bzip2") else None
        if kind == "gzip":
            self._c = GzipMembers()
        elif kind == "zstd":
            import zstandard

            self._c = zstandard.ZstdCompressor(level=self.ZSTD_LEVEL).compressobj()
        elif kind == "bzip2":
            self._c = bz2.BZ2Compressor(self.BZIP2_LEVEL)
        elif kind == "xz":
            self._c = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=self.XZ_CHECK)
        elif kind == "none":
            self._c = None
        else:
            raise ValueError(kind)

    def write(self, data: bytes) -> None:
        if self.cancelled:
            return
        if self._c is None:
            self.sink.write(data)
            return
        if self._slice is None or len(data) <= self._slice:
            out = self._c.compress(data)
            if out:
                self.sink.write(out)
            return
        view = memoryview(data)
        for off in range(0, len(view), self._slice):
            if self.cancelled:
                return
            out = self._c.compress(view[off:off + self._slice])
            if out:
                self.sink.write(out)

    def writev(self, pieces: list) -> None:
        if self.cancelled:
            return
        if self.kind == "gzip":
            out = self._c.compress_all(pieces)
            if out:
                self.sink.write(out)
        elif self._c is None:
            writev(self.sink, pieces)
        else:  # one call per piece would cost zstd, bzip2 and xz a call per tar header
            self.write(b"".join(pieces))

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        if self._c is not None and not self.cancelled:
            out = self._c.flush()
            if out:
                self.sink.write(out)

