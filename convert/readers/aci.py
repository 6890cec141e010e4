"""ACI reader: `.aci` files (plain tar, gzip, bzip2 or xz, by magic bytes) into the graph.

One streaming pass per file checks the archive layout (aci.md §1.1, stricter than actool: no
`..`, no absolute names, no duplicates after cleaning, hardlinks only to earlier non-directory
entries inside `rootfs/`, nothing below a non-directory), hashes the uncompressed stream for the
image ID (§1.3), and records an index of the entries so that rendering needs no second pass.
Dependencies are resolved from a store as rkt resolves them (§3.1): see `aci_chain.py`, which
reads an ACI with its whole chain, and `aci_store.py`, which finds each dependency's file.

Every ACI is opened through an `AciFiles`: the ACI side's owner of the expansion limit (how
far a compressed archive may grow; the guard against a gzip bomb), as `Blobs` is the OCI side's.
A transport builds one from its read options (`AciFiles.from_options`); the chain resolver, the
store, the validator and appc discovery take it and open, scan and re-read files through it,
never the number. A small object of its own rather than the store: the image asked for and the
files discovery fetches are in no store, and the store caches what it scanned of its
directories, which the top image should not join. Everything that reads an ACI is a method of
it, so no path through the code opens one with the limit forgotten.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from typing import Iterator

from .. import jsonio
from ..compression import HashingReader, open_decompressed
from ..errors import DigestMismatchError, FormatError, SourceUnreadableError
from ..graph import Dependency, Image, Layer, Origin, Pending, stream
from ..options import DEFAULT_MAX_EXPAND, ReadOptions
from ..meter import metered
from ..regular import NotRegularFileError, open_regular
from ..tarstream import Entry, read_entries
from ..spec.aci_rules import entry_problems
from . import aci_manifest

ACI_COMPRESSIONS = ("tar", "gzip", "bzip2", "xz")


@dataclass
class ScanResult:
    """What one pass over an ACI learnt."""

    path: str
    image_id: "str | Pending | None"  # Pending or None only for an ACI read once (`read_once`)
    manifest_bytes: bytes
    compression: str
    index: tuple[tuple[str, str, str], ...]
    stat: tuple[int, ...] = (0, 0, 0, 0, 0)  # (dev, ino, size, mtime_ns, ctime_ns) when scanned


@dataclass(frozen=True)
class AciFiles:
    """ACI files as one read opens them: decompressed within `max_expand` bytes (None: no
    limit). See the module docstring for why this object exists."""

    max_expand: int | None = DEFAULT_MAX_EXPAND

    @classmethod
    def from_options(cls, options: ReadOptions) -> "AciFiles":
        """The one place the ACI side reads the limit from the options."""
        return cls(max_expand=options.max_expand)

    @contextlib.contextmanager
    def open(self, path: str, *, counted: bool = False):
        """`(kind, stream)`: the ACI at `path` decompressed, the stream raising `LimitError`
        past the limit. With `counted`, the reads are progress (see `meter`)."""
        try:  # a FIFO named like an .aci (in a store, among batch inputs) must not block
            fh = open_regular(path)
        except FileNotFoundError:
            raise SourceUnreadableError("no such file", file=path) from None
        except NotRegularFileError as exc:
            if exc.errno == errno.EISDIR:
                raise SourceUnreadableError("is a directory, not an .aci file",
                                            file=path) from None
            raise SourceUnreadableError(exc.strerror, file=path) from None
        except OSError as exc:
            raise SourceUnreadableError(f"cannot open: {exc.strerror}", file=path) from None
        with fh:
            try:
                kind, stream = open_decompressed(metered(fh) if counted else fh,
                                                 allowed=ACI_COMPRESSIONS,
                                                 limit=self.max_expand, what="ACI")
            except FormatError as exc:
                raise exc.at(file=path)
            yield kind, stream

    def archive(self, path: str, *, expect_id: str | None = None, check: bool = True,
                hash_id: bool = True) -> "AciArchive":
        """One pass over the ACI at `path` (see `AciArchive`)."""
        return AciArchive(self, path, expect_id=expect_id, check=check, hash_id=hash_id)

    def scan(self, path: str) -> ScanResult:
        """One full pass: layout checks, manifest bytes, image ID and the entry index."""
        archive = self.archive(path)
        manifest = b""
        index: list[tuple[str, str, str]] = []
        for entry in archive.entries():
            name = entry.path
            if name == "manifest":
                manifest = _read_manifest(entry, path)
            elif name.startswith("rootfs/"):
                link = entry.linkname[7:] if entry.kind == "hardlink" else entry.linkname
                index.append((name[7:], entry.kind, link))
        assert archive.image_id is not None and archive.compression is not None
        return ScanResult(path=path, image_id=archive.image_id, manifest_bytes=manifest,
                          compression=archive.compression, index=tuple(index),
                          stat=_stat(path))

    def find_manifest(self, path: str) -> bytes:
        """The manifest bytes, reading no further than needed (store indexing)."""
        archive = self.archive(path, check=False, hash_id=False)
        for entry in archive.entries():
            if entry.path == "manifest" and entry.kind == "file":
                return _read_manifest(entry, path)
        raise FormatError("no manifest entry in ACI", file=path)

    def rootfs_layer(self, path: str, image_id: str, index, *,
                     stat: tuple | None = None) -> Layer:
        """The ACI's own content as a layer: paths relative to rootfs, `manifest` and the
        rootfs entry itself left out.

        The image ID was computed by the scan that built `index`; a re-read does not hash again
        (SHA-512 is the costliest step of a conversion) but checks that the file is the one
        that was scanned (device, inode, size, mtime, ctime: a file rewritten in place with its
        old mtime put back still has a new ctime) before and after. Without a recorded stat it
        hashes and compares."""

        def unchanged() -> None:
            if stat is not None and _stat(path) != stat:
                raise DigestMismatchError("ACI changed while it was being converted", file=path)

        def entries():
            unchanged()
            archive = self.archive(path, expect_id=None if stat else image_id,
                                   hash_id=stat is None)
            yield from archive.entries(rootfs=True)
            unchanged()

        return Layer(open=stream(entries), source=path, index=index,
                     size=os.path.getsize(path), whole_file=(path, stat))

    def _peek_manifest(self, path: str) -> tuple[bytes, str] | None:
        """The manifest bytes and the compression, if the manifest is among the archive's
        first few MiB (actool and docker2aci write it first); None otherwise."""
        archive = self.archive(path, check=False, hash_id=False)
        for entry in archive.entries():
            if entry.path == "manifest" and entry.kind == "file":
                assert archive.compression is not None
                return _read_manifest(entry, path), archive.compression
            if entry.data is not None and entry.data.start > PEEK_BYTES:
                return None
        return None

    def read_once(self, path: str, record_id: bool = True) -> Image | None:
        """A single ACI with no dependencies and no pathWhitelist renders to its own entries,
        so a conversion can read it once instead of scanning it first: the manifest is peeked
        from the head of the archive, and the layer's stream checks the layout and hashes the
        image ID while the bytes go to the writer (the ID stays `Pending` until then). None
        when the manifest asks for more, or is not near the front: the caller scans. Without
        `record_id` no SHA-512 is taken at all: in a one-pass conversion it is the longest
        chain of work (see `aci_chain.read`)."""
        peeked = self._peek_manifest(path)
        if peeked is None:
            return None
        manifest, compression = peeked
        doc, _ = aci_manifest.parse(manifest, file=path)
        if doc.get("dependencies") or doc.get("pathWhitelist"):
            return None
        image_id = Pending(lambda: self.scan(path).image_id) if record_id else None

        def entries():
            archive = self.archive(path, hash_id=record_id)
            yield from archive.entries(rootfs=True, manifest=manifest)
            if image_id is None:
                return
            if image_id.known() not in (None, archive.image_id):
                raise DigestMismatchError("ACI changed while it was being converted", file=path)
            image_id.set(archive.image_id)

        res = ScanResult(path=path, image_id=image_id, manifest_bytes=manifest,
                         compression=compression, index=())
        return image(res, doc, (), Layer(open=stream(entries), source=path, index=None,
                                          size=os.path.getsize(path), whole_file=(path, None)))


class AciArchive:
    """One pass over an ACI: `entries()` yields every member, its path the gated member path
    ("manifest", "rootfs", "rootfs/etc/passwd"); after a clean end, `image_id` is set and, if
    `expect_id` was given, checked. The layout checks of the module docstring run when `check`
    is true."""

    def __init__(self, files: AciFiles, path: str, *, expect_id: str | None = None,
                 check: bool = True, hash_id: bool = True) -> None:
        self.hash_id = hash_id
        self.files = files
        self.path = path
        self.expect_id = expect_id
        self.check = check
        self.image_id: str | None = None
        self.compression: str | None = None

    def entries(self, on_unsafe=None, *, rootfs: bool = False,
                manifest: bytes | None = None) -> Iterator[Entry]:
        """With `rootfs`, only the rootfs entries, their paths (and hardlink targets) made
        relative to rootfs, and the archive's manifest, if `manifest` is given, must still be
        those bytes. (Done here rather than by a generator around this one: the loop runs once
        per entry of every conversion, and each layer of generators costs it.)"""
        path = self.path
        # the rootfs pass is the one whose bytes are written out: its reads are progress
        with self.files.open(path, counted=rootfs) as (kind, stream):
            self.compression = kind
            # SHA-512 is the longest chain of a conversion: a queue deeper than the default
            # lets it run on while the compressing threads have the cores (16 MiB: more helped
            # speed but took a 4 GiB conversion past 100 MB of peak memory)
            hasher = HashingReader(stream, "sha512" if self.hash_id else None, threaded=True,
                                   depth=16)
            seen: dict[str, str] = {}
            implied: set[str] = set()
            current = None
            got = None
            try:
                for entry in read_entries(hasher, on_unsafe=on_unsafe):
                    current = entry.path
                    if self.check:
                        _check_entry(entry, seen, implied)
                    if not rootfs:
                        yield entry
                    elif current[:7] == "rootfs/":
                        entry.path = current[7:]
                        if entry.kind == "hardlink":
                            entry.linkname = entry.linkname[7:]
                        yield entry
                    elif manifest is not None and current == "manifest" and \
                            _read_manifest(entry, path) != manifest:
                        raise DigestMismatchError("ACI changed while it was being converted",
                                                  file=path)
                current = None
                while hasher.read(1 << 20):
                    pass
                if hasher.hash is not None:
                    got = "sha512-" + hasher.hash.hexdigest()
            except FormatError as exc:
                exc.file = exc.file or path
                if exc.entry is None and current is not None:
                    exc.entry = current
                raise
            finally:
                if hasher.hash is not None:
                    hasher.hash.close()  # however the scan ended, the hashing thread stops
        if self.check:
            if "manifest" not in seen:
                raise FormatError("no manifest entry in ACI", file=path)
            if seen.get("rootfs") != "dir":
                raise FormatError("no rootfs directory entry in ACI", file=path)
        if got is None:
            return
        if self.expect_id is not None and got != self.expect_id:
            raise DigestMismatchError("ACI changed while it was being converted", file=path,
                                      expected=self.expect_id, actual=got)
        self.image_id = got


def _check_entry(entry: Entry, seen: dict[str, str], implied: set[str]) -> None:
    for _rule, message in entry_problems(entry, seen, implied):
        raise FormatError(message, entry=entry.path or "/")


MAX_MANIFEST = jsonio.MAX_JSON_BYTES


def _read_manifest(entry: Entry, path: str) -> bytes:
    if entry.size > MAX_MANIFEST:
        raise FormatError(f"manifest of {entry.size} bytes exceeds the limit of {MAX_MANIFEST}",
                          file=path, entry="manifest")
    return read_whole(entry)


def read_whole(entry: Entry) -> bytes:
    """All of an entry's data. A read may return less than asked (the tar reader hands out a
    few MiB at a time), so one read of a large manifest is only a prefix of it: read until
    the entry ends. The caller bounds the size."""
    if entry.data is None:
        return b""
    parts = []
    while True:
        part = entry.data.read()
        if not part:
            return b"".join(parts)
        parts.append(part)


def _stat(path: str) -> tuple[int, int, int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


PEEK_BYTES = 4 << 20  # how far into an archive a one-pass read looks for the manifest


def image(res: ScanResult, doc: dict, deps: tuple[Dependency, ...], layer: Layer) -> Image:
    labels = aci_manifest.pairs(doc.get("labels"))
    annotations = aci_manifest.pairs(doc.get("annotations"))
    ann = dict(annotations)
    whitelist = tuple(doc.get("pathWhitelist") or ()) or None
    config, annotations = aci_manifest.restore_oci_fields(
        aci_manifest.runtime_config(doc.get("app")), annotations)
    return Image(
        name=doc["name"], source=res.path, version=dict(labels).get("version"), labels=labels,
        platform=aci_manifest.platform(dict(labels)),
        config=config, annotations=annotations,
        layers=(layer,),
        dependencies=deps, path_whitelist=whitelist,
        created=ann.get("created"), author=ann.get("authors"),
        image_id=res.image_id,
        origin=Origin(format="aci", vocabulary="aci", ac_version=doc["acVersion"]),
    )
