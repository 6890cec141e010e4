"""`docker-archive:FILE[:NAME:TAG]`: what `docker save` writes, in all three shapes (legacy
`<id>/layer.tar` folders, Docker 25+ archives that are also OCI layouts, containerd exports).
As a source, NAME:TAG picks an image by its RepoTag (`@N`: the Nth of manifest.json). As a
destination it is the name `docker load`, `podman load` and `ctr import` give the image
(default: the image's own name and version label, as `example.com/app:1.0`); the archive is
Docker 25's shape, at once a `docker save` archive and an OCI layout."""

from __future__ import annotations

from ..graph import Image
from ..options import OciOutput, ReadOptions
from . import oci_layout
from .base import Reference, split_path_ref

NAME = "docker-archive"
FORMAT = "oci"
HELP = "a docker save archive: docker-archive:FILE[:NAME:TAG]"
FILE_SUFFIXES = (".docker",)


def parse(rest: str, text: str) -> Reference:
    return split_path_ref(rest, NAME, text)


def open(ref: Reference, options: ReadOptions):
    from ..readers import docker as docker_reader
    from ..readers.blobs import TarBlobs

    blobs = TarBlobs(ref.path, max_expand=options.max_expand)
    return oci_layout.blob_source(blobs, ref, options, docker_reader.read_images)


def write(image: Image, ref: Reference, options: OciOutput):
    from .. import prepare
    from ..spec import vocabulary
    from ..writers import oci as oci_writer

    image = prepare.for_oci(image, options)
    name, tag = vocabulary.split_reference(ref.ref) if ref.ref else (None, None)
    if name is None and tag is not None:  # docker-archive:x.tar:app names no tag
        name, tag = tag, None
    name = name or vocabulary.sanitize_identifier(image.name or "image")
    tag = tag or options.tag or (vocabulary.ref_name_from_version(image.version)
                                 if image.version else "latest")
    docker_name = vocabulary.docker_reference(name, tag)
    return oci_writer.write(image, ref.path, tag=tag, compression=options.compression,
                            overwrite=options.overwrite, add=False, docker_name=docker_name)


def validate(ref: Reference, report, *, fast: bool, options: ReadOptions) -> None:
    from ..readers.blobs import TarBlobs
    from ..validation.oci import LayerChecks, validate_docker, validate_layout

    checks = LayerChecks()  # Docker 25's archives name each layer from both documents
    with TarBlobs(ref.path, max_expand=options.max_expand) as blobs:
        validate_docker(blobs, report, fast=fast, checks=checks)
        if blobs.exists("index.json"):
            validate_layout(blobs, report, fast=fast, checks=checks)
