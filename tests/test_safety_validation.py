"""Issue 20, item 8: `validate` against the specs' own rules where it fell short.

- descriptor `data` (descriptor.md) is RFC 4648 §4 base64, padded, standard alphabet, and its
  decoded bytes are the content: of length `size`, hashing to `digest`;
- an SELinux isolator's user, role and type hold no `:` (appc's AssertValid; level may);
- a bare manifest (`validate --type oci-manifest`) with `"layers": []` gets the `no-layers`
  warning a layout walk gives."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

import build as fx
from helpers import ROOT, acioci

BASE = ROOT / "fixtures" / "sample" / "store" / "base-1.0.0-linux-amd64.aci"
ZERO = "sha256:" + "0" * 64


def bare_manifest(tmp_path: Path, *, data=None, layers=None, config_bytes=b"{}") -> Path:
    config = {"mediaType": "application/vnd.oci.image.config.v1+json",
              "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
              "size": len(config_bytes)}
    if data is not None:
        config["data"] = data
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": config,
           "layers": layers if layers is not None else [
               {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ZERO,
                "size": 1}]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("data", ["e30", "e3=0", "e3-=", "e30=\n", "e 30=", "e30=="],
                         ids=["unpadded", "bad-padding", "urlsafe", "newline", "space",
                              "over-padded"])
def test_descriptor_data_that_is_not_padded_standard_base64_is_invalid(tmp_path, data):
    path = bare_manifest(tmp_path, data=data)
    proc = acioci("validate", "--type", "oci-manifest", path)
    assert proc.returncode == 1, proc.stdout
    assert "config/data" in proc.stdout, proc.stdout


def test_descriptor_data_must_be_the_content_its_digest_names(tmp_path):
    good = bare_manifest(tmp_path, data=base64.b64encode(b"{}").decode())
    acioci("validate", "--type", "oci-manifest", good, check=0)
    bad = bare_manifest(tmp_path, data=base64.b64encode(b"[]").decode())
    proc = acioci("validate", "--type", "oci-manifest", bad)
    assert proc.returncode == 1 and "oci.descriptor.data" in proc.stdout, proc.stdout
    assert "hash" in proc.stdout, proc.stdout
    short = bare_manifest(tmp_path, data=base64.b64encode(b"{ }").decode())
    proc = acioci("validate", "--type", "oci-manifest", short)
    assert proc.returncode == 1 and "length" in proc.stdout, proc.stdout


def test_layout_descriptor_data_must_match_the_blob(tmp_path):
    layout = tmp_path / "layout"
    acioci("convert", BASE, layout, check=0)
    index = json.loads((layout / "index.json").read_text())
    mpath = layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
    man = json.loads(mpath.read_text())
    man["config"]["data"] = base64.b64encode(b"not the config").decode()
    raw = json.dumps(man).encode()
    digest = hashlib.sha256(raw).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(raw)
    mpath.unlink()
    index["manifests"][0].update(digest="sha256:" + digest, size=len(raw))
    (layout / "index.json").write_text(json.dumps(index))
    proc = acioci("validate", layout)
    assert proc.returncode == 1, proc.stdout
    assert "oci.descriptor.data" in proc.stdout and "config/data" in proc.stdout, proc.stdout


def test_bare_manifest_without_layers_gets_the_no_layers_warning(tmp_path):
    path = bare_manifest(tmp_path, layers=[])
    proc = acioci("validate", "--type", "oci-manifest", path)
    assert proc.returncode == 0, proc.stdout
    assert "oci.manifest.no-layers" in proc.stdout, proc.stdout


@pytest.mark.parametrize("field", ["user", "role", "type"])
def test_selinux_user_role_type_with_a_colon_are_invalid(tmp_path, field):
    ctx = {"user": "system_u", "role": "system_r", "type": "svirt_lxc_net_t",
           "level": "s0:c1,c2"}
    src = tmp_path / "ok.aci"
    man = fx.manifest("example.com/x", app={"exec": ["/bin/sh"], "user": "0", "group": "0",
                                            "isolators": [{"name": "os/linux/selinux-context",
                                                           "value": ctx}]})
    fx.write_aci(src, man, [])
    acioci("validate", src, check=0)  # a colon in the level is fine
    ctx[field] += ":x"
    bad = tmp_path / "bad.aci"
    fx.write_aci(bad, man, [])
    proc = acioci("validate", bad)
    assert proc.returncode == 1, proc.stdout
    assert "isolators/0" in proc.stdout and field in proc.stdout, proc.stdout
