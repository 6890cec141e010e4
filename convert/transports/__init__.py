"""Where images live: one table from a transport's name to the module that reads or writes it.

A reference is `TRANSPORT:REST` in skopeo's grammar (`oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
`docker-archive:FILE[:NAME:TAG]`, `aci:FILE`), or a bare path, which is recognised by content
as a source (magic bytes and top-level names, never the extension) and by its shape as a
destination (`*.aci`, `*.tar`, else a layout directory). A `word:` prefix that names no
transport is a usage error listing the known ones, never a file name: `oci-archve:x.tar` is a
typo, and writing a file of that name would hide it.

Adding a transport is one module in this package (see `base.py` for what it provides) and one
row in `_TABLE`. Modules are imported on first use, so a transport's heavy dependencies (an
HTTP client) cost nothing to commands that do not name it.
"""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType

from ..errors import UsageError
from ..graph import Image
from .base import Reference

# name -> module; the order is the order of help texts and of error messages
_TABLE = {
    "aci": "convert.transports.aci",
    "oci": "convert.transports.oci_layout",
    "oci-archive": "convert.transports.oci_archive",
    "docker-archive": "convert.transports.docker_archive",
    "appc": "convert.transports.appc",
    "docker": "convert.transports.docker",
}
NAMES = tuple(_TABLE)
# a prefix that looks like a transport name: letters, digits, '-', '+', '.' before the first ':'
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def module(name: str) -> ModuleType:
    return importlib.import_module(_TABLE[name])


def known() -> str:
    return ", ".join(f"{n}:" for n in NAMES)


def _split(text: str) -> tuple[str, str] | None:
    """(transport, rest) when `text` names a transport; None for a bare path. An unknown
    prefix is refused."""
    m = _PREFIX.match(text)
    if m is None:
        return None
    name = m.group(1)
    if name not in _TABLE:
        raise UsageError(f"{text}: unknown transport {name!r}; known transports: {known()} "
                         "(or a plain path; write ./{text} for a file whose name has a colon)")
    return name, text[m.end():]


def names_transport(text: str) -> bool:
    """Whether `text` starts with a transport prefix (an unknown one is refused)."""
    return _split(text) is not None


def source(text: str) -> Reference:
    """The reference of an image to read. A bare path is recognised by content."""
    split = _split(text)
    if split is not None:
        return module(split[0]).parse(split[1], text)
    from .sniff import sniff_source

    return module(sniff_source(text)).parse(text, text)


def destination(text: str, to: str | None = None) -> Reference:
    """The reference of where to write. `to` (the CLI's --to) names the transport for a bare
    path and must agree with an explicit one."""
    if to is not None and to not in _TABLE:
        raise UsageError(f"the output transport must be one of "
                         f"{', '.join(n for n in NAMES if writes(n))}, not {to!r}")
    if to is not None and not writes(to):
        raise UsageError(f"{to} is not a destination; the output transport is one of "
                         f"{', '.join(n for n in NAMES if writes(n))}")
    split = _split(text)
    if split is not None:
        name, rest = split
        if to is not None and to != name:
            raise UsageError(f"destination {text!r} is {name}, but the output transport "
                             f"asked for is {to}", hint_option="to")
    else:
        name, rest = to or by_shape(text), text
    if not writes(name):
        raise UsageError(f"{text}: {name} is a source only; destinations are "
                         f"{', '.join(n + ':' for n in NAMES if writes(n))}")
    return module(name).parse(rest, text)


def by_shape(path: str) -> str:
    """A bare destination path's transport, from its shape (as the README promises)."""
    for name in NAMES:
        for suffix in getattr(module(name), "DEST_SUFFIXES", ()):
            if path.endswith(suffix):
                return name
    return "oci"


def writes(name: str) -> bool:
    return hasattr(module(name), "write")


def write(image: Image, ref: Reference, options):
    """Write `image` to `ref` with its transport's `write` (options as `FORMAT` names them);
    a one-pass read that needs its index after all is written again (`one_pass`)."""
    from ..one_pass import write_with_retry

    return write_with_retry(image, lambda img: module(ref.transport).write(img, ref, options))


def file_suffixes() -> tuple[str, ...]:
    """File name endings that batch and `validate --recursive` take as image inputs when they
    walk a directory: the union of every transport's."""
    out: list[str] = []
    for name in NAMES:
        out += [s for s in getattr(module(name), "FILE_SUFFIXES", ()) if s not in out]
    return tuple(out)


def output_name(ref: Reference) -> str:
    """What batch names the output of a reference given as an input: the transport's own
    rule (`output_name` in its module, for names that are no file), else the file's name."""
    named = getattr(module(ref.transport), "output_name", None)
    return named(ref) if named else os.path.basename(os.path.normpath(ref.path))


_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


def strip_suffix(name: str) -> str:
    """`app-1.0.aci` -> `app-1.0`, `img.tar.gz` -> `img`: longest known suffix first. A
    compression suffix goes too (`base.aci.gz`, `base.gz` -> `base`): sources are recognised
    by content, so a compressed ACI may end in anything, and `base.gz.aci` names nothing."""
    for suffix in _COMPRESSED:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    for suffix in sorted(file_suffixes(), key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name
