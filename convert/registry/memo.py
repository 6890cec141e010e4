"""The layer memo: a layer's blob known before it is encoded, when this batch made it before.

A pushed layer is encoded while it streams into the registry (`upload.py`), so its digest is
known only once its bytes have moved; a HEAD or a mount at that point saves a second copy in
the registry, not the work. In a batch that pushes a store of ACI chains, a base ACI under 50
apps would be read, encoded and sent 50 times. So each push writes down, for every layer it
encoded from one whole ACI file, what the encoding gave (the descriptor, the diff_id, the ACI's
image ID); a later push of the same batch that is about to encode the same layer looks it up
first, HEADs the digest in its repository, mounts it from a repository that has it, and reads
nothing of the file. Only if both fail is the layer encoded and sent as before.

The memo lives in the batch's mount ledger (`transports/docker.Ledger`), as lines of their
own, and dies with it: a single `convert` has none, and nothing is kept in $HOME.

Why the key is what it is: it must name everything the layer's bytes depend on, or a hit
would put a wrong blob in a manifest.
- The file: (realpath, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns). Within a batch
  that is the file's content: a rewrite in place changes mtime and ctime, a replacement by
  rename changes the inode (or, if the number is reused, ctime). If the reader scanned the
  file, its (dev, ino, size, mtime, ctime) must still be the scanned one, else no key: the
  rendering was planned from that scan. After an encoding, the memo is written only if the
  file's identity is still the one the key was made from, so the bytes read are those of
  the key.
- The rendering: only a layer that holds all of its ACI's entries as the ACI alone renders
  them has a key (`Layer.whole_file`, kept by `render` only then). That layer is the same
  blob alone and as the base of any chain that keeps all of its entries (issue 15's layer
  reuse), so one key serves both. A pathWhitelist above it, an upper image's file over one
  of its own, a hardlink rewritten, a different set of synthesised parents: `render` leaves
  `whole_file` None and the layer is encoded as always. A squashed layer has no key.
- The encoding: the compression, its libraries and levels (`compression.encoder_id`).
- The code: `FORMAT` (raise it when the tar writer or the rendering changes a layer's
  bytes) and the acioci version, so a ledger line is never read by other code.
The key is hashed (a path may hold any byte but NUL); the value is JSON.

Two pushes at once (`--jobs 2`) that both miss the memo for one key would both encode the
layer. So before encoding, a push claims the key: a file beside the ledger made with O_EXCL,
holding its PID (`obtain`). The push that holds the claim encodes the layer and publishes its
memo line and holder line as soon as the blob is in (not when its whole push is done), then
drops the claim; the other waits, up to `CLAIM_WAIT` seconds, for that line and then mounts.
A claim whose process is gone is stale and taken over; a claim that is dropped without a line
(that push failed) is taken by the next who wants it; a wait that runs out encodes. Taking
over a stale claim is best effort: two pushes that do it at the same moment may both
encode, which costs what it costs without claims (the second finds the blob at the end).

The value is what the manifest and config need from the layer pass and nothing else has:
digest, size, mediaType, diff_id, and the ACI's image ID, which a one-pass read computes only
while it streams the layer (a `Pending` in the layer's annotation and history); on a hit it
is set from the memo, and a hit is refused if the image ID the reader knows differs, or if it
is pending and the memo has none.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass

from .. import __version__
from ..compression import encoder_id
from ..errors import FormatError
from ..graph import Digest, Layer, Pending, WrittenBlob
from ..spec.mediatypes import OCI_LAYER
from ..spec.vocabulary import ANN_IMAGE_ID

FORMAT = 1
CLAIM_WAIT = 300.0  # seconds a push waits for another's claimed layer before encoding it
POLL = 0.1
STALE_EMPTY = 5.0   # a claim file still empty after this long lost its writer


@dataclass(frozen=True)
class Key:
    text: str        # what the ledger stores: the hex SHA-256 of the key's parts
    identity: tuple  # (real path, dev, ino, size, mtime_ns, ctime_ns) when the key was made
    opened: str      # the path the reader opens (a symlink's target may change under it)

    @property
    def size(self) -> int:
        """The file's size: the source bytes a skipped layer counts as read (`meter`)."""
        return self.identity[3]

    def unchanged(self) -> bool:
        """The file is still the one the key was made from, and still the one the reader's
        path leads to (a symlink pointed elsewhere between the key and the read would
        otherwise record another file's blob under this key)."""
        return os.path.realpath(self.opened) == self.identity[0] and \
            _identity(self.identity[0]) == self.identity


def _identity(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def key(layer: Layer, compression: str) -> Key | None:
    """The layer's memo key, or None when it has none (see the module's docstring)."""
    if layer.whole_file is None:
        return None
    path, seen = layer.whole_file
    identity = _identity(os.path.realpath(path))
    if identity is None:
        return None
    if seen is not None and tuple(identity[1:6]) != tuple(seen):
        return None  # not the file the reader scanned: the rendering says nothing about it
    parts = ["acioci-layer-memo", FORMAT, __version__, "aci-whole", *identity,
             encoder_id(compression)]
    text = hashlib.sha256(json.dumps(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return Key(text, identity, path)


def _image_ids(layer: Layer) -> list:
    """The layer's image ID values (strings, or `Pending` until a stream sets them)."""
    out = [v for k, v in layer.annotations if k == ANN_IMAGE_ID]
    if layer.history is not None and isinstance(layer.history.comment, Pending):
        out.append(layer.history.comment)
    return out


def _known(value) -> str | None:
    return value.known() if isinstance(value, Pending) else value


def value(written: WrittenBlob, layer: Layer) -> dict:
    """What a push records once it has encoded `layer` (its stream has ended)."""
    ids = {_known(v) for v in _image_ids(layer)} - {None}
    return {"digest": str(written.digest), "size": written.size,
            "mediaType": written.media_type, "diff_id": str(written.diff_id),
            "image_id": ids.pop() if len(ids) == 1 else None}


def reusable(found: dict | None, layer: Layer, compression: str) -> WrittenBlob | None:
    """The written blob a memo line promises for `layer`, if it can stand in for encoding it;
    None for no line, a malformed one, another media type, or an image ID that the line
    lacks or contradicts."""
    if not isinstance(found, dict):
        return None
    try:
        written = WrittenBlob(digest=Digest.parse(found["digest"]), size=int(found["size"]),
                              media_type=found["mediaType"],
                              diff_id=Digest.parse(found["diff_id"]))
    except (KeyError, TypeError, ValueError, FormatError):
        return None
    if written.media_type != OCI_LAYER.get(compression) or written.size < 0:
        return None
    memo_id = found.get("image_id")
    for v in _image_ids(layer):
        have = _known(v)
        if (have is None and not isinstance(memo_id, str)) or \
                (have is not None and memo_id is not None and have != memo_id):
            return None
    return written


def settle(layer: Layer, found: dict) -> None:
    """A skipped layer's pending image ID, from its memo line (`reusable` said it has one)."""
    for v in _image_ids(layer):
        if isinstance(v, Pending) and v.known() is None:
            v.set(found["image_id"])


class Claim:
    """This push's claim on encoding a layer (`obtain`)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def release(self) -> None:
        try:
            os.remove(self.path)
        except OSError:
            pass


def obtain(memo, key: str, *, wait: float | None = None) -> tuple[dict | None, Claim | None]:
    """Before encoding the layer of `key`: (the memo's value, None) if the memo knows it, or
    if another push that claimed it publishes it within `wait`; (None, a Claim) if this push
    is to encode it; (None, None) to encode it without a claim (the wait ran out, or no claim
    file can be made). See the module's docstring."""
    deadline = time.monotonic() + (CLAIM_WAIT if wait is None else wait)
    path = memo.claim_path(key)
    while True:
        found = memo.lookup(key)
        if found is not None or path is None:
            return found, None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if _stale(path):
                Claim(path).release()
                continue
            if time.monotonic() >= deadline:
                return None, None
            time.sleep(POLL)
            continue
        except OSError:
            return None, None
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
        claim = Claim(path)
        found = memo.lookup(key)  # published between the look and the claim
        if found is not None:
            claim.release()
            return found, None
        return None, claim


def _stale(path: str) -> bool:
    """The claim's process is gone (or it never wrote its PID and a while has passed). Opened
    without following a link or waiting on a FIFO: anything but a regular file is never
    stale, so a push waits it out (`CLAIM_WAIT`) and then encodes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # released meanwhile (the next try claims it), or a link
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False
        text = os.read(fd, 32)
    finally:
        os.close(fd)
    try:
        pid = int(text)
    except ValueError:
        return time.time() - st.st_mtime > STALE_EMPTY
    if pid <= 0:  # kill(0) and kill(-N) would ask about process groups
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False
