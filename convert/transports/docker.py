"""`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: an image in a registry (the distribution API),
with Docker Hub's conventions for bare names (`docker://busybox` is
`registry-1.docker.io/library/busybox:latest`), as skopeo reads them.

As a source, the registry is read through the same OCI reader as a layout (`RegistryBlobs`
serves `index.json` for the reference and every blob by digest, each verified while it
streams). As a destination, the image is written to a layout in a temporary directory and then
pushed: every blob HEAD-checked and skipped when present, mounted from another repository of
the same registry when it can be, uploaded otherwise, and the manifest last, so a failed push
never leaves a tag pointing at missing blobs. The HTTP client (`requests`, the `registry`
extra) is imported only here. See `convert/registry/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

    blobs = open_source(ref.text, max_expand=options.max_expand, **options.registry())
    return blob_source(blobs, Reference(NAME, ref.path, None, ref.text), options,
                       oci_reader.read_images)


@dataclass(frozen=True)
class PushedResult:
    """A local layout's result, pushed: the digest names the image in the registry."""

    written: object  # the OciResult of the temporary layout
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


class _Spool:
    """Owns the temporary layout of one push (its finalizer is the net if `write` is
    interrupted before its own cleanup)."""


def write(image: Image, ref: Reference, options: OciOutput):
    from ..atomic import owned_tempdir
    from ..registry.push import push_layout
    from .oci_layout import write as write_layout

    spool = _Spool()
    tmp, cleanup = owned_tempdir(spool, "acioci-push-")
    try:
        layout = Reference("oci", str(Path(tmp) / "layout"), None)
        written = write_layout(image, layout, options)
        pushed = push_layout(layout.path, ref.text, ref=written.tag, **options.registry)
        return PushedResult(written, pushed.reference, pushed.digest, ref.text)
    finally:
        cleanup()


def validate(ref: Reference, report, *, fast: bool, max_expand, store,
             options: ReadOptions | None = None) -> None:
    from ..registry.blobs import open_source
    from ..validation.oci import validate_layout

    with open_source(ref.text, max_expand=max_expand,
                     **(options or ReadOptions()).registry()) as blobs:
        validate_layout(blobs, report, fast=fast, unreferenced=False)
