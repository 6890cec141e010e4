"""oci-archive and docker-archive outputs come from the layers' TarWriter, not stdlib tarfile
(whose bytes change with the Python version): Go-style ustar headers (directories named with
a trailing slash), no PAX headers, no record padding after the two zero blocks, members sorted
and owned by 0:0 at mtime 0; and the same conversion gives the same bytes."""

from __future__ import annotations

import hashlib
import tarfile

import pytest

from helpers import ROOT, acioci

STORE = ROOT / "fixtures/sample/store"
SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"


def _headers(data: bytes):
    """(name, typeflag, size) of each header block, walking the archive by hand."""
    pos = 0
    while data[pos:pos + 512] != bytes(512):
        block = data[pos:pos + 512]
        name = block[:100].rstrip(b"\0").decode()
        size = int(block[124:136].rstrip(b"\0 ") or b"0", 8)
        yield name, block[156:157], size, block
        pos += 512 + -(-size // 512) * 512
    assert data[pos:] == bytes(1024), "two zero blocks end the archive, and nothing follows"


@pytest.mark.parametrize("dest", ["oci-archive:{}", "docker-archive:{}:example.com/hello:1"])
def test_archive_is_written_by_tarwriter(tmp_path, dest):
    out = tmp_path / "out.tar"
    acioci("convert", str(SAMPLE), dest.format(out), "--store", str(STORE), "-q", check=0)
    data = out.read_bytes()
    headers = list(_headers(data))
    names = [h[0] for h in headers]
    assert names == sorted(names, key=lambda n: n.rstrip("/"))
    assert b"x" not in {h[1] for h in headers}, "no PAX headers"
    for name, flag, _size, block in headers:
        assert (flag == b"5") == name.endswith("/"), name
        assert block[257:265] == b"ustar\x0000"
        assert block[108:124] == b"0000000\x000000000\x00"  # uid, gid 0
        assert block[136:148] == b"00000000000\x00"  # mtime 0
        assert block[265:329] == bytes(64)  # no user or group names
        assert block[329:345] == b"0000000\x000000000\x00"  # device numbers 0, as Go writes
        assert block[100:108] == (b"0000755\x00" if flag == b"5" else b"0000644\x00")
    assert "blobs/" in names and "index.json" in names and "oci-layout" in names
    with tarfile.open(out) as tf:  # and another reader agrees on the members and their data
        for member in tf:
            if member.isfile():
                assert len(tf.extractfile(member).read()) == member.size


def test_archive_bytes_are_reproducible(tmp_path):
    digests = []
    for n in (1, 2):
        out = tmp_path / f"out{n}.tar"
        acioci("convert", str(SAMPLE), f"oci-archive:{out}", "--store", str(STORE), "-q",
               check=0)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
