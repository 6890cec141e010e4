"""validate reads each layer blob of an archive once, and reports its faults once.

Two documents can name one layer blob: Docker 25's archives (manifest.json and the OCI index
inside) name every layer twice, and a layout that holds a chain (`--one-layout`) names the
base's layer from the base's manifest and from the app's. Each walk used to decompress the
blob again and report its faults again: a bomb in a docker archive was "2 errors".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import build as fx
from helpers import acioci

from convert.readers import blobs as blobs_module

E = fx.entry


def _chain_layout(tmp: Path) -> Path:
    src = tmp / "in"
    src.mkdir()
    fx.write_aci(src / "base.aci", fx.manifest("example.com/base", version="1"),
                 [E("etc", "dir"), E("etc/os", data=b"base" * 4000)])
    fx.write_aci(src / "app.aci", fx.manifest("example.com/app", version="1", dependencies=[
        {"imageName": "example.com/base"}]), [E("app", data=b"app")])
    out = tmp / "layout"
    acioci("batch", src, "--to", "oci", "--out", out, "--one-layout", "-q",
           check=0)
    return out


def _manifest_layers(layout: Path) -> list[list[str]]:
    index = json.loads((layout / "index.json").read_bytes())
    out = []
    for desc in index["manifests"]:
        man = json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_bytes())
        out.append([layer["digest"] for layer in man["layers"]])
    return out


def test_a_layer_two_manifests_share_is_read_once(tmp_path, monkeypatch):
    from convert.validation.run import validate_path

    layout = _chain_layout(tmp_path)
    layers = _manifest_layers(layout)
    shared = set(layers[0]) & set(layers[1])
    assert len(layers) == 2 and shared, layers  # the base's layer is in both images
    opened: list[str] = []
    real = blobs_module.DirBlobs.open

    def counting(self, rel):
        opened.append(rel)
        return real(self, rel)

    monkeypatch.setattr(blobs_module.DirBlobs, "open", counting)
    report = validate_path(f"oci:{layout}")
    assert report.findings == [], report.findings
    for digest in shared:
        rel = f"blobs/sha256/{digest[7:]}"
        assert opened.count(rel) == 1, (rel, opened)


@pytest.fixture
def bomb_docker_archive(tmp_path) -> Path:
    from hostile import _bomb_gzip

    from convert import api

    (tmp_path / "bomb.aci").write_bytes(_bomb_gzip())
    api.convert(str(tmp_path / "bomb.aci"), f"docker-archive:{tmp_path / 'bomb.tar'}")
    return tmp_path / "bomb.tar"


def test_a_docker_archives_bad_layer_is_one_error(bomb_docker_archive):
    proc = acioci("validate", f"docker-archive:{bomb_docker_archive}", "--max-expand", "1M")
    assert proc.returncode == 1, proc.stderr
    found = [line for line in proc.stdout.splitlines() if "[oci.layer.unreadable]" in line]
    assert len(found) == 1, proc.stdout
    assert "(1 errors, 0 warnings)" in proc.stdout, proc.stdout
