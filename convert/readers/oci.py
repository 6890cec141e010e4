"""OCI image layouts (directories, and oci-archive tars, plain or compressed) into the graph.

Selection (oci.md §1, §3.1): `index.json` is walked recursively, nested indexes included, with
a cycle guard; unknown child media types are skipped as the spec requires. An image is chosen
by `ref` (matched against `org.opencontainers.image.ref.name`, the full name in
`io.containerd.image.name`, or `@N` for the Nth entry of index.json) and by `platform`. With one
candidate no flag is needed; with several, the error lists them. `select_all` returns every one.
Docker schema 2 manifests and lists inside a layout are read too (skopeo accepts them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import jsonio
from ..spec import vocabulary
from ..errors import FormatError, UsageError
from ..graph import Digest, Image, Platform
from ..options import ReadOptions
from ..spec.vocabulary import parse_platform
from ..spec import oci_walk, schemas
from . import oci_image
from .blobs import Blobs, blob_path

from ..spec.mediatypes import CONFIG_TYPES, LAYER_TYPES, schema_of

MAX_JSON = jsonio.MAX_JSON_BYTES


@dataclass(frozen=True)
class Candidate:
    descriptor: dict
    refs: tuple[str, ...]  # ref.name and io.containerd.image.name of the index.json entry
    position: int  # index of its index.json entry
    platform: Platform | None  # from the descriptor, when it has one

    def label(self) -> str:
        ref = self.refs[0] if self.refs else f"@{self.position}"
        plat = f" ({self.platform})" if self.platform else ""
        return f"{ref}{plat} {self.descriptor.get('digest', '')[:19]}…"


def _load_json(blobs: Blobs, rel: str, what: str, digest: Digest | None = None,
               size: int | None = None):
    data = blobs.read_small(rel, MAX_JSON, digest, size)
    doc = jsonio.loads(data, file=blobs.where, entry=rel)
    if not isinstance(doc, dict):
        raise FormatError(f"{what} is not a JSON object", file=blobs.where, entry=rel)
    return doc, data


def _digest(desc: dict, where: str, entry: str) -> Digest:
    try:
        return Digest.parse(desc.get("digest"))
    except FormatError as exc:
        raise FormatError(exc.message, file=where, entry=entry) from None


def _shape(manifest: dict, where: str, rel: str) -> None:
    """The JSON types the reader relies on in an image manifest (the values are checked where
    they are used). Not the whole schema: conversion has always taken manifests the validator
    merely warns about; but a `"layers": 5` or a `"mediaType": []` must be one error naming its
    pointer, not a TypeError further on."""
    def bad(ptr: str, what: str, value) -> FormatError:
        return FormatError(f"manifest field {ptr} must be {what}", file=where,
                           entry=f"{rel}#{ptr}", actual=jsonio.dumps(value)[:80].decode(
                               "utf-8", "replace"))

    def descriptor(desc, ptr: str) -> None:
        if not isinstance(desc, dict):
            raise bad(ptr, "an object", desc)
        for key in ("mediaType", "digest"):
            if not isinstance(desc.get(key), str):
                raise bad(f"{ptr}/{key}", "a string", desc.get(key))
        size = desc.get("size")
        if size is not None and (type(size) is not int or size < 0):
            raise bad(f"{ptr}/size", "a non-negative integer", size)
        urls = desc.get("urls")
        if urls is not None and not (isinstance(urls, list) and
                                     all(isinstance(u, str) for u in urls)):
            raise bad(f"{ptr}/urls", "an array of strings", urls)

    descriptor(manifest.get("config"), "/config")
    layers = manifest.get("layers")
    if layers is not None and not isinstance(layers, list):
        raise bad("/layers", "an array", layers)
    for i, desc in enumerate(layers or ()):
        descriptor(desc, f"/layers/{i}")
    ann = manifest.get("annotations")
    if ann is not None and not (isinstance(ann, dict) and
                                all(isinstance(v, str) for v in ann.values())):
        raise bad("/annotations", "an object of strings", ann)


def candidates(blobs: Blobs) -> list[Candidate]:
    layout, _ = _load_json(blobs, "oci-layout", "oci-layout")
    if layout.get("imageLayoutVersion") != "1.0.0":
        raise FormatError("unsupported imageLayoutVersion", file=blobs.where, entry="oci-layout",
                          expected="1.0.0",
                          actual=oci_image._shown(layout.get("imageLayoutVersion")))
    index, _ = _load_json(blobs, "index.json", "index.json")
    schemas.check("oci-index", index, file=blobs.where, entry="index.json")
    roots = index.get("manifests") or []
    refs_of = []
    for desc in roots:
        ann = desc.get("annotations") or {}
        refs_of.append(tuple(r for r in (ann.get(vocabulary.REF_NAME),
                                         ann.get("io.containerd.image.name")) if r))

    def load_index(v: oci_walk.Visit):
        digest = _digest(v.desc, blobs.where, v.place)
        child, _ = _load_json(blobs, blob_path(digest), "index", digest, v.desc.get("size"))
        mt = v.desc.get("mediaType")
        # a nested index is held to its schema as index.json is: the walk relies on its types
        schemas.check(schema_of(mt, "oci-index"), child, file=blobs.where,
                      entry=blob_path(digest))
        if child.get("mediaType") not in (None, mt):
            raise FormatError("index mediaType differs from its descriptor", file=blobs.where,
                              entry=blob_path(digest), expected=mt, actual=child.get("mediaType"))
        return child

    found: list[Candidate] = []
    for v in oci_walk.walk(roots, load_index, oci_walk.Raise(blobs.where)):
        if v.kind == "manifest":
            p = v.desc.get("platform")
            platform = Platform(os=p.get("os", ""), architecture=p.get("architecture", ""),
                                variant=p.get("variant")) if isinstance(p, dict) else None
            found.append(Candidate(v.desc, refs_of[v.root], v.root, platform))
    return found


def read_images(blobs: Blobs, options: ReadOptions) -> list[Image]:
    """The images of a layout or oci-archive that the options select."""
    want = parse_platform(options.platform) if options.platform else None
    chosen = select(blobs, candidates(blobs), ref=options.ref, platform=want,
                    select_all=options.select_all)
    return [image(blobs, c) for c in chosen]


def matches_platform(have: Platform | None, want: Platform) -> bool:
    """The one rule docker archives use too (vocabulary.platform_matches)."""
    return vocabulary.platform_matches(have, want)


def select(blobs: Blobs, cands: list[Candidate], *, ref: str | None,
           platform: Platform | None, select_all: bool) -> list[Candidate]:
    chosen = cands
    if ref is not None:
        if ref.startswith("@") and ref[1:].isdigit():
            chosen = [c for c in chosen if c.position == int(ref[1:])]
        else:
            chosen = [c for c in chosen if ref in c.refs
                      or any(r.rpartition(":")[2] == ref and "/" not in ref for r in c.refs[1:])]
        if not chosen:
            raise UsageError(f"no image with ref {ref!r}; choices: "
                             + "; ".join(c.label() for c in cands), file=blobs.where)
    if platform is not None:
        chosen = [c for c in chosen if matches_platform(c.platform or _config_platform(blobs, c),
                                                         platform)]
        if not chosen:
            raise UsageError(f"no image for platform {platform}; choices: "
                             + "; ".join(c.label() for c in cands), file=blobs.where)
    if len(chosen) > 1 and not select_all:
        raise UsageError(f"{len(chosen)} images match; choose one by ref or platform, or "
                         "select all: " + "; ".join(c.label() for c in chosen), file=blobs.where,
                         hint_option=("ref", "platform", "select_all"))
    if not chosen:
        raise FormatError("the layout holds no image manifest", file=blobs.where,
                          entry="index.json")
    return chosen


def _config_platform(blobs: Blobs, cand: Candidate) -> Platform | None:
    manifest, _, _ = _manifest(blobs, cand)
    cdesc = manifest.get("config") or {}
    digest = _digest(cdesc, blobs.where, "config")
    config, _ = _load_json(blobs, blob_path(digest), "config", digest, cdesc.get("size"))
    if config.get("os") and config.get("architecture"):
        return Platform(config["os"], config["architecture"], config.get("variant"))
    return None


def _manifest(blobs: Blobs, cand: Candidate):
    digest = _digest(cand.descriptor, blobs.where, "index.json")
    rel = blob_path(digest)
    manifest, _ = _load_json(blobs, rel, "manifest", digest, cand.descriptor.get("size"))
    _shape(manifest, blobs.where, rel)
    mt = cand.descriptor.get("mediaType")
    if manifest.get("mediaType") not in (None, mt):
        raise FormatError("manifest mediaType differs from its descriptor", file=blobs.where,
                          entry=rel, expected=mt, actual=manifest.get("mediaType"))
    return manifest, rel, digest


def image(blobs: Blobs, cand: Candidate) -> Image:
    manifest, rel, mdigest = _manifest(blobs, cand)
    cdesc = manifest.get("config") or {}
    if cdesc.get("mediaType") not in CONFIG_TYPES:
        raise FormatError("not an image config media type", file=blobs.where,
                          entry=f"{rel}#/config/mediaType", actual=cdesc.get("mediaType"))
    cdigest = _digest(cdesc, blobs.where, f"{rel}#/config")
    config_bytes = blobs.read_small(blob_path(cdigest), MAX_JSON, cdigest, cdesc.get("size"))
    layers = []
    for i, ldesc in enumerate(manifest.get("layers") or []):
        if ldesc.get("mediaType") not in LAYER_TYPES:
            raise FormatError("unsupported layer media type", file=blobs.where,
                              entry=f"{rel}#/layers/{i}/mediaType", actual=ldesc.get("mediaType"))
        ldigest = _digest(ldesc, blobs.where, f"{rel}#/layers/{i}")
        if not blobs.exists(blob_path(ldigest)):
            hint = " (a non-distributable layer: fetch it first)" if ldesc.get("urls") else ""
            raise FormatError(f"layer blob is missing{hint}", file=blobs.where,
                              entry=blob_path(ldigest))
        layers.append((blob_path(ldigest), ldigest, ldesc.get("size")))
    ann = dict(manifest.get("annotations") or {})
    ref_name = cand.refs[-1] if len(cand.refs) > 1 else (cand.refs[0] if cand.refs else None)
    return oci_image.build(blobs=blobs, where=blobs.where, config_bytes=config_bytes,
                           annotations=ann, layers=layers, ref_name=ref_name)
