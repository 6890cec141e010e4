"""The tar reader against shapes that readers disagree on and numbers no runtime accepts
(issue 20). The archives are built byte by byte (fixtures/hostile.py), since no tar writer
produces them; where a real tool writes the shape (`tar --format=gnu`), it is used too.

The rule each test holds the reader to: read the bytes as Go's archive/tar reads them (umoci,
containerd, actool and rkt are Go programs), and refuse what would unpack in two ways or not
at all, naming the entry."""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
import tarfile

import pytest

from convert.errors import FormatError, LimitError
from convert.tarstream import read_entries
from hostile import END, pax_header, raw_file, raw_header


def read(data: bytes, limit: int = 50) -> list[tuple]:
    """(path, kind, size, data, uid, gid, mtime, pax) of at most `limit` entries: a reader
    that loops yields the same entries forever, and the test then fails instead of hanging."""
    out = []
    for e in itertools.islice(read_entries(io.BytesIO(data)), limit):
        body = e.data.read() if e.kind == "file" else b""
        out.append((e.path, e.kind, e.size, body, e.uid, e.gid, e.mtime, e.pax))
    return out


def refused(data: bytes, match: str, entry: str | None) -> FormatError:
    with pytest.raises(FormatError, match=match) as info:
        read(data)
    if entry is not None:
        assert info.value.entry == entry, str(info.value)
    return info.value


# --- 1: a negative PAX size looped; PAX numbers get the rules of header fields --------------


def test_negative_pax_size_is_refused_instead_of_stepping_back():
    """The old reader skipped `size` bytes after the entry: -1536 stepped back onto the PAX
    header and read the same entry forever."""
    data = pax_header([(b"size", b"-1536")]) + raw_file(b"negsize", b"") + \
        raw_file(b"after", b"x") + END
    refused(data, "bad PAX size", "negsize")


@pytest.mark.parametrize("key,value", [
    ("size", b"-1"), ("size", b"1_0"), ("size", b"+1"), ("size", b" 1"), ("size", b"1 "),
    ("size", b"1\t"), ("size", b"0x1"), ("size", b"9223372036854775808"), ("size", b"1" * 5000),
    ("uid", b"-5"), ("uid", b"4294967296"), ("uid", b"1_000"), ("gid", b"99999999999999999999"),
    ("gid", b"-1"), ("mtime", b"1e400"), ("mtime", b"-inf"), ("mtime", b"inf"),
    ("mtime", b"nan"), ("mtime", b"1.5e3"), ("mtime", b"1_0"), ("mtime", b"+1"),
    ("mtime", b".5"), ("mtime", b"1.-5"), ("mtime", b"9223372036854775808"),
    ("atime", b"1e400"), ("ctime", b"nan"),
])
def test_pax_numbers_go_refuses_are_refused_naming_the_entry(key, value):
    data = pax_header([(key.encode(), value)]) + raw_file(b"f", b"x") + END
    refused(data, f"PAX {key}", "f")


@pytest.mark.parametrize("key,value,field,expected", [
    ("mtime", b"1.5", 6, 1), ("mtime", b"-1.5", 6, -1), ("mtime", b"5.", 6, 5),
    ("mtime", b"-9223372036854775808", 6, -(1 << 63)), ("uid", b"4294967295", 4, (1 << 32) - 1),
    ("gid", b"0", 5, 0), ("size", b"1", 2, 1),
])
def test_pax_numbers_go_accepts_are_read_as_go_reads_them(key, value, field, expected):
    data = pax_header([(key.encode(), value)]) + raw_file(b"f", b"x") + END
    assert read(data)[0][field] == expected


def test_an_empty_pax_value_leaves_the_header_field_standing():
    """POSIX, and Go's mergePAX: `path=` does not rename the entry to the root (the old reader
    made it ""), `uid=` does not fail."""
    data = pax_header([(b"path", b""), (b"uid", b""), (b"SCHILY.xattr.user.e", b"")]) + \
        raw_header(b"real", 1, fields={108: b"0000007\0"}) + b"x".ljust(512, b"\0") + END
    [(path, kind, size, body, uid, _, _, pax)] = read(data)
    assert (path, kind, body, uid) == ("real", "file", b"x", 7)
    assert pax == {"SCHILY.xattr.user.e": ""}  # an empty xattr is a value, kept


@pytest.mark.parametrize("offset,field,what", [
    (124, b"0000000_001\0", "size"), (124, b"+0000000001\0", "size"),
    (136, b"0000000_001\0", "mtime"), (108, b"+000001\0", "uid"), (108, b"0o00001\0", "uid"),
    (108, b"\xff" * 8, "uid"), (116, b"\x80\0\0\1\0\0\0\0", "gid"),
    (124, b"\xff" * 12, "size"), (136, b"\x80" + b"\xff" * 11, "mtime"),
])
def test_header_fields_go_refuses_are_refused(offset, field, what):
    """Python's int() takes "1_0", "+1" and "0o1", Go's strconv does not; a base-256 uid of
    -1 or 2**32 and a size or mtime past int64 are refused as Go refuses them."""
    data = raw_header(b"f", fields={offset: field}) + END
    error = refused(data, what, "f")
    assert "Traceback" not in str(error)


def test_header_fields_in_base_256_and_padded_octal_are_read():
    data = raw_header(b"f", 1, fields={108: b"\x80\0\0\0\xee\x6b\x28\0",  # uid 4e9
                                       136: b"\xff" * 11 + b"\xfe",  # mtime -2
                                       116: b"     12 "}) + b"x".ljust(512, b"\0") + END
    [(_, _, _, body, uid, gid, mtime, _)] = read(data)
    assert (body, uid, gid, mtime) == (b"x", 4_000_000_000, 0o12, -2)


# --- 2: typeflag '0' with a trailing slash was read as a directory --------------------------


def test_regular_file_named_with_a_slash_is_refused_not_read_as_a_directory():
    """The old reader took `x/` (typeflag '0') for a directory and parsed its data as the next
    header, finding `smuggled`; Go and umoci skip the data and make a file."""
    inner = raw_file(b"smuggled", b"abc")
    data = raw_file(b"x/", inner) + END
    refused(data, "ends in '/'", "x/")
    # what the others read: tarfile skips the data too, for a '0' entry
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert [(m.name, m.type) for m in tf] == [("x/", tarfile.REGTYPE)]


def test_contiguous_file_named_with_a_slash_is_refused():
    refused(raw_file(b"c/", raw_file(b"smuggled", b"abc"), typeflag=b"7") + END,
            "ends in '/'", "c/")


def test_old_style_directory_with_a_slash_and_nul_typeflag_stays_a_directory():
    """Typeflag NUL with a trailing slash is a directory to every reader, Go included, and none
    skips `size` bytes after it: the next header follows at once."""
    data = raw_header(b"d/", 1024, typeflag=b"\0") + raw_file(b"next", b"abc") + END
    got = read(data)
    assert [(p, k, b) for p, k, _, b, *_ in got] == [("d", "dir", b""), ("next", "file", b"abc")]
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert [m.name for m in tf] == ["d", "next"]


# --- 3 and 5: ids and times that the output would have carried ------------------------------


def test_out_of_range_ids_in_pax_are_refused_naming_the_entry():
    for records in ([(b"uid", b"-5")], [(b"gid", b"99999999999999999999")]):
        error = refused(pax_header(records) + raw_file(b"owner", b"x") + END, "PAX", "owner")
        assert "out of range" in error.message or "bad PAX" in error.message


def test_float_overflow_in_pax_mtime_is_one_clear_error():
    """int(float("1e400")) raised OverflowError, which escaped as a traceback."""
    for value in (b"1e400", b"-inf", b"nan"):
        error = refused(pax_header([(b"mtime", value)]) + raw_file(b"clock", b"x") + END,
                        "bad PAX mtime", "clock")
        assert isinstance(error, FormatError)


# --- 6: PAX headers piling up before one entry ----------------------------------------------


def test_a_second_pax_header_for_one_entry_is_refused():
    """Go and GNU tar name this entry `good` (the second header alone), Python's tarfile
    `evil` (both merged), and the old reader merged them all, keeping every record of 150,000
    headers in memory."""
    data = pax_header([(b"path", b"evil")]) + pax_header([(b"SCHILY.xattr.user.a", b"1")]) + \
        raw_file(b"good", b"hi") + END
    refused(data, "two PAX headers", None)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getnames() == ["evil"]  # Python's reading: the disagreement is real


def test_pax_records_and_bytes_per_entry_are_capped():
    many = [(b"SCHILY.xattr.user.%d" % i, b"") for i in range(10_001)]
    with pytest.raises(LimitError, match="10000 PAX records"):
        read(pax_header(many) + raw_file(b"f", b"x") + END)
    # a GNU long name and a PAX header: 1 MiB for the two together
    long_name = raw_header(b"././@LongLink", 600_000, typeflag=b"L") + bytes(600_064)
    big = pax_header([(b"SCHILY.xattr.user.v", b"v" * 500_000)])
    with pytest.raises(LimitError, match="extended headers of more than 1048576 bytes"):
        read(long_name + big + raw_file(b"f", b"x") + END)
    # what real images carry passes: a few xattrs of a few KiB
    xattrs = [(b"SCHILY.xattr.security.selinux", b"system_u:object_r:bin_t:s0"),
              (b"SCHILY.xattr.user.big", b"v" * 60_000)]
    [(_, _, _, _, _, _, _, pax)] = read(pax_header(xattrs) + raw_file(b"f", b"x") + END)
    assert len(pax["SCHILY.xattr.user.big"]) == 60_000


def test_pax_record_lengths_are_read_as_go_reads_them():
    """A record length of "1_9" was 19 to int(); Go's strconv refuses it."""
    bad = b"1_9 path=abcdefghij\n"
    data = raw_header(b"PaxHeaders/f", len(bad), typeflag=b"x") + bad.ljust(512, b"\0") + \
        raw_file(b"f", b"x") + END
    refused(data, "malformed PAX record length", None)


def test_global_headers_are_ignored_as_go_ignores_them():
    """Go hands a global header to its caller as an entry of its own, and every runtime drops
    it; GNU tar and Python apply it to every later entry. A comment (git archive writes one)
    changes nothing; a record that GNU tar would apply is refused."""
    data = pax_header([(b"comment", b"0123abcd")], b"g") + raw_file(b"a", b"1") + END
    assert [(p, b) for p, _, _, b, *_ in read(data)] == [("a", b"1")]
    refused(pax_header([(b"path", b"g")], b"g") + raw_file(b"a", b"1") + END,
            "global PAX header .* sets 'path'", None)
    refused(pax_header([(b"SCHILY.xattr.security.capability", b"\x01")], b"g") +
            raw_file(b"a", b"1") + END, "global PAX header", None)
    refused(pax_header([(b"path", b"x")]) + pax_header([(b"comment", b"c")], b"g") +
            raw_file(b"a", b"1") + END, "global PAX header between", None)


def test_an_empty_gnu_long_name_names_nothing():
    """Go keeps the header's name when a GNU long name is empty; the old reader named the
    entry "" (the root)."""
    data = raw_header(b"././@LongLink", 1, typeflag=b"L") + bytes(512) + \
        raw_file(b"short", b"x") + END
    assert read(data)[0][0] == "short"


# --- 9: a GNU header's atime read as a name prefix ------------------------------------------


def gnu_header(prefix_area: bytes) -> bytes:
    return raw_header(b"passwd", 3, magic=b"ustar  \0", prefix=prefix_area) + \
        b"abc".ljust(512, b"\0") + END


def test_gnu_header_atime_is_not_a_name_prefix():
    """Old-GNU headers keep atime and ctime where ustar keeps the prefix; the old reader
    turned `passwd` with an atime into `15303245221/passwd`."""
    got = read(gnu_header(b"15303245221\x0015303245221\0"))
    assert [(p, b) for p, _, _, b, *_ in got] == [("passwd", b"abc")]


def test_gnu_header_whose_times_are_not_numbers_keeps_the_prefix_as_go_does():
    """Go's compatibility with archives written by Go before 1.8, which put a prefix in GNU
    headers: when atime and ctime do not parse, the prefix is read (GNU tar drops it)."""
    assert read(gnu_header(b"etc"))[0][0] == "etc/passwd"


def test_ustar_prefix_is_still_applied():
    data = raw_header(b"passwd", 0, prefix=b"etc") + END
    assert read(data)[0][0] == "etc/passwd"


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_gnu_tar_incremental_archive_keeps_its_names(tmp_path):
    """`tar --format=gnu -G` writes atime and ctime into every header."""
    version = subprocess.run(["tar", "--version"], capture_output=True, text=True).stdout
    if "GNU tar" not in version:
        pytest.skip("not GNU tar")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root\n")
    archive = tmp_path / "gnu.tar"
    subprocess.run(["tar", "--format=gnu", "-G", "-cf", str(archive), "etc/passwd"],
                   cwd=tmp_path, check=True)
    raw = archive.read_bytes()
    assert raw[257:265] == b"ustar  \0" and raw[345] != 0  # the atime is there
    assert [(p, b) for p, _, _, b, *_ in read(raw)] == [("etc/passwd", b"root\n")]
