"""OCI -> ACI judged by real tools. Images are built with umoci (`umoci raw add-layer` with
layer tars made by Python's tarfile); the squashed ACI, rendered by acirender (appc's own
renderer), must equal what `umoci unpack` makes of the same image, file for file; actool must
accept every ACI we write; round trips must give back manifests, config fields and rootfs.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import build as fx
from helpers import acioci, diff_trees, need, run, snapshot

pytestmark = pytest.mark.interop


def umoci_image(tmp_path: Path, layers: list[list[dict]], *, config: list[str] = (),
                tag: str = "test") -> Path:
    umoci = need("umoci")
    layout = tmp_path / "layout"
    run(umoci, "init", "--layout", layout)
    run(umoci, "new", "--image", f"{layout}:{tag}")
    for i, entries in enumerate(layers):
        tar = tmp_path / f"layer{i}.tar"
        tar.write_bytes(fx.layer_tar(entries))
        run(umoci, "raw", "add-layer", "--image", f"{layout}:{tag}", tar)
    if config:
        run(umoci, "config", "--image", f"{layout}:{tag}", *config)
    return layout


def squashed_equals_umoci(tmp_path: Path, layout: Path, tag: str = "test", *, synthesised=()):
    """Convert to a squashed ACI; actool validates it; acirender's rootfs == umoci's."""
    aci = tmp_path / "out.aci"
    acioci("convert", f"oci:{layout}:{tag}", aci, "--name", "example.com/test", check=0)
    run(need("actool"), "validate", aci)
    run(need("umoci"), "unpack", "--image", f"{layout}:{tag}", tmp_path / "bundle")
    run(need("acirender"), aci, tmp_path / "rendered")
    ours = snapshot(tmp_path / "rendered" / "rootfs")
    theirs = snapshot(tmp_path / "bundle" / "rootfs")
    zero = {p for p, i in ours.items() if i["type"] == stat.S_IFDIR and i["mtime"] == 0}
    assert zero == set(synthesised)
    assert diff_trees(ours, theirs, ignore_mtime=zero) == []
    layered_equals_squashed(tmp_path, layout, tag, ours)
    return aci, ours


def layered_equals_squashed(tmp_path: Path, layout: Path, tag: str, squashed: dict):
    """--layered: every ACI passes actool, and acirender of the top over the chain gives the
    squashed rootfs. The one documented difference: a hardlink whose content comes from
    another layer, or whose original name is gone, is a copy (appc cannot link across ACIs)."""
    out = tmp_path / "chain"
    acioci("convert", f"oci:{layout}:{tag}", out, "--to", "aci", "--layered", "--name",
           "example.com/test", check=0)
    acis = sorted(out.glob("*.aci"))
    for aci in acis:
        run(need("actool"), "validate", aci)
    run(need("acirender"), "--store", out, out / "example-com-test.aci", tmp_path / "chain-r")
    chain = snapshot(tmp_path / "chain-r" / "rootfs")
    problems = [p for p in diff_trees(chain, squashed) if ": links " not in p]
    assert problems == []


E = fx.entry


def test_whiteouts_opaque_readd_symlink_replacing_dir(tmp_path):
    layout = umoci_image(tmp_path, [
        [E("etc", "dir"), E("etc/keep", data=b"keep"), E("etc/gone", data=b"gone"),
         E("opq", "dir"), E("opq/old", data=b"old"), E("opq/sub", "dir"),
         E("opq/sub/deep", data=b"deep"), E("readd", data=b"v1"),
         E("dir2link", "dir"), E("dir2link/child", data=b"child"),
         E("usr", "dir"), E("usr/lib", "dir"), E("usr/lib/a.so", data=b"a")],
        # whiteouts after and before their siblings; the opaque dir gets a new child in the
        # same layer, which must survive; readd is deleted and added again in one layer
        [E("etc/.wh.gone"), E("opq/new", data=b"new"), E("opq/.wh..wh..opq"),
         E("readd", data=b"v2"), E(".wh.readd"),
         E(".wh.dir2link"), E("dir2link", "symlink", target="usr/lib"),
         E("lib", "symlink", target="usr/lib")],
        # an entry through the symlink lands in usr/lib (umoci resolves parents in the root)
        [E("lib/b.so", data=b"b"), E("etc/.wh..wh..plnk", data=b"")],
    ])
    _, ours = squashed_equals_umoci(tmp_path, layout)
    assert set(ours) == {"etc", "etc/keep", "opq", "opq/new", "readd", "dir2link", "usr",
                         "usr/lib", "usr/lib/a.so", "usr/lib/b.so", "lib"}
    assert ours["readd"]["sha256"] == fx_sha(b"v2")


def test_hardlinks_across_layers_with_deleted_targets(tmp_path):
    layout = umoci_image(tmp_path, [
        [E("bin", "dir"), E("bin/tool", data=b"tool", mode=0o755),
         E("bin/alias1", "hardlink", target="bin/tool", mode=0o755),
         E("bin/alias2", "hardlink", target="bin/tool", mode=0o755),
         E("data", data=b"data")],
        [E("bin/.wh.tool"), E("data-link", "hardlink", target="data")],
        [E(".wh.data")],
    ])
    _, ours = squashed_equals_umoci(tmp_path, layout)
    assert ours["bin/alias1"]["links"] == ["bin/alias1", "bin/alias2"]
    assert ours["bin/alias1"]["sha256"] == fx_sha(b"tool")
    assert ours["data-link"]["sha256"] == fx_sha(b"data") and "links" not in ours["data-link"]


def test_long_names_xattrs_devices_modes(tmp_path):
    long = "l/" + "/".join(["n" * 90] * 3)
    layout = umoci_image(tmp_path, [
        [E("l", "dir"), *[E("/".join(long.split("/")[:i]), "dir") for i in range(2, 5)],
         E(long + "/" + "f" * 120, data=b"long", xattrs={"user.k": "v"}),
         E("dev", "dir"), E("dev/null", "char", devmajor=1, devminor=3, mode=0o666),
         E("dev/sda", "block", devmajor=8, devminor=0, mode=0o660, gid=6),
         E("fifo", "fifo", mode=0o600), E("suid", data=b"s", mode=0o4755, uid=5, gid=7),
         E("tmp", "dir", mode=0o1777)],
        [E("srv", "dir", mode=0o700, uid=1000, gid=1000),
         E("srv/bin", data=b"\x00\xff", xattrs={"user.bin": b"\x01\x02"})],
    ])
    _, ours = squashed_equals_umoci(tmp_path, layout)
    assert ours["dev/sda"]["rdev"] == (8, 0) and ours["suid"]["mode"] == 0o4755
    assert ours["srv/bin"]["xattrs"] == {"user.bin": b"\x01\x02"}


def fx_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def manifest_of(aci: Path) -> dict:
    import gzip
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(aci.read_bytes()))) as tf:
        return json.loads(tf.extractfile("manifest").read())


def test_aci_to_oci_to_aci_gives_back_manifest_and_rootfs(tmp_path):
    man = fx.manifest(
        "example.com/rt", version="3.1", labels=[("channel", "stable")],
        app={"exec": ["/bin/app", "-v"], "user": "daemon", "group": "wheel",
             "supplementaryGIDs": [10, 20],
             "eventHandlers": [{"name": "pre-start", "exec": ["/bin/prep"]}],
             "workingDirectory": "/srv",
             "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
             "isolators": [{"name": "os/linux/capabilities-retain-set",
                            "value": {"set": ["CAP_NET_BIND_SERVICE"]}}],
             "mountPoints": [{"name": "db", "path": "/var/db", "readOnly": True}],
             "ports": [{"name": "range", "protocol": "udp", "port": 5000, "count": 3,
                        "socketActivated": True}],
             "userAnnotations": {"team": "infra"}, "userLabels": {"tier": "web"}},
        annotations=[("created", "2021-01-02T03:04:05Z"), ("authors", "me"),
                     ("documentation", "https://example.com/doc"), ("custom", "x")])
    src = tmp_path / "src.aci"
    fx.write_aci(src, man, [E("bin", "dir"), E("bin/app", data=b"app", mode=0o755),
                            E("srv", "dir", uid=2, gid=3)], compression="bzip2")
    acioci("convert", src, f"oci:{tmp_path}/layout:x", check=0)
    back = tmp_path / "back.aci"
    acioci("convert", f"oci:{tmp_path}/layout:x", back, check=0)
    run(need("actool"), "validate", back)
    assert manifest_of(back) == man
    acirender = need("acirender")
    run(acirender, src, tmp_path / "r1")
    run(acirender, back, tmp_path / "r2")
    assert diff_trees(snapshot(tmp_path / "r2" / "rootfs"),
                      snapshot(tmp_path / "r1" / "rootfs")) == []


def test_oci_to_aci_to_oci_gives_back_config_and_rootfs(tmp_path):
    layout = umoci_image(tmp_path, [
        [E("app", "dir"), E("app/run", data=b"run", mode=0o755), E("gone", data=b"x"),
         E("etc", "dir"), E("etc/passwd", data=b"nobody:x:65534:65534::/:/bin/false\n"),
         E("etc/group", data=b"nobody:x:65534:\n")],
        [E(".wh.gone"), E("app/conf", data=b"conf")],
    ], config=["--config.entrypoint", "/app/run", "--config.cmd", "--serve",
               "--config.user", "nobody", "--config.env", "A=1", "--config.env", "B=two=2",
               "--config.workingdir", "/app", "--config.exposedports", "8080/tcp",
               "--config.exposedports", "53/udp", "--config.volume", "/data",
               "--config.label", "tier=web", "--config.stopsignal", "SIGINT",
               "--os", "linux", "--architecture", "arm64"])
    aci = tmp_path / "mid.aci"
    acioci("convert", f"oci:{layout}:test", aci, "--name", "example.com/mid", check=0)
    run(need("actool"), "validate", aci)
    m = manifest_of(aci)
    assert {"name": "arch", "value": "aarch64"} in m["labels"]
    assert m["app"]["exec"] == ["/app/run", "--serve"]
    assert (m["app"]["user"], m["app"]["group"]) == ("nobody", "nobody")
    ann = {a["name"]: a["value"] for a in m["annotations"]}
    assert json.loads(ann["appc.io/docker/entrypoint"]) == ["/app/run"]
    assert json.loads(ann["appc.io/docker/cmd"]) == ["--serve"]
    assert [p["name"] for p in m["app"]["ports"]] == ["53-udp", "8080-tcp"]
    # OCI has no readOnly: the ACI leaves it out (appc's default, false, applies)
    assert m["app"]["mountPoints"] == [{"name": "volume-data", "path": "/data"}]
    out = tmp_path / "again"
    acioci("convert", aci, f"oci:{out}:test", check=0)
    skopeo = need("skopeo")
    c1 = json.loads(run(skopeo, "inspect", "--config", f"oci:{layout}:test"))
    c2 = json.loads(run(skopeo, "inspect", "--config", f"oci:{out}:test"))
    for key in ("Entrypoint", "Cmd", "User", "Env", "WorkingDir", "ExposedPorts", "Volumes",
                "Labels", "StopSignal"):
        assert c1["config"].get(key) == c2["config"].get(key), key
    assert (c1["os"], c1["architecture"]) == (c2["os"], c2["architecture"])
    umoci = need("umoci")
    run(umoci, "unpack", "--image", f"{layout}:test", tmp_path / "b1")
    run(umoci, "unpack", "--image", f"{out}:test", tmp_path / "b2")
    assert diff_trees(snapshot(tmp_path / "b2" / "rootfs"),
                      snapshot(tmp_path / "b1" / "rootfs")) == []


def test_skopeo_docker_archive_and_oci_archive_convert(tmp_path):
    layout = umoci_image(tmp_path, [[E("hello", data=b"hi")], [E("world", data=b"!")]],
                         config=["--config.cmd", "/hello"])
    skopeo = need("skopeo")
    docker_tar = tmp_path / "docker.tar"
    run(skopeo, "copy", f"oci:{layout}:test", f"docker-archive:{docker_tar}:example.com/img:v9")
    oci_tar = tmp_path / "oci.tar"
    run(skopeo, "copy", f"oci:{layout}:test", f"oci-archive:{oci_tar}:v9")
    run(need("umoci"), "unpack", "--image", f"{layout}:test", tmp_path / "bundle")
    theirs = snapshot(tmp_path / "bundle" / "rootfs")
    for i, src in enumerate([f"docker-archive:{docker_tar}", str(docker_tar), str(oci_tar),
                             f"oci-archive:{oci_tar}:v9"]):
        aci = tmp_path / f"out{i}.aci"
        acioci("convert", src, aci, "--name", "example.com/img", check=0)
        run(need("actool"), "validate", aci)
        run(need("acirender"), aci, tmp_path / f"r{i}")
        assert diff_trees(snapshot(tmp_path / f"r{i}" / "rootfs"), theirs) == [], src
    m = manifest_of(tmp_path / "out0.aci")
    assert {"name": "version", "value": "v9"} in m["labels"]
    proc = acioci("convert", docker_tar, tmp_path / "named.aci", check=0)
    assert "example.com/img" in proc.stdout
