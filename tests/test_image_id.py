"""`--no-image-id`: an ACI read without its appc image ID. A lone ACI is then never hashed with
SHA-512 (the longest chain of work in a one-pass conversion); the layers are the same bytes,
and the output differs from the default only by the records of the ID."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import build as fx
from helpers import ROOT, acioci
from test_aci_to_oci import read_layout

from convert import api
from convert.readers import aci as aci_reader
from convert.spec.vocabulary import ANN_HAS_APP, ANN_IMAGE_ID

SAMPLE = ROOT / "fixtures" / "sample"


def _layout(out: Path) -> tuple[dict, dict]:
    _, manifest, config, _ = read_layout(out)
    return manifest, config


def _without_id(manifest: dict, config: dict) -> tuple[dict, dict, list]:
    """The default output with its image-ID records taken out, and the layers' digests."""
    manifest = json.loads(json.dumps(manifest))
    del manifest["annotations"][ANN_IMAGE_ID]
    for layer in manifest["layers"]:
        layer.get("annotations", {}).pop(ANN_IMAGE_ID, None)
    config = json.loads(json.dumps(config))
    for item in config["history"]:
        assert item.pop("comment").startswith("sha512-")
    layers = [d.pop("digest") for d in manifest["layers"]]
    manifest.pop("config")
    return manifest, config, layers


def _convert_both(tmp_path, src, *args):
    outs = []
    for name, flag in (("with", ()), ("without", ("--no-image-id",))):
        out = tmp_path / name
        acioci("convert", src, f"oci:{out}:v1", "-q", *args, *flag, check=0)
        outs.append(_layout(out))
    return outs


def test_lone_aci_without_id_differs_only_by_the_id(tmp_path):
    aci = tmp_path / "a.aci"
    ident = fx.write_aci(aci, fx.manifest("example.com/a"),
                         [fx.entry("bin/sh", data=b"#!" * 5000), fx.entry("etc", "dir")])
    (m1, c1), (m2, c2) = _convert_both(tmp_path, aci)
    assert m1["annotations"][ANN_IMAGE_ID] == ident
    assert ANN_IMAGE_ID not in m2["annotations"]
    assert all("comment" not in h for h in c2["history"])
    # no app in the ACI: still recorded, so a way back writes no app either
    assert m2["annotations"][ANN_HAS_APP] == "false"
    expected_m, expected_c, layers = _without_id(m1, c1)
    assert [d.pop("digest") for d in m2["layers"]] == layers
    m2.pop("config")
    assert (m2, c2) == (expected_m, expected_c)


def test_chain_without_id_records_none_and_writes_the_same_layers(tmp_path):
    (m1, c1), (m2, c2) = _convert_both(
        tmp_path, SAMPLE / "hello-1.0.0-linux-amd64.aci", "--store", SAMPLE / "store")
    assert len(m1["layers"]) > 1  # one per ACI of the chain, each naming its ACI's ID
    assert all(ANN_IMAGE_ID in d["annotations"] for d in m1["layers"])
    assert ANN_IMAGE_ID not in json.dumps(m2)
    expected_m, expected_c, layers = _without_id(m1, c1)
    assert [d.pop("digest") for d in m2["layers"]] == layers
    m2.pop("config")
    assert (m2, c2) == (expected_m, expected_c)
    # the dependencies' pinned IDs are manifest fields, not records of ours: they stay
    assert m2["annotations"] == expected_m["annotations"]


def test_lone_aci_without_id_takes_no_sha512(tmp_path, monkeypatch):
    aci = tmp_path / "a.aci"
    fx.write_aci(aci, fx.manifest("example.com/a"), [fx.entry("f", data=b"x" * 100_000)])
    made: list[str] = []
    real_new = hashlib.new

    def spy(name, *args, **kw):
        made.append(name)
        return real_new(name, *args, **kw)

    monkeypatch.setattr(hashlib, "new", spy)
    for record in (True, False):
        made.clear()
        api.convert(str(aci), f"oci:{tmp_path / str(record)}:v1",
                    options=api.ConvertOptions(image_id=record))
        assert ("sha512" in made) is record, made


def test_round_trip_without_id_keeps_an_app_less_aci_app_less(tmp_path):
    aci = tmp_path / "a.aci"
    fx.write_aci(aci, fx.manifest("example.com/a", version="1"), [fx.entry("f", data=b"x")])
    acioci("convert", aci, f"oci:{tmp_path / 'o'}:v1", "--no-image-id", "-q", check=0)
    back = tmp_path / "back.aci"
    acioci("convert", f"oci:{tmp_path / 'o'}:v1", back, "-q", check=0)
    manifest = json.loads(aci_reader.AciFiles().find_manifest(str(back)))
    assert "app" not in manifest and manifest["name"] == "example.com/a"


def test_batch_passes_no_image_id_on(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    fx.write_aci(src / "a.aci", fx.manifest("example.com/a"), [fx.entry("f", data=b"x")])
    acioci("batch", src, "--to", "oci", "--out", tmp_path / "out", "--no-image-id", "-q",
           check=0)
    [layout] = [p for p in (tmp_path / "out").iterdir() if (p / "index.json").exists()]
    manifest, _ = _layout(layout)
    assert ANN_IMAGE_ID not in manifest["annotations"]


def test_results_name_the_source_aci_unless_told_not_to(tmp_path):
    """convert --json and batch's report carry the ACI's image ID beside the OCI digests: a
    migration maps the references rkt knew (sha512-…) to the new manifests with it."""
    aci = tmp_path / "in" / "a.aci"
    aci.parent.mkdir()
    ident = fx.write_aci(aci, fx.manifest("example.com/a"), [fx.entry("f", data=b"x")])
    for flag, expected in (((), ident), (("--no-image-id",), None)):
        out = tmp_path / f"o{len(flag)}"
        [got] = json.loads(acioci("convert", aci, out, "--json", *flag, check=0).stdout)
        assert got.get("sourceImageID") == expected and got["manifest"].startswith("sha256:")
        text = acioci("convert", aci, tmp_path / f"t{len(flag)}", *flag, check=0).stdout
        assert (f"from ACI {ident}" in text) is (expected is not None)
    report = tmp_path / "report.json"
    acioci("batch", aci.parent, "--to", "oci", "--out", tmp_path / "b", "--report", report,
           "-q", check=0)
    [record] = json.loads(report.read_bytes())["records"]
    assert record["result"]["sourceImageID"] == ident
