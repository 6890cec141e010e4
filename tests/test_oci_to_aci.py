"""OCI -> ACI through the CLI on layouts built by hand (so each can be broken on purpose):
selection, verification errors, mapping rules, determinism."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

import build as fx
from helpers import acioci

E = fx.entry


class Layout(fx.LayoutWriter):
    """An OCI layout written by the test itself, blob by blob."""

    def image(self, layers: list[bytes], *, config: dict | None = None, ref: str | None = None,
              platform=("linux", "amd64", None), compress=True, annotations=None) -> dict:
        descs, diff_ids = [], []
        for raw in layers:
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            data = gzip.compress(raw, mtime=0) if compress else raw
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar"
                          + ("+gzip" if compress else ""), **self.blob(data)})
        cfg = {"architecture": platform[1], "os": platform[0],
               "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": config or {}}
        if platform[2]:
            cfg["variant"] = platform[2]
        cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json",
                 **self.blob(json.dumps(cfg).encode())}
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": cdesc, "layers": descs}
        if annotations:
            man["annotations"] = annotations
        mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 **self.blob(json.dumps(man).encode())}
        entry = dict(mdesc)
        if ref:
            entry["annotations"] = {"org.opencontainers.image.ref.name": ref}
        entry["platform"] = {"os": platform[0], "architecture": platform[1],
                             **({"variant": platform[2]} if platform[2] else {})}
        self.index["manifests"].append(entry)
        self.save()
        return {"manifest": mdesc, "config": cdesc, "layers": descs}


def aci_manifest(path: Path) -> dict:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(path.read_bytes()))) as tf:
        names = tf.getnames()
        assert names[:2] == ["manifest", "rootfs"]
        return json.loads(tf.extractfile("manifest").read())


def test_selection_by_ref_and_platform_and_the_error_that_lists_choices(tmp_path):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("amd", data=b"1")])], ref="app:1")
    lay.image([fx.layer_tar([E("arm", data=b"2")])], ref="app:1", platform=("linux", "arm", "v7"))
    lay.image([fx.layer_tar([E("other", data=b"3")])], ref="other:2")
    proc = acioci("convert", lay.root, tmp_path / "x.aci")
    assert proc.returncode == 2
    assert "3 images match" in proc.stderr and "app:1 (linux/arm/v7)" in proc.stderr
    out = tmp_path / "arm.aci"
    acioci("convert", f"oci:{lay.root}:app:1", out, "--platform", "linux/arm/v7", check=0)
    m = aci_manifest(out)
    assert m["name"] == "app"
    assert {"name": "arch", "value": "armv7l"} in m["labels"]
    assert {"name": "version", "value": "1"} in m["labels"]
    acioci("convert", lay.root, tmp_path / "o.aci", "--ref", "other:2", "--name", "x.io/o",
           check=0)
    assert aci_manifest(tmp_path / "o.aci")["name"] == "x.io/o"
    (tmp_path / "all").mkdir()
    acioci("convert", lay.root, tmp_path / "all", "--all", "--to", "aci", check=0)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "app-1-linux-amd64.aci", "app-1-linux-armv7l.aci", "other-2-linux-amd64.aci"]


def test_converting_twice_gives_identical_bytes(tmp_path):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("a", data=b"1"), E("d", "dir")]),
               fx.layer_tar([E(".wh.a"), E("d/b", data=b"2")])], ref="v1",
              config={"Entrypoint": ["/d/b"]})
    outs = []
    for n in ("1", "2"):
        out = tmp_path / f"{n}.aci"
        acioci("convert", lay.root, out, "--name", "example.com/x", check=0)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("how,text", [
    ("layer-digest", "digest of blob"), ("diff-id", "diff_id of layer"),
    # garbled mid-stream: the index pass fails to parse it, then reports why (the digest)
    ("layer-garbled", "digest of blob"),
    ("missing-blob", "layer blob is missing"), ("short-blob", "size of blob"),
    ("config-digest", "digest of blob"),
    # a content-addressed cycle cannot hash true: verification catches it before the guard
    ("index-cycle", "does not match"),
    ("escape-digest", "index.json#/manifests/0/digest: oci-index fails its schema"), ("blobs-symlink", "is a symlink"),
    ("unmappable", "no appc equivalent"), ("bad-layer-type", "unsupported layer media type"),
])
def test_broken_layouts_get_one_clear_error(tmp_path, how, text):
    lay = Layout(tmp_path / "lay")
    platform = ("windows", "amd64", None) if how == "unmappable" else ("linux", "amd64", None)
    d = lay.image([fx.layer_tar([E("f", data=b"content" * 100)])], ref="v1", platform=platform)
    blobs = lay.root / "blobs" / "sha256"
    layer = blobs / d["layers"][0]["digest"].split(":")[1]
    if how == "layer-digest":
        data = bytearray(layer.read_bytes())
        data[-12] ^= 1  # inside the gzip trailer's CRC: still decompresses, digest differs
        layer.write_bytes(bytes(data))
    elif how == "layer-garbled":
        data = bytearray(layer.read_bytes())
        data[len(data) // 2] ^= 0xFF
        layer.write_bytes(bytes(data))
    elif how == "diff-id":
        cfg_path = blobs / d["config"]["digest"].split(":")[1]
        cfg = json.loads(cfg_path.read_text())
        cfg["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
        cfg_path.unlink()
        lay.index["manifests"] = []
        new_cfg = lay.blob(json.dumps(cfg).encode())
        man = json.loads((blobs / d["manifest"]["digest"].split(":")[1]).read_text())
        man["config"].update(new_cfg)
        mdesc = lay.blob(json.dumps(man).encode())
        lay.index["manifests"] = [{"mediaType": man["mediaType"], **mdesc,
                                   "annotations": {"org.opencontainers.image.ref.name": "v1"}}]
        lay.save()
    elif how == "missing-blob":
        layer.unlink()
    elif how == "short-blob":
        layer.write_bytes(layer.read_bytes()[:-1] + b"")
        # same content minus one byte: size check fires before the digest
    elif how == "config-digest":
        cfg_path = blobs / d["config"]["digest"].split(":")[1]
        cfg_path.write_bytes(cfg_path.read_bytes().replace(b"amd64", b"arm64"))
    elif how == "index-cycle":
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": []}
        # an index that contains itself cannot be content-addressed directly; make it point to
        # a second index that points back to the first
        first = json.dumps(idx).encode()
        h1 = hashlib.sha256(first).hexdigest()
        second = {"schemaVersion": 2, "manifests": [{"mediaType": idx["mediaType"],
                                                     "digest": f"sha256:{h1}",
                                                     "size": len(first)}]}
        s2 = lay.blob(json.dumps(second).encode())
        idx["manifests"] = [{"mediaType": idx["mediaType"], **s2}]
        first = json.dumps(idx).encode()
        # the first must now hash to what the second says: write it under that name anyway
        (blobs / h1).write_bytes(first)
        lay.index["manifests"] = [{"mediaType": idx["mediaType"], "digest": f"sha256:{h1}",
                                   "size": len(first)}]
        lay.save()
    elif how == "escape-digest":
        lay.index["manifests"][0]["digest"] = "sha256:../../../etc/passwd"
        lay.save()
    elif how == "blobs-symlink":
        os.rename(lay.root / "blobs", tmp_path / "elsewhere")
        os.symlink(tmp_path / "elsewhere", lay.root / "blobs")
    elif how == "bad-layer-type":
        man_path = blobs / d["manifest"]["digest"].split(":")[1]
        man = json.loads(man_path.read_text())
        man["layers"][0]["mediaType"] = "application/x-tar-lz4"
        mdesc = lay.blob(json.dumps(man).encode())
        lay.index["manifests"] = [{"mediaType": man["mediaType"], **mdesc}]
        lay.save()
    before = {p: p.read_bytes() for p in lay.root.rglob("*") if p.is_file()}
    out = tmp_path / "out.aci"
    proc = acioci("convert", lay.root, out, "--name", "example.com/x")
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert text in proc.stderr, proc.stderr
    assert str(lay.root) in proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.aci")]
    assert before == {p: p.read_bytes() for p in lay.root.rglob("*") if p.is_file()}


def test_inspect_verifies_layer_digests(tmp_path):
    """Conversions verify bytes in the pass that emits them; inspect emits nothing, so its
    one pass over the layers must verify them itself."""
    lay = Layout(tmp_path / "lay")
    d = lay.image([fx.layer_tar([E("f", data=b"content" * 100)])], ref="v1")
    assert acioci("inspect", lay.root).returncode == 0
    layer = lay.root / "blobs" / "sha256" / d["layers"][0]["digest"].split(":")[1]
    layer.write_bytes(layer.read_bytes() + bytes(64))  # gzip readers ignore trailing NULs
    proc = acioci("inspect", lay.root)
    assert proc.returncode == 1 and "larger than its descriptor" in proc.stderr, proc.stderr


def test_user_and_volume_and_port_mapping(tmp_path):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("x", data=b"1")])], ref="localhost:5000/My_App:v2", config={
        "User": "", "WorkingDir": "srv", "Env": ["A=1", "NOEQUALS", "B=x=y"],
        "ExposedPorts": {"80/tcp": {}, "53": {}}, "Volumes": {"/var/lib/data": {}},
        "Labels": {"org.example.k": "v"}, "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"]},
        annotations={"org.opencontainers.image.url": "https://example.com",
                     "org.opencontainers.image.created": "2022-02-02T02:02:02Z"})
    out = tmp_path / "o.aci"
    acioci("convert", lay.root, out, check=0)
    m = aci_manifest(out)
    assert m["name"] == "localhost_5000/my_app"
    assert {"name": "version", "value": "v2"} in m["labels"]
    app = m["app"]
    assert (app["user"], app["group"]) == ("0", "0")
    assert app["exec"] == ["/bin/sh", "-c", "echo hi"]
    assert app["workingDirectory"] == "/srv"
    assert app["environment"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "x=y"}]
    assert {p["name"] for p in app["ports"]} == {"53-tcp", "80-tcp"}
    assert app["mountPoints"][0]["name"] == "volume-var-lib-data"
    assert app["userLabels"] == {"org.example.k": "v"}
    ann = {a["name"]: a["value"] for a in m["annotations"]}
    assert ann["homepage"] == "https://example.com"
    assert ann["created"] == "2022-02-02T02:02:02Z"


def _tar_tree(root: Path, out: Path, extra: dict[str, bytes]) -> None:
    with tarfile.open(out, "w") as tf:
        for p in sorted(root.rglob("*")):
            tf.add(p, p.relative_to(root).as_posix(), recursive=False)
        for name, data in extra.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


@pytest.mark.parametrize("shape", ["docker25", "containerd"])
def test_modern_docker_archive_shapes(tmp_path, shape):
    """Docker 25+ (an OCI layout with uncompressed layers plus manifest.json) and containerd
    exports (manifest.json pointing at gzip blobs) both convert through manifest.json."""
    lay = Layout(tmp_path / "lay")
    raw = fx.layer_tar([E("hello", data=b"modern")])
    d = lay.image([raw], ref="latest", compress=(shape == "containerd"))
    blob = lambda desc: "blobs/sha256/" + desc["digest"].split(":")[1]  # noqa: E731
    manifest_json = json.dumps([{"Config": blob(d["config"]),
                                 "RepoTags": ["example.com/modern:latest"],
                                 "Layers": [blob(d["layers"][0])]}]).encode()
    archive = tmp_path / "image.tar"
    _tar_tree(lay.root, archive, {"manifest.json": manifest_json})
    out = tmp_path / "out.aci"
    acioci("convert", f"docker-archive:{archive}", out, check=0)
    m = aci_manifest(out)
    assert m["name"] == "example.com/modern"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(out.read_bytes()))) as tf:
        assert tf.extractfile("rootfs/hello").read() == b"modern"


def test_the_index_pass_seeks_over_uncompressed_layers(tmp_path, monkeypatch):
    """Squash's header pass over a plain-tar layer seeks past file data instead of reading
    it; the writing pass still reads (and verifies) every byte."""
    from convert import api
    from convert.readers import blobs as blobs_mod
    from test_tarstream import CountingFile

    big = bytes(range(256)) * (48 << 10)  # 12 MiB
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("big", data=big), E("small", data=b"x")])], ref="v1",
              compress=False)
    opened = []

    def counting_open(self, rel):
        fh = CountingFile(self._path(rel))
        opened.append(fh)
        return fh

    monkeypatch.setattr(blobs_mod.DirBlobs, "open", counting_open)
    layer = api.read(f"oci:{lay.root}:v1").layers[0]
    with layer.headers() as entries:
        assert [(e.path, e.size) for e in entries] == [("big", len(big)), ("small", 1)]
    assert opened[-1].read_bytes < 3 << 20
    with layer.open() as entries:
        assert [(e.path, len(e.data.read()) if e.path == "small" else None)
                for e in entries] == [("big", None), ("small", 1)]
    assert opened[-1].read_bytes >= len(big)


@pytest.mark.parametrize("field,value", [("Entrypoint", "/bin/sh"), ("Labels", ["x"]),
                                         ("Env", "A=1"), ("Cmd", [1, 2]), ("User", 0)])
def test_config_field_of_the_wrong_type_is_one_error_naming_its_pointer(tmp_path, field, value):
    """`"Entrypoint": "/bin/sh"` became exec ["/","b","i","n","/","s","h"]; `"Labels": ["x"]`
    was a traceback. Both are bad input: exit 1, the JSON pointer named, nothing written."""
    lay = fx.LayoutWriter(tmp_path / "lay")
    layer = lay.blob(gzip.compress(fx.layer_tar([fx.entry("f", data=b"x")]), mtime=0))
    config = {"architecture": "amd64", "os": "linux", "config": {field: value},
              "rootfs": {"type": "layers", "diff_ids": [
                  "sha256:" + hashlib.sha256(fx.layer_tar([fx.entry("f", data=b"x")])).hexdigest()]}}
    cdesc = lay.blob(json.dumps(config).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}
    mdesc = lay.blob(json.dumps(man).encode())
    lay.index["manifests"].append({"mediaType": man["mediaType"], **mdesc})
    lay.save()
    proc = acioci("convert", lay.root, tmp_path / "out.aci", "--name", "example.com/x")
    assert proc.returncode == 1, proc.stderr
    assert f"config#/config/{field}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.aci").exists()
