"""The docker:// transport through the CLI, against a real registry (distribution 2.8): an ACI
chain pushed by `convert`, read back by skopeo and umoci, pulled by `convert` to an ACI equal
to converting the same layout from disk, and `validate` and `inspect` of the remote image."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ROOT, acioci, need, run

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"

pytestmark = pytest.mark.interop


def test_push_pull_validate_inspect(registry, tmp_path):
    skopeo = need("skopeo")
    ref = f"docker://127.0.0.1:{registry.port}/acioci/hello:1.0.0"
    proc = acioci("convert", SAMPLE, ref, "--store", STORE, "--tls-verify=false", "--json",
                  check=0)
    pushed = json.loads(proc.stdout)[0]
    assert pushed["format"] == "docker" and pushed["pushed"].endswith(pushed["manifest"])
    # skopeo reads what we pushed, and umoci unpacks it
    run(skopeo, "copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'back'}:1.0.0")
    run(need("umoci"), "unpack", "--rootless", "--image", f"{tmp_path / 'back'}:1.0.0",
        tmp_path / "bundle")
    assert (tmp_path / "bundle" / "rootfs" / "etc" / "passwd").exists()
    # pulling gives the same ACI as converting the same image from a layout on disk
    acioci("convert", ref, tmp_path / "pulled.aci", "--tls-verify=false", "-q", check=0)
    acioci("convert", f"oci:{tmp_path / 'back'}:1.0.0", tmp_path / "local.aci", "-q", check=0)
    assert (tmp_path / "pulled.aci").read_bytes() == (tmp_path / "local.aci").read_bytes()
    proc = acioci("validate", ref, "--tls-verify=false", check=0)
    assert "valid" in proc.stdout
    proc = acioci("inspect", ref, "--tls-verify=false", "--json", check=0)
    assert json.loads(proc.stdout)["name"] == "example.com/hello"
    # a second push moves no blob: every HEAD answers, only the manifest goes up
    acioci("convert", SAMPLE, ref, "--store", STORE, "--tls-verify=false", "-q", check=0)


def test_a_docker_conversion_imports_no_requests(registry, tmp_path):
    """The registry transport is the standard library's http.client: neither a push nor a pull
    imports requests or urllib3 (~60 ms and ~13 MB of every push; issue 15)."""
    ref = f"docker://127.0.0.1:{registry.port}/acioci/imports:1"
    code = ("import sys, runpy\n"
            "sys.argv = ['acioci', 'convert', *sys.argv[1:], '--tls-verify=false', '-q']\n"
            "try:\n    runpy.run_module('convert', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('requests', 'urllib3') if m in sys.modules),"
            " 'http.client' in sys.modules)")
    for args in ([SAMPLE, ref, "--store", STORE], [ref, tmp_path / "pulled.aci"]):
        proc = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().splitlines()[-1] == "[] True"
    assert (tmp_path / "pulled.aci").stat().st_size > 0


def test_unreachable_registry_is_one_clear_error(tmp_path):
    proc = acioci("convert", "docker://127.0.0.1:9/none/such:1", tmp_path / "x.aci",
                  "--tls-verify=false")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.aci").exists()
