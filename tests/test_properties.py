"""Property tests: hypothesis generates tar archives (well-formed, then mutated, truncated and
compressed) and JSON manifests, and feeds them to every reader. Only the documented exception
types (convert.errors.AciociError and its subclasses) may escape; anything else is a bug.
The example budget is fixed and derandomised, so `make test` is repeatable."""

from __future__ import annotations

import bz2
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
