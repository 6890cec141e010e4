"""The neutral image graph: the only thing readers and writers share.

Readers build it, `render` transforms it, writers consume it; no reader imports a writer or the
other way round (as pandoc's readers and writers meet only at its document tree).

The graph must hold both an ACI dependency DAG (images with their own single layer and edges to
the images they depend on) and an OCI manifest (one image with ordered layers, no edges). It
keeps what only one format can say (ACI isolators, event handlers, port and mount-point names,
dependency labels, path whitelists; OCI history, StopSignal, author), so a writer can carry it
across in annotations instead of dropping it.

Layers are lazy: a `Layer` knows how to open a stream of `Entry` objects and is never held in
memory as bytes.

`Pending` is kept, the graph's only deferred value: an ACI's image ID exists only once a one-pass
read streamed its layer, a squash's primary group only after its index pass; writers resolve
both through `settled` (`settle` for a whole image), nothing else reads a `Pending`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field, replace
from typing import Callable, ContextManager, Iterator

from .errors import FormatError
from .tarstream import Entry

# OCI digest grammar (image-spec descriptor.md); per-algorithm encodings are checked in parse().
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LEN = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest as a value: `sha256:<hex>`; parsing rejects anything that could be
    used as a path component to escape `blobs/`."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> "Digest":
        if not isinstance(text, str) or not _DIGEST_RE.match(text):
            raise FormatError(f"not a digest: {text!r}")
        alg, enc = text.split(":", 1)
        want = _HEX_LEN.get(alg)
        if want is not None and not re.fullmatch(rf"[a-f0-9]{{{want}}}", enc):
            raise FormatError(f"{alg} digest must be {want} lower-case hex digits: {text!r}")
        return cls(alg, enc)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


@dataclass(frozen=True)
class Platform:
    """OCI vocabulary (GOOS/GOARCH/variant); readers translate appc labels into it."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Port:
    """An exposed port. OCI keeps only `port/proto`; the name, count and socket activation are
    ACI-only and ride in annotations. None means the source did not say (appc's defaults, 1
    and false, apply), so that a writer can leave absent what was absent."""

    name: str | None
    protocol: str
    port: int
    count: int | None = None
    socket_activated: bool | None = None


@dataclass(frozen=True)
class MountPoint:
    """A volume. OCI keeps only the path; name and readOnly are ACI-only. `read_only` None:
    the source did not say (false applies)."""

    name: str | None
    path: str
    read_only: bool | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    """How to run the image: the intersection of ACI `app` and OCI `config`, plus the parts
    only one side has (kept verbatim as JSON-able values)."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str | None = None
    group: str | None = None
    # OCI `User` without a group: the user's primary group in the image's /etc/passwd and
    # /etc/group (squash.py reads them in its index pass, so it is `Pending` until asked for).
    # An ACI must name a group, so the ACI writer uses it; OCI leaves the group implicit.
    primary_group: "str | Pending | None" = field(default=None, compare=False)
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    ports: tuple[Port, ...] = ()
    mount_points: tuple[MountPoint, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()  # OCI config.Labels == ACI app.userLabels
    stop_signal: str | None = None  # OCI only
    # ACI only, JSON values kept as read:
    isolators: tuple = ()
    event_handlers: tuple = ()
    supplementary_gids: tuple[int, ...] = ()
    user_annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HistoryEntry:
    """OCI history; for layers made from ACIs it records which image the layer came from."""

    created: str | None = None
    author: str | None = None
    created_by: str | None = None
    comment: str | None = None
    empty_layer: bool = False


@dataclass(frozen=True)
class WrittenBlob:
    """What a writer learnt while writing a layer: known only after the bytes went out."""

    digest: Digest
    size: int
    media_type: str
    diff_id: Digest


class Pending:
    """A value that becomes known when a layer's stream ends. An ACI's image ID is the SHA-512
    of the very bytes a one-pass conversion streams, so it exists only once the layer is
    written; the writer reads it afterwards through `settle`. `compute` supplies it on demand
    (a pass of its own) if no stream delivered it."""

    def __init__(self, compute: Callable[[], str]) -> None:
        self._compute = compute
        self._value: str | None = None

    def set(self, value: str) -> None:
        self._value = value

    def known(self) -> str | None:
        """The value if a stream or `get` has produced it, without computing it."""
        return self._value

    def get(self) -> str:
        if self._value is None:
            self._value = self._compute()
        return self._value


def settled(value):
    return value.get() if isinstance(value, Pending) else value


EntryStream = Callable[[], ContextManager[Iterator[Entry]]]


def stream(entries: Callable[[], Iterator[Entry]]) -> EntryStream:
    """A layer opener from a generator function: leaving the `with` closes the generator,
    consumed or not, which runs its `finally` blocks (files closed, spools removed)."""
    return lambda: contextlib.closing(entries())


@dataclass(frozen=True)
class Layer:
    """A changeset: a re-openable stream of entries, paths relative to the image root.

    `open()` is a context manager yielding `Entry` objects in archive order; each entry's data
    must be consumed (or skipped) before the next is requested. `index` lists (path, kind,
    linkname) of the entries, when the reader already paid for it, so that rendering needs no
    extra pass over the bytes. `headers`, when set, opens the same entries for a pass that
    reads no data (an index): it may skip verification that `open` does, because the pass
    that emits the data runs `open`. `size` is what `open()` reads from its source (the ACI
    file, the compressed blob), the unit of progress (`meter.py`).

    `whole_file`, when set, says the entries are exactly those of one file, as that file
    alone renders: (its path, the (dev, ino, size, mtime_ns, ctime_ns) its reader saw, or
    None). A push keys its layer memo on it (`registry/memo.py`); `render` keeps it only on a
    layer that no whitelist, upper image or hardlink rule changed, and leaves None otherwise.
    """

    open: EntryStream = field(repr=False, compare=False)
    headers: EntryStream | None = field(default=None, repr=False, compare=False)
    size: int | None = None
    source: str = ""
    index: tuple[tuple[str, str, str], ...] | None = field(default=None, repr=False)
    annotations: tuple[tuple[str, str], ...] = ()
    history: HistoryEntry | None = None
    written: WrittenBlob | None = None
    whole_file: tuple[str, tuple[int, ...] | None] | None = None


@dataclass(frozen=True)
class Dependency:
    """An edge of the ACI dependency DAG, with how it was asked for (name, labels, imageID),
    which a writer keeps so the reverse direction can restore the manifest."""

    image: "Image"
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    image_id: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Origin:
    """Which format an image was read from, and whose vocabulary its fields speak. A writer of
    the other format uses it to restore what a round trip must give back: an OCI image written
    from an ACI (`vocabulary` "aci") carries the ACI's manifest in annotations, so the ACI
    writer rebuilds that manifest rather than translating an OCI config."""

    format: str                   # "aci", "oci" or "docker": the reader that built the image
    vocabulary: str               # "aci" or "oci": whose fields `config` and labels came from
    ac_version: str | None = None  # the ACI manifest's acVersion, kept across a round trip
    signed_by: str | None = None   # appc: the fingerprint of the key whose signature was checked


@dataclass(frozen=True)
class Image:
    """One image: its own layers (bottom first), its dependencies (ACI order), runtime config.

    `path_whitelist` is None when absent (an empty ACI whitelist means the same).
    """

    name: str
    source: str
    version: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None
    config: RuntimeConfig | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    layers: tuple[Layer, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    path_whitelist: tuple[str, ...] | None = None
    created: str | None = None
    author: str | None = None
    # ACI: sha512-<hex> of the uncompressed tar; `Pending` until a one-pass conversion has
    # streamed the layer (see `settle`)
    image_id: "str | Pending | None" = None
    origin: Origin | None = None
    # True once `layers` is the complete stack (dependencies rendered in); a writer refuses an
    # image with unrendered dependencies rather than silently dropping their content.
    rendered: bool = False

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)

    def walk(self) -> Iterator["Image"]:
        """Every image reachable from this one, each once, in first-visit order."""
        seen: set[int] = set()
        stack = [self]
        while stack:
            img = stack.pop()
            if id(img) in seen:
                continue
            seen.add(id(img))
            yield img
            stack.extend(d.image for d in reversed(img.dependencies))


def settle(image: Image) -> Image:
    """`image` with every `Pending` value resolved: its image ID and what rendering copied it
    into (layer history comments and annotations). Writers call it once the layers are written;
    an image with nothing pending comes back as it is."""
    layers = tuple(
        replace(layer,
                annotations=tuple((k, settled(v)) for k, v in layer.annotations),
                history=layer.history and replace(layer.history,
                                                  comment=settled(layer.history.comment)))
        for layer in image.layers)
    return replace(image, image_id=settled(image.image_id), layers=layers)
