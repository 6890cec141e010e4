"""Where a zstd stream ends: python-zstandard's stream reader ends quietly on a frame cut short,
so the compressed bytes are walked beside it (RFC 8878 §3.1) to tell a complete stream from a
truncated one. Used by `compression._Decompressed`; kept apart so that module stays the
detect-open-write room it is.
"""

from __future__ import annotations

from .errors import FormatError


class Tee:
    """Hands every byte read through it to `sink` as well: the frame walker sees the
    compressed bytes the decompressor reads."""

    def __init__(self, raw, sink) -> None:
        self.raw, self.sink = raw, sink

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sink(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class ZstdFrames:
    """Walks zstd frame and block headers (RFC 8878 §3.1) over the compressed bytes, without
    decompressing, to tell a complete stream from a truncated one: python-zstandard's stream
    reader ends quietly on a frame cut short. `window` is the largest window a frame header
    seen so far asks for (§3.1.1.1.2): the decoder refuses a frame over its limit, and this
    says so without reading the decoder's message."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.state = "magic"
        self.need = 4
        self.checksum = False
        self.seen = False
        self.window = 0
        self._header = (False, 0)  # (single segment, Dictionary_ID field size) of this frame

    def feed(self, data: bytes) -> None:
        view, i = memoryview(data), 0
        while i < len(view):
            if self.state in ("block-body", "skip"):  # counted, never copied
                take = min(self.need, len(view) - i)
                i += take
                self.need -= take
                if self.need == 0:
                    self._step(b"")
                continue
            take = min(self.need - len(self.buf), len(view) - i)
            self.buf += view[i:i + take]
            i += take
            if len(self.buf) == self.need:
                chunk, self.buf = bytes(self.buf), bytearray()
                self._step(chunk)

    def _step(self, chunk: bytes) -> None:
        st = self.state
        if st == "magic":
            magic = int.from_bytes(chunk, "little")
            self.seen = True
            if 0x184D2A50 <= magic <= 0x184D2A5F:
                self.state, self.need = "skip-size", 4
            elif magic == 0xFD2FB528:
                self.state, self.need = "fhd", 1
            else:
                raise FormatError("corrupt zstd stream: bad frame magic")
        elif st == "skip-size":
            self.state, self.need = "skip", int.from_bytes(chunk, "little")
            if self.need == 0:
                self.state, self.need = "magic", 4
        elif st == "skip":
            self.state, self.need = "magic", 4
        elif st == "fhd":
            fhd = chunk[0]
            fcs_flag, single = fhd >> 6, (fhd >> 5) & 1
            self.checksum = bool(fhd & 4)
            did = (0, 1, 2, 4)[fhd & 3]
            self._header = (bool(single), did)
            fcs = (1 if single else 0, 2, 4, 8)[fcs_flag]
            rest = (0 if single else 1) + did + fcs
            self.state, self.need = ("header-rest", rest) if rest else ("block", 3)
        elif st == "header-rest":
            single, did = self._header
            if single:  # the window is the content size (a 2-byte field counts from 256)
                fcs = chunk[did:]
                window = int.from_bytes(fcs, "little") + (256 if len(fcs) == 2 else 0)
            else:
                exponent, mantissa = chunk[0] >> 3, chunk[0] & 7
                base = 1 << (10 + exponent)
                window = base + (base >> 3) * mantissa
            self.window = max(self.window, window)
            self.state, self.need = "block", 3
        elif st == "block":
            h = int.from_bytes(chunk, "little")
            last, btype, size = h & 1, (h >> 1) & 3, h >> 3
            if btype == 3:
                raise FormatError("corrupt zstd stream: reserved block type")
            body = 1 if btype == 1 else size
            self.last = bool(last)
            self.state, self.need = ("block-body", body) if body else self._after_block()
        elif st == "block-body":
            self.state, self.need = self._after_block()
        elif st == "checksum":
            self.state, self.need = "magic", 4

    def _after_block(self) -> tuple[str, int]:
        if not self.last:
            return "block", 3
        return ("checksum", 4) if self.checksum else ("magic", 4)

    def complete(self) -> bool:
        return self.seen and self.state == "magic" and not self.buf
