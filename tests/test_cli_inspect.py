"""`acioci inspect` for people and for programs: aligned text with one item per line and no
Python reprs; JSON in one naming style (camelCase, env as "K=V"); for OCI sources the manifest
digest, media types, tags and layer sizes; --all for every image and --tags to list a layout."""

from __future__ import annotations

import json

from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = SAMPLE.parent / "store"


def _no_reprs(text: str) -> None:
    for repr_bit in ("((", "('", "{'", "': ", "True", "False", "None"):
        assert repr_bit not in text, (repr_bit, text)


def test_text_has_no_python_reprs_and_one_item_per_line():
    out = acioci("inspect", SAMPLE, "--store", STORE, check=0).stdout
    _no_reprs(out)
    lines = out.splitlines()
    env = [i for i, line in enumerate(lines) if line.strip().startswith("env")][0]
    assert lines[env].split() == ["env", "PATH=/usr/bin:/bin"]
    assert lines[env + 1].strip() == "GREETING=hello"
    # values start in one column
    assert lines[env].index("PATH") == lines[env + 1].index("GREETING")
    assert any(line.split() == ["ports", "http", "8080/tcp"] for line in lines)
    assert any(line.split() == ["mount", "points", "data", "/var/data"] for line in lines)
    assert 'resource/memory  {"limit": "256Mi"}' in out


def test_json_is_camel_case_with_env_as_strings():
    data = json.loads(acioci("inspect", SAMPLE, "--store", STORE, "--json", check=0).stdout)
    app = data["app"]
    assert app["env"] == ["PATH=/usr/bin:/bin", "GREETING=hello"]
    assert app["workingDirectory"] == "/home"
    assert app["mountPoints"] == [{"name": "data", "path": "/var/data", "readOnly": False}]
    assert app["ports"][0]["socketActivated"] is False
    keys = set(app) | {k for p in app["ports"] for k in p} | set(data)
    assert not any("_" in k for k in keys), keys


def test_oci_source_shows_manifest_tags_media_types_sizes(tmp_path):
    lay = tmp_path / "lay"
    acioci("convert", SAMPLE, f"oci:{lay}:v1", "--store", STORE, "-q", check=0)
    data = json.loads(acioci("inspect", lay, "--json", check=0).stdout)
    index = json.loads((lay / "index.json").read_text())
    assert data["manifest"]["digest"] == index["manifests"][0]["digest"]
    assert data["manifest"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert data["manifest"]["tags"] == ["v1"]
    for layer in data["layers"]:
        assert layer["digest"].startswith("sha256:") and layer["size"] > 0
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    text = acioci("inspect", lay, check=0).stdout
    assert index["manifests"][0]["digest"] in text and "tags" in text
    _no_reprs(text)


def test_cmd_is_shown(tmp_path):
    lay = tmp_path / "lay"
    acioci("convert", SAMPLE, f"oci:{lay}:v1", "--store", STORE, "-q", check=0)
    index = json.loads((lay / "index.json").read_text())
    blob = lambda d: lay / "blobs" / "sha256" / d.split(":")[1]  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    config = json.loads(blob(manifest["config"]["digest"]).read_text())
    config["config"]["Cmd"] = ["--loud"]
    raw = json.dumps(config).encode()
    import hashlib
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    blob(digest).write_bytes(raw)
    manifest["config"].update(digest=digest, size=len(raw))
    mraw = json.dumps(manifest).encode()
    mdigest = "sha256:" + hashlib.sha256(mraw).hexdigest()
    blob(mdigest).write_bytes(mraw)
    index["manifests"][0].update(digest=mdigest, size=len(mraw))
    (lay / "index.json").write_text(json.dumps(index))
    text = acioci("inspect", lay, check=0).stdout
    assert any(line.split() == ["cmd", "--loud"] for line in text.splitlines()), text
    assert json.loads(acioci("inspect", lay, "--json", check=0).stdout)["app"]["cmd"] == ["--loud"]


def test_all_and_tags(tmp_path):
    lay = tmp_path / "lay"
    acioci("convert", SAMPLE, f"oci:{lay}:a", "--store", STORE, "-q", check=0)
    acioci("convert", SAMPLE, f"oci:{lay}:b", "--store", STORE, "--squash", "-q", check=0)
    proc = acioci("inspect", lay, check=2)
    assert "--all" in proc.stderr
    data = json.loads(acioci("inspect", lay, "--all", "--json", check=0).stdout)
    assert [d["manifest"]["tags"] for d in data] == [["a"], ["b"]]
    assert len(acioci("inspect", lay, "--all", check=0).stdout.split("\n\n")) == 2
    listing = acioci("inspect", "--tags", lay, check=0).stdout.splitlines()
    assert listing[0].split() == ["TAG", "PLATFORM", "MANIFEST"]
    assert [line.split()[:2] for line in listing[1:]] == [["a", "linux/amd64"],
                                                          ["b", "linux/amd64"]]
    tags = json.loads(acioci("inspect", "--tags", lay, "--json", check=0).stdout)
    assert [t["tags"] for t in tags] == [["a"], ["b"]]
    proc = acioci("inspect", "--tags", SAMPLE, check=2)
    assert proc.stderr.startswith("acioci: error: ") and "OCI layout" in proc.stderr
