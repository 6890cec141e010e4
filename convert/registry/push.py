"""Push an image that is already an OCI layout (or any `Blobs`) to a registry.

Order, as skopeo does it: for each manifest, its config and layers first (a HEAD; then a
cross-repository mount from `mount_from`; then a streamed upload), the manifest after them,
and an index only after all of its children, so a tag never names content the registry does
not have. Blobs are read from the layout only when the registry lacks them, and each one is
checked against its descriptor before the upload is committed. A non-distributable layer
(a descriptor with `urls`) that the layout lacks is skipped, as skopeo skips foreign layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import jsonio
from ..errors import FormatError, UsageError
from ..graph import Digest
from ..spec.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from ..readers.blobs import Blobs, DirBlobs, blob_path
from .client import MAX_MANIFEST, BlobResult, RegistryClient, connect
from .reference import Reference, parse

REF_NAME = "org.opencontainers.image.ref.name"
MAX_DEPTH = 16


@dataclass
class PushResult:
    reference: str  # docker://registry/repo@digest
    digest: str
    media_type: str
    size: int
    blobs: list[BlobResult] = field(default_factory=list)


def push_layout(source: str | Blobs, dest: str | Reference, *, ref: str | None = None,
                client: RegistryClient | None = None, mount_from: tuple[str, ...] = (),
                **client_options) -> PushResult:
    """Push one image of a layout to `dest` (`docker://host/repo:tag`). `ref` picks the
    index.json entry by its `ref.name`; without it, the only entry, or the one named like the
    destination's tag. `client` is reused (and left open) when given; otherwise one is made
    from `client_options` (see `RegistryClient`)."""
    dest = parse(dest) if isinstance(dest, str) else dest
    blobs = DirBlobs(source) if isinstance(source, str) else source
    own = client is None
    client = client or connect(dest, **client_options)
    try:
        desc = _choose(blobs, ref, dest.tag)
        result = PushResult("", "", "", 0)
        digest, media_type, size = _push(blobs, client, dest.repository, desc, dest.reference,
                                         tuple(mount_from), result, ())
        result.reference = f"docker://{dest.name}@{digest}"
        result.digest, result.media_type, result.size = digest, media_type, size
        return result
    finally:
        if own:
            client.close()
        if isinstance(source, str):
            blobs.close()


def _choose(blobs: Blobs, ref: str | None, tag: str | None) -> dict:
    index = jsonio.loads(blobs.read_small("index.json", jsonio.MAX_JSON_BYTES),
                         file=blobs.where, entry="index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise FormatError("index.json lists no manifests", file=blobs.where, entry="index.json")
    names = [((e.get("annotations") or {}).get(REF_NAME) if isinstance(e, dict) else None)
             for e in entries]
    if ref is not None:
        picked = [e for e, n in zip(entries, names) if n == ref]
        if not picked:
            raise UsageError(f"no image with ref {ref!r} in the layout; refs: "
                             + ", ".join(str(n) for n in names), file=blobs.where)
        return picked[0]
    if len(entries) == 1:
        return entries[0]
    picked = [e for e, n in zip(entries, names) if tag is not None and n == tag]
    if len(picked) == 1:
        return picked[0]
    raise UsageError(f"the layout holds {len(entries)} images; choose one with ref (refs: "
                     + ", ".join(str(n) for n in names) + ")", file=blobs.where)


def _push(blobs: Blobs, client: RegistryClient, repo: str, desc: dict, reference: str,
          mount_from: tuple[str, ...], result: PushResult,
          seen: tuple[str, ...]) -> tuple[str, str, int]:
    digest = Digest.parse(desc.get("digest"))
    if str(digest) in seen or len(seen) >= MAX_DEPTH:
        raise FormatError(f"index {digest} refers back to itself (cycle)", file=blobs.where,
                          entry=blob_path(digest))
    data = blobs.read_small(blob_path(digest), MAX_MANIFEST, digest, desc.get("size"))
    doc = jsonio.loads(data, file=blobs.where, entry=blob_path(digest))
    media_type = desc.get("mediaType") or (doc.get("mediaType") if isinstance(doc, dict) else None)
    if media_type in INDEX_TYPES:
        for child in doc.get("manifests") or []:
            if child.get("mediaType") in MANIFEST_TYPES | INDEX_TYPES:
                _push(blobs, client, repo, child, child["digest"], mount_from, result,
                      seen + (str(digest),))
    elif media_type in MANIFEST_TYPES:
        for item in [doc.get("config") or {}] + list(doc.get("layers") or []):
            _push_blob(blobs, client, repo, item, mount_from, result)
    else:
        raise FormatError("not a manifest or index media type", file=blobs.where,
                          entry=blob_path(digest), actual=media_type)
    pushed = client.put_manifest(repo, reference, data, media_type)
    return pushed, media_type, len(data)


def _push_blob(blobs: Blobs, client: RegistryClient, repo: str, desc: dict,
               mount_from: tuple[str, ...], result: PushResult) -> None:
    digest = Digest.parse(desc.get("digest"))
    rel = blob_path(digest)
    if desc.get("urls") and not blobs.exists(rel):
        return  # a foreign layer: it stays where its urls point
    size = desc.get("size")
    result.blobs.append(client.upload_blob(
        repo, lambda: blobs.open(rel), digest=str(digest),
        size=size if isinstance(size, int) else None, mount_from=mount_from))
