"""The tar reader and writer against Python's tarfile as an independent implementation."""

from __future__ import annotations

import io
import tarfile

import pytest

from convert.errors import FormatError, UnsafePathError
from convert.tarstream import Entry, normalize_path, read_entries
from convert.tarwrite import TarWriter


class Sink(io.BytesIO):
    pass


def written(entries: list[tuple[Entry, bytes]]) -> bytes:
    out = Sink()
    w = TarWriter(out)
    for e, data in entries:
        w.add(e, io.BytesIO(data))
    w.close()
    return out.getvalue()


def rewritten(stream, sink):
    """Every entry of the tar `stream` written again by a TarWriter into `sink` (returned)."""
    w = TarWriter(sink)
    for e in read_entries(stream):
        w.add(e)
    w.close()
    return sink


def test_writer_output_is_read_back_by_tarfile_exactly():
    long = "a/" + "b" * 120 + "/" + "c" * 120
    weird = "caf\udce9-latin1"  # a byte that is not UTF-8, carried as a surrogate
    entries = [
        (Entry("dir", "dir", mode=0o1777, mtime=5), b""),
        (Entry(long, "file", mode=0o4755, uid=2_000_000_000, gid=3, uname="ü" * 40,
               gname="g", mtime=1_700_000_000, size=3,
               pax={"SCHILY.xattr.user.k": "v", "atime": "1.5"}), b"abc"),
        (Entry("link", "hardlink", linkname=long), b""),
        (Entry("sym", "symlink", linkname="/" + "t" * 200), b""),
        (Entry("dev", "char", devmajor=4, devminor=64), b""),
        (Entry(weird, "file", size=1), b"x"),
    ]
    data = written(entries)
    assert len(data) % 512 == 0 and data.endswith(bytes(1024))
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == ["dir", long, "link", "sym", "dev", weird]
        m = members[1]
        assert (m.mode, m.uid, m.gid, m.uname, m.mtime) == (0o4755, 2_000_000_000, 3, "ü" * 40,
                                                             1_700_000_000)
        assert m.pax_headers["SCHILY.xattr.user.k"] == "v"
        assert tf.extractfile(m).read() == b"abc"
        assert members[2].linkname == long and members[3].linkname == "/" + "t" * 200
        assert (members[4].devmajor, members[4].devminor) == (4, 64)
    # and our reader gives the same entries back
    back = list((e.path, e.kind, e.mode, e.uid, e.uname, e.linkname, e.pax)
                for e in read_entries(io.BytesIO(data)))
    assert back == [(e.path, e.kind, e.mode, e.uid, e.uname, e.linkname, e.pax)
                    for e, _ in entries]


def test_reader_handles_gnu_long_names_from_tarfile():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("x/" + "n" * 300)
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"hi"))
        ln = tarfile.TarInfo("l")
        ln.type, ln.linkname = tarfile.SYMTYPE, "t" * 150
        tf.addfile(ln)
    got = [(e.path, e.data.read() if e.kind == "file" else e.linkname)
           for e in read_entries(io.BytesIO(buf.getvalue()))]
    assert got == [("x/" + "n" * 300, b"hi"), ("l", "t" * 150)]


def test_bad_checksum_and_mid_header_truncation_are_errors():
    data = bytearray(written([(Entry("a", "file", size=1), b"x")]))
    data[0] = ord("b")
    with pytest.raises(FormatError, match="checksum"):
        list(read_entries(io.BytesIO(bytes(data))))
    good = written([(Entry("a", "file", size=1), b"x"), (Entry("b", "file", size=1), b"y")])
    with pytest.raises(FormatError, match="truncated"):
        list(read_entries(io.BytesIO(good[:1024 + 100])))


class CountingFile(io.FileIO):
    """A real file that counts the bytes read from it."""
    read_bytes = 0

    def read(self, n=-1):
        got = super().read(n)
        self.read_bytes += len(got)
        return got


def test_a_seekable_index_seeks_past_data_and_still_sees_truncation(tmp_path):
    big = bytes(range(256)) * (12 << 12)  # 12 MiB
    archive = tmp_path / "a.tar"
    archive.write_bytes(written([(Entry("big", "file", size=len(big)), big),
                                 (Entry("small", "file", size=2), b"hi"),
                                 (Entry("big2", "file", size=len(big)), big)]))

    def index(path, seekable):
        with CountingFile(path) as fh:
            length = path.stat().st_size if seekable else None
            got = [(e.path, e.size, e.data.start) for e in read_entries(fh, length=length)]
            return got, fh.read_bytes

    plain, plain_read = index(archive, False)
    sought, sought_read = index(archive, True)
    assert sought == plain == [("big", len(big), 512), ("small", 2, 512 * 2 + len(big)),
                               ("big2", len(big), 512 * 4 + len(big))]
    assert plain_read >= 2 * len(big) and sought_read < 3 << 20

    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[:512 * 5 + len(big) + 1000])
    with open(cut, "rb") as fh, pytest.raises(FormatError, match=r"truncated archive: data of "
                                              r"'big2' is missing \d+ bytes"):
        list(read_entries(fh, length=cut.stat().st_size))


@pytest.mark.parametrize("name,expected", [("./a//b/", "a/b"), ("a/./b", "a/b"), ("./", "")])
def test_path_gate_normalises(name, expected):
    assert normalize_path(name) == expected


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "a/..", "a\0b"])
def test_path_gate_refuses(name):
    with pytest.raises(UnsafePathError):
        normalize_path(name)


@pytest.mark.parametrize("entry", [
    Entry("a/b", "file", 0o4755, 65534, 5, "root", "wheel", 1_234_567_890, 77),
    Entry("d", "dir", 0o755), Entry("", "dir"), Entry("l", "symlink", linkname="../x" * 25),
    Entry("l2", "symlink", linkname="../x" * 26), Entry("c", "char", 0o600, devmajor=4,
                                                           devminor=64),
    Entry("h", "hardlink", linkname="a/b"), Entry("n" * 100, "file"), Entry("n" * 101, "file"),
    Entry("d" * 99, "dir"), Entry("d" * 100, "dir"), Entry("ü", "file"),
    Entry("bad\udcff", "file"), Entry("u", "file", uid=0o7777777, gid=0o10000000),
    Entry("s", "file", size=0o77777777777), Entry("s2", "file", size=0o100000000000),
    Entry("m", "file", mtime=-1), Entry("o", "file", uname="x" * 32, gname="y" * 33),
    Entry("x", "file", pax={"SCHILY.xattr.user.k": "v"}),
    Entry("b", "block", 0o660, devmajor=0, devminor=3), Entry("z", "char", devmajor=1),
])
def test_header_fast_path_writes_what_the_general_encoder_writes(entry):
    from convert.tarwrite import _encode_general, encode_header

    assert encode_header(entry) == _encode_general(entry)


class ShortReads(io.RawIOBase):
    """A stream that hands out at most a few hundred KiB per read, of varying size, as a
    decompressor does."""

    def __init__(self, data: bytes) -> None:
        self.src = io.BytesIO(data)
        self.n = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.n += 1
        return self.src.read(min(n if n >= 0 else 1 << 30, 100_000 + 37_000 * (self.n % 7)))


@pytest.mark.parametrize("reader", [io.BytesIO, ShortReads])
def test_large_files_between_small_ones_are_read_exactly(reader):
    """Large reads that start inside the buffer take the buffered rest and then the stream
    directly; every byte must still arrive once, in order, whatever the stream's read sizes."""
    import random

    rng = random.Random(9)
    files = [(f"f{i}", rng.randbytes(size)) for i, size in
             enumerate([10, (3 << 20) + 7, 600, 1 << 20, (1 << 20) + 1, 0, 5 << 20, 3])]
    data = written([(Entry(name, "file", size=len(body)), body) for name, body in files])
    got, largest = [], 0
    for e in read_entries(reader(data)):
        # TarWriter's way: pieces of at most 1 MiB
        parts = []
        while piece := e.data.read(1 << 20):
            parts.append(piece)
            largest = max(largest, len(piece))
        got.append((e.path, b"".join(parts)))
    assert got == files
    # the stream's pieces are passed on as they come, not joined into exact sizes (a copy)
    if reader is ShortReads:
        assert largest <= 100_000 + 37_000 * 6
    else:
        assert largest == 1 << 20
    # and the same through TarWriter, straight from the reader: the bytes come out unchanged
    out = rewritten(reader(data), Sink())
    assert out.getvalue() == data


def test_field_caches_stop_growing_and_stay_right():
    """Owner names and (mode, uid, gid) are decoded once per distinct value, up to a bound
    (a hostile archive with a new value in every header must not grow memory); entries past
    the bound are decoded on their own, just as right."""
    from convert.tarstream import _CACHE_MAX

    n = _CACHE_MAX + 300
    entries = [(Entry(f"f{i}", "file", mode=0o600 + i % 64, uid=i, gid=i + 1, uname=f"u{i}",
                      gname=f"g{i}"), b"") for i in range(n)]
    back = [(e.path, e.mode, e.uid, e.gid, e.uname, e.gname)
            for e in read_entries(io.BytesIO(written(entries)))]
    assert back == [(e.path, e.mode, e.uid, e.gid, e.uname, e.gname) for e, _ in entries]


def test_writes_stay_within_a_chunk_when_pieces_come_short():
    """The writer's queues below count writes, not bytes: a decompressor's short pieces must
    not be gathered into writes past 1 MiB (up to 2 MiB took an OCI -> ACI conversion from 79
    to 93 MB of peak memory)."""

    class Sizes:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def write(self, data: bytes) -> None:
            self.sizes.append(len(data))

    body = bytes(range(256)) * (20 << 12)  # 20 MiB
    sink = Sizes()
    w = TarWriter(sink)
    w.add(Entry("big", "file", size=len(body)), ShortReads(body))
    w.close()
    assert sum(sink.sizes) == 512 + len(body) + 1024
    assert max(sink.sizes) <= 1 << 20


class Pieces:
    """A sink that takes pieces as the compression writers do (`writev`): keeps each list it
    is handed, as a queue below would, and any joined write as a list of one."""

    def __init__(self) -> None:
        self.lists: list[list] = []

    def write(self, data: bytes) -> None:
        self.lists.append([bytes(data)])

    def writev(self, pieces: list) -> None:
        self.lists.append(pieces)

    def value(self) -> bytes:
        return b"".join(b"".join(pieces) for pieces in self.lists)


@pytest.mark.parametrize("reader", [io.BytesIO, ShortReads])
def test_entry_data_passed_as_views_comes_out_exactly(reader):
    """With a sink that takes pieces, a tar reader's entry data goes down as views of the
    reader's buffer (`read_view`): files straddling the reader's 1 MiB buffers (small ones
    split across two, large ones starting inside one) come out byte for byte, as with a sink
    that takes bytes, and each list handed down stays its own (a new one follows)."""
    import random

    rng = random.Random(5)
    sizes = [(1 << 20) - 1536 - 700, 1500, 10, (1 << 20) + 3, 64 << 10, (64 << 10) + 1, 0,
             3 << 20, 511, 513] + [rng.randrange(1, 70_000) for _ in range(60)]
    files = [(Entry(f"f{i}", "file", size=n), rng.randbytes(n)) for i, n in enumerate(sizes)]
    data = written(files)
    sink = rewritten(reader(data), Pieces())
    assert sink.value() == data
    views = [p for pieces in sink.lists for p in pieces if type(p) is memoryview]
    assert views, "no entry data went down as a view"
    assert all(v.readonly for v in views)
    assert len({id(pieces) for pieces in sink.lists}) == len(sink.lists)
    # about 1 MiB a list, as the joined writes were (a small file and its header may top one)
    assert max(sum(map(len, pieces)) for pieces in sink.lists) <= (1 << 20) + (65 << 10)


class Parts(io.RawIOBase):
    """A stream of `parts` made as they are read (a long archive never held whole)."""

    def __init__(self, parts) -> None:
        self.parts = iter(parts)
        self.cur = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while not self.cur:
            self.cur = next(self.parts, b"")
            if not self.cur:
                return b""
        n = len(self.cur) if n is None or n < 0 else n
        out, self.cur = self.cur[:n], self.cur[n:]
        return out


def test_views_handed_down_keep_few_buffers_alive():
    """A view keeps the reader's whole buffer alive. One-byte files each after ~1 MiB that
    nothing writes (a global PAX header here; entries a rendering drops do the same) made a
    list of ~1,000 such views per MiB handed down, and a conversion of a 1 MB gzip ACI of
    1,000 of them peak at 1.5 GB (the queues below count lists, not bytes). A list handed
    down keeps at most a few MiB more alive than its own bytes; the bytes are unchanged."""
    import hostile

    glob = hostile.pax_header([(b"comment", b"a" * ((1 << 20) - 4096))], b"g")

    def stream():
        return Parts([glob + hostile.raw_file(b"f%d" % i, b"x") for i in range(64)] +
                     [bytes(1024)])

    sink = rewritten(stream(), Pieces())
    for pieces in sink.lists:
        buffers = {id(p.obj): len(p.obj) for p in pieces if type(p) is memoryview}
        assert sum(buffers.values()) <= sum(map(len, pieces)) + (4 << 20), len(buffers)
    plain = rewritten(stream(), Sink())
    assert sink.value() == plain.getvalue()
    assert len(list(read_entries(io.BytesIO(plain.getvalue())))) == 64
