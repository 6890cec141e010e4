"""Manifests as registries serve them: the media types asked for, the size limit, the checks
that refuse schema 1 and bytes that do not match their digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .. import jsonio
from ..errors import DigestMismatchError, FormatError
from ..graph import Digest
from ..spec.mediatypes import INDEX_TYPES, MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1_TYPES = frozenset({"application/vnd.docker.distribution.manifest.v1+json",
                           "application/vnd.docker.distribution.manifest.v1+prettyjws"})
ACCEPT = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
MAX_MANIFEST = 4 << 20  # distribution refuses manifests over 4 MiB on push; so do we on pull


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry served it, verified against `digest`."""

    data: bytes
    media_type: str
    digest: str

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}

    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def media_type_of(data: bytes, content_type: str, where: str) -> str:
    """The manifest's media type: the header's, or the document's own when the header is
    generic (some registries send application/json). Schema 1 is refused. Parsed as the
    reader parses it (`jsonio`: UTF-8 only, bounded nesting, one error for any malformed
    document, never Python's RecursionError)."""
    doc = jsonio.loads(data, file=where, limit=len(data))
    inner = doc.get("mediaType") if isinstance(doc, dict) else None
    schema1 = content_type in SCHEMA1_TYPES or (
        isinstance(doc, dict) and doc.get("schemaVersion") == 1)
    if schema1:
        raise FormatError("Docker schema 1 manifests are not supported (deprecated, and not "
                          "content-addressable); push the image again with a current client",
                          file=where, actual=content_type or "schemaVersion 1")
    media_type = content_type if content_type in ACCEPT else inner
    if media_type not in MANIFEST_TYPES | INDEX_TYPES:
        raise FormatError("not an image manifest or index media type", file=where,
                          expected=" or ".join(ACCEPT), actual=content_type or inner)
    return media_type


def verify_bytes(data: bytes, want: str | None, where: str, what: str) -> str:
    """The digest of `data`; with `want`, in its algorithm, and it must match."""
    if want is None:
        return "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        parsed = Digest.parse(want)
        h = hashlib.new(parsed.algorithm)
    except (FormatError, ValueError):
        raise FormatError(f"unusable digest {want!r} for the {what}", file=where) from None
    h.update(data)
    got = f"{parsed.algorithm}:{h.hexdigest()}"
    if got != str(parsed):
        raise DigestMismatchError(f"{what} content does not match its digest", file=where,
                                  expected=str(parsed), actual=got)
    return got
