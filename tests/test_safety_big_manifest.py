"""Issue 20, item 4: a valid ACI manifest over about 1 MiB was refused as "not JSON:
Unterminated string", because one read of the manifest entry returned only part of it. The
documented limit is 16 MiB; a manifest with a 3 MiB annotation must convert and validate, in
every compression (the tar reader's chunking differs with the source stream)."""

from __future__ import annotations

import json

import pytest

import build as fx
from helpers import acioci

BIG = "x" * (3 << 20)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_manifest_with_a_3_mib_annotation_converts_and_validates(tmp_path, compression):
    src = tmp_path / "big.aci"
    man = fx.manifest("example.com/big", version="1", annotations=[("note", BIG)],
                      app={"exec": ["/bin/sh"], "user": "0", "group": "0"})
    fx.write_aci(src, man, [fx.entry("etc", "dir")], compression=compression)
    acioci("validate", src, check=0)
    out = tmp_path / "out"
    acioci("convert", src, out, check=0)
    index = json.loads((out / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs" / "sha256" / digest).read_text())
    assert BIG in json.dumps(manifest) + json.dumps(json.loads(
        (out / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_text()))
    back = tmp_path / "back.aci"
    acioci("convert", f"oci:{out}", back, check=0)
    acioci("inspect", back, check=0)
