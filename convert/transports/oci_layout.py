"""`oci:DIR[:REF]`: an OCI image layout directory. As a source, REF picks an image by its
ref.name (or `@N`, the Nth entry of index.json); as a destination, REF is the tag, and an
existing layout gets the image added beside its others, as `skopeo copy` does."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

from ..graph import Image
from ..options import OciOutput, ReadOptions
from .base import Reference, split_path_ref

NAME = "oci"
FORMAT = "oci"
HELP = "an OCI image layout directory: oci:DIR[:REF] (bare: a directory)"
FILE_SUFFIXES: tuple[str, ...] = ()
DEST_SUFFIXES: tuple[str, ...] = ()  # the fallback for bare destinations (transports.by_shape)


def parse(rest: str, text: str) -> Reference:
    return split_path_ref(rest, NAME, text)


@dataclass
class BlobSource:
    """A source read through a `Blobs` (a layout, an archive), which it owns: leaving its
    `with` closes the blobs and so removes their temporaries. `read` selects and reads."""

    blobs: object
    options: ReadOptions
    read: Callable

    @property
    def where(self) -> str:
        return self.blobs.where

    def images(self) -> list[Image]:
        return self.read(self.blobs, self.options)

    def __enter__(self) -> "BlobSource":
        return self

    def __exit__(self, *exc) -> None:
        self.blobs.close()


def blob_source(blobs, ref: Reference, options: ReadOptions, read: Callable) -> BlobSource:
    return BlobSource(blobs, replace(options, ref=options.ref or ref.ref), read)


def open(ref: Reference, options: ReadOptions):
    from ..readers import oci as oci_reader
    from ..readers.blobs import DirBlobs, TarBlobs

    # oci:FILE also reads a tar of a layout, as it always has
    blobs = DirBlobs(ref.path, max_expand=options.max_expand) if os.path.isdir(ref.path) else \
        TarBlobs(ref.path, max_expand=options.max_expand)
    return blob_source(blobs, ref, options, oci_reader.read_images)


def write(image: Image, ref: Reference, options: OciOutput, *, archive: bool = False):
    from .. import prepare
    from ..writers import oci as oci_writer

    return oci_writer.write(prepare.for_oci(image, options), ref.path,
                            tag=options.tag or ref.ref, compression=options.compression,
                            archive=archive, overwrite=options.overwrite,
                            add=options.add_to_layout)


def validate(ref: Reference, report, *, fast: bool, options: ReadOptions) -> None:
    from ..readers.blobs import DirBlobs
    from ..validation.oci import validate_layout

    validate_layout(DirBlobs(ref.path, max_expand=options.max_expand), report, fast=fast)
