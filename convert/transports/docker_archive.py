"""`docker-archive:FILE[:NAME:TAG]`: what `docker save` writes, in all three shapes (legacy
`<id>/layer.tar` folders, Docker 25+ archives that are also OCI layouts, containerd exports).
NAME:TAG picks an image by its RepoTag (`@N`: the Nth of manifest.json). A source only, for now:
`docker load`-able output is issue 18's."""

from __future__ import annotations

from ..options import ReadOptions
from . import oci_layout
from .base import Reference, split_path_ref

NAME = "docker-archive"
FORMAT = "oci"
HELP = "a docker save archive: docker-archive:FILE[:NAME:TAG] (source only)"
FILE_SUFFIXES = (".docker",)


def parse(rest: str, text: str) -> Reference:
    return split_path_ref(rest, NAME, text)


def open(ref: Reference, options: ReadOptions):
    from ..readers import docker as docker_reader
    from ..readers.blobs import TarBlobs

    blobs = TarBlobs(ref.path, max_expand=options.max_expand)
    return oci_layout.blob_source(blobs, ref, options, docker_reader.read_images)


def validate(ref: Reference, report, *, fast: bool, max_expand, store,
             options: ReadOptions | None = None) -> None:
    from ..readers.blobs import TarBlobs
    from ..validation.oci import validate_docker, validate_layout

    blobs = TarBlobs(ref.path, max_expand=max_expand)
    try:
        validate_docker(blobs, report, fast=fast, max_expand=max_expand)
        if blobs.exists("index.json"):
            validate_layout(blobs, report, fast=fast, max_expand=max_expand)
    finally:
        blobs.close()
