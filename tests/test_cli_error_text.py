"""The exact words of errors about broken JSON and broken documents (issue 19, point 5): JSON
syntax errors say what is wrong in words with line, column and byte (`not JSON: unterminated
string at line 1 column 236 (byte 235)`, not Python's `Unterminated string starting at at`);
a value from the document is shown as JSON (`{"a":true}`), never as a Python repr
(`{'a': True}`, `None`); every error names its file and place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import build as fx
from helpers import acioci
from test_oci_to_aci import Layout, _tar_tree

E = fx.entry


def _error(proc, code=1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


@pytest.mark.parametrize("text,message", [
    (b'{"a": "xx', "unterminated string at line 1 column 7 (byte 6)"),
    (b'{"a" 1}', "expected ':' at line 1 column 6 (byte 5)"),
    (b"{a: 1}", "expected a key in double quotes at line 1 column 2 (byte 1)"),
    (b"[1 2]", "expected ',' or a closing ] or } at line 1 column 4 (byte 3)"),
    (b"", "expected a value at line 1 column 1 (byte 0)"),
    (b'{"a": 1} x', "more after the JSON value at line 1 column 10 (byte 9)"),
    (b'"a\\qb"', "invalid backslash escape at line 1 column 3 (byte 2)"),
    (b'"\\u12"', "invalid \\uXXXX escape at line 1 column 3 (byte 2)"),
    (b'"a\x01"', "control character in a string at line 1 column 3 (byte 2)"),
    ('{\n "é": "ü", "b": "x'.encode(), "unterminated string at line 2 column 17 (byte 20)"),
])
def test_json_syntax_errors_in_words(text, message):
    from convert import jsonio
    from convert.errors import FormatError

    with pytest.raises(FormatError) as info:
        jsonio.loads(text, file="F", entry="e")
    assert str(info.value) == f"F::e: not JSON: {message}"


def test_a_truncated_aci_manifest_reads_like_a_sentence(tmp_path):
    raw = b'{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/ap'
    src = tmp_path / "cut.aci"
    fx.write_aci(src, {}, [E("f")], raw_manifest=raw)
    text = _error(acioci("convert", src, tmp_path / "o.tar"))
    assert text == (f"acioci: error: {src}::manifest: not JSON: unterminated string at line 1 "
                    "column 60 (byte 59)\n")
    assert "at at" not in text and "Unterminated" not in text


def test_validate_words_json_errors_the_same_way(tmp_path):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("f", data=b"1")])], ref="v1")
    (lay.root / "index.json").write_bytes(b'{"schemaVersion": 2, "manifests": [')
    proc = acioci("validate", lay.root)
    assert proc.returncode == 1
    assert "not JSON: expected a value at line 1 column 36 (byte 35)" in proc.stdout
    assert "Expecting" not in proc.stdout


def _layout(tmp_path: Path, *, config=None, annotations=None) -> Layout:
    """A one-image layout whose config (and manifest annotations) the test spoils."""
    lay = Layout(tmp_path / "lay")
    d = lay.image([fx.layer_tar([E("f", data=b"1")])], ref="v1")
    cfg = json.loads(lay.path(d["config"]).read_text())
    man = json.loads(lay.path(d["manifest"]).read_text())
    if config:
        config(cfg)
        man["config"].update(lay.blob(json.dumps(cfg).encode()))
    if annotations:
        man["annotations"] = annotations
    lay.index["manifests"][0].update(lay.blob(json.dumps(man).encode()))
    lay.save()
    return lay


def test_a_json_value_in_an_error_is_shown_as_json(tmp_path):
    lay = _layout(tmp_path, config=lambda c: c["rootfs"].__setitem__("type", {"a": True}))
    text = _error(acioci("convert", lay.root, tmp_path / "o.aci"))
    assert text == (f"acioci: error: {lay.root}::config#/rootfs/type: config rootfs.type must "
                    "be 'layers' (expected layers, got {\"a\":true})\n")


def test_an_odd_layout_version_is_shown_as_json(tmp_path):
    lay = _layout(tmp_path)
    (lay.root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": {"x": [1, None]}}))
    text = _error(acioci("convert", lay.root, tmp_path / "o.aci"))
    assert text == (f"acioci: error: {lay.root}::oci-layout: unsupported imageLayoutVersion "
                    "(expected 1.0.0, got {\"x\":[1,null]})\n")


def test_a_bad_exposed_port_names_its_place(tmp_path):
    lay = _layout(tmp_path, config=lambda c: c.__setitem__(
        "config", {"ExposedPorts": {"http/tcp": {}}}))
    text = _error(acioci("convert", lay.root, tmp_path / "o.aci"))
    assert text == (f"acioci: error: {lay.root}::config#/config/ExposedPorts: an ExposedPorts "
                    "key is not PORT[/PROTOCOL] (got http/tcp)\n")


def test_a_stash_annotation_that_is_not_json_says_so_once(tmp_path):
    lay = _layout(tmp_path, annotations={"io.acioci.aci.name": "example.com/x",
                                         "io.acioci.aci.labels": '[{"name": "a'})
    text = _error(acioci("convert", lay.root, tmp_path / "o.aci"))
    assert text == (f"acioci: error: {lay.root}: annotation io.acioci.aci.labels: not JSON: "
                    "unterminated string at line 1 column 11 (byte 10)\n")


@pytest.mark.parametrize("layer,shown", [({"a": 1}, '{"a":1}'), (None, "null"), (7, "7")])
def test_a_docker_layer_that_is_not_a_path_is_shown_as_json(tmp_path, layer, shown):
    lay = Layout(tmp_path / "tree")
    d = lay.image([fx.layer_tar([E("f", data=b"1")])], compress=False)
    items = [{"Config": "blobs/sha256/" + d["config"]["digest"].split(":")[1],
              "RepoTags": ["app:1"], "Layers": [layer]}]
    archive = tmp_path / "image.tar"
    _tar_tree(lay.root, archive, {"manifest.json": json.dumps(items).encode()})
    text = _error(acioci("convert", f"docker-archive:{archive}", tmp_path / "o.aci"))
    assert text == (f"acioci: error: {archive}::manifest.json#/0/Layers/0: each of Layers must "
                    f"be a path in the archive (got {shown})\n")
