"""Issue 20, items 2, 3 and 6: files of a layout or a folder that are not what their place
says. A `blobs` that is a file (NotADirectoryError escaped); a FIFO where a regular file
belongs, which `open()` waits on forever (a layer blob, index.json, an `.aci` in a store or
among batch inputs); an index.json or oci-layout that is a symlink out of the layout being
added to (read through: another file's entries were merged into the new index). Each runs the
real CLI in a subprocess with a timeout: exit 1 with one line naming the file, or, for a FIFO
among many inputs, that input refused and the others done; never a hang or a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

TIMEOUT = 60
SAMPLE = ROOT / "fixtures" / "sample"
BASE = SAMPLE / "store" / "base-1.0.0-linux-amd64.aci"


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convert", *map(str, args)],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)


def refused(proc, *needles: str, code: int = 1, validate: bool = False) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-2000:]
    assert proc.returncode == code, (proc.returncode, out[-2000:])
    for needle in needles:
        assert needle in out, out


@pytest.fixture
def layout(tmp_path) -> Path:
    dest = tmp_path / "layout"
    proc = run("convert", BASE, dest)
    assert proc.returncode == 0, proc.stderr
    return dest


def _layer_blob(layout: Path) -> Path:
    index = json.loads((layout / "index.json").read_text())
    man = json.loads((layout / "blobs" / "sha256" /
                      index["manifests"][0]["digest"].split(":")[1]).read_text())
    return layout / "blobs" / "sha256" / man["layers"][0]["digest"].split(":")[1]


# item 2

def test_layout_whose_blobs_is_a_file_is_refused_naming_it(layout, tmp_path):
    shutil.rmtree(layout / "blobs")
    (layout / "blobs").write_text("not a folder")
    out = tmp_path / "out.aci"
    refused(run("convert", f"oci:{layout}", out), str(layout), "blobs is not a directory")
    assert not out.exists()
    proc = run("validate", layout)
    refused(proc, str(layout), "blobs is not a directory")
    # adding to it: a destination problem, exit 2 (issue 19's rule)
    refused(run("convert", BASE, f"oci:{layout}:two"), str(layout), "blobs is not a directory",
            code=2)
    assert (layout / "blobs").read_text() == "not a folder"


# item 3

def test_layer_blob_that_is_a_fifo_is_refused_not_waited_on(layout, tmp_path):
    blob = _layer_blob(layout)
    blob.unlink()
    os.mkfifo(blob)
    out = tmp_path / "out.aci"
    refused(run("convert", f"oci:{layout}", out), f"{layout}::blobs/sha256/{blob.name}",
            "FIFO")
    assert not out.exists()
    refused(run("validate", layout), str(layout), "FIFO")


def test_index_json_that_is_a_fifo_is_refused_not_waited_on(layout, tmp_path):
    (layout / "index.json").unlink()
    os.mkfifo(layout / "index.json")
    out = tmp_path / "out.aci"
    refused(run("convert", f"oci:{layout}", out), f"{layout}::index.json", "FIFO")
    assert not out.exists()
    proc = run("validate", layout)
    assert "Traceback" not in proc.stdout + proc.stderr and proc.returncode != 0, proc.stdout
    assert "FIFO" in proc.stdout + proc.stderr, proc.stdout


def test_fifo_named_aci_in_a_store_is_skipped_not_waited_on(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(SAMPLE / "store", store)
    os.mkfifo(store / "a-fifo.aci")
    out = tmp_path / "out"
    proc = run("convert", SAMPLE / "hello-1.0.0-linux-amd64.aci", out, "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert (out / "index.json").is_file()


def test_fifo_named_aci_among_batch_inputs_fails_alone(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(BASE, src / "base.aci")
    os.mkfifo(src / "fifo.aci")
    out = tmp_path / "out"
    proc = run("batch", src, "--to", "oci", "--out", out, "--jobs", "2")
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text[-2000:]
    assert proc.returncode == 1, (proc.returncode, text[-2000:])
    assert "fifo.aci" in text and "not a regular file" in text, text
    assert (out / "base" / "index.json").is_file(), sorted(p.name for p in out.iterdir())


# item 6

@pytest.mark.parametrize("name", ["index.json", "oci-layout"])
def test_symlinked_marker_of_a_layout_being_added_to_is_refused(layout, tmp_path, name):
    outside = tmp_path / f"outside-{name}"
    outside.write_bytes((layout / name).read_bytes())
    before = outside.read_bytes()
    (layout / name).unlink()
    (layout / name).symlink_to(outside)
    proc = run("convert", SAMPLE / "hello-1.0.0-linux-amd64.aci", f"oci:{layout}:two",
               "--store", SAMPLE / "store")
    refused(proc, str(layout), f"{name} is a symlink", code=2)  # a destination problem
    assert (layout / name).is_symlink()
    assert outside.read_bytes() == before


@pytest.mark.parametrize("kind", ["oci-manifest", "oci-index", "aci-manifest"])
def test_validate_a_fifo_named_as_a_document_is_refused_not_waited_on(tmp_path, kind):
    fifo = tmp_path / "doc.json"
    os.mkfifo(fifo)
    proc = run("validate", "--type", kind, fifo)
    refused(proc, str(fifo), "not a regular file", code=2)
