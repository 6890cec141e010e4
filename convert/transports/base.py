"""What a transport module provides, and the reference value every transport parses into.

A transport is one module with:
- `NAME` (its prefix), `HELP` (one line), `FILE_SUFFIXES` (file endings that batch and
  `validate --recursive` pick up when walking a directory), `DEST_SUFFIXES` (bare destination
  paths of this shape are written by it);
- `parse(rest, text) -> Reference`: the part after `NAME:` (or a bare path);
- as a source, `open(ref, options: ReadOptions)`: a context manager yielding a `Source`. It owns
  every temporary it makes (a decompressed archive, a download) and removes it on exit, error
  and Ctrl-C included; images read from it are valid only inside the `with`;
- as a destination, `write(image, ref, options) -> Result` (options: `OciOutput` or
  `AciOutput`, named by `FORMAT`, the image format it writes: "oci" or "aci");
- for `acioci validate`, `validate(ref, report, *, fast, options: ReadOptions)` (the limits
  and the `--store` ride in the options, as for `open`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import UsageError
from ..graph import Image


@dataclass(frozen=True)
class Reference:
    """A parsed reference: the transport, its path (file, directory or remote name) and the
    image inside it (`ref`: a tag, ref.name, NAME:TAG or @N), as the user spelled it in `text`."""

    transport: str
    path: str
    ref: str | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{self.transport}:{self.path}" + (f":{self.ref}" if self.ref else "")


class Source(Protocol):
    """An opened source: the images it holds, selected by the read options' ref, platform and
    select_all. With several candidates and no selection the error lists them."""

    where: str

    def images(self) -> list[Image]:
        ...


def split_path_ref(rest: str, name: str, text: str) -> Reference:
    """`PATH[:REF]`, the grammar of skopeo's oci: and oci-archive: (a path cannot hold ':')."""
    path, _, ref = rest.partition(":")
    if not path:
        raise UsageError(f"{text!r} names no path")
    return Reference(name, path, ref or None, text)
