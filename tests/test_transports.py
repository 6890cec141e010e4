"""One reference grammar for every verb, resolved through the transport table: known
transports work in convert, validate, inspect and batch alike; an unknown `word:` prefix is a
usage error that lists the transports, never a file name; and no source leaves a temporary
behind in $TMPDIR, on success, on failure or on Ctrl-C."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"
ARCHIVE = ROOT / "fixtures/valid/valid-oci-archive/image.tar"
DOCKER = ROOT / "fixtures/valid/valid-docker-archive/image.tar"
KNOWN = ("aci:", "oci:", "oci-archive:", "docker-archive:", "appc:", "docker:")


def _refused(proc, word: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert f"unknown transport {word!r}" in proc.stderr
    assert all(k in proc.stderr for k in KNOWN) and "Traceback" not in proc.stderr


@pytest.mark.parametrize("dest,word", [("oci-archve:x.tar", "oci-archve"), ("ocI:x:v1", "ocI"),
                                       ("dokcer://x/y", "dokcer")])
def test_unknown_transport_as_destination_writes_nothing(tmp_path, dest, word):
    proc = subprocess.run([sys.executable, "-m", "convert", "convert", str(SAMPLE), dest,
                           "--store", str(STORE)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    _refused(proc, word)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verb", ["convert", "validate", "inspect", "batch"])
def test_unknown_transport_as_source_in_every_verb(tmp_path, verb):
    extra = {"convert": [tmp_path / "out"], "batch": ["--to", "oci", "--out", tmp_path / "o"]}
    proc = acioci(verb, f"oci-archve:{ARCHIVE}", *extra.get(verb, []))
    _refused(proc, "oci-archve")


def test_source_only_transport_is_refused_as_destination(tmp_path):
    proc = acioci("convert", SAMPLE, "appc:example.com/x:1", "--store", STORE)
    assert proc.returncode == 2 and "appc is a source only" in proc.stderr


def test_docker_archive_destination_writes_a_docker_archive_not_an_oci_archive(tmp_path):
    """`docker-archive:bb.tar` as a destination wrote an oci-archive (issue 19): now it is a
    docker save archive (manifest.json with RepoTags) that is also an OCI layout."""
    import json
    import tarfile

    acioci("convert", SAMPLE, f"docker-archive:{tmp_path / 'bb.tar'}", "--store", STORE,
           check=0)
    with tarfile.open(tmp_path / "bb.tar") as tf:
        manifest = json.loads(tf.extractfile("manifest.json").read())
        index = json.loads(tf.extractfile("index.json").read())
    assert manifest[0]["RepoTags"] == ["example.com/hello:1.0.0"]
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == \
        "example.com/hello:1.0.0"
    proc = acioci("convert", f"docker-archive:{tmp_path / 'bb.tar'}:example.com/hello:1.0.0",
                  tmp_path / "back.aci", check=0)
    assert "example.com/hello" in proc.stdout


@pytest.mark.parametrize("ref", [f"oci-archive:{ARCHIVE}", str(ARCHIVE),
                                 f"docker-archive:{DOCKER}", f"aci:{SAMPLE}"])
def test_every_verb_takes_the_same_reference(tmp_path, ref):
    store = ["--store", STORE] if "aci" in ref.split(":")[0] or ref.endswith(".aci") else []
    acioci("validate", ref, *store, check=0)
    acioci("inspect", ref, *store, "--json", check=0)
    to = "oci" if ref.endswith(".aci") else "aci"
    acioci("convert", ref, tmp_path / ("one.aci" if to == "aci" else "one"), *store, "-q",
           check=0)
    acioci("batch", ref, "--to", to, "--out", tmp_path / "many", *store, "-q", check=0)
    assert len(list((tmp_path / "many").iterdir())) == 1


def _gz(tmp_path: Path, src: Path) -> Path:
    out = tmp_path / (src.parent.name + ".tar.gz")
    out.write_bytes(gzip.compress(src.read_bytes(), mtime=0))
    return out


def _run(tmp_path: Path, *args: object) -> subprocess.CompletedProcess:
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "convert", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmpdir)})


@pytest.mark.parametrize("src", [ARCHIVE, DOCKER])
def test_compressed_archives_leave_no_temporary(tmp_path, src):
    gz = _gz(tmp_path, src)
    for args in (["convert", gz, tmp_path / "a.aci", "--name", "example.com/x"],
                 ["convert", gz, tmp_path / "layout"],
                 ["inspect", gz], ["validate", gz]):
        proc = _run(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr
        assert list((tmp_path / "tmpdir").iterdir()) == [], args
    # a failure after the archive was spooled: the destination's parent does not exist
    proc = _run(tmp_path, "convert", gz, tmp_path / "no" / "such" / "x.aci")
    assert proc.returncode != 0 and list((tmp_path / "tmpdir").iterdir()) == []
    # a selection that matches nothing
    proc = _run(tmp_path, "convert", gz, tmp_path / "b.aci", "--ref", "nope")
    assert proc.returncode == 2 and list((tmp_path / "tmpdir").iterdir()) == []


def test_ctrl_c_while_an_archive_is_spooled_leaves_no_temporary(tmp_path):
    """A gzip oci-archive large enough that the conversion is still running when SIGINT
    lands; the spool in $TMPDIR must go with it."""
    layout = tmp_path / "big"
    acioci("convert", _big_aci(tmp_path), f"oci:{layout}:1", "--compression", "none", check=0)
    tar = tmp_path / "big.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(tar), "."], check=True)
    gz = tmp_path / "big.tar.gz"
    subprocess.run(f"gzip -1 -c {tar} > {gz}", shell=True, check=True)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "convert", "convert", str(gz),
                             str(tmp_path / "out.aci")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmpdir)})
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None and not list(tmpdir.iterdir()):
        time.sleep(0.005)  # the spool exists: the archive is being decompressed
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert list(tmpdir.iterdir()) == [] and not (tmp_path / "out.aci").exists()


def _big_aci(tmp_path: Path) -> Path:
    import build as fx

    path = tmp_path / "big.aci"
    fx.write_aci(path, fx.manifest("example.com/big"),
                 [fx.entry(f"f{i}", data=os.urandom(1 << 20)) for i in range(96)],
                 compression="none")
    return path
