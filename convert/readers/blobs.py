"""Random access to the files of an image layout or archive, by relative path, safely.

Sources: a directory (an OCI layout), or a tar (oci-archive, docker archive). A plain tar is
indexed once and read in place by offset; a compressed one is first decompressed into a
temporary file (bounded by the expansion limit), since blobs must be read in manifest order,
not archive order.

Safety: every name passes the tar path gate; in a directory no path component may be a
symlink (a `blobs` folder pointing elsewhere is refused, not followed); in a tar, symlinked
members (docker's legacy `layer.tar` links) are resolved inside the archive only.
Verification: `open_verified` checks size and digest when the stream ends; a mismatch names
the blob, expected and actual.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from typing import BinaryIO

from ..atomic import owned_tempdir
from ..compression import HashingReader, ThreadedHash, open_decompressed
from ..errors import (AciociError, DigestMismatchError, FormatError, SourceUnreadableError,
                      UnsafePathError)
from ..graph import Digest
from ..options import DEFAULT_MAX_EXPAND
from ..regular import NotRegularFileError, open_regular
from ..tarstream import normalize_path, read_entries

_CHUNK = 1 << 20


class _Limited:
    """Reads at most `size` bytes from a file starting at `start`; `seek` is relative to
    `start`."""

    def __init__(self, fh: BinaryIO, start: int, size: int) -> None:
        self.fh = fh
        self.start = start
        self.size = size
        self.seek(0)

    def seek(self, pos: int) -> None:
        self.fh.seek(self.start + pos)
        self.left = self.size - pos

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if n is None or n < 0 or n > self.left:
            n = self.left
        data = self.fh.read(n)
        if not data:
            raise FormatError("archive member ends early")
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.fh.close()


class _Verified(HashingReader):
    """Hashes while reading; at EOF compares size and digest with the descriptor. With
    `threaded`, the hash runs beside the reader (layers: the bytes go on to decompression)."""

    def __init__(self, raw, name: str, digest: Digest | None, size: int | None, where: str,
                 threaded: bool = False):
        super().__init__(raw, digest.algorithm if digest else None, threaded=threaded)
        self.name = name
        self.digest = digest
        self.size = size
        self.where = where
        self.done = False

    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        if data:
            if self.size is not None and self.count > self.size:
                raise DigestMismatchError(f"blob {self.name} is larger than its descriptor says",
                                          file=self.where, entry=self.name, expected=self.size,
                                          actual=f">{self.size}")
        elif not self.done:
            self.done = True
            self.check()
        return data

    def check(self) -> None:
        if self.size is not None and self.count != self.size:
            raise DigestMismatchError(f"size of blob {self.name} does not match its descriptor",
                                      file=self.where, entry=self.name, expected=self.size,
                                      actual=self.count)
        if self.hash is not None:
            got = f"{self.digest.algorithm}:{self.hash.hexdigest()}"
            if got != str(self.digest):
                raise DigestMismatchError(f"digest of blob {self.name} does not match",
                                          file=self.where, entry=self.name,
                                          expected=str(self.digest), actual=got)

    def close(self) -> None:
        if isinstance(self.hash, ThreadedHash):
            self.hash.close()
        self.raw.close()


class Blobs:
    """Files of a layout or archive by relative path. The source owns the read limit: the
    transport builds it with `max_expand`, and readers ask it for decompressed streams
    (`open_decompressed`) rather than carrying the limit along."""

    where: str
    max_expand: int | None = DEFAULT_MAX_EXPAND

    def open_decompressed(self, raw, *, allowed: tuple[str, ...], what: str):
        """`(kind, stream)`: `raw`, one of this source's blobs, decompressed within the
        expansion limit."""
        return open_decompressed(raw, allowed=allowed, limit=self.max_expand, what=what)

    def open(self, rel: str):
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def size(self, rel: str) -> int | None:
        """The blob's size as stored, for progress when no descriptor gives it (docker's
        legacy layers); None where it cannot be told (the read reports the reason)."""
        return None

    def read_small(self, rel: str, limit: int, digest: Digest | None = None,
                   size: int | None = None) -> bytes:
        """Read a JSON-sized file whole, verifying it when a digest is given."""
        if size is not None and size > limit:
            raise FormatError(f"{rel} is {size} bytes, over the limit of {limit}",
                              file=self.where, entry=rel)
        fh = self.open_verified(rel, digest, size)
        try:
            data = fh.read(limit + 1)
            if len(data) > limit:
                raise FormatError(f"{rel} is over the limit of {limit} bytes", file=self.where,
                                  entry=rel)
            while fh.read(_CHUNK):
                pass
            return data
        finally:
            fh.close()

    def open_verified(self, rel: str, digest: Digest | None, size: int | None, *,
                      threaded: bool = False):
        return _Verified(self.open(rel), rel, digest, size, self.where, threaded)

    def verify(self, rel: str, digest: Digest | None, size: int | None) -> None:
        """Read a blob through and check it against its descriptor (raises on mismatch)."""
        fh = self.open_verified(rel, digest, size, threaded=True)
        try:
            while fh.read(_CHUNK):
                pass
        finally:
            fh.close()

    def close(self) -> None:
        pass

    def __enter__(self) -> "Blobs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def blob_path(digest: Digest) -> str:
    """`blobs/<alg>/<hex>`; `Digest.parse` already refused anything that could climb out."""
    return f"blobs/{digest.algorithm}/{digest.hex}"


class NotADirectoryInLayout(FormatError):
    """A folder of the layout (`blobs`, `blobs/sha256`) is a file or a device: the layout is
    malformed, which `exists` reports rather than answering "missing"."""


class DirBlobs(Blobs):
    def __init__(self, root: str, *, max_expand: int | None = DEFAULT_MAX_EXPAND) -> None:
        self.root = root
        self.where = root
        self.max_expand = max_expand

    def _path(self, rel: str) -> str:
        rel = normalize_path(rel, what="path")
        path = self.root
        parts = rel.split("/")
        for i, part in enumerate(parts):
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                raise FormatError(f"{rel} is missing", file=self.where, entry=rel) from None
            except OSError as exc:
                raise SourceUnreadableError(f"cannot read {rel}: {exc.strerror}",
                                            file=self.where, entry=rel) from None
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(f"{posixpath.relpath(path, self.root)} is a symlink; "
                                      "layouts are read without following links",
                                      file=self.where, entry=rel)
            if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                # a `blobs` that is a file: the layout is malformed, not merely missing a blob
                raise NotADirectoryInLayout(f"{'/'.join(parts[:i + 1])} is not a directory",
                                            file=self.where, entry=rel)
        return path

    def open(self, rel: str):
        path = self._path(rel)
        try:  # never blocks: a FIFO in place of a blob or index.json is refused, not waited on
            return open_regular(path, follow=False)
        except NotRegularFileError as exc:
            raise FormatError(f"{rel} {exc.strerror}", file=self.where, entry=rel) from None
        except OSError as exc:
            raise SourceUnreadableError(f"cannot read {rel}: {exc.strerror}", file=self.where,
                                        entry=rel) from None

    def exists(self, rel: str) -> bool:
        try:
            self._path(rel)
            return True
        except FormatError as exc:
            if isinstance(exc, (UnsafePathError, NotADirectoryInLayout)):
                raise
            return False

    def size(self, rel: str) -> int | None:
        try:
            st = os.stat(self._path(rel))
        except (AciociError, OSError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None


class TarBlobs(Blobs):
    """Members of a (possibly compressed) tar, indexed by gated name."""

    def __init__(self, path: str, *, max_expand: int | None) -> None:
        self.where = path
        self.max_expand = max_expand
        self._tmpdir = None
        self.members: dict[str, tuple[str, int, int, str]] = {}  # name -> (kind, start, size, link)
        try:
            fh = open_regular(path)
        except FileNotFoundError:
            raise SourceUnreadableError("no such file", file=path) from None
        except OSError as exc:
            raise SourceUnreadableError(f"cannot open: {exc.strerror}", file=path) from None
        try:
            kind, stream = open_decompressed(fh, allowed=("tar", "gzip", "bzip2", "xz", "zstd"),
                                             limit=max_expand, what="image archive")
            if kind != "tar":
                # the owner closes it (transports open sources as context managers); the
                # finalizer is the net for a caller that drops it unclosed, and for exit
                self._tmpdir, self._cleanup = owned_tempdir(self, "acioci-archive-")
                plain = os.path.join(self._tmpdir, "archive.tar")
                with open(plain, "wb") as out:
                    shutil.copyfileobj(stream, out, _CHUNK)
                fh.close()
                fh = open(plain, "rb")
                stream = fh
            else:
                fh.seek(0)
                stream = fh
            self.plain = plain if kind != "tar" else path  # (fh.name of an fd is a number)
            for entry in read_entries(stream, length=os.fstat(fh.fileno()).st_size):
                if entry.path in self.members:
                    raise FormatError("duplicate member", file=path, entry=entry.path)
                self.members[entry.path] = (entry.kind, entry.data.start, entry.size,
                                            entry.linkname)
        except AciociError as exc:
            self.close()
            raise exc.at(file=path)
        except BaseException:  # Ctrl-C while decompressing: the spool goes too
            self.close()
            raise
        finally:
            fh.close()

    def _resolve(self, rel: str, depth: int = 0) -> tuple[str, int, int]:
        rel = normalize_path(rel, what="path")
        if depth > 16:
            raise FormatError(f"too many levels of links at {rel}", file=self.where, entry=rel)
        got = self.members.get(rel)
        if got is None:
            raise FormatError(f"{rel} is missing", file=self.where, entry=rel)
        kind, start, size, link = got
        if kind == "file":
            return rel, start, size
        if kind == "symlink":
            if link.startswith("/"):
                raise UnsafePathError(f"{rel} is an absolute symlink", file=self.where, entry=rel)
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
            if joined.startswith("../") or joined == "..":
                raise UnsafePathError(f"{rel} links outside the archive", file=self.where,
                                      entry=rel)
            return self._resolve(joined, depth + 1)
        if kind == "hardlink":
            return self._resolve(link, depth + 1)
        raise FormatError(f"{rel} is a {kind}, not a file", file=self.where, entry=rel)

    def open(self, rel: str):
        _, start, size = self._resolve(rel)
        return _Limited(open(self.plain, "rb"), start, size)

    def exists(self, rel: str) -> bool:
        try:
            self._resolve(rel)
            return True
        except UnsafePathError:
            raise
        except FormatError:
            return False

    def size(self, rel: str) -> int | None:
        try:
            return self._resolve(rel)[2]
        except AciociError:
            return None

    def names(self) -> list[str]:
        return list(self.members)

    def close(self) -> None:
        if self._tmpdir:
            self._cleanup()
            self._tmpdir = None
