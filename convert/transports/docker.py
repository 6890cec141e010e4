"""`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: an image in a registry (the distribution API),
with Docker Hub's conventions for bare names (`docker://busybox` is
`registry-1.docker.io/library/busybox:latest`), as skopeo reads them.

As a source, the registry is read through the same OCI reader as a layout (`RegistryBlobs`
serves `index.json` for the reference and every blob by digest, each verified while it
streams). As a destination, each layer is uploaded while it is encoded (no layout on disk; see
`registry/push.py` and `registry/upload.py`), a duplicate found by its digest is not committed
twice, and the manifest goes last, so a failed push never leaves a tag pointing at missing
blobs. The HTTP client (`requests`, the `registry`
extra) is imported only here. See `convert/registry/`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..graph import Image
from ..options import OciOutput, ReadOptions
from .base import Reference
from .oci_layout import blob_source

NAME = "docker"
FORMAT = "oci"
HELP = "an image in a registry: docker://HOST[:PORT]/REPO[:TAG|@DIGEST]"


def parse(rest: str, text: str) -> Reference:
    from ..registry.reference import parse as parse_registry

    if not rest.startswith("//"):
        raise UsageError(f"{text!r}: a registry reference is docker://HOST/REPO[:TAG]")
    ref = parse_registry(text)
    return Reference(NAME, ref.name, ref.reference, text)


def output_name(ref: Reference) -> str:
    """`docker://host:5000/apps/app:1.0` -> `apps/app-1.0` (batch output names)."""
    repo = ref.path.split("/", 1)[-1] if "/" in ref.path else ref.path
    return f"{repo}-{(ref.ref or 'latest').replace(':', '-')}"


def open(ref: Reference, options: ReadOptions):
    from ..readers import oci as oci_reader
    from ..registry.blobs import open_source

    blobs = open_source(ref.text, spool=True, **options.registry())  # squash reads twice
    return blob_source(blobs, Reference(NAME, ref.path, None, ref.text), options,
                       oci_reader.read_images)


@dataclass(frozen=True)
class PushedResult:
    """A local layout's result, pushed: the digest names the image in the registry."""

    written: object  # the OciResult a layout write would have given
    reference: str   # docker://registry/repo@digest
    digest: str
    destination: str

    def to_dict(self) -> dict:
        out = self.written.to_dict()
        out.update(destination=self.destination, format="docker", pushed=self.reference)
        return out

    def to_text(self) -> str:
        lines = self.written.to_text().splitlines()
        lines[0] = f"pushed {self.destination} ({self.reference})"
        return "\n".join(lines)


def write(image: Image, ref: Reference, options: OciOutput):
    from .. import prepare
    from ..registry.push import push_image

    written, pushed = push_image(prepare.for_oci(image, options), ref.text,
                                 compression=options.compression, tag=options.tag,
                                 **options.registry)
    return PushedResult(written, pushed.reference, pushed.digest, ref.text)


def validate(ref: Reference, report, *, fast: bool, max_expand, store,
             options: ReadOptions | None = None) -> None:
    from ..registry.blobs import open_source
    from ..validation.oci import validate_layout

    with open_source(ref.text, **(options or ReadOptions()).registry()) as blobs:
        validate_layout(blobs, report, fast=fast, max_expand=max_expand, unreferenced=False)
