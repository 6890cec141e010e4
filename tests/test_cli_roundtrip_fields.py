"""A conversion adds no ACI field the source did not have: OCI has no port count, socket
activation or read-only volumes, so an ACI written from an OCI image leaves them out (appc's
defaults apply) instead of spelling the defaults out; the graph carries None for "not said"."""

from __future__ import annotations

import build as fx
from helpers import acioci
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
