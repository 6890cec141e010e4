"""The library's front door: read, render, write, convert, inspect. The CLI calls only these.

    from convert import api
    image = api.read("app.aci", store=["store/"])
    result = api.convert("app.aci", "oci:out:v1", store=["store/"])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import refs, render as render_mod
from .errors import UsageError
from .graph import Image
from .mapping import parse_platform
from .readers import aci as aci_reader
from .writers import oci as oci_writer


@dataclass(frozen=True)
class ConvertOptions:
    store: tuple[str, ...] = ()
    squash: bool = False
    compression: str | None = None  # None: the target format's default
    platform: str | None = None
    tag: str | None = None
    whitelist_mode: str = "rkt"
    overwrite: bool = False
    max_expand: int | None = aci_reader.DEFAULT_MAX_EXPAND


def read(src: str, *, store=(), max_expand: int | None = aci_reader.DEFAULT_MAX_EXPAND) -> Image:
    """The graph of an image source (dependencies resolved, nothing rendered)."""
    source = refs.detect_source(src)
    if source.format == "aci":
        return aci_reader.read(source.path, store=tuple(store), max_expand=max_expand)
    raise UsageError(f"{src}: reading {source.format} sources is not implemented yet")


def render(image: Image, *, squash: bool = False, whitelist_mode: str = "rkt") -> Image:
    """ACI semantics: dependencies and path whitelists into an ordered layer stack."""
    try:
        mode = render_mod.WhitelistMode(whitelist_mode)
    except ValueError:
        raise UsageError("--whitelist-mode must be rkt or spec") from None
    return render_mod.render(image, mode=mode, squash=squash)


def convert(src: str, dest: str, *, to: str | None = None, options: ConvertOptions | None = None,
            progress: Callable[[int], Callable[[int], None]] | None = None):
    """Convert one image. `progress`, if given, is called once with the total number of bytes
    to process and returns the callback that is then fed byte counts as they are written."""
    opts = options or ConvertOptions()
    target = refs.parse_destination(dest, to)
    image = read(src, store=opts.store, max_expand=opts.max_expand)
    report = progress(total_bytes(image)) if progress else None
    if target.format in ("oci", "oci-archive"):
        flat = render(image, squash=opts.squash, whitelist_mode=opts.whitelist_mode)
        return oci_writer.write(
            flat, target.path, tag=opts.tag or target.tag,
            compression=opts.compression or "gzip", archive=target.format == "oci-archive",
            platform=parse_platform(opts.platform) if opts.platform else None,
            overwrite=opts.overwrite, progress=report)
    raise UsageError(f"writing {target.format} is not implemented yet")


def total_bytes(image: Image) -> int:
    """Uncompressed bytes the rendering will read, for progress bars."""
    return sum(int(dict(img.extra).get("size", 0)) for img in image.walk())
