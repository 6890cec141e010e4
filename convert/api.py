"""The library's front door: read, render, squash, write, convert. The CLI calls only these.

    from convert import api
    image = api.read("app.aci", store=["store/"])
    result = api.convert("app.aci", "oci:out:v1", options=api.ConvertOptions(store=("store/",)))
    result = api.convert("oci:layout:v1", "app.aci")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

from . import layered, refs, render as render_mod, squash as squash_mod
from .errors import UsageError
from .graph import Image
from .mapping import parse_platform, platform_to_appc, sanitize_acname, sanitize_identifier
from .meter import metering, rereading
from .readers import aci as aci_reader
from .readers import docker as docker_reader
from .readers import oci as oci_reader
from .writers import aci as aci_writer
from .writers import oci as oci_writer


@dataclass(frozen=True)
class ConvertOptions:
    store: tuple[str, ...] = ()
    squash: bool = False          # ACI -> OCI: one layer instead of one per ACI
    layered: bool = False         # OCI -> ACI: one ACI per layer instead of one squashed ACI
    compression: str | None = None  # None: the target format's default (gzip)
    platform: str | None = None   # OCI source: which image; ACI source: the platform to write
    ref: str | None = None        # OCI/docker source: which image
    select_all: bool = False      # OCI/docker source: every image, each to its own output
    name: str | None = None       # ACI target: the image name
    tag: str | None = None        # OCI target: ref.name
    whitelist_mode: str = "rkt"
    overwrite: bool = False
    add_to_layout: bool = True    # OCI layout target that exists: add the image beside the others
    max_expand: int | None = aci_reader.DEFAULT_MAX_EXPAND
    image_id: bool = True         # ACI source: record its image ID (costs a SHA-512 pass)


def read_all(src: "str | refs.Source", *, store=(), ref: str | None = None,
             platform: str | None = None,
             select_all: bool = False,
             max_expand: int | None = aci_reader.DEFAULT_MAX_EXPAND,
             once: bool = False, image_id: bool = True) -> list[Image]:
    """The graphs of the images a source holds (selected by ref/platform; all with
    `select_all`). ACI dependencies are resolved, nothing is rendered yet. `once`: a lone ACI
    may be left unscanned, to be read in one pass by the conversion (its image ID is then
    `Pending` until written). Without `image_id`, ACIs are read without their image IDs."""
    source = src if isinstance(src, refs.Source) else refs.detect_source(src)
    ref = ref or source.ref
    if source.format == "aci":
        return [aci_reader.read(source.path, store=tuple(store), max_expand=max_expand,
                                once=once, record_id=image_id)]
    want = parse_platform(platform) if platform else None
    archive = source.format != "oci" or not os.path.isdir(source.path)
    if source.format == "docker-archive":
        blobs = oci_reader.open_blobs(source.path, archive=True, max_expand=max_expand)
        items = docker_reader.entries(blobs)
        chosen = docker_reader.select(blobs, items, ref=ref, select_all=select_all)
        images = [docker_reader.image(blobs, pos, item, tag, max_expand=max_expand)
                  for pos, item, tag in chosen]
        if want is not None:
            images = [i for i in images if i.platform and str(i.platform).startswith(str(want))]
        return images
    blobs = oci_reader.open_blobs(source.path, archive=archive, max_expand=max_expand)
    cands = oci_reader.select(blobs, oci_reader.candidates(blobs), ref=ref, platform=want,
                              select_all=select_all)
    return [oci_reader.image(blobs, c, max_expand=max_expand) for c in cands]


def read(src: "str | refs.Source", **kw) -> Image:
    images = read_all(src, **kw)
    if len(images) != 1:
        raise UsageError(f"{src}: {len(images)} images match; choose one")
    return images[0]


def render(image: Image, *, squash: bool = False, whitelist_mode: str = "rkt") -> Image:
    """ACI semantics: dependencies and path whitelists into an ordered layer stack."""
    try:
        mode = render_mod.WhitelistMode(whitelist_mode)
    except ValueError:
        raise UsageError("--whitelist-mode must be rkt or spec") from None
    return render_mod.render(image, mode=mode, squash=squash)


def _from_aci(image: Image) -> bool:
    return dict(image.extra).get("format") == "aci"


def convert_image(image: Image, target: refs.Destination, opts: ConvertOptions):
    """Write one already-read image to `target`."""
    try:
        return _convert_image(image, target, opts)
    except render_mod.OutOfOrder:  # an ACI read once needs its index after all: a second go
        with metering(None):  # the index pass is not progress
            image = render_mod.with_index(image)
        rereading()
        return _convert_image(image, target, opts)


def _convert_image(image: Image, target: refs.Destination, opts: ConvertOptions):
    if opts.platform and _from_aci(image):
        image = replace(image, platform=parse_platform(opts.platform))
    if target.format in ("oci", "oci-archive"):
        if _from_aci(image):
            image = render(image, squash=opts.squash, whitelist_mode=opts.whitelist_mode)
        elif opts.squash:
            image = squash_mod.squash(image)
        return oci_writer.write(
            image, target.path, tag=opts.tag or target.tag,
            compression=opts.compression or "gzip", archive=target.format == "oci-archive",
            overwrite=opts.overwrite, add=opts.add_to_layout)
    if opts.layered:
        if _from_aci(image):
            raise UsageError("--layered splits OCI layers; an ACI source is already layered")
        name = opts.name or image.name
        if not name:
            raise UsageError(f"{image.source}: the image has no name to give the ACIs; use --name")
        chain = layered.layer_images(image, name)
        return aci_writer.write_chain(chain, target.path, compression=opts.compression or "gzip",
                                      name=opts.name, overwrite=opts.overwrite)
    if _from_aci(image):
        # ACI -> ACI flattens a chain: the whitelists are applied, the dependencies rendered in
        image = replace(render(image, squash=True, whitelist_mode=opts.whitelist_mode),
                        path_whitelist=None)
    else:
        image = squash_mod.squash(image)
    return aci_writer.write(image, target.path, compression=opts.compression or "gzip",
                            name=opts.name, overwrite=opts.overwrite)


def convert(src: str, dest: str, *, to: str | None = None, options: ConvertOptions | None = None,
            progress: Callable[[int], Callable[[int], None]] | None = None):
    """Convert one image. `progress`, if given, is called once with the total number of source
    bytes the conversion reads (files and blobs as they lie on disk, see `meter.py`) and returns
    the callback that is then fed byte counts as they are read."""
    opts = options or ConvertOptions()
    target = refs.parse_destination(dest, to)
    if opts.layered and target.format != "aci":
        raise UsageError("--layered is for ACI output")
    source = refs.detect_source(src)  # once: sniffing opens and reads the file
    # --platform selects among an OCI source's images, but names what an ACI source is
    image = read(source, store=opts.store, ref=opts.ref,
                 platform=None if source.format == "aci" else opts.platform,
                 max_expand=opts.max_expand, once=True, image_id=opts.image_id)
    report = progress(total_bytes(image)) if progress else None
    if target.format == "aci" and not opts.name and not image.name:
        # an OCI image tagged only `v1` names no repository: fall back to the file's name
        stem = os.path.basename(os.path.normpath(source.path))
        for suffix in (".tar.gz", ".tgz", ".tar", ".oci", ".docker"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        image = replace(image, name=sanitize_identifier(stem))
    with metering(report):
        return convert_image(image, target, opts)


def convert_all(src: str, dest_dir: str, *, options: ConvertOptions | None = None) -> list:
    """`--all`: every image (and platform) of an OCI or docker source, each to its own ACI in
    `dest_dir`, named `<name>-<tag>-<os>-<arch>.aci` like docker2aci's files."""
    opts = options or ConvertOptions()
    images = read_all(src, ref=opts.ref, platform=opts.platform, select_all=True,
                      max_expand=opts.max_expand)
    if not os.path.isdir(dest_dir):
        raise UsageError(f"--all writes into a directory; {dest_dir} is not one")
    results, seen = [], set()
    for image in images:
        parts = [opts.name or image.name or "image", image.version or "latest"]
        if image.platform is not None:
            parts += list(platform_to_appc(image.platform))
        stem = sanitize_acname("-".join(p.replace("/", "-") for p in parts))
        if stem in seen:
            raise UsageError(f"two images would both be written to {stem}.aci")
        seen.add(stem)
        target = refs.Destination("aci", os.path.join(dest_dir, stem + ".aci"))
        results.append(convert_image(image, target, opts))
    return results


def total_bytes(image: Image) -> int:
    """Source bytes the writing pass reads, for progress bars."""
    return sum(layer.size or 0 for img in image.walk() for layer in img.layers)
