"""A conversion adds no ACI field the source did not have: OCI has no port count, socket
activation or read-only volumes, so an ACI written from an OCI image leaves them out (appc's
defaults apply) instead of spelling the defaults out; the graph carries None for "not said"."""

from __future__ import annotations

import json

import pytest

import build as fx
from helpers import acioci, need, run
from test_oci_to_aci import Layout, aci_manifest

E = fx.entry


def test_oci_ports_and_volumes_gain_no_aci_fields(tmp_path):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("x", data=b"1")])], ref="app:1", config={
        "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}})
    out = tmp_path / "o.aci"
    acioci("convert", lay.root, out, check=0)
    app = aci_manifest(out)["app"]
    assert app["ports"] == [{"name": "80-tcp", "protocol": "tcp", "port": 80}]
    assert app["mountPoints"] == [{"name": "volume-data", "path": "/data"}]
    # and back to OCI, the same ports and volumes
    acioci("convert", out, tmp_path / "back", check=0)


def test_the_aci_writer_writes_only_what_was_given():
    from convert.graph import MountPoint, Port, RuntimeConfig, Image
    from convert.writers.aci import _app

    rc = RuntimeConfig(ports=(Port("www", "tcp", 80), Port("dns", "udp", 53, 2, True)),
                       mount_points=(MountPoint("a", "/a"), MountPoint("b", "/b", False)))
    app = _app(Image(name="x", source="s", config=rc))
    assert app["ports"] == [{"name": "www", "protocol": "tcp", "port": 80},
                            {"name": "dns", "protocol": "udp", "port": 53, "count": 2,
                             "socketActivated": True}]
    assert app["mountPoints"] == [{"name": "a", "path": "/a"},
                                  {"name": "b", "path": "/b", "readOnly": False}]


# ACI -> OCI -> ACI gives back the manifest: what was absent stays absent, what was spelled
# out (even appc's defaults, count 1 or readOnly false) stays spelled out.
_BARE = {"exec": ["/bin/sh"], "user": "0", "group": "0",
         "mountPoints": [{"name": "data", "path": "/data"}],
         "ports": [{"name": "www", "protocol": "tcp", "port": 80}]}
_FULL = {"exec": ["/bin/sh"], "user": "0", "group": "0",
         "mountPoints": [{"name": "data", "path": "/data", "readOnly": False},
                         {"name": "ro", "path": "/ro", "readOnly": True}],
         "ports": [{"name": "www", "protocol": "tcp", "port": 80, "count": 1,
                    "socketActivated": False},
                   {"name": "dns", "protocol": "udp", "port": 53, "count": 2,
                    "socketActivated": True}]}
_MIXED = {"exec": ["/bin/sh"], "user": "0", "group": "0",
          "mountPoints": [{"name": "data", "path": "/data"},
                          {"name": "ro", "path": "/ro", "readOnly": True}],
          "ports": [{"name": "www", "protocol": "tcp", "port": 80},
                    {"name": "dns", "protocol": "udp", "port": 53, "socketActivated": True},
                    {"name": "r", "protocol": "tcp", "port": 9000, "count": 3}]}


@pytest.mark.parametrize("app", [_BARE, _FULL, _MIXED], ids=["bare", "full", "mixed"])
@pytest.mark.parametrize("via", ["oci:lay", "oci-archive:lay.tar", "docker-archive:img.tar"])
@pytest.mark.parametrize("annotations", [(), (("authors", "me"),)], ids=["no-ann", "ann"])
def test_aci_oci_aci_gives_back_the_manifest(tmp_path, app, via, annotations):
    man = fx.manifest("example.com/app", version="1.0", app=app, annotations=annotations)
    src = tmp_path / "src.aci"
    fx.write_aci(src, man, [E("x", data=b"1")])
    mid = via.replace(":", ":" + str(tmp_path) + "/", 1)
    acioci("convert", src, mid, check=0)
    back = tmp_path / "back.aci"
    acioci("convert", mid, back, check=0)
    assert aci_manifest(back) == man
    run(need("actool"), "validate", back)  # appc's own tool judges the ACI, not only our reader


def test_the_oci_stash_holds_only_what_the_aci_said(tmp_path):
    src = tmp_path / "src.aci"
    fx.write_aci(src, fx.manifest("example.com/app", version="1.0", app=_MIXED), [E("x")])
    acioci("convert", src, tmp_path / "lay", check=0)
    index = json.loads((tmp_path / "lay" / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    man = json.loads((tmp_path / "lay" / "blobs" / "sha256" / digest).read_text())
    ann = man["annotations"]
    assert json.loads(ann["io.acioci.aci.app.ports"]) == _MIXED["ports"]
    assert json.loads(ann["io.acioci.aci.app.mountPoints"]) == _MIXED["mountPoints"]
    assert "io.acioci.aci.annotations" not in ann
