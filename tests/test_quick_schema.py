"""quick_schema vouches for valid documents without jsonschema: it must never say "valid" (or
"invalid") where jsonschema says otherwise. Checked on every JSON document of the fixtures,
against every schema, and on thousands of mutations of them; and a conversion of a valid
image must not import jsonschema at all (its import was a third of the start-up)."""

from __future__ import annotations

import copy
import io
import json
import random
import tarfile
from pathlib import Path

import pytest

from convert.errors import AciociError
from convert.readers.aci import AciFiles
from convert.spec import schemas
from helpers import modules_after_convert

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def _documents() -> list[object]:
    docs = []
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.stat().st_size > 1 << 20:
            continue
        raw = None
        if path.suffix == ".aci":
            try:
                raw = AciFiles().find_manifest(str(path))
            except (AciociError, OSError):
                continue
        elif path.suffix == ".json" or path.name == "oci-layout" or "blobs" in path.parts:
            raw = path.read_bytes()
        if raw is None:
            continue
        try:
            docs.append(json.loads(raw))
        except ValueError:
            continue
    return docs


DOCS = _documents()
KINDS = sorted(schemas.SCHEMAS)


def _agrees(kind: str, doc) -> str | None:
    """None if quick_schema's answer is consistent with jsonschema's, else what differs."""
    decided = schemas._walker().decide(schemas._documents()[schemas.SCHEMAS[kind]]["$id"], doc)
    errors = list(schemas.validator(kind).iter_errors(doc))
    if decided is True and errors:
        return f"quick says valid, jsonschema says {errors[0].message}"
    if decided is False and not errors:
        return "quick says invalid, jsonschema says valid"
    return None


def test_enough_documents():
    assert len(DOCS) > 40
    kinds_valid = {k for k in KINDS for d in DOCS if not list(schemas.validator(k).iter_errors(d))}
    assert {"aci-manifest", "oci-config", "oci-manifest", "oci-index", "oci-layout"} <= kinds_valid


@pytest.mark.parametrize("kind", KINDS)
def test_every_fixture_document_against_every_schema(kind):
    bad = [(i, why) for i, doc in enumerate(DOCS) if (why := _agrees(kind, doc))]
    assert not bad


def test_valid_documents_are_decided_without_jsonschema():
    """The point of the walker: the valid documents of the fixtures are decided True."""
    decided = undecided = 0
    for doc in DOCS:
        for kind in KINDS:
            if list(schemas.validator(kind).iter_errors(doc)):
                continue
            got = schemas._walker().decide(
                schemas._documents()[schemas.SCHEMAS[kind]]["$id"], doc)
            decided += got is True
            undecided += got is None
    assert decided > 30 and undecided <= decided // 10


_VALUES = [None, True, False, 0, -1, 1, 1.0, 1.5, 65536, "", "x", "T", "created", "os",
           "linux", "ImageManifest", "0.8.11", "2024-01-02T03:04:05Z", "2024-13-02T03:04:05Z",
           "https://example.com/x", "ht tp://bad", "sha256:" + "a" * 64, "sha256:" + "A" * 64,
           "sha512:abc", "application/vnd.oci.image.layer.v1.tar", [], {}, ["x"], [1],
           {"a": "b"}, {"name": "os", "value": "plan9"}, {"name": "created", "value": "yes"},
           {"name": "homepage", "value": "ftp://x"}, {"mediaType": "a/b", "size": 1,
                                                    "digest": "sha256:" + "b" * 64}]


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, prefix + (i,))


def _mutants(doc, rng: random.Random, count: int):
    paths = list(_paths(doc))
    for _ in range(count):
        path = rng.choice(paths)
        out = copy.deepcopy(doc)
        if not path:
            yield rng.choice(_VALUES)
            continue
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.25:
            del parent[path[-1]]
        elif isinstance(parent, dict) and rng.random() < 0.2:
            parent[rng.choice(["extra", "", "name", "os.features"])] = rng.choice(_VALUES)
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(_VALUES))
        yield out


def test_mutated_documents():
    rng = random.Random(14)
    checked = 0
    bad = []
    for i, doc in enumerate(DOCS):
        own = [k for k in KINDS if not list(schemas.validator(k).iter_errors(doc))] or KINDS[:2]
        for mutant in _mutants(doc, rng, 60):
            for kind in own:
                why = _agrees(kind, mutant)
                checked += 1
                if why:
                    bad.append((kind, json.dumps(mutant)[:300], why))
    assert checked > 2000
    assert not bad[:5]


def test_a_conversion_does_not_import_jsonschema(tmp_path):
    """A valid image's conversion checks its manifest and every document it writes, all
    valid: jsonschema is never imported (on the old code, its import was a third of the
    start-up of every conversion)."""
    manifest = json.dumps({
        "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/quick",
        "labels": [{"name": "version", "value": "1"}, {"name": "os", "value": "linux"},
                   {"name": "arch", "value": "amd64"}],
        "annotations": [{"name": "created", "value": "2024-01-02T03:04:05Z"},
                        {"name": "homepage", "value": "https://example.com/quick"}],
        "app": {"exec": ["/bin/sh"], "user": "0", "group": "0",
                "environment": [{"name": "PATH", "value": "/bin"}],
                "ports": [{"name": "http", "protocol": "tcp", "port": 80}]}}).encode()
    aci = tmp_path / "quick.aci"
    with tarfile.open(aci, "w") as tf:
        for name, data in (("manifest", manifest), ("rootfs", None), ("rootfs/hi", b"hi\n")):
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    assert modules_after_convert(aci, tmp_path / "out",
                                 "m.split('.')[0] in ('jsonschema', 'referencing')") == []
