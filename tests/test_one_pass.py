"""A lone ACI (no dependencies, no pathWhitelist) is converted in one pass: the layer's stream
checks the archive and hashes the image ID as it is written, and parents are synthesised as
they are needed (readers/aci.AciFiles.read_once, render._in_archive_order). These tests pin
that the one pass writes exactly what the planned rendering writes, including when the archive
brings a directory after its contents and the conversion must start over with the index."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import build as fx
from helpers import acioci

from convert.spec.vocabulary import ANN_IMAGE_ID

DIR, REG = tarfile.DIRTYPE, tarfile.REGTYPE


def convert(tmp_path, entries, *extra):
    aci = tmp_path / "a.aci"
    ident = fx.write_aci(aci, fx.manifest("example.com/a"), entries)
    out = tmp_path / "out"
    acioci("convert", str(aci), f"oci:{out}:v1", "-q", *extra)
    blob = lambda d: (out / "blobs" / "sha256" / d.split(":")[1]).read_bytes()  # noqa: E731
    index = json.loads((out / "index.json").read_bytes())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    assert len(manifest["layers"]) == 1
    assert manifest["annotations"][ANN_IMAGE_ID] == ident
    data = gzip.decompress(blob(manifest["layers"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, m.type, m.mode, m.mtime) + ((m.linkname,) if m.islnk() else ())
                for m in tf]


def test_missing_parents_are_synthesised_before_their_first_child(tmp_path):
    got = convert(tmp_path, [fx.entry("x/y/z", data=b"1"), fx.entry("x/y/w", data=b"2"),
                             fx.entry("q", data=b"3")])
    assert got == [("x", DIR, 0o755, 0), ("x/y", DIR, 0o755, 0), ("x/y/z", REG, 0o644, fx.MTIME),
                   ("x/y/w", REG, 0o644, fx.MTIME), ("q", REG, 0o644, fx.MTIME)]


def test_a_directory_after_its_contents_keeps_its_own_entry(tmp_path):
    # "a" comes after "a/b/c": the one pass synthesised it, meets the real one, and starts
    # over with the index; only "a/b", which the archive never provides, is synthesised
    for extra in ((), ("--squash",)):
        got = convert(tmp_path, [fx.entry("a/b/c", data=b"1"),
                                 fx.entry("a", "dir", mode=0o700, mtime=1234)], *extra)
        assert got == [("a/b", DIR, 0o755, 0), ("a/b/c", REG, 0o644, fx.MTIME),
                       ("a", DIR, 0o700, 1234)]


def test_parents_listed_first_are_written_as_they_are(tmp_path):
    got = convert(tmp_path, [fx.entry("d", "dir", mode=0o750, mtime=99),
                             fx.entry("d/f", data=b"x"),
                             fx.entry("d/h", "hardlink", target="d/f"),
                             fx.entry("d/h2", "hardlink", target="d/h")])
    assert got == [("d", DIR, 0o750, 99), ("d/f", REG, 0o644, fx.MTIME),
                   ("d/h", tarfile.LNKTYPE, 0o644, fx.MTIME, "d/f"),
                   ("d/h2", tarfile.LNKTYPE, 0o644, fx.MTIME, "d/f")]  # chains: first target
