"""`aci:FILE`: an App Container Image, plain tar, gzip, bzip2 or xz; as a source with the chain
of ACIs it depends on (from `--store`), as a destination one ACI, or with `--layered` a directory
of ACIs that works as a store."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..errors import UsageError
from ..graph import Image
from ..options import AciOutput, ReadOptions
from ..spec.vocabulary import aci_platform
from .base import Reference

NAME = "aci"
FORMAT = "aci"
HELP = "an App Container Image file: aci:FILE (bare: *.aci)"
FILE_SUFFIXES = (".aci",)
DEST_SUFFIXES = (".aci",)


def parse(rest: str, text: str) -> Reference:
    if not rest:
        raise UsageError(f"{text!r} names no file")
    return Reference(NAME, rest, None, text)


@dataclass
class AciSource:
    """An ACI file (with the store its dependencies are found in) as a source."""

    ref: Reference
    options: ReadOptions

    @property
    def where(self) -> str:
        return self.ref.path

    def images(self) -> list[Image]:
        from ..readers import aci_chain
        from ..readers.aci import AciFiles

        o = self.options
        image = aci_chain.read(self.ref.path, store=o.store, acis=AciFiles.from_options(o),
                               once=o.once, record_id=o.image_id)
        if o.platform:  # what the os/arch labels leave unsaid; never against them
            try:
                platform = aci_platform(dict(image.labels), o.platform)
            except UsageError as exc:
                raise exc.at(file=self.ref.path)
            image = replace(image, platform=platform)
        return [image]

    def __enter__(self) -> "AciSource":
        return self

    def __exit__(self, *exc) -> None:
        pass  # an ACI source makes no temporaries


def open(ref: Reference, options: ReadOptions) -> AciSource:
    return AciSource(ref, options)


def write(image: Image, ref: Reference, options: AciOutput):
    from .. import prepare
    from ..writers import aci as aci_writer

    if not options.layered and os.path.isdir(ref.path) and not os.path.islink(ref.path):
        # a directory means "into it", as cp and docker2aci do: <name>-<version>.aci
        ref = replace(ref, path=os.path.join(ref.path, file_name(image, options.name)))
    if options.layered:
        return aci_writer.write_chain(prepare.for_aci_chain(image, options), ref.path,
                                      compression=options.compression, name=options.name,
                                      overwrite=options.overwrite)
    return aci_writer.write(prepare.for_aci(image, options), ref.path,
                            compression=options.compression, name=options.name,
                            overwrite=options.overwrite)


def file_name(image: Image, name: str | None = None) -> str:
    """`example.com/app` version 1.0 -> `example-com-app-1-0.aci`, as --all names its files."""
    from ..spec.vocabulary import sanitize_acname

    parts = [name or image.name or "image"] + ([image.version] if image.version else [])
    return sanitize_acname("-".join(p.replace("/", "-") for p in parts)) + ".aci"


def validate(ref: Reference, report, *, fast: bool, options: ReadOptions) -> None:
    from ..readers.aci import AciFiles
    from ..validation.aci import validate_aci

    validate_aci(ref.path, report, acis=AciFiles.from_options(options), store=options.store)
