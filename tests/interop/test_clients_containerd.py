"""Issue 18, containerd: an oci-archive acioci writes from an ACI chain is imported and run by
containerd 1.6, and what `ctr images export` writes converts back to an ACI whose rootfs is the
one containerd itself mounts.

One containerd per module, a plain process with its own root, state and socket (see
tests/clients.py), the native snapshotter (no overlay mounts needed).
"""

from __future__ import annotations

import json
import tarfile

import pytest

from clients import HELLO_OUTPUT, acioci, busybox_aci_chain, containerd  # noqa: F401 (fixture)
from helpers import diff_trees, need, run, snapshot

pytestmark = pytest.mark.interop

REF = "example.com/hello:1.0.0"
DOCKER_REF = "example.com/hello-docker:1.0.0"


@pytest.fixture(scope="module")
def imported(containerd, tmp_path_factory):
    """The busybox ACI chain as an oci-archive (imported as REF) and, rewritten by skopeo as
    a docker-archive, imported again (as DOCKER_REF): containerd then holds one image with
    an OCI manifest and one with a Docker v2s2 manifest."""
    work = tmp_path_factory.mktemp("ctr")
    top, store, manifest = busybox_aci_chain(work / "acis")
    archive = work / "hello.tar"
    acioci("convert", top, f"oci-archive:{archive}:{REF}", "--store", store)
    containerd.ctr("images", "import", "--snapshotter", "native", archive)
    docker = work / "hello-docker.tar"
    run(need("skopeo"), "copy", "-q", f"oci-archive:{archive}",
        f"docker-archive:{docker}:{DOCKER_REF}")
    containerd.ctr("images", "import", "--snapshotter", "native", docker)
    names = containerd.ctr("images", "ls", "-q").stdout.split()
    assert REF in names and DOCKER_REF in names, names
    return top, store, manifest, work


def test_aci_chain_imports_and_runs_in_containerd(containerd, imported):
    """`ctr run` of the imported image runs the app as rkt did: the exec of the top ACI with
    the shell of the base it depends on, its environment, user, group and working dir."""
    proc = containerd.run(REF, "acioci-hello")
    assert (proc.returncode, proc.stdout) == (0, HELLO_OUTPUT), proc.stderr


@pytest.fixture(scope="module")
def exported(containerd, imported, tmp_path_factory):
    """`ctr images export` of the docker-archive import: an OCI layout tar whose index points
    at a Docker v2s2 manifest and config."""
    work = tmp_path_factory.mktemp("export")
    out = work / "export.tar"
    containerd.ctr("images", "export", out, DOCKER_REF)
    with tarfile.open(out) as tf:
        index = json.loads(tf.extractfile("index.json").read())
    assert index["manifests"][0]["mediaType"] == \
        "application/vnd.docker.distribution.manifest.v2+json"
    return out


def test_ctr_export_converts_to_the_rootfs_containerd_mounts(containerd, imported, exported,
                                                             tmp_path):
    """The export converts to an ACI whose rootfs, rendered by acirender, equals `ctr images
    mount` of the same image file for file, and whose app is the original ACI's."""
    _, _, original, _ = imported
    aci = tmp_path / "exported.aci"
    acioci("convert", exported, aci)
    run(need("acirender"), aci, tmp_path / "r")
    theirs = snapshot(containerd.mount(DOCKER_REF, tmp_path / "mnt"))
    assert diff_trees(snapshot(tmp_path / "r" / "rootfs"), theirs) == []
    assert "usr/bin/hello" in theirs and "bin/busybox" in theirs
    with tarfile.open(aci) as tf:
        m = json.loads(tf.extractfile("manifest").read())
    assert m["name"] == "example.com/hello-docker"
    want = original["app"]
    for key in ("exec", "user", "group", "environment", "workingDirectory"):
        assert m["app"][key] == want[key], key



def test_validate_accepts_ctr_export_of_a_docker_image(exported):
    """An OCI layout may point at Docker v2s2 manifests (containerd writes them so); validate
    must check each against its own schema, not the OCI one."""
    proc = acioci("validate", exported, check=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ctr_export_of_an_acioci_image_is_valid_and_converts_back(containerd, imported,
                                                                   tmp_path):
    """containerd keeps the manifest acioci wrote (annotations included), so its export
    converts back to the very manifest of the ACI chain's top, squashed."""
    _, _, original, _ = imported
    out = tmp_path / "export.tar"
    containerd.ctr("images", "export", out, REF)
    acioci("validate", out)
    back = tmp_path / "back.aci"
    acioci("convert", out, back)
    with tarfile.open(back) as tf:
        m = json.loads(tf.extractfile("manifest").read())
    assert m["name"] == original["name"] and m["labels"] == original["labels"]
    assert m["annotations"] == original["annotations"]
    assert m["app"]["isolators"] == original["app"]["isolators"]
    assert "dependencies" not in m  # the chain is squashed into one ACI


def test_docker_archive_output_imports_under_the_images_own_name(containerd, imported):
    """A `docker-archive:FILE:NAME:TAG` output carries the name in manifest.json and in
    io.containerd.image.name; `ctr import` uses it instead of an `import-<date>:<tag>` name,
    and the image runs. (Without NAME:TAG the ACI's name and version label are used: see the
    podman test.)"""
    top, store, _, work = imported
    archive = work / "own-name.tar"
    acioci("convert", top, f"docker-archive:{archive}:example.com/own:2.0", "--store", store)
    containerd.ctr("images", "import", "--snapshotter", "native", archive)
    names = containerd.ctr("images", "ls", "-q").stdout.split()
    assert "example.com/own:2.0" in names, names
    assert not [n for n in names if n.startswith("import-")], names
    proc = containerd.run("example.com/own:2.0", "acioci-own")
    assert (proc.returncode, proc.stdout) == (0, HELLO_OUTPUT), proc.stderr
