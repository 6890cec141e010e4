"""Pulling into a squashed ACI from a real registry (distribution 2.8): squash reads every
layer twice (an index pass, then the data), yet each blob is fetched once; uncompressed layers
(which the index pass skips through by seeking) pull too; the spool directory is gone after."""

from __future__ import annotations

import json
import os

import pytest

from helpers import ROOT, acioci

pytestmark = pytest.mark.interop

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_each_blob_is_fetched_once_and_the_aci_is_the_layouts(registry, tmp_path, monkeypatch,
                                                               compression):
    ref = registry.ref(f"once/{compression}:1")
    acioci("convert", SAMPLE, ref, "--store", STORE, "--tls-verify=false", "-q",
           "--compression", compression, check=0)
    acioci("convert", SAMPLE, f"oci:{tmp_path / 'layout'}:1", "--store", STORE, "-q",
           "--compression", compression, check=0)
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    acioci("convert", ref, tmp_path / "pulled.aci", "--tls-verify=false", "-q", check=0)
    acioci("convert", f"oci:{tmp_path / 'layout'}:1", tmp_path / "local.aci", "-q", check=0)
    assert (tmp_path / "pulled.aci").read_bytes() == (tmp_path / "local.aci").read_bytes()
    index = json.loads((tmp_path / "layout/index.json").read_text())
    manifest = json.loads((tmp_path / "layout/blobs/sha256" /
                           index["manifests"][0]["digest"].split(":")[1]).read_text())
    log = registry.access_log()
    for layer in manifest["layers"]:
        assert log.count(f"GET /v2/once/{compression}/blobs/{layer['digest']} ") == 1
    assert os.listdir(spool) == []
