"""Dependency resolution from --store, as rkt resolves (aci.md §3.1), and its errors."""

from __future__ import annotations

import pytest

import build as fx
from convert.errors import ResolutionError
from convert.readers import aci_chain
from helpers import acioci


def make(tmp_path, deps, *, extra_store=()):
    store = tmp_path / "store"
    ids = {}
    ids["v1"] = fx.write_aci(store / "dep-1.aci", fx.manifest("example.com/dep", version="1"),
                             [fx.entry("v", data=b"1")])
    ids["v2"] = fx.write_aci(store / "nested" / "dep-2.aci",
                             fx.manifest("example.com/dep", version="2"), [fx.entry("v", data=b"2")])
    for name, man, entries in extra_store:
        ids[name] = fx.write_aci(store / f"{name}.aci", man, entries)
    top = tmp_path / "top.aci"
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=deps), [])
    return top, store, ids


def dep_of(tmp_path, deps, **kw):
    top, store, ids = make(tmp_path, deps, **kw)
    image = aci_chain.read(str(top), store=[str(store)])
    return image.dependencies[0].image, ids


def test_by_name_and_labels(tmp_path):
    dep, ids = dep_of(tmp_path, [{"imageName": "example.com/dep",
                                  "labels": [{"name": "version", "value": "2"}]}])
    assert dep.image_id == ids["v2"] and dep.source.endswith("nested/dep-2.aci")


def test_by_image_id_prefix_ignores_name_and_labels(tmp_path):
    top, store, ids = make(tmp_path, [])
    prefix = ids["v1"][:20]
    fx.write_aci(top, fx.manifest("example.com/top", dependencies=[
        {"imageName": "example.com/dep", "imageID": prefix,
         "labels": [{"name": "version", "value": "2"}]}]), [])
    image = aci_chain.read(str(top), store=[str(store)])
    assert image.dependencies[0].image.image_id == ids["v1"]


def test_missing_dependency(tmp_path):
    with pytest.raises(ResolutionError, match="example.com/nope is not in the store") as e:
        dep_of(tmp_path, [{"imageName": "example.com/nope"}])
    assert e.value.entry == "manifest#/dependencies/0"


def test_ambiguous_name(tmp_path):
    with pytest.raises(ResolutionError, match="ambiguous"):
        dep_of(tmp_path, [{"imageName": "example.com/dep"}])


def test_image_id_that_matches_no_file(tmp_path):
    with pytest.raises(ResolutionError, match="its ID differs") as e:
        dep_of(tmp_path, [{"imageName": "example.com/dep", "imageID": "sha512-" + "0" * 128}])
    assert e.value.expected == "sha512-" + "0" * 128


def test_cycle_and_self_dependency(tmp_path):
    store = tmp_path / "store"
    fx.write_aci(store / "a.aci", fx.manifest("example.com/a", dependencies=[
        {"imageName": "example.com/b"}]), [])
    fx.write_aci(store / "b.aci", fx.manifest("example.com/b", dependencies=[
        {"imageName": "example.com/a"}]), [])
    with pytest.raises(ResolutionError, match="cycle: example.com/a -> example.com/b -> "
                                               "example.com/a"):
        aci_chain.read(str(store / "a.aci"), store=[str(store)])
    selfish = tmp_path / "self.aci"
    fx.write_aci(selfish, fx.manifest("example.com/self", dependencies=[
        {"imageName": "example.com/self"}]), [])
    proc = acioci("convert", selfish, tmp_path / "out", "--store", tmp_path)
    assert proc.returncode == 1
    assert "dependency cycle: example.com/self -> example.com/self" in proc.stderr
    assert "self.aci::manifest#/dependencies/0" in proc.stderr
