"""Issue 20, item 1: JSON that Python's parser accepts but JSON (and Go) does not, or that
breaks only later, when a string is encoded for output. Each document is fed to the real CLI
(`convert` and `validate`) inside a real image: the run must end with exit 1, one line naming
the file, no traceback, and nothing at the destination."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import build as fx
from helpers import ROOT, acioci

HUGE = "1" * 5000  # past Python's int-string conversion limit (4300 digits)
# (name, a raw JSON value spliced into a document in place of "@@")
BAD = [("huge-int", HUGE), ("nan", "NaN"), ("infinity", "Infinity"),
       ("minus-infinity", "-Infinity"), ("float-overflow", "1e999"),
       ("lone-surrogate", '"\\ud800"'), ("lone-low-surrogate", '"a\\udc00b"')]


def assert_refused(proc, where: str, dest: Path) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-2000:]
    assert proc.returncode == 1, (proc.returncode, out[-2000:])
    assert where in out, out
    assert not dest.exists()


def aci_with_manifest(tmp_path: Path, raw: str) -> Path:
    path = tmp_path / "in.aci"
    fx.write_aci(path, None, [fx.entry("etc", "dir")], raw_manifest=raw.encode("utf-8"))
    return path


ACI_MANIFEST = ('{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x",'
                '"labels":[{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}],'
                '"annotations":[{"name":"note","value":@@}],'
                '"app":{"exec":["/bin/sh"],"user":"0","group":"0"}}')


@pytest.mark.parametrize("name,value", BAD, ids=[b[0] for b in BAD])
def test_aci_manifest_with_a_value_json_has_no_room_for_is_refused(tmp_path, name, value):
    src = aci_with_manifest(tmp_path, ACI_MANIFEST.replace("@@", value))
    dest = tmp_path / "out"
    assert_refused(acioci("convert", src, dest), f"{src}::manifest", dest)
    proc = acioci("validate", src)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout


def test_aci_manifest_with_a_huge_integer_field_is_refused(tmp_path):
    src = aci_with_manifest(tmp_path, ACI_MANIFEST.replace('"@@"', '"x"').replace(
        '"user":"0"', f'"user":"0","ports":[{{"name":"p","protocol":"tcp","port":{HUGE}}}]')
        .replace("@@", '"x"'))
    dest = tmp_path / "out"
    assert_refused(acioci("convert", src, dest), f"{src}::manifest", dest)


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return "sha256:" + digest


def layout(root: Path, *, config: str, manifest_extra: str = "", index_extra: str = "") -> Path:
    """An OCI layout of one image, built from raw JSON text so that any value can be spliced
    into the config, the manifest or index.json with every digest still matching."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("hello")
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"hi"))
    raw = buf.getvalue()
    layer = gzip.compress(raw, mtime=0)
    ld = _blob(root, layer)
    cfg = config.replace("@@DIFF", "sha256:" + hashlib.sha256(raw).hexdigest()).encode("utf-8")
    cd = _blob(root, cfg)
    man = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
           f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json",'
           f'"digest":"{cd}","size":{len(cfg)}}},'
           f'"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",'
           f'"digest":"{ld}","size":{len(layer)}}}]{manifest_extra}}}').encode("utf-8")
    md = _blob(root, man)
    (root / "index.json").write_text(
        '{"schemaVersion":2,"manifests":[{"mediaType":'
        f'"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{len(man)},'
        f'"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]{index_extra}}}')
    return root


CONFIG = ('{"architecture":"amd64","os":"linux","config":{"Env":[@@ENV],"Labels":{"l":@@LABEL},'
          '"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["@@DIFF"]}}')


def good_config(env='"A=b"', label='"v"') -> str:
    return CONFIG.replace("@@ENV", env).replace("@@LABEL", label)


def test_good_layout_converts(tmp_path):
    """The builder itself makes an image acioci accepts, so the refusals below are the
    spliced values' doing."""
    src = layout(tmp_path / "l", config=good_config())
    acioci("convert", f"oci:{src}:latest", tmp_path / "out.aci", "--name", "example.com/x",
           check=0)


CASES = {
    "config-label": lambda v: dict(config=good_config(label=v)),
    "config-env": lambda v: dict(config=good_config(env=v)),
    "manifest-annotation": lambda v: dict(config=good_config(),
                                          manifest_extra=f',"annotations":{{"a":{v}}}'),
    "index-field": lambda v: dict(config=good_config(), index_extra=f',"x":{v}'),
}


@pytest.mark.parametrize("where", list(CASES))
@pytest.mark.parametrize("name,value", BAD, ids=[b[0] for b in BAD])
def test_layout_json_with_a_value_json_has_no_room_for_is_refused(tmp_path, where, name, value):
    if where == "config-env" and not value.startswith('"'):
        value = f'"A=b",{value}'
    src = layout(tmp_path / "l", **CASES[where](value))
    dest = tmp_path / "out.aci"
    proc = acioci("convert", f"oci:{src}:latest", dest, "--name", "example.com/x")
    assert_refused(proc, str(src), dest)
    proc = acioci("validate", src)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out[-2000:]


def test_index_with_a_huge_size_is_refused_naming_index_json(tmp_path):
    src = layout(tmp_path / "l", config=good_config())
    index = (src / "index.json").read_text()
    (src / "index.json").write_text(index.replace('"size":', f'"size":{HUGE}0+', 1)
                                    .replace(f'{HUGE}0+', HUGE))
    dest = tmp_path / "out.aci"
    proc = acioci("convert", f"oci:{src}:latest", dest, "--name", "example.com/x")
    assert_refused(proc, f"{src}::index.json", dest)


STASH = "io.acioci.aci."  # vocabulary.PREFIX: ACI fields carried through OCI as annotations


@pytest.mark.parametrize("key,value", [
    ("labels", "[1]"),
    ("annotations", '[{"name":"a"}]'),
    ("app.ports", '[{"name":"p","protocol":"tcp","port":1,"count":1000000000}]'),
    ("app.mountPoints", '"x"'),
    ("app.isolators", "[NaN]"),
], ids=["labels-not-objects", "annotation-without-value", "port-count-a-billion",
        "mountpoints-a-string", "isolator-nan"])
def test_stash_annotation_holding_no_aci_field_is_refused(tmp_path, key, value):
    """An OCI image's stash annotations are read back as ACI manifest fields: a value no ACI
    manifest may hold is refused, naming the annotation, in well under the timeout (a port
    count of a billion used to be expanded into a set of a billion keys)."""
    from convert.spec import vocabulary
    assert vocabulary.PREFIX == STASH
    extra = f',"annotations":{{{json.dumps(STASH + key)}:{json.dumps(value)},' \
            f'"{STASH}name":"example.com/x"}}'
    src = layout(tmp_path / "l", config=good_config(), manifest_extra=extra)
    dest = tmp_path / "out.aci"
    proc = subprocess.run([sys.executable, "-m", "convert", "convert", f"oci:{src}:latest",
                           str(dest)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert_refused(proc, str(src), dest)
    assert STASH + key.partition(".")[0] in proc.stderr, proc.stderr


def test_a_trailing_newline_does_not_satisfy_a_schema_pattern(tmp_path):
    """JSON Schema patterns are ECMA-262, where `$` ends the string; Python's `$` also matches
    before a final newline, so `"name": "busybox\\n"` passed (actool refuses it)."""
    import build as fx

    aci = tmp_path / "nl.aci"
    fx.write_aci(aci, fx.manifest("example.com/busybox\n", version="1"), [])
    proc = acioci("validate", aci)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "/name" in proc.stdout + proc.stderr
