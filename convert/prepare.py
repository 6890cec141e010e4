"""Bringing an image as read into the shape its writer takes: the rendering step between the
two sides of the graph.

An ACI arrives as a dependency DAG with path whitelists; OCI wants an ordered layer stack
(`render`). An OCI image arrives as a layer stack with whiteouts; an ACI wants one rootfs
(`squash`) or a chain of ACIs, one per layer (`layered`). Which applies depends only on where
the image came from (`Image.origin`) and the output options, never on the transport.
"""

from __future__ import annotations

from dataclasses import replace

from . import render
from .errors import UsageError
from .graph import Image
from .options import AciOutput, OciOutput


def from_aci(image: Image) -> bool:
    return image.origin is not None and image.origin.format == "aci"


def rendered(image: Image, *, squash_layers: bool = False, whitelist_mode: str = "rkt") -> Image:
    """ACI semantics: dependencies and path whitelists into an ordered layer stack."""
    return render.render(image, mode=render.WhitelistMode(whitelist_mode), squash=squash_layers)


def for_oci(image: Image, opts: OciOutput) -> Image:
    if from_aci(image):
        return rendered(image, squash_layers=opts.squash, whitelist_mode=opts.whitelist_mode)
    if not opts.squash:
        return image
    from . import squash  # imported by the conversions that squash (start-up: see README)

    return squash.squash(image)


def for_aci(image: Image, opts: AciOutput) -> Image:
    """One ACI: an ACI chain flattened (whitelists applied, dependencies rendered in), or an
    OCI stack squashed."""
    if from_aci(image):
        return replace(rendered(image, squash_layers=True, whitelist_mode=opts.whitelist_mode),
                       path_whitelist=None)
    from . import squash

    return squash.squash(image)


def for_aci_chain(image: Image, opts: AciOutput) -> list[Image]:
    """A layered conversion: one ACI per OCI layer, each depending on the one below."""
    if from_aci(image):
        raise UsageError("a layered conversion splits OCI layers; an ACI source is already "
                         "layered")
    name = opts.name or image.name
    if not name:
        raise UsageError(f"{image.source}: the image has no name to give the ACIs; give one",
                         hint_option="name")
    from . import layered

    return layered.layer_images(image, name)
