"""Registry images across tools: what skopeo pushes, acioci reads through `RegistryBlobs` and
the unchanged OCI reader into the same ACI as from the layout on disk; what acioci pushes
with `push_layout`, skopeo inspects and copies back and umoci unpacks."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from convert import squash
from convert.readers import oci as oci_reader
from convert.readers.blobs import DirBlobs
from convert.registry.blobs import open_source
from convert.registry.push import push_layout
from convert.writers import aci as aci_writer
from helpers import ROOT, acioci, diff_trees, need, run, snapshot
from registry_servers import scripted_env

pytestmark = pytest.mark.interop

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layout") / "hello"
    acioci("convert", SAMPLE, f"oci:{out}:1.0.0", "--store", STORE, check=0)
    return out


def to_aci(blobs, dest: Path) -> tuple[str, object, str]:
    """What `acioci convert` does to an OCI image: select, read, squash, write an ACI."""
    try:
        chosen = oci_reader.select(blobs, oci_reader.candidates(blobs), ref=None, platform=None,
                                   select_all=False)
        image = oci_reader.image(blobs, chosen[0])
        aci_writer.write(squash.squash(image), str(dest))
    finally:
        blobs.close()
    return hashlib.sha256(dest.read_bytes()).hexdigest(), image, chosen[0].descriptor["digest"]


def test_image_pushed_by_skopeo_reads_like_the_layout(registry, layout, tmp_path):
    skopeo = need("skopeo")
    run(skopeo, "copy", "--dest-tls-verify=false", f"oci:{layout}:1.0.0",
        registry.ref("skopeo/hello:1.0.0"))
    from_disk, disk_image, disk_manifest = to_aci(DirBlobs(str(layout)), tmp_path / "disk.aci")
    blobs = open_source(registry.ref("skopeo/hello:1.0.0"), tls_verify=False,
                        env=scripted_env(tmp_path))
    from_registry, reg_image, reg_manifest = to_aci(blobs, tmp_path / "registry.aci")
    assert from_registry == from_disk  # byte-identical ACI
    assert (reg_image.name, reg_image.version) == (disk_image.name, disk_image.version)
    assert reg_manifest == disk_manifest and reg_image.origin == disk_image.origin
    run(need("actool"), "validate", tmp_path / "registry.aci")


def test_push_layout_then_skopeo_and_umoci(registry, layout, tmp_path):
    skopeo, umoci = need("skopeo"), need("umoci")
    result = push_layout(str(layout), registry.ref("acioci/hello:1.0.0"), tls_verify=False,
                         env=scripted_env(tmp_path))
    assert [b.how for b in result.blobs] == ["uploaded"] * 3
    inspected = json.loads(run(skopeo, "inspect", "--tls-verify=false",
                               registry.ref("acioci/hello:1.0.0")))
    assert inspected["Digest"] == result.digest and inspected["RepoTags"] == ["1.0.0"]
    back = tmp_path / "back"
    run(skopeo, "copy", "--src-tls-verify=false", registry.ref("acioci/hello:1.0.0"),
        f"oci:{back}:1.0.0")
    run(umoci, "unpack", "--image", f"{back}:1.0.0", tmp_path / "pulled")
    run(umoci, "unpack", "--image", f"{layout}:1.0.0", tmp_path / "original")
    assert diff_trees(snapshot(tmp_path / "pulled/rootfs"),
                      snapshot(tmp_path / "original/rootfs")) == []
    again = push_layout(str(layout), registry.ref("acioci/copy:1.0.0"), tls_verify=False,
                        env=scripted_env(tmp_path), mount_from=("acioci/hello",))
    assert [b.how for b in again.blobs] == ["mounted"] * 3 and again.digest == result.digest


def test_index_pushed_and_read_back_through_its_child(registry, layout, tmp_path):
    """A layout whose index.json points at an image index: push_layout pushes the child
    manifest before the index; RegistryBlobs serves the child as a manifest, not a blob."""
    skopeo = need("skopeo")
    nested = tmp_path / "nested"
    shutil.copytree(layout, nested)
    top = json.loads((nested / "index.json").read_text())
    child = dict(top["manifests"][0])
    child.pop("annotations", None)
    child["platform"] = {"os": "linux", "architecture": "amd64"}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [child]}).encode()
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    (nested / "blobs/sha256" / digest.split(":")[1]).write_bytes(index)
    top["manifests"] = [{"mediaType": OCI_INDEX, "digest": digest, "size": len(index),
                         "annotations": {"org.opencontainers.image.ref.name": "1.0.0"}}]
    (nested / "index.json").write_text(json.dumps(top))

    result = push_layout(str(nested), registry.ref("acioci/multi:1.0.0"), tls_verify=False,
                         env=scripted_env(tmp_path))
    assert result.digest == digest and result.media_type == OCI_INDEX
    raw = json.loads(run(skopeo, "inspect", "--raw", "--tls-verify=false",
                         registry.ref("acioci/multi:1.0.0")))
    assert raw["manifests"][0]["digest"] == child["digest"]
    from_disk, _, _ = to_aci(DirBlobs(str(layout)), tmp_path / "disk.aci")
    blobs = open_source(registry.ref("acioci/multi:1.0.0"), tls_verify=False,
                        env=scripted_env(tmp_path))
    from_registry, _, _ = to_aci(blobs, tmp_path / "multi.aci")
    assert from_registry == from_disk
    log = registry.access_log()
    assert f"GET /v2/acioci/multi/manifests/{child['digest']} " in log
    assert f"/v2/acioci/multi/blobs/{child['digest']} " not in log  # known to be a manifest
