"""Every case in fixtures/invalid/ is reported with exactly its rule at exactly its place, and
every case in fixtures/valid/ passes; fixtures/make_validation_cases.py says how each was made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import acioci

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
INVALID = sorted(p for p in (FIXTURES / "invalid").iterdir() if p.is_dir())
VALID = sorted(p for p in (FIXTURES / "valid").iterdir() if p.is_dir())


def test_there_are_enough_cases():
    assert len(INVALID) >= 40 and len(VALID) >= 5


@pytest.mark.parametrize("case", INVALID, ids=[p.name for p in INVALID])
def test_invalid_case_reports_its_rule_and_place(case):
    exp = json.loads((case / "expected.json").read_text())
    target = case / exp["input"]
    args = ["validate", target, "--json"] + (["--strict"] if exp["strict"] else [])
    proc = acioci(*args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)["files"][0]
    assert report["valid"] is False
    found = {(f["rule"], f["place"]) for f in report["findings"]}
    assert (exp["rule"], exp["place"]) in found, found
    if exp["strict"]:  # warnings alone do not fail without --strict
        assert acioci("validate", target).returncode == 0
    text = acioci(*[a for a in args if a != "--json"]).stdout
    where = f"{target}::{exp['place']}" if exp["place"] else str(target)
    assert f"{where}: " in text and f"[{exp['rule']}]" in text


@pytest.mark.parametrize("case", VALID, ids=[p.name for p in VALID])
def test_valid_case_passes(case):
    exp = json.loads((case / "expected.json").read_text())
    proc = acioci("validate", case / exp["input"], "--strict")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 valid" in proc.stdout


def test_many_paths_summary_and_exit_codes(tmp_path):
    good = VALID[0] / json.loads((VALID[0] / "expected.json").read_text())["input"]
    bad = INVALID[0] / json.loads((INVALID[0] / "expected.json").read_text())["input"]
    proc = acioci("validate", good, bad)
    assert proc.returncode == 1 and "2 checked: 1 valid, 1 invalid" in proc.stdout
    proc = acioci("validate", good, tmp_path / "missing.aci")
    assert proc.returncode == 2 and "1 unreadable" in proc.stdout
    proc = acioci("validate", "--recursive", FIXTURES / "valid", "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["summary"]["files"] >= len(VALID)
    assert acioci("validate", good, "--type", "nonsense").returncode == 2


def test_aci_image_id_is_printed():
    sample = FIXTURES / "sample" / "hello-1.0.0-linux-amd64.aci"
    import hashlib
    import gzip

    want = "sha512-" + hashlib.sha512(gzip.decompress(sample.read_bytes())).hexdigest()
    assert want in acioci("validate", sample, check=0).stdout


def test_type_oci_descriptor_validates_a_bare_descriptor(tmp_path):
    """The descriptor schema was internal only; the spec's descriptor examples can now be
    checked directly."""
    from helpers import acioci

    good = tmp_path / "good.json"
    good.write_text('{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7682, '
                    '"digest": "sha256:' + "5b" * 32 + '"}')
    acioci("validate", "--type", "oci-descriptor", good, check=0)
    bad = tmp_path / "bad.json"
    bad.write_text('{"mediaType": "x", "digest": "sha256:XYZ", "size": -1}')
    proc = acioci("validate", "--type", "oci-descriptor", bad, check=1)
    assert "#/digest" in proc.stdout and "#/size" in proc.stdout


def test_layout_pointing_at_docker_v2s2_manifests_is_valid(tmp_path):
    """`ctr images export` writes an OCI layout whose index names a Docker v2s2 manifest (and
    a manifest list); each is checked against Docker's schema, not OCI's fixed mediaType."""
    import gzip
    import hashlib
    import json

    import build as fx
    from helpers import acioci

    lay = fx.LayoutWriter(tmp_path / "lay")
    tar = fx.layer_tar([fx.entry("f", data=b"x")])
    layer = lay.blob(gzip.compress(tar, mtime=0))
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}
    cdesc = lay.blob(json.dumps(config).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **cdesc},
           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **layer}]}
    mdesc = lay.blob(json.dumps(man).encode())
    mlist = {"schemaVersion": 2,
             "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests": [{"mediaType": man["mediaType"], **mdesc,
                            "platform": {"architecture": "amd64", "os": "linux"}}]}
    ldesc = lay.blob(json.dumps(mlist).encode())
    lay.index["manifests"] += [{"mediaType": man["mediaType"], **mdesc},
                               {"mediaType": mlist["mediaType"], **ldesc}]
    lay.save()
    proc = acioci("validate", lay.root, "--strict")
    assert proc.returncode == 0, proc.stdout
    man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"  # now it lies
    bad = lay.blob(json.dumps(man).encode())
    lay.index["manifests"] = [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               **bad}]
    lay.save()
    proc = acioci("validate", lay.root)
    assert proc.returncode == 1 and "docker-manifest.schema" in proc.stdout
