"""Exit codes, one rule for every verb: 0 success, 1 the image is wrong, 2 the input cannot be
read or the command cannot be done as asked (usage, and every destination problem: it exists,
its parent is missing, it is someone's folder, the store is not a directory), 130 Ctrl-C or
SIGTERM. A script can then tell "fix the image" from "fix the command or the machine"."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = SAMPLE.parent / "store"


def one_error_line(proc):
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("acioci: error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_destination_exists_is_exit_2(tmp_path):
    acioci("convert", SAMPLE, tmp_path / "out", "--store", STORE, "-q", check=0)
    proc = acioci("convert", SAMPLE, tmp_path / "out", "--store", STORE, check=2)
    one_error_line(proc)
    assert "exists" in proc.stderr


def test_missing_parent_is_exit_2(tmp_path):
    proc = acioci("convert", SAMPLE, tmp_path / "no" / "out.tar", "--store", STORE, check=2)
    one_error_line(proc)
    assert "parent directory does not exist" in proc.stderr


def test_someones_folder_is_exit_2(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    proc = acioci("convert", SAMPLE, busy, "--store", STORE, check=2)
    one_error_line(proc)


def test_store_not_a_directory_is_exit_2(tmp_path):
    proc = acioci("convert", SAMPLE, tmp_path / "out", "--store", SAMPLE, check=2)
    one_error_line(proc)


def test_a_bad_image_is_still_exit_1(tmp_path):
    bad = tmp_path / "bad.aci"
    bad.write_bytes(SAMPLE.read_bytes()[:500])
    one_error_line(acioci("convert", bad, tmp_path / "out", check=1))


@pytest.fixture
def silent_registry():
    """A TCP port that accepts connections and never answers: a verb reading from it waits
    until it is interrupted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


@pytest.mark.parametrize("verb", ["convert", "inspect", "validate", "batch"])
def test_ctrl_c_is_130_in_every_verb(tmp_path, silent_registry, verb):
    url = f"docker://127.0.0.1:{silent_registry.getsockname()[1]}/x/y:1"
    args = {"convert": [url, str(tmp_path / "out")],
            "inspect": [url],
            "validate": [url],
            "batch": [url, "--to", "oci", "--out", str(tmp_path / "o"), "-j", "1"],
            }[verb]
    proc = subprocess.Popen([sys.executable, "-m", "convert", verb, *args, "--no-tls-verify"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    silent_registry.settimeout(60)
    conn, _ = silent_registry.accept()  # the verb is now waiting for the registry's answer
    time.sleep(0.3)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    conn.close()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout + stderr and "Traceback" not in stderr
