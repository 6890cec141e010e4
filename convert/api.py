"""The library's front door: open, read, convert. The CLI calls only these.

    from convert import api
    image = api.read("app.aci", store=["store/"])
    result = api.convert("app.aci", "oci:out:v1", options=api.ConvertOptions(store=("store/",)))
    with api.open("oci-archive:img.tar.gz") as source:   # owns the archive's temporaries
        for image in source.images(): ...

References are resolved by `transports` (skopeo's `TRANSPORT:REST`, or a bare path); the
transport opens the source, the graph passes through `prepare` (render, squash, layered) inside
the destination transport's `write`, and nothing here knows a format by name.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable

from . import prepare, render as render_mod
from . import transports
from .errors import UsageError
from .graph import Image
from .meter import metering, rereading
from .options import DEFAULT_MAX_EXPAND, ConvertOptions, ReadOptions
from .spec.vocabulary import platform_to_appc, sanitize_acname, sanitize_identifier
from .transports.base import Reference, Source

__all__ = ["ConvertOptions", "ReadOptions", "UsageError", "DEFAULT_MAX_EXPAND", "open", "read", "read_all",
           "render", "convert", "convert_all", "convert_image", "total_bytes"]


def _source_ref(src: "str | Reference") -> Reference:
    return src if isinstance(src, Reference) else transports.source(src)


def open(src: "str | Reference", options: ReadOptions | None = None) -> Source:
    """Open a source for reading, as `with api.open(src) as source:`. Its images are valid
    inside the `with`, and every temporary the source made (a decompressed archive) is gone
    when it ends, however it ends."""
    ref = _source_ref(src)
    return transports.module(ref.transport).open(ref, options or ReadOptions())


def read_all(src: "str | Reference", *, store=(), ref: str | None = None,
             platform: str | None = None, select_all: bool = False,
             max_expand: int | None = DEFAULT_MAX_EXPAND, image_id: bool = True) -> list[Image]:
    """The graphs of the images a source holds (selected by ref/platform; all with
    `select_all`); ACI dependencies resolved, nothing rendered. The images keep their source
    open until they are garbage: to decide when temporaries go, use `open`."""
    options = ReadOptions(store=tuple(store), ref=ref, platform=platform,
                          select_all=select_all, max_expand=max_expand, image_id=image_id)
    return open(src, options).images()


def read(src: "str | Reference", *, store=(), ref: str | None = None,
         platform: str | None = None, max_expand: int | None = DEFAULT_MAX_EXPAND,
         image_id: bool = True) -> Image:
    """The one image a source holds, or the one `ref`/`platform` select."""
    images = read_all(src, store=store, ref=ref, platform=platform, max_expand=max_expand,
                      image_id=image_id)
    return _one(images, str(src))


def render(image: Image, *, squash: bool = False, whitelist_mode: str = "rkt") -> Image:
    """ACI semantics: dependencies and path whitelists into an ordered layer stack."""
    if whitelist_mode not in ("rkt", "spec"):
        raise UsageError("--whitelist-mode must be rkt or spec")
    return prepare.rendered(image, squash_layers=squash, whitelist_mode=whitelist_mode)


def _one(images: list[Image], where: str) -> Image:
    if len(images) != 1:
        raise UsageError(f"{len(images)} images match; choose one with --ref or --platform",
                         file=where)
    return images[0]


def convert_image(image: Image, target: Reference, opts: ConvertOptions):
    """Write one already-read image to `target`."""
    transport = transports.module(target.transport)
    out = opts.for_target(transport.FORMAT)
    try:
        return transport.write(image, target, out)
    except render_mod.OutOfOrder:  # an ACI read once needs its index after all: a second go
        with metering(None):  # the index pass is not progress
            image = render_mod.with_index(image)
        rereading()
        return transport.write(image, target, out)


def convert(src: "str | Reference", dest: "str | Reference", *, to: str | None = None,
            options: ConvertOptions | None = None,
            progress: Callable[[int], Callable[[int], None]] | None = None,
            warn: Callable[[str], None] | None = None):
    """Convert one image. `progress`, if given, is called once with the total number of source
    bytes the conversion reads (files and blobs as they lie on disk, see `meter.py`) and returns
    the callback that is then fed byte counts as they are read. `warn` receives what the source
    wants said (a signature check skipped on request)."""
    opts = options or ConvertOptions()
    target = dest if isinstance(dest, Reference) else transports.destination(dest, to)
    out_format = transports.module(target.transport).FORMAT
    opts.for_target(out_format)  # refuse options of the other direction before any work
    source_ref = _source_ref(src)
    _refuse_overwriting_the_source(source_ref, target, opts)
    with open(source_ref, opts.reading(once=True)) as source:
        image = _one(source.images(), source.where)
        for text in getattr(source, "warnings", ()):
            if warn is not None:
                warn(text)
        report = progress(total_bytes(image)) if progress else None
        if out_format == "aci" and not opts.name and not image.name:
            # an OCI image tagged only `v1` names no repository: fall back to the file's name
            stem = transports.strip_suffix(os.path.basename(os.path.normpath(source_ref.path)))
            image = replace(image, name=sanitize_identifier(stem))
        with metering(report):
            return convert_image(image, target, opts)


def _refuse_overwriting_the_source(source: Reference, target: Reference,
                                   opts: ConvertOptions) -> None:
    """With --overwrite, a destination that is the source, or a directory holding it, would be
    removed before (or while) the source is read."""
    if not (opts.overwrite and os.path.exists(source.path) and os.path.exists(target.path)):
        return
    src, dest = os.path.realpath(source.path), os.path.realpath(target.path)
    if src == dest or src.startswith(dest.rstrip("/") + "/"):
        raise UsageError("the destination is the source, or holds it; --overwrite would "
                         "destroy the source", file=target.path)


def convert_all(src: "str | Reference", dest_dir: str, *,
                options: ConvertOptions | None = None) -> list:
    """`--all`: every image (and platform) of an OCI or docker source, each to its own ACI in
    `dest_dir`, named `<name>-<tag>-<os>-<arch>.aci` like docker2aci's files."""
    opts = replace(options or ConvertOptions(), select_all=True)
    opts.for_target("aci")
    with open(src, opts.reading()) as source:
        images = source.images()
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
            target = Reference("aci", os.path.join(dest_dir, stem + ".aci"))
            results.append(convert_image(image, target, opts))
        return results


def total_bytes(image: Image) -> int:
    """Source bytes the writing pass reads, for progress bars."""
    return sum(layer.size or 0 for img in image.walk() for layer in img.layers)
