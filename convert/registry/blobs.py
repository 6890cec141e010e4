"""A registry image seen as an OCI layout, so the existing OCI reader reads it unchanged.

`RegistryBlobs` implements `convert.readers.blobs.Blobs`:
- `oci-layout` and `index.json` are synthesised. index.json holds one descriptor: the
  manifest or index the reference resolves to, annotated with `ref.name` = the tag (and, with
  `full_name`, `io.containerd.image.name` = `registry/repo:tag`, from which the reader takes
  the image's name).
- `blobs/<alg>/<hex>` is a manifest GET (by digest) for digests known to be manifests (the
  resolved one, and the children of every index served), else a blob GET; a digest that is
  neither known nor a blob is tried as a manifest before it is reported missing.

Manifests are small and kept in memory once fetched (the reader reads each more than once);
blobs are streamed and verified while read, never held. With `spool` (a conversion, whose
squash reads every layer twice: an index pass, then the data), the first read of a blob also
copies it into a temporary directory, and once that read reached the end and the digest held,
later reads come from the copy (whose digest was checked on the way in; its size is checked
against each descriptor that names it): each blob crosses the network once, as docker2aci and
skopeo fetch them. The directory is
removed on `close()` (or when the object is garbage). `validate` does not spool: nothing
stored.
"""

from __future__ import annotations

import io
import json
import os

from ..errors import FormatError
from ..graph import Digest
from ..options import DEFAULT_MAX_EXPAND
from ..spec.mediatypes import INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX
from ..readers.blobs import Blobs
from .client import RegistryClient
from .manifests import Manifest
from .errors import NotFoundError
from .reference import Reference

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


class RegistryBlobs(Blobs):
    def __init__(self, client: RegistryClient, ref: Reference, *, full_name: bool = True,
                 owns_client: bool = True, max_expand: int | None = DEFAULT_MAX_EXPAND,
                 spool: bool = False) -> None:
        self.client = client
        self.max_expand = max_expand
        self.ref = ref
        self.repo = ref.repository
        self.where = str(ref)
        self.full_name = full_name
        self.owns_client = owns_client
        self._manifests: dict[str, Manifest] = {}
        self._manifest_digests: set[str] = set()
        self._root: Manifest | None = None
        self.spool = spool
        self._spool_dir: str | None = None
        self._spool_cleanup = None
        self._spooled: dict[str, str] = {}  # digest -> a verified local copy

    def root(self) -> Manifest:
        """The manifest or index the reference names (fetched once)."""
        if self._root is None:
            self._root = self._fetch_manifest(self.ref.reference)
        return self._root

    def index_json(self) -> bytes:
        desc = self.root().descriptor()
        annotations = {}
        if self.ref.tag:
            annotations[REF_NAME] = self.ref.tag
            if self.full_name:
                annotations[CONTAINERD_NAME] = f"{self.ref.name}:{self.ref.tag}"
        elif self.full_name:
            annotations[CONTAINERD_NAME] = f"{self.ref.name}@{self.ref.digest}"
        if annotations:
            desc["annotations"] = annotations
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc]}
        return json.dumps(doc, separators=(",", ":")).encode()

    def _fetch_manifest(self, reference: str) -> Manifest:
        manifest = self.client.get_manifest(self.repo, reference)
        self._manifests[manifest.digest] = manifest
        if manifest.is_index():
            try:
                doc = json.loads(manifest.data)
                children = doc.get("manifests") or []
                for child in children:
                    if child.get("mediaType") in MANIFEST_TYPES | INDEX_TYPES:
                        self._manifest_digests.add(str(child.get("digest")))
            except (ValueError, AttributeError, TypeError):
                pass  # malformed: the reader reports it when it parses the same bytes
        return manifest

    @staticmethod
    def _digest(rel: str) -> str | None:
        parts = rel.split("/")
        if len(parts) != 3 or parts[0] != "blobs":
            return None
        try:
            return str(Digest.parse(f"{parts[1]}:{parts[2]}"))
        except FormatError:
            return None

    def _is_manifest(self, digest: str) -> bool:
        return digest in self._manifests or digest in self._manifest_digests

    def _missing(self, rel: str) -> FormatError:
        return FormatError(f"{rel} is missing", file=self.where, entry=rel)

    def _manifest_bytes(self, rel: str, digest: str) -> io.BytesIO:
        if digest not in self._manifests:
            try:
                self._fetch_manifest(digest)
            except NotFoundError:
                raise self._missing(rel) from None
        return io.BytesIO(self._manifests[digest].data)

    def open(self, rel: str):
        if rel == "oci-layout":
            return io.BytesIO(_LAYOUT)
        if rel == "index.json":
            return io.BytesIO(self.index_json())
        digest = self._digest(rel)
        if digest is None:
            raise self._missing(rel)
        if self._is_manifest(digest):
            return self._manifest_bytes(rel, digest)
        if digest in self._spooled:
            return open(self._spooled[digest], "rb")
        try:
            stream = self.client.open_blob(self.repo, digest)
        except NotFoundError:
            return self._manifest_bytes(rel, digest)
        if not self.spool:
            return stream
        from .streams import SpoolingStream

        path = os.path.join(self._spool_root(), digest.replace(":", "-"))
        return SpoolingStream(stream, path, lambda done: self._spooled.__setitem__(digest, done))

    def _spool_root(self) -> str:
        if self._spool_dir is None:
            from ..atomic import owned_tempdir

            self._spool_dir, self._spool_cleanup = owned_tempdir(self, "acioci-pull-")
        return self._spool_dir

    def open_verified(self, rel: str, digest: Digest | None, size: int | None, *,
                      threaded: bool = False):
        name = self._digest(rel)
        spooled = self._spooled.get(name or "")
        if spooled and str(digest) == name and (size is None or os.path.getsize(spooled) == size):
            return open(spooled, "rb")  # hashed against `name` on its way in: not again
        if name is None or digest is None or str(digest) != name or self._is_manifest(name) \
                or spooled:
            return super().open_verified(rel, digest, size, threaded=threaded)
        try:  # the stream checks size and digest itself: no second hash
            return self.client.open_blob(self.repo, name, size, threaded=threaded)
        except NotFoundError:
            return super().open_verified(rel, digest, size, threaded=threaded)

    def size(self, rel: str) -> int | None:
        if rel == "oci-layout":
            return len(_LAYOUT)
        if rel == "index.json":
            return len(self.index_json())
        digest = self._digest(rel)
        if digest is None:
            return None
        if digest in self._manifests:
            return len(self._manifests[digest].data)
        if not self._is_manifest(digest):
            size = self.client.blob_size(self.repo, digest)
            if size is not None:
                return size if size >= 0 else None
        desc = self.client.head_manifest(self.repo, digest)
        return desc.get("size") if desc else None

    def exists(self, rel: str) -> bool:
        if rel in ("oci-layout", "index.json"):
            return True
        digest = self._digest(rel)
        if digest is None:
            return False
        if digest in self._manifests:
            return True
        if not self._is_manifest(digest) and self.client.blob_size(self.repo, digest) is not None:
            return True
        return self.client.head_manifest(self.repo, digest) is not None

    def close(self) -> None:
        if self._spool_cleanup is not None:
            self._spool_cleanup()
            self._spooled.clear()
        if self.owns_client:
            self.client.close()


def open_source(text: str | Reference, *, full_name: bool = True, spool: bool = False,
                max_expand: int | None = DEFAULT_MAX_EXPAND, **options) -> RegistryBlobs:
    """`RegistryBlobs` for a `docker://` reference, its layers decompressing within
    `max_expand`; options as for `RegistryClient`."""
    from .client import connect
    from .reference import parse

    ref = parse(text) if isinstance(text, str) else text
    return RegistryBlobs(connect(ref, **options), ref, full_name=full_name, spool=spool,
                         max_expand=max_expand)
