"""`oci-archive:FILE[:REF]`: a tar of an OCI image layout (plain, or gzip, bzip2, xz, zstd as a
source). REF as for `oci:`; a new archive is written whole, never added to."""

from __future__ import annotations

from ..graph import Image
from ..options import OciOutput, ReadOptions
from . import oci_layout
from .base import Reference, split_path_ref

NAME = "oci-archive"
FORMAT = "oci"
HELP = "a tar of an OCI layout: oci-archive:FILE[:REF] (bare: *.tar)"
FILE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".oci")
DEST_SUFFIXES = (".tar",)


def parse(rest: str, text: str) -> Reference:
    return split_path_ref(rest, NAME, text)


def open(ref: Reference, options: ReadOptions):
    from ..readers import oci as oci_reader
    from ..readers.blobs import TarBlobs

    blobs = TarBlobs(ref.path, max_expand=options.max_expand)
    return oci_layout.blob_source(blobs, ref, options, oci_reader.read_images)


def write(image: Image, ref: Reference, options: OciOutput):
    return oci_layout.write(image, ref, options, archive=True)


def validate(ref: Reference, report, *, fast: bool, options: ReadOptions) -> None:
    from ..readers.blobs import TarBlobs
    from ..validation.oci import validate_layout

    with TarBlobs(ref.path, max_expand=options.max_expand) as blobs:
        validate_layout(blobs, report, fast=fast)
