"""A blob uploaded while it is produced: the sink a layer's compressor writes into.

    upload = StreamedUpload(client, "apps/app")    # its thread opens the session (POST)
    encode_layer(layer, upload, "gzip")            # write(): hashed, queued, sent
    result = upload.commit()                        # PUT ?digest= (a duplicate: DELETE)

A layer's digest is known only once its last compressed byte exists, so a push that wants
the digest first must write the whole blob somewhere and read it back. Here the bytes go up
as they are compressed instead: one PATCH whose body is fed, with chunked transfer encoding,
from a queue by a thread of its own, so compression and upload overlap. The queue holds
`DEPTH` writes (the compressor's outputs, ~2 MiB each): memory stays bounded whatever the
blob's size, and a slow registry slows the compressor rather than filling memory. The
session is opened by that thread too, after the push's `first` check (is the tag taken?):
the first layer's encoding starts while the client imports `http.client`, pings, fetches a
token, HEADs the tag and POSTs, a handful of round trips to a remote registry; what the
queues hold meanwhile is the most it gets ahead.

Why one streamed PATCH and not the spec's chunked upload (a PATCH with `Content-Range` per
chunk): distribution 2.8 saves and reloads its hash state on every PATCH. Measured here on a
99 MB blob (`bench/registry_push.py`'s layer) into a local registry: streamed 0.8-1.05 s;
8 MiB chunks 1.25-1.4 s and ~40 MB more peak RSS (chunks held while they wait); 1 MiB chunks
3 s. Docker and containerd push the same way.

A registry that refuses a streamed PATCH (it wants a length first: 411, or another 4xx/5xx
that is not about credentials) raises `StreamRefused`; the bytes are gone by then, so the
caller encodes the layer again into a spool file and uploads that with its size known
(`push.push_image`), and spools every later blob of the push at once.

Duplicates are found after the fact: with the digest known at the end, a HEAD in the target
repository (present: the session is cancelled, nothing committed) and then a mount from each
of `mount_from` (mounted: cancelled too) come before the PUT. The bytes have moved by then;
what is saved is a second copy in the registry's store, and the report says "exists" or
"mounted" as for a blob whose digest was known first.
"""

from __future__ import annotations

import hashlib
import queue
import threading

from .auth import scope
from .client import BlobResult, RegistryClient
from .errors import AuthenticationError, RegistryError

DEPTH = 4   # writes waiting for the sender
SLICE = 256 << 10  # bytes per chunk of the PATCH body
REFUSES_STREAM = frozenset({400, 411, 415, 501})  # HTTP statuses that refuse a chunked PATCH
_STOP = None


class StreamRefused(RegistryError):
    """The registry would not take a blob without its size (see the module's docstring)."""


class StreamedUpload:
    """`write()` bytes in order, then `commit()` once, or `abort()`. One producer; the
    sending runs in a thread, whose errors are raised at the next `write()` or at
    `commit()`."""

    def __init__(self, client: RegistryClient, repo: str, *, mount_from=(),
                 depth: int | None = None, first=None) -> None:
        self.client = client
        self.first = first  # called by the sender before the session opens (`push.push_image`)
        self.repo = repo
        self.mount_from = tuple(r for r in mount_from if r != repo)
        self.scopes = (scope(repo, ("pull", "push")),) + tuple(
            scope(r, ("pull",)) for r in self.mount_from)
        self.hash = hashlib.sha256()
        self.count = 0  # bytes taken from the queue (all that was written, after commit)
        self.sent = 0   # bytes handed to the connection
        self._q: queue.Queue = queue.Queue(maxsize=depth or DEPTH)
        self._error: BaseException | None = None
        self._finished = False
        self.location: str | None = None  # the session, once the sender has opened it
        self._thread = threading.Thread(target=self._send, daemon=True, name="acioci-upload")
        self._thread.start()

    # -- the producer's side ---------------------------------------------------------------

    def write(self, data) -> None:
        data = bytes(data)
        if data:
            self._put(data)  # hashed and counted by the sender, off the compressor's thread

    def _put(self, item) -> None:
        """Into the queue; never blocks forever on a sender that stopped."""
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    # the sender may have set its error just before it ended (TagExists, a
                    # refusal): that is what to raise, not a bare stop
                    raise self._error or RegistryError("the upload stopped") from None

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()

    def commit(self) -> BlobResult:
        """Finish the PATCH and close the session under the digest; a blob the repository
        already has, or can mount, is not committed a second time."""
        try:
            self._put(_STOP)
            self._thread.join()
            self._finished = True
            if self._error is not None:
                raise self._error
            digest = self.digest()
            if self.client.blob_size(self.repo, digest, scopes=self.scopes) is not None:
                self._cancel()
                return BlobResult(digest, self.count, "exists")
            if self.client.try_mount(self.repo, digest, self.mount_from, self.scopes):
                self._cancel()
                return BlobResult(digest, self.count, "mounted")
            self.client.commit_upload(self.location, digest, self.scopes)
            self.location = None
            return BlobResult(digest, self.count, "uploaded")
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop sending and cancel the session (best effort: the failure on its way up is the
        one to report). A sender inside a request is waited for up to 5 s, then left to its
        timeout (a daemon thread) and the session to the registry's purge."""
        if not self._finished:
            self._finished = True
            self._error = self._error or RegistryError("the upload was abandoned")
            self._drain()
            try:
                self._q.put_nowait(_STOP)
            except queue.Full:
                pass
            self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self._cancel()

    # -- the sender's side -----------------------------------------------------------------

    def _chunks(self):
        while (item := self._q.get()) is not _STOP:
            if self._error is not None:
                return  # abandoned: end the body; the session is cancelled
            self.hash.update(item)
            self.count += len(item)
            view = memoryview(item)
            for off in range(0, len(view), SLICE):  # the connection copies each one it sends
                piece = view[off:off + SLICE]
                yield piece
                self.sent += len(piece)
                if self.client.progress:
                    self.client.progress(len(piece))

    def _send(self) -> None:
        try:
            if self.first is not None:
                self.first()
            if self._error is not None:
                return  # abandoned before there was a session to open
            self.location = self.client.start_upload(self.repo, self.scopes)
        except BaseException as exc:  # not about the streamed form: reported as it is
            self._error = exc
            self._drain()
            return
        if self._error is not None:
            return  # abandoned while the session opened: abort() cancels it
        try:
            self.location = self.client.patch_upload(self.location, self._chunks(), self.scopes,
                                                     lambda: self.sent)
        except AuthenticationError as exc:
            self._error = exc
        except RegistryError as exc:  # a status: the registry answered
            # only a refusal of the streamed form itself is worth a spooled retry: Length
            # Required, and what servers answer to a chunked body they do not take; a 404, a
            # 5xx (after its retries) or a quota is the error to report, at once
            self._error = StreamRefused(exc.message, status=exc.status, file=exc.file) \
                if exc.status in REFUSES_STREAM else exc
        except BaseException as exc:  # handed to the producer
            self._error = exc
        if self._error is not None:
            self._drain()  # unblock a producer waiting on a full queue

    def _drain(self) -> None:
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass

    def _cancel(self) -> None:
        if self.location is not None:
            location, self.location = self.location, None
            self.client.cancel_upload(location, self.scopes)
