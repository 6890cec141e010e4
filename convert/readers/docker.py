"""`docker save` archives into the graph, in all three shapes (oci.md §8): legacy
`<id>/layer.tar` folders (layer.tar may be a symlink to an earlier identical one), Docker 25+
archives that are also OCI layouts, and containerd exports whose blobs are compressed.

All three are read through `manifest.json`; layer compression is detected by magic bytes,
whatever the path or media type says. The config is verified against its file name when that
name is a digest; every layer against its diff_id.
"""

from __future__ import annotations

import re

from .. import jsonio
from ..errors import FormatError, UsageError
from ..graph import Digest, Image
from ..options import ReadOptions
from ..spec.vocabulary import parse_platform
from . import oci_image
from .blobs import TarBlobs
from .oci import matches_platform

_HEX = re.compile(r"(?:^|/)([a-f0-9]{64})(?:\.json)?$")


def _normal(tag: str) -> str:
    """docker.io/library/busybox:latest and busybox:latest name the same image."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return tag


def entries(blobs: TarBlobs) -> list[dict]:
    data = blobs.read_small("manifest.json", jsonio.MAX_JSON_BYTES)
    doc = jsonio.loads(data, file=blobs.where, entry="manifest.json")
    if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
        raise FormatError("manifest.json must be an array of objects", file=blobs.where,
                          entry="manifest.json")
    for i, item in enumerate(doc):
        if not isinstance(item.get("Config"), str) or not isinstance(item.get("Layers"), list):
            raise FormatError("each item needs Config and Layers", file=blobs.where,
                              entry=f"manifest.json#/{i}")
        if not isinstance(item.get("RepoTags"), (list, type(None))):
            raise FormatError("RepoTags must be an array", file=blobs.where,
                              entry=f"manifest.json#/{i}/RepoTags")
    return doc


def select(blobs: TarBlobs, items: list[dict], *, ref: str | None,
           select_all: bool) -> list[tuple[int, dict, str | None]]:
    def tags(item):
        return [t for t in item.get("RepoTags") or [] if isinstance(t, str)]

    labelled = [(i, item, (tags(item) or [None])[0]) for i, item in enumerate(items)]
    if ref is not None:
        if ref.startswith("@") and ref[1:].isdigit():
            chosen = [x for x in labelled if x[0] == int(ref[1:])]
        else:
            chosen = [(i, item, t) for i, item, _ in labelled for t in tags(item)
                      if _normal(t) == _normal(ref)]
        if not chosen:
            raise UsageError(f"no image tagged {ref!r}; choices: " + "; ".join(
                ", ".join(tags(it)) or f"@{i}" for i, it, _ in labelled), file=blobs.where)
        return chosen[:1] if not select_all else chosen
    if len(labelled) > 1 and not select_all:
        raise UsageError(f"{len(labelled)} images in the archive; choose one by ref, or select "
                         "all: " + "; ".join(", ".join(tags(it)) or f"@{i}"
                                              for i, it, _ in labelled), file=blobs.where,
                         hint_option=("ref", "select_all"))
    if not labelled:
        raise FormatError("manifest.json lists no image", file=blobs.where, entry="manifest.json")
    return labelled


def read_images(blobs: TarBlobs, options: ReadOptions) -> list[Image]:
    """The images of a docker archive that the options select. A platform is matched exactly
    (`linux/arm` is not `linux/arm64`), as for OCI layouts."""
    chosen = select(blobs, entries(blobs), ref=options.ref, select_all=options.select_all)
    images = [image(blobs, pos, item, tag) for pos, item, tag in chosen]
    if options.platform:
        want = parse_platform(options.platform)
        images = [i for i in images if matches_platform(i.platform, want)]
    return images


def _placed(exc: FormatError, blobs: TarBlobs, pointer: str) -> FormatError:
    """An error about a path that manifest.json names, placed as `ARCHIVE::manifest.json#/..`:
    the path gate knows the name, not the archive or where it was named."""
    if exc.file is None or exc.file == blobs.where:
        exc.file = blobs.where
        if exc.entry is None or not exc.entry.startswith("manifest.json"):
            exc.message = f"{exc.message} (named at {pointer})" if exc.entry is None else \
                f"{exc.entry}: {exc.message}" if exc.entry not in exc.message else exc.message
            exc.entry = pointer
    return exc


def image(blobs: TarBlobs, pos: int, item: dict, tag: str | None) -> Image:
    config_rel = item["Config"]
    m = _HEX.search(config_rel)
    cdigest = Digest("sha256", m.group(1)) if m else None
    try:
        config_bytes = blobs.read_small(config_rel, jsonio.MAX_JSON_BYTES, cdigest)
    except FormatError as exc:
        raise _placed(exc, blobs, f"manifest.json#/{pos}/Config") from None
    layers = [(rel, None, None) for rel in item["Layers"]]
    for i, rel in enumerate(item["Layers"]):
        try:
            present = isinstance(rel, str) and blobs.exists(rel)
        except FormatError as exc:  # `../x`, `/etc/passwd`: refused by the path gate
            raise _placed(exc, blobs, f"manifest.json#/{pos}/Layers/{i}") from None
        if not present:
            raise FormatError("layer listed in manifest.json is missing", file=blobs.where,
                              entry=f"manifest.json#/{pos}/Layers/{i}", actual=rel)
    return oci_image.build(blobs=blobs, where=blobs.where, config_bytes=config_bytes,
                           annotations={}, layers=layers, ref_name=tag, source_format="docker")
