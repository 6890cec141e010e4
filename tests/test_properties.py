"""Property tests: hypothesis generates tar archives (well-formed, then mutated, truncated and
compressed) and JSON manifests, and feeds them to every reader. Only the documented exception
types (convert.errors.AciociError and its subclasses) may escape; anything else is a bug.
The example budget is fixed and derandomised, so `make test` is repeatable."""

from __future__ import annotations

import bz2
import hashlib
import gzip
import io
import json
import lzma
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convert import api
from convert.errors import AciociError
from convert.readers import aci_manifest
from convert.squash import build_tree

BUDGET = settings(max_examples=int(__import__("os").environ.get("ACIOCI_EXAMPLES", "60")),
                  deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))

part = st.sampled_from(["a", "b", "..", ".", "", ".wh.a", ".wh..wh..opq", "é", "\udce9",
                        "x" * 120, "rootfs", "manifest", "etc"])
names = st.lists(part, min_size=1, max_size=6).map("/".join) | st.sampled_from(
    ["/etc/passwd", "rootfs/../x", "manifest", "rootfs", "index.json", "oci-layout",
     "manifest.json", "blobs/sha256/" + "0" * 64])
entries = st.lists(st.tuples(names, st.sampled_from("fdlsc"), st.binary(max_size=300)),
                   max_size=8)


def make_tar(items) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        for name, kind, data in items:
            ti = tarfile.TarInfo(name or "x")
            if kind == "d":
                ti.type = tarfile.DIRTYPE
            elif kind in "ls":
                ti.type = tarfile.LNKTYPE if kind == "l" else tarfile.SYMTYPE
                ti.linkname = data.decode("latin-1")[:50]
            elif kind == "c":
                ti.type = tarfile.CHRTYPE
            else:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if kind == "f" else None)
    return buf.getvalue()


@st.composite
def archives(draw) -> bytes:
    data = make_tar(draw(entries))
    how = draw(st.sampled_from(["none", "flip", "cut"]))
    if how == "flip" and data:
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1:]
    elif how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    comp = draw(st.sampled_from(["none", "gzip", "bzip2", "xz"]))
    return {"none": lambda b: b, "gzip": lambda b: gzip.compress(b, mtime=0),
            "bzip2": bz2.compress, "xz": lzma.compress}[comp](data)


def read_everything(path: str) -> None:
    """What every command does with a source: read the graph, then stream every layer."""
    for image in api.read_all(path, select_all=True, max_expand=1 << 24):
        if image.origin.format == "oci":
            build_tree(image.layers)
        else:
            for layer in api.render(image).layers:
                with layer.open() as stream:
                    for _ in stream:
                        pass


def read_bytes(data: bytes, name: str) -> None:
    """`read_everything` on `data` written to a file called `name`; only the documented
    errors (AciociError) may escape. The fuzzer calls this too."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        try:
            read_everything(str(path))
        except AciociError:
            pass


@BUDGET
@given(archives())
def test_any_archive_gives_a_documented_error_or_an_image(data):
    read_bytes(data, "input.aci")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "Name", "acKind", "acVersion", "labels", "app", "exec",
                         "user", "group", "value", "dependencies", "imageID", "imageName",
                         "pathWhitelist", "ports", "port", "isolators", "x"]),
        children, max_size=5), max_leaves=20)


@BUDGET
@given(json_values)
def test_any_manifest_json_gives_a_documented_error_or_a_manifest(doc):
    try:
        aci_manifest.parse(json.dumps(doc).encode(), file="m")
    except AciociError:
        pass


@BUDGET
@given(json_values, json_values)
def test_any_layout_json_gives_a_documented_error_or_an_image(index, layout):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "index.json").write_text(json.dumps(index))
        (root / "oci-layout").write_text(json.dumps(layout))
        try:
            read_everything(str(root))
        except AciociError:
            pass


# JSON mutations (issue 20, item 1): valid documents of every format with one value replaced
# by raw JSON text Python's parser accepts but JSON does not have (NaN, Infinity, a number
# past Python's int-string limit or past float range, a lone surrogate escape), or by any
# generated value, or with a byte flipped or the text cut; digests are recomputed after the
# mutation so that the parser, not the digest check, meets it.
RAW_VALUES = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000, "-" + "9" * 4400,
              '"\\ud800"', '"x\\udfff"', '"\\udc00\\ud800"', '{"\\ud800":1}', "[NaN]", "0.5",
              "-1", "18446744073709551617", '""', "null", "{}", "[]"]
MUT = "\x00MUT\x00"


def _leaves(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _leaves(value, (*path, i))


def _replace(doc, path, value):
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@st.composite
def mutated(draw, doc) -> bytes:
    """`doc` as JSON bytes with one mutation, or none (the unmutated document must read)."""
    how = draw(st.sampled_from(["none", "raw", "value", "flip", "cut"]))
    if how in ("raw", "value"):
        path = draw(st.sampled_from(list(_leaves(doc))))
        if how == "value":
            return json.dumps(_replace(doc, path, draw(json_values))).encode()
        raw = draw(st.sampled_from(RAW_VALUES))
        return json.dumps(_replace(doc, path, MUT)).replace(
            json.dumps(MUT), raw).encode()
    data = json.dumps(doc).encode()
    if how == "flip":
        pos = draw(st.integers(0, len(data) - 1))
        return data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1:]
    if how == "cut":
        return data[: draw(st.integers(0, len(data)))]
    return data


ACI_DOC = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/x",
           "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"},
                      {"name": "version", "value": "1"}],
           "annotations": [{"name": "created", "value": "2020-01-01T00:00:00Z"}],
           "app": {"exec": ["/bin/sh"], "user": "0", "group": "0",
                   "environment": [{"name": "A", "value": "b"}],
                   "ports": [{"name": "p", "protocol": "tcp", "port": 80}],
                   "isolators": [{"name": "resource/memory", "value": {"limit": "1G"}}]}}


def _layer() -> tuple[bytes, str]:
    raw = make_tar([("hello", "f", b"hi")])
    return gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


LAYER, DIFF_ID = _layer()
CONFIG_DOC = {"architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
              "config": {"Env": ["A=b"], "Cmd": ["/bin/sh"], "Labels": {"l": "v"},
                         "ExposedPorts": {"80/tcp": {}}, "User": "0:0"},
              "rootfs": {"type": "layers", "diff_ids": [DIFF_ID]},
              "history": [{"created_by": "x"}]}


def _manifest_doc(config: bytes) -> dict:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": _sha(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": _sha(LAYER), "size": len(LAYER)}],
            "annotations": {"a": "b"}}


def _index_doc(manifest: bytes) -> dict:
    return {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
         "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}


def aci_with_manifest(manifest: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, body in [("manifest", "f", manifest), ("rootfs", "d", b""),
                                 ("rootfs/a", "f", b"x")]:
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE if kind == "d" else tarfile.REGTYPE
            ti.size = len(body) if kind == "f" else 0
            tf.addfile(ti, io.BytesIO(body) if kind == "f" else None)
    return buf.getvalue()


def read_layout(config: bytes, manifest: bytes, index: bytes,
                nested: bytes | None = None) -> None:
    """A layout of these documents and the one layer, read; only AciociError may escape.
    With `nested`, index.json points to it, as to a nested index."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "blobs" / "sha256").mkdir(parents=True)
        for blob in (config, manifest, LAYER) + ((nested,) if nested is not None else ()):
            (root / "blobs" / "sha256" / _sha(blob)[7:]).write_bytes(blob)
        if nested is not None:
            index = json.dumps({"schemaVersion": 2, "manifests": [
                {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": _sha(nested),
                 "size": len(nested)}]}).encode()
        (root / "index.json").write_bytes(index)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        try:
            read_everything(str(root))
        except AciociError:
            pass


def docker_archive(config: bytes, manifest_json: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, body in [("manifest.json", manifest_json),
                           (f"blobs/sha256/{_sha(config)[7:]}", config),
                           (f"blobs/sha256/{_sha(LAYER)[7:]}", LAYER)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body))
    return buf.getvalue()


def docker_top(config: bytes) -> list:
    return [{"Config": f"blobs/sha256/{_sha(config)[7:]}", "RepoTags": ["x:latest"],
             "Layers": [f"blobs/sha256/{_sha(LAYER)[7:]}"]}]


def read_json_document(which: int, doc: bytes) -> None:
    """`doc` (any bytes, meant as JSON) in the place `which` selects, in an otherwise valid
    image, read as a source is (the fuzzer's JSON half): 0 an ACI manifest, 1-3 a layout's
    config, manifest or index.json (digests recomputed), 4-5 a docker archive's config or
    manifest.json, 6 a nested index."""
    which %= 7
    if which == 6:
        config = json.dumps(CONFIG_DOC).encode()
        manifest = json.dumps(_manifest_doc(config)).encode()
        return read_layout(config, manifest, b"", nested=doc)
    if which == 0:
        return read_bytes(aci_with_manifest(doc), "input.aci")
    good_config = json.dumps(CONFIG_DOC).encode()
    if which in (1, 2, 3):
        config = doc if which == 1 else good_config
        manifest = doc if which == 2 else json.dumps(_manifest_doc(config)).encode()
        index = doc if which == 3 else json.dumps(_index_doc(manifest)).encode()
        return read_layout(config, manifest, index)
    config = doc if which == 4 else good_config
    top = doc if which == 5 else json.dumps(docker_top(config)).encode()
    return read_bytes(docker_archive(config, top), "image.tar")


@BUDGET
@given(st.data())
def test_any_mutated_aci_manifest_gives_a_documented_error_or_an_image(data):
    read_json_document(0, data.draw(mutated(ACI_DOC)))


@BUDGET
@given(st.data(), st.sampled_from(["config", "manifest", "index", "nested"]))
def test_any_mutated_layout_json_gives_a_documented_error_or_an_image(data, which):
    config = data.draw(mutated(CONFIG_DOC)) if which == "config" else \
        json.dumps(CONFIG_DOC).encode()
    manifest = data.draw(mutated(_manifest_doc(config))) if which == "manifest" else \
        json.dumps(_manifest_doc(config)).encode()
    index = data.draw(mutated(_index_doc(manifest))) if which in ("index", "nested") else \
        json.dumps(_index_doc(manifest)).encode()
    read_layout(config, manifest, index, nested=index if which == "nested" else None)


@BUDGET
@given(st.data(), st.sampled_from(["config", "manifest.json"]))
def test_any_mutated_docker_archive_json_gives_a_documented_error_or_an_image(data, which):
    config = data.draw(mutated(CONFIG_DOC)) if which == "config" else \
        json.dumps(CONFIG_DOC).encode()
    top = docker_top(config)
    manifest = data.draw(mutated(top)) if which == "manifest.json" else json.dumps(top).encode()
    read_bytes(docker_archive(config, manifest), "image.tar")


def validate_everything(which: str, doc: bytes) -> None:
    """`validate` on `doc` in the place `which` names, as the image it belongs to and as a
    bare document of every JSON type: the validator reports problems, and only AciociError
    may escape it (the CLI renders that as one line)."""
    from convert.validation.run import validate_path

    def check(path, type_=None):
        try:
            validate_path(str(path), type_=type_)
        except AciociError:
            pass

    good_config = json.dumps(CONFIG_DOC).encode()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        if which == "aci":
            (root / "x.aci").write_bytes(aci_with_manifest(doc))
            check(root / "x.aci")
            (root / "manifest").write_bytes(doc)
            return check(root / "manifest", "aci-manifest")
        if which in ("docker-config", "docker-top"):
            config = doc if which == "docker-config" else good_config
            top = doc if which == "docker-top" else json.dumps(docker_top(config)).encode()
            (root / "image.tar").write_bytes(docker_archive(config, top))
            return check(root / "image.tar")
        config = doc if which == "config" else good_config
        manifest = doc if which == "manifest" else json.dumps(_manifest_doc(config)).encode()
        index = doc if which in ("index", "nested") else \
            json.dumps(_index_doc(manifest)).encode()
        layout = root / "layout"
        (layout / "blobs" / "sha256").mkdir(parents=True)
        blobs = (config, manifest, LAYER) + ((index,) if which == "nested" else ())
        for blob in blobs:
            (layout / "blobs" / "sha256" / _sha(blob)[7:]).write_bytes(blob)
        if which == "nested":
            index = json.dumps({"schemaVersion": 2, "manifests": [
                {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": _sha(doc),
                 "size": len(doc)}]}).encode()
        (layout / "index.json").write_bytes(index)
        (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        check(layout)
        (root / "doc.json").write_bytes(doc)
        for type_ in (None, "oci-manifest", "oci-index", "oci-config", "oci-descriptor"):
            check(root / "doc.json", type_)


_VALIDATE_DOCS = {"aci": lambda: ACI_DOC, "config": lambda: CONFIG_DOC,
                  "docker-config": lambda: CONFIG_DOC,
                  "manifest": lambda: _manifest_doc(json.dumps(CONFIG_DOC).encode()),
                  "index": lambda: _index_doc(json.dumps(
                      _manifest_doc(json.dumps(CONFIG_DOC).encode())).encode()),
                  "docker-top": lambda: docker_top(json.dumps(CONFIG_DOC).encode())}
_VALIDATE_DOCS["nested"] = _VALIDATE_DOCS["index"]


@BUDGET
@given(st.data(), st.sampled_from(sorted(_VALIDATE_DOCS)))
def test_any_mutated_json_gives_validate_a_report(data, which):
    validate_everything(which, data.draw(mutated(_VALIDATE_DOCS[which]())))
