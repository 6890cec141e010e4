"""The byte streams of blob transfers: a download checked as it arrives (and, for a source
read twice, copied to disk on the way), an upload body hashed as it leaves. None ever holds
more than one chunk."""

from __future__ import annotations

import hashlib
from typing import Callable

from ..errors import DigestMismatchError, UsageError
from ..graph import Digest
from . import redact
from .http import read_failure

CHUNK = 1 << 20


class BlobStream:
    """A blob's bytes as they arrive: counted, hashed, and checked at EOF (and as soon as
    they exceed the expected size). Errors name the URL, never credentials."""

    def __init__(self, resp, url: str, digest: str, size: int | None, *,
                 progress: Callable[[int], None] | None = None, threaded: bool = False) -> None:
        self.resp = resp
        self.progress = progress
        self.url = url
        self.digest = digest
        self.size = size
        self.count = 0
        h = hashlib.new(Digest.parse(digest).algorithm)
        if threaded:
            from ..compression import ThreadedHash

            h = ThreadedHash(h)
        self.hash = h
        self.done = False      # EOF reached
        self.verified = False  # ... and the bytes were the blob's

    def read(self, n: int = -1) -> bytes:
        if self.done:
            return b""
        try:
            data = self.resp.read(None if n is None or n < 0 else n)
        except OSError as exc:  # the transport's failures are all OSErrors
            self.close()
            raise read_failure(exc, self.url, self.count, self.size) from None
        if data:
            self.count += len(data)
            self.hash.update(data)
            if self.progress:
                self.progress(len(data))
            if self.size is not None and self.count > self.size:
                self.close()
                raise DigestMismatchError(f"blob {self.digest} is larger than expected",
                                          file=redact.url(self.url), entry=self.digest,
                                          expected=self.size, actual=f"> {self.size}")
            if n is None or n < 0:
                self._finish()
            return data
        self._finish()
        return b""

    def _finish(self) -> None:
        self.done = True
        got = f"{Digest.parse(self.digest).algorithm}:{self.hash.hexdigest()}"
        self.close()
        if self.size is not None and self.count != self.size:
            raise DigestMismatchError(f"blob {self.digest} is shorter than expected",
                                      file=redact.url(self.url), entry=self.digest,
                                      expected=self.size, actual=self.count)
        if got != self.digest:
            raise DigestMismatchError(f"the registry served other content for {self.digest}",
                                      file=redact.url(self.url), entry=self.digest,
                                      expected=self.digest, actual=got)
        self.verified = True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if hasattr(self.hash, "close"):
            self.hash.close()
        self.resp.close()

    def __enter__(self) -> "BlobStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class UploadBody:
    """An upload's body: iterated in chunks, hashed and counted on the way out. Without a
    length it is sent chunked (`SizedUploadBody` has one). A source longer than its stated
    size is stopped, not sent."""

    def __init__(self, source, algorithm: str, size: int | None,
                 progress: Callable[[int], None] | None, *, what: str) -> None:
        if not hasattr(source, "read") and not hasattr(source, "__iter__"):
            raise UsageError("an upload source must be a binary stream or an iterable of bytes")
        self.source = source
        self.hash = hashlib.new(algorithm)
        self.algorithm = algorithm
        self.size = size
        self.progress = progress
        self.what = what
        self.count = 0

    def _chunks(self):
        if hasattr(self.source, "read"):
            while chunk := self.source.read(CHUNK):
                yield chunk
        else:
            for chunk in self.source:
                if chunk:
                    yield bytes(chunk)

    def __iter__(self):
        for chunk in self._chunks():
            self.count += len(chunk)
            if self.size is not None and self.count > self.size:
                raise DigestMismatchError(f"{self.what}: the source has more than its stated "
                                          f"{self.size} bytes", entry=self.what,
                                          expected=self.size, actual=f"> {self.size}")
            self.hash.update(chunk)
            if self.progress:
                self.progress(len(chunk))
            yield chunk
        if self.size is not None and self.count != self.size:
            raise DigestMismatchError(f"{self.what}: the source ended before its stated size",
                                      entry=self.what, expected=self.size, actual=self.count)

    def drain(self) -> None:
        for _ in self:
            pass

    def digest(self) -> str:
        return f"{self.algorithm}:{self.hash.hexdigest()}"


class SizedUploadBody(UploadBody):
    """An upload body of known size: its `len()` is the request's Content-Length."""

    def __len__(self) -> int:
        return self.size


class SpoolingStream:
    """A blob download copied into a local file as it is read, so a second pass over the
    blob (squash reads each layer twice: an index of headers, then the data) reads the disk
    and not the registry. The copy counts only once the download was read to its end and
    verified (`BlobStream` checks digest and size at EOF): then `keep(path)` is called. A
    reader that stops early (a tar's end marker comes before the gzip trailer and the record
    padding) is followed up to `DRAIN` more bytes at close; a blob left unfinished beyond that
    is not kept, and its partial copy is removed.

    `seek` works as on a file: back over what was read (from the copy), forward by fetching
    (an index pass over an uncompressed layer skips file data by seeking)."""

    DRAIN = 1 << 20

    def __init__(self, stream: BlobStream, path: str, keep: Callable[[str], None]) -> None:
        self.stream = stream
        self.path = path
        self.keep = keep
        self.out = open(path + ".part", "wb")
        self.back = None  # a reader of the copy, once the reader went back
        self.pos = 0      # the reader's position
        self.have = 0     # bytes fetched into the copy
        self.closed = False

    def _fetch(self, n: int) -> bytes:
        data = self.stream.read(n)
        self.out.write(data)
        self.have += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        if self.pos < self.have:
            if self.back is None:
                self.back = open(self.path + ".part", "rb")
            self.out.flush()
            self.back.seek(self.pos)
            data = self.back.read(min(n, self.have - self.pos))
        else:
            data = self._fetch(n)
        self.pos += len(data)
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("only absolute seeks")
        while self.have < pos and self._fetch(min(CHUNK, pos - self.have)):
            pass
        self.pos = pos
        return pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        import os

        complete = False
        try:
            left = self.DRAIN
            while not self.stream.done and left > 0:
                left -= len(self._fetch(min(CHUNK, left)))
            complete = self.stream.verified
        except Exception:  # a bad blob: the pass that verifies reports it, from the registry
            complete = False
        finally:
            self.out.close()
            if self.back is not None:
                self.back.close()
            self.stream.close()
        if complete:
            os.replace(self.path + ".part", self.path)
            self.keep(self.path)
        else:
            os.unlink(self.path + ".part")

    def __enter__(self) -> "SpoolingStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
