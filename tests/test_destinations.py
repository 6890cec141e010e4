"""Destinations that hold someone else's data: --overwrite replaces only what acioci writes
(a file, an OCI layout, a directory of .aci files), never a directory of other things, and
never the source itself; an existing directory as an ACI destination means "write into it"."""

from __future__ import annotations

from pathlib import Path

from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"
LAYOUT = ROOT / "fixtures/valid/valid-layout/layout"


def _folder(tmp_path: Path) -> Path:
    acis = tmp_path / "acis"
    acis.mkdir()
    (acis / "a.aci").write_bytes(b"one")
    (acis / "notes.txt").write_text("mine")
    return acis


def test_overwrite_never_replaces_a_directory_of_other_files(tmp_path):
    acis = _folder(tmp_path)
    for extra in ([], ["--overwrite"]):
        proc = acioci("convert", SAMPLE, acis, "--store", STORE, *extra)
        assert proc.returncode != 0 and "never replaced" in proc.stderr
        assert "--overwrite" not in proc.stderr  # the error never suggests destroying data
        assert sorted(p.name for p in acis.iterdir()) == ["a.aci", "notes.txt"]


def test_existing_directory_as_aci_destination_is_written_into(tmp_path):
    acis = _folder(tmp_path)
    proc = acioci("convert", LAYOUT, acis, "--to", "aci", "--name", "example.com/app", check=0)
    written = sorted(p.name for p in acis.iterdir())
    assert written == ["a.aci", "example-com-app-v1.aci", "notes.txt"], (written, proc.stdout)
    assert (acis / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_a_layout_it_wrote(tmp_path):
    out = tmp_path / "out"
    acioci("convert", SAMPLE, f"oci-archive:{tmp_path / 'x.tar'}", "--store", STORE, check=0)
    acioci("convert", SAMPLE, out, "--store", STORE, "-q", check=0)
    proc = acioci("convert", SAMPLE, out, "--store", STORE, "--tag", "other", "-q")
    assert proc.returncode == 0  # an existing layout is added to
    proc = acioci("convert", tmp_path / "x.tar", tmp_path / "x.tar", "--overwrite")
    assert proc.returncode == 2 and "destroy the source" in proc.stderr
    assert (tmp_path / "x.tar").stat().st_size > 0


def test_overwrite_refuses_a_destination_that_holds_the_source(tmp_path):
    src = tmp_path / "out" / "image.aci"
    src.parent.mkdir()
    src.write_bytes(SAMPLE.read_bytes())
    before = src.read_bytes()
    for dest in (src, src.parent):
        proc = acioci("convert", src, dest, "--overwrite", "--to", "aci", "--store", STORE)
        assert proc.returncode == 2 and "destroy the source" in proc.stderr, proc.stderr
        assert src.read_bytes() == before
