"""`acioci batch SRC --out docker://HOST/NAMESPACE` against a real registry (distribution 2.8):
a store with an ACI chain, a truncated ACI and a file that is no ACI at all. Every image gets
the name the README promises, skopeo reads each tag back, the chain's base layer goes up once
(the second image mounts it), the broken inputs are failed records with nothing tagged, a rerun
skips what the registry already has, and names that collide stop the batch before any upload."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from urllib.request import urlopen

import pytest

import build as fx
from helpers import acioci, need, run

pytestmark = pytest.mark.interop
E = fx.entry


def make_store(d: Path) -> None:
    """base (version `1.0+build`), an app on top of it in `apps/Hello+World.aci`, an ACI cut
    short after its manifest (its name can be read, its content cannot), and junk."""
    fx.write_aci(d / "base.aci", fx.manifest("example.com/base", version="1.0+build"),
                 [E("etc", "dir"), E("etc/os", data=b"base"),
                  E("big", data=os.urandom(300_000))])
    fx.write_aci(d / "apps" / "Hello+World.aci", fx.manifest(
        "example.com/hello", version="2.0", dependencies=[{"imageName": "example.com/base"}]),
        [E("etc", "dir"), E("etc/hello", data=b"hi")])
    raw = fx.aci_bytes(fx.manifest("example.com/broken", version="3"),
                       [E("f", data=os.urandom(100_000))])
    (d / "broken.aci").write_bytes(raw[: len(raw) - 30_000])
    (d / "junk.aci").write_bytes(gzip.compress(b"not a tar at all" * 100))


def catalog(reg) -> list[str]:
    with urlopen(f"http://{reg.host}/v2/_catalog") as resp:
        return json.load(resp)["repositories"]


def batch(reg, src: Path, report: Path, *extra, space="ns"):
    return acioci("batch", src, "--out", f"docker://{reg.host}/{space}", "--tls-verify=false",
                  "--jobs", "1", "--report", report, *extra)


def test_batch_pushes_a_store_with_names_mounts_and_resume(registry, tmp_path):
    skopeo = need("skopeo")
    src = tmp_path / "store"
    make_store(src)
    proc = batch(registry, src, tmp_path / "r1.json")
    assert proc.returncode == 1, proc.stderr  # two inputs failed, the others were pushed
    records = {Path(r["source"]).name: r for r in
               json.loads((tmp_path / "r1.json").read_text())["records"]}
    base, hello = records["base.aci"], records["Hello+World.aci"]
    assert base["destination"] == f"docker://{registry.host}/ns/base:1.0_build"
    assert hello["destination"] == f"docker://{registry.host}/ns/apps/hello_world:2.0"
    for rec in (base, hello):
        assert rec["status"] == "converted"
        repo = rec["destination"].rsplit(":", 1)[0]
        assert rec["result"]["pushed"] == f"{repo}@{rec['result']['manifest']}"
        # skopeo finds the tag, naming the manifest the report records
        info = json.loads(run(skopeo, "inspect", "--raw", "--tls-verify=false",
                              rec["destination"]))
        digest = json.loads(run(skopeo, "inspect", "--tls-verify=false",
                                rec["destination"]))["Digest"]
        assert digest == rec["result"]["manifest"] and info["schemaVersion"] == 2
    # the base layer is the first layer of both; it went up once, the second image mounted it
    base_layer = base["result"]["layers"][0]["digest"]
    assert hello["result"]["layers"][0]["digest"] == base_layer
    hows = {b["digest"]: b["how"] for b in hello["result"]["blobs"]}
    assert hows[base_layer] == "mounted"
    log = registry.access_log()
    assert len(re.findall(rf'"PUT /v2/ns/[^ "]*digest={base_layer} HTTP/1.1" 201', log)) == 1
    assert f"?mount={base_layer}&from=ns/base HTTP/1.1\" 201" in log
    # the broken inputs: failed records, nothing tagged (their repositories do not exist)
    assert records["broken.aci"]["status"] == "failed"
    assert records["broken.aci"]["destination"].endswith("/ns/broken:3")
    assert "truncated" in records["broken.aci"]["error"]
    assert records["junk.aci"]["status"] == "failed" and "not a tar" in records["junk.aci"]["error"]
    assert sorted(r for r in catalog(registry) if r.startswith("ns/")) == \
        ["ns/apps/hello_world", "ns/base"]
    # skopeo copies a pushed image back to a layout; the chain's files are all there
    run(skopeo, "copy", "--src-tls-verify=false", hello["destination"],
        f"oci:{tmp_path / 'back'}:2.0")
    run(need("umoci"), "unpack", "--rootless", "--image", f"{tmp_path / 'back'}:2.0",
        tmp_path / "bundle")
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "etc/os").read_bytes() == b"base" and (rootfs / "etc/hello").exists()

    # a rerun: each tag names the manifest already, so nothing is pushed
    marks = len(registry.access_log())
    proc = batch(registry, src, tmp_path / "r2.json")
    again = {Path(r["source"]).name: r for r in
             json.loads((tmp_path / "r2.json").read_text())["records"]}
    assert again["base.aci"]["status"] == again["Hello+World.aci"]["status"] == "skipped"
    assert again["base.aci"]["result"]["manifest"] == base["result"]["manifest"]
    assert again["broken.aci"]["status"] == "failed"
    fresh = registry.access_log()[marks:]
    # (the broken input streams into an upload session again before it fails; it is
    # cancelled, and it tags nothing)
    assert "/ns/base/blobs/" not in fresh and "/ns/apps/hello_world/blobs/" not in fresh
    assert "PUT" not in fresh
    # --force pushes again: every blob is found by HEAD, none moves
    batch(registry, src, tmp_path / "r3.json", "--force")
    forced = {Path(r["source"]).name: r for r in
              json.loads((tmp_path / "r3.json").read_text())["records"]}
    assert forced["base.aci"]["status"] == "converted"
    assert {b["how"] for b in forced["Hello+World.aci"]["result"]["blobs"]} == {"exists"}


def test_names_that_collide_are_refused_before_any_upload(registry, tmp_path):
    src = tmp_path / "store"
    for name in ("App.aci", "app.aci", "other.aci"):
        fx.write_aci(src / name, fx.manifest("example.com/app", version="1"),
                     [E("f", data=name.encode())])
    proc = batch(registry, src, tmp_path / "r.json", space="clash")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "App.aci" in proc.stderr and "app.aci" in proc.stderr
    assert "clash/app:1" in proc.stderr and "other.aci" not in proc.stderr
    assert "/v2/clash/" not in registry.access_log()
    assert not [r for r in catalog(registry) if r.startswith("clash/")]


def test_oci_sources_are_tagged_by_their_ref_name(registry, tmp_path):
    """A layout's image goes by its ref name's tag, an oci-archive reference by its :REF."""
    skopeo = need("skopeo")
    sample = Path(__file__).resolve().parents[2] / "fixtures/sample"
    (tmp_path / "in").mkdir()
    acioci("convert", sample / "store/base-1.0.0-linux-amd64.aci", f"oci:{tmp_path / 'in/lay'}:"
           "example.com/base:1.0.0", "-q", check=0)
    acioci("convert", sample / "store/base-1.0.0-linux-amd64.aci",
           f"oci-archive:{tmp_path / 'in/arc.tar'}:v9", "-q", check=0)
    proc = acioci("batch", tmp_path / "in/lay", f"oci-archive:{tmp_path / 'in/arc.tar'}:v9",
                  "--out", f"docker://{registry.host}/refs", "--tls-verify=false", "--json",
                  check=0)
    dests = sorted(r["destination"] for r in json.loads(proc.stdout)["records"])
    assert dests == [f"docker://{registry.host}/refs/arc:v9",
                     f"docker://{registry.host}/refs/lay:1.0.0"]
    tags = json.loads(run(skopeo, "list-tags", "--tls-verify=false",
                          f"docker://{registry.host}/refs/lay"))["Tags"]
    assert tags == ["1.0.0"]
