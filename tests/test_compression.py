"""The gzip writer: one member per 4 MiB segment at fixed offsets, each ISA-L's or, for very
redundant segments, zlib-ng's when that is smaller (compression.gzip_member)."""

from __future__ import annotations

import gzip
import hashlib
import random
import zlib

import pytest
from isal import isal_zlib

from convert.background import BackgroundWriter
from convert.compression import GZIP_SEGMENT, Compressor, HashingWriter


class Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)


def compressed(data: bytes, piece: int) -> bytes:
    sink = Sink()
    comp = Compressor("gzip", sink)
    for off in range(0, len(data), piece):
        comp.write(data[off:off + piece])
    comp.close()
    return b"".join(sink.parts)


def members_bytes(blob: bytes) -> list[bytes]:
    """Every gzip member of a stream, found by reading it member by member with zlib,
    independently of the writer."""
    out = []
    while blob:
        d = zlib.decompressobj(31)
        d.decompress(blob)
        assert d.eof, "member cut short"
        rest = d.unused_data
        out.append(blob[:len(blob) - len(rest)])
        blob = rest
    return out


def members(blob: bytes) -> list[tuple[int, int]]:
    """(OS byte, uncompressed size) of every gzip member."""
    return [(m[9], len(zlib.decompress(m, 31))) for m in members_bytes(blob)]


def mixed(n_segments: float) -> bytes:
    rng = random.Random(11)
    half = int(GZIP_SEGMENT * n_segments / 2)
    # small text files, much alike (the benchmarks' 200,000-file tree): ISA-L shrinks them
    # 40x, zlib-ng about 60x
    text = b"".join(b"file %d " % n * rng.randint(1, 40) for n in range(half // 100))
    assert len(text) >= half
    return rng.randbytes(half) + text[:half]


def test_output_depends_on_the_bytes_not_on_how_they_were_written():
    data = mixed(2.6)
    outs = {compressed(data, piece) for piece in (333, 4096, 1 << 20, (1 << 20) + 7,
                                                  GZIP_SEGMENT, len(data))}
    assert len(outs) == 1
    blob = outs.pop()
    assert gzip.decompress(blob) == data
    sizes = [size for _, size in members(blob)]
    assert sizes == [GZIP_SEGMENT, GZIP_SEGMENT, len(data) - 2 * GZIP_SEGMENT]


def test_redundant_segments_take_the_smaller_zlib_ng_member():
    data = mixed(4)
    blob = compressed(data, 1 << 20)
    kinds = [os_byte for os_byte, _ in members(blob)]
    # ISA-L writes OS byte 255 (unknown), zlib-ng 3 (Unix): random halves stay with ISA-L,
    # the text half is smaller with zlib-ng
    assert kinds == [255, 255, 3, 3]
    text = data[2 * GZIP_SEGMENT:3 * GZIP_SEGMENT]
    ours = members_bytes(blob)[2]
    assert len(ours) < len(isal_zlib.compress(text, 2, 31))


def test_empty_stream_is_one_empty_member():
    blob = compressed(b"", 1)
    assert members(blob) == [(255, 0)]
    assert gzip.decompress(blob) == b""


KINDS = ["gzip", "zstd", "bzip2", "xz", "none"]


def sample(kind: str) -> bytes:
    """Past a gzip segment for gzip; less for the slow ones (xz: ~1 MB/s)."""
    return mixed(1.3) if kind == "gzip" else mixed(1.3)[GZIP_SEGMENT - (1 << 20):][:3 << 20]


def as_lists(data: bytes, seed: int) -> list[list]:
    """`data` cut into lists of pieces of every size, bytes and memoryviews mixed, as
    `TarWriter` hands them down (headers, views of a reader's buffer, padding)."""
    rng = random.Random(seed)
    view = memoryview(data)
    lists, piece_list, off = [], [], 0
    while off < len(data):
        n = rng.choice([1, 511, 512, 4096, 70_000, 1 << 20])
        piece = view[off:off + n]
        piece_list.append(piece if rng.random() < 0.5 else bytes(piece))
        off += n
        if rng.random() < 0.1:
            lists.append(piece_list)
            piece_list = []
    return lists + [piece_list]


@pytest.mark.parametrize("kind", KINDS)
def test_pieces_give_the_bytes_one_write_gives(kind):
    """`Compressor.writev` of lists of pieces is `write` of their bytes, for every
    compression; its sink only ever gets bytes."""
    data = sample(kind)
    whole = Sink()
    comp = Compressor(kind, whole)
    comp.write(data)
    comp.close()
    pieces = Sink()
    comp = Compressor(kind, pieces)
    for pieces_list in as_lists(data, 3):
        comp.writev(pieces_list)
    comp.close()
    assert b"".join(pieces.parts) == b"".join(whole.parts)
    assert all(type(part) is bytes for part in pieces.parts)


@pytest.mark.parametrize("kind", KINDS)
def test_the_layer_chain_passes_pieces_in_order(kind):
    """The chain `encode_layer` and the ACI writer build (a background thread, a threaded
    hash of the uncompressed bytes, the compressor, a sink that takes bytes only: a blob file
    or an upload) gets every piece once, in order: the same blob and the same hash as the
    bytes written in one go."""
    data = sample(kind)
    sink = Sink()
    hashed = HashingWriter(Compressor(kind, sink), threaded=True)
    background = BackgroundWriter(hashed)
    for pieces_list in as_lists(data, 4):
        background.writev(pieces_list)
    background.close()
    hashed.sink.close()
    assert hashed.hash.hexdigest() == hashlib.sha256(data).hexdigest()
    assert hashed.count == len(data)
    assert all(type(part) is bytes for part in sink.parts)
    expect = Sink()
    comp = Compressor(kind, expect)
    comp.write(data)
    comp.close()
    assert b"".join(sink.parts) == b"".join(expect.parts)
