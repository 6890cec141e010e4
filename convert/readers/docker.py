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
from ..errors import AciociError, FormatError, UsageError
from ..graph import Digest, Image, Platform
from ..options import ReadOptions
from ..spec.vocabulary import parse_platform, platform_matches
from . import oci_image
from .blobs import TarBlobs, blob_path

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
        for j, rel in enumerate(item["Layers"]):
            if not isinstance(rel, str):
                raise FormatError("each of Layers must be a path in the archive",
                                  file=blobs.where, entry=f"manifest.json#/{i}/Layers/{j}",
                                  actual=jsonio.dumps(rel).decode("utf-8")[:80])
        if not isinstance(item.get("RepoTags"), (list, type(None))):
            raise FormatError("RepoTags must be an array", file=blobs.where,
                              entry=f"manifest.json#/{i}/RepoTags")
    return doc


class _Configs:
    """The platform of each manifest.json item: selecting by platform and listing what there
    is need it, and a docker archive keeps it only in the config. Kept per config file (many
    items may name one) and as a Platform, never as the config's bytes: an archive of a
    thousand items with 16 MiB configs must not cost 16 GB to list."""

    def __init__(self, blobs: TarBlobs, items: list[dict]) -> None:
        self.blobs, self.items, self.platforms = blobs, items, {}

    def bytes(self, pos: int) -> bytes:
        rel = self.items[pos]["Config"]
        m = _HEX.search(rel)
        try:
            return self.blobs.read_small(
                rel, jsonio.MAX_JSON_BYTES, Digest("sha256", m.group(1)) if m else None)
        except FormatError as exc:
            raise _placed(exc, self.blobs, f"manifest.json#/{pos}/Config") from None

    def platform(self, pos: int) -> Platform | None:
        rel = self.items[pos]["Config"]
        if rel not in self.platforms:
            doc = jsonio.loads(self.bytes(pos), file=self.blobs.where, entry=rel)
            plat = None
            if isinstance(doc, dict) and isinstance(doc.get("os"), str) \
                    and isinstance(doc.get("architecture"), str):
                variant = doc.get("variant")
                plat = Platform(doc["os"], doc["architecture"],
                                variant if isinstance(variant, str) and variant else None)
            self.platforms[rel] = plat
        return self.platforms[rel]

    def label(self, pos: int) -> str:
        """`busybox:latest, busybox:1 (linux/amd64)`, or `@N (...)` for an untagged item."""
        plat = self.platform(pos)
        return (", ".join(_tags(self.items[pos])) or f"@{pos}") + (f" ({plat})" if plat else "")

    def listing(self, positions, most: int = 20) -> str:
        """What the archive holds, for an error: at most `most` items, then how many more."""
        positions = list(positions)
        shown = "; ".join(self.label(p) for p in positions[:most])
        return shown + (f"; and {len(positions) - most} more" if len(positions) > most else "")


def _tags(item: dict) -> list[str]:
    return [t for t in item.get("RepoTags") or [] if isinstance(t, str)]


def select(blobs: TarBlobs, configs: _Configs, *, ref: str | None, platform: Platform | None,
           select_all: bool) -> list[tuple[int, dict, str | None]]:
    """The items `ref` (a RepoTag, or `@N`) and `platform` select, as (position, item, the tag
    it was chosen by). A platform without a variant matches every variant of its
    architecture, never another architecture (`linux/arm` is not `linux/arm64`); when more
    than one image is left, the caller must choose. A selection that matches nothing, or too
    much, lists what the archive holds with the platforms."""
    items = configs.items
    if not items:
        raise FormatError("manifest.json lists no image", file=blobs.where, entry="manifest.json")
    everything = range(len(items))
    chosen = [(i, item, (_tags(item) or [None])[0]) for i, item in enumerate(items)]
    if ref is not None:
        if ref.startswith("@") and ref[1:].isdigit():
            chosen = [x for x in chosen if x[0] == int(ref[1:])]
        else:
            by_tag = {}  # one entry per image, however many spellings of the tag it has
            for i, item, _ in chosen:
                for t in _tags(item):
                    if _normal(t) == _normal(ref):
                        by_tag.setdefault(i, (i, item, t))
            chosen = list(by_tag.values())
        if not chosen:
            raise UsageError(f"no image tagged {ref}; the archive holds "
                             + configs.listing(everything), file=blobs.where)
    if platform is not None:
        chosen = [x for x in chosen if platform_matches(configs.platform(x[0]), platform)]
        if not chosen:
            asked = f"tagged {ref} for platform {platform}" if ref else f"for platform {platform}"
            raise UsageError(f"no image {asked}; the archive holds "
                             + configs.listing(everything), file=blobs.where)
    if len(chosen) > 1 and not select_all:
        raise UsageError(f"{len(chosen)} images match; choose one by tag or platform, or take "
                         "them all: " + configs.listing(i for i, _, _ in chosen),
                         file=blobs.where, hint_option=("ref", "platform", "select_all"))
    return chosen


def read_images(blobs: TarBlobs, options: ReadOptions) -> list[Image]:
    """The images of a docker archive that the options select (see `select`)."""
    configs = _Configs(blobs, entries(blobs))
    want = parse_platform(options.platform) if options.platform else None
    chosen = select(blobs, configs, ref=options.ref, platform=want,
                    select_all=options.select_all)
    return [image(blobs, pos, item, tag, config_bytes=configs.bytes(pos))
            for pos, item, tag in chosen]


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


def image(blobs: TarBlobs, pos: int, item: dict, tag: str | None, *,
          config_bytes: bytes) -> Image:
    layers = [(rel, None, None) for rel in item["Layers"]]
    for i, rel in enumerate(item["Layers"]):
        try:
            present = blobs.exists(rel)
        except FormatError as exc:  # `../x`, `/etc/passwd`: refused by the path gate
            raise _placed(exc, blobs, f"manifest.json#/{pos}/Layers/{i}") from None
        if not present:
            raise FormatError("layer listed in manifest.json is missing", file=blobs.where,
                              entry=f"manifest.json#/{pos}/Layers/{i}", actual=rel)
    m = _HEX.search(item["Config"])
    annotations = _oci_annotations(blobs, m.group(1)) if m else {}
    return oci_image.build(blobs=blobs, where=blobs.where, config_bytes=config_bytes,
                           annotations=annotations, layers=layers, ref_name=tag,
                           source_format="docker")


def _oci_annotations(blobs: TarBlobs, config_hex: str) -> dict[str, str]:
    """The annotations of the OCI manifest whose config is this item's, when the archive is
    also an OCI layout (Docker 25's shape, and what acioci writes): manifest.json has no room
    for them, and they carry what an ACI said that OCI cannot (`io.acioci.aci.*`), so reading
    the archive either way gives the same image. Best effort: the archive is read through
    manifest.json, and a broken OCI side only means no annotations."""
    from . import oci

    if not blobs.exists("index.json"):
        return {}
    try:
        for cand in oci.candidates(blobs):
            digest = Digest.parse(cand.descriptor.get("digest", ""))
            data = blobs.read_small(blob_path(digest), jsonio.MAX_JSON_BYTES, digest)
            manifest = jsonio.loads(data, file=blobs.where, entry=blob_path(digest))
            config = manifest.get("config") if isinstance(manifest, dict) else None
            if isinstance(config, dict) and config.get("digest") == f"sha256:{config_hex}":
                ann = manifest.get("annotations")
                if isinstance(ann, dict) and all(isinstance(v, str) for v in ann.values()):
                    return ann
                return {}
    except (AciociError, ValueError):
        return {}
    return {}
