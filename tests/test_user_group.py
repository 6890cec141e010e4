"""OCI `User` without a group -> ACI user/group: the group is the user's primary group in the
image's own /etc/passwd and /etc/group, read from the squashed view of the layers (the topmost
layer that has the file wins, a whiteout removes it, symlinks are followed).

Why: an ACI must name a group, and docker2aci's choice (the user's own name) gives `nobody`
the group `nobody`, which Debian and busybox do not have (theirs is `nogroup`): rkt then fails
to start the app. Layouts are written by hand so each layer case is exact.
"""

from __future__ import annotations

import json

import pytest

import build as fx
from helpers import acioci
from test_oci_to_aci import Layout, aci_manifest

E = fx.entry
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
BASE = [E("etc", "dir"), E("etc/passwd", data=PASSWD), E("etc/group", data=GROUP)]


def convert(tmp_path, layers, user, *, layered=False):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar(entries) for entries in layers], ref="example.com/u:v1",
              config={"User": user, "Entrypoint": ["/bin/true"]})
    if layered:
        acioci("convert", lay.root, tmp_path / "chain", "--to", "aci", "--layered", check=0)
        m = aci_manifest(tmp_path / "chain" / "example-com-u.aci")
    else:
        acioci("convert", lay.root, tmp_path / "o.aci", check=0)
        m = aci_manifest(tmp_path / "o.aci")
    return m["app"]["user"], m["app"]["group"], {a["name"]: a["value"] for a in m["annotations"]}


@pytest.mark.parametrize("layers, user, want", [
    ([BASE], "nobody", ("nobody", "nogroup")),
    ([BASE], "nobody:", ("nobody", "nogroup")),
    # a uid asks for a gid: no name lookup that the runtime could get wrong
    ([BASE], "65534", ("65534", "65534")),
    # an explicit group is kept as given
    ([BASE], "nobody:staff", ("nobody", "staff")),
    # a later layer's /etc/group wins
    ([BASE, [E("etc/group", data=b"nobody:x:65534:\n")]], "nobody", ("nobody", "nobody")),
    # /etc/group whited out: the gid itself
    ([BASE, [E("etc/.wh.group")]], "nobody", ("nobody", "65534")),
    # an opaque /etc and a new /etc/passwd: the new primary gid, no group file
    ([BASE, [E("etc/.wh..wh..opq"), E("etc/passwd", data=b"nobody:x:65534:100::/:/bin/false\n")]],
     "nobody", ("nobody", "100")),
    # /etc through a symlinked directory, /etc/group a symlink to a file
    ([[E("private", "dir"), E("private/etc", "dir"), E("private/etc/passwd", data=PASSWD),
       E("private/etc/group.real", data=GROUP),
       E("private/etc/group", "symlink", target="/private/etc/group.real"),
       E("etc", "symlink", target="private/etc")]], "nobody", ("nobody", "nogroup")),
    # nothing says: docker2aci's choice, the user's own name
    ([[E("bin", "dir")]], "nobody", ("nobody", "nobody")),
    ([BASE], "daemon", ("daemon", "daemon")),
])
def test_group_is_the_users_primary_group_in_the_squashed_rootfs(tmp_path, layers, user, want):
    got = convert(tmp_path, layers, user)
    assert got[:2] == want


def test_layered_top_aci_gets_the_same_group(tmp_path):
    """--layered writes the app into the top ACI of the chain; its group comes from the final
    tree too, not from the top layer alone (which here has no /etc at all)."""
    got = convert(tmp_path, [BASE, [E("bin", "dir")]], "nobody", layered=True)
    assert got[:2] == ("nobody", "nogroup")


def test_aci_to_oci_gives_back_the_user_without_the_derived_group(tmp_path):
    """The group read from /etc/passwd is ACI's need, not part of the OCI config: going back,
    `User` is `nobody` again (from `io.acioci.oci/user`), not `nobody:nogroup`."""
    user, group, ann = convert(tmp_path, [BASE], "nobody")
    assert (group, ann["io.acioci.oci/user"]) == ("nogroup", "nobody")
    acioci("convert", tmp_path / "o.aci", f"oci:{tmp_path}/back:v1", check=0)
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    blobs = tmp_path / "back" / "blobs" / "sha256"
    man = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((blobs / man["config"]["digest"][7:]).read_text())
    assert config["config"]["User"] == "nobody"


def test_docker_only_config_fields_are_kept_as_annotations(tmp_path):
    """Healthcheck, OnBuild and Shell have no ACI or OCI field; they are kept (compact JSON)
    in ACI annotations instead of vanishing, and survive ACI -> OCI -> ACI."""
    health = {"Test": ["CMD", "/bin/true"], "Interval": 30000000000, "Retries": 3}
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar(BASE)], ref="example.com/h:v1", config={
        "Healthcheck": health, "OnBuild": ["RUN make"], "Shell": ["/bin/sh", "-c"]})
    acioci("convert", lay.root, tmp_path / "o.aci", check=0)
    ann = {a["name"]: a["value"] for a in aci_manifest(tmp_path / "o.aci")["annotations"]}
    assert json.loads(ann["io.acioci.oci/healthcheck"]) == health
    assert json.loads(ann["io.acioci.oci/onbuild"]) == ["RUN make"]
    assert json.loads(ann["io.acioci.oci/shell"]) == ["/bin/sh", "-c"]
    acioci("convert", tmp_path / "o.aci", f"oci:{tmp_path}/back:v1", check=0)
    acioci("convert", f"oci:{tmp_path}/back:v1", tmp_path / "again.aci", check=0)
    again = {a["name"]: a["value"] for a in aci_manifest(tmp_path / "again.aci")["annotations"]}
    assert {k: again.get(k) for k in ann if k.startswith("io.acioci.oci/")} == \
        {k: v for k, v in ann.items() if k.startswith("io.acioci.oci/")}
