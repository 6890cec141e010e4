"""Push an image to a registry: a graph image as it is converted (`push_image`), or one that
is already an OCI layout or any `Blobs` (`push_layout`).

`push_image` writes no layout: each layer goes up while it is encoded
(`upload.StreamedUpload`; a duplicate is found by its digest after the fact), through the same
pipeline and the same documents as the layout writer's (`writers.oci.encode_layer`,
`config_document`, `manifest_document`), so the manifest digest is the one `convert ...
oci:DIR` gives. Layers first, in order; then the config (its bytes are known up front: HEAD,
mount, upload); the manifest last, only when every blob is in, so a push that fails half-way
leaves no tag. A registry that refuses streamed uploads gets each layer from a spool file.
In a batch, a layer this batch encoded before (the same whole ACI file, the same encoding) is
looked up in the layer memo first (`memo.py`): its digest is HEADed and mounted, and the
layer is not read at all unless the registry has lost the blob.

`push_layout`'s order, as skopeo does it: for each manifest, its config and layers first (a
HEAD; then a cross-repository mount from `mount_from`; then a streamed upload), the manifest
after them, and an index only after all of its children, so a tag never names content the
registry does not have. Blobs are read from the layout only when the registry lacks them, and
each one is checked against its descriptor before the upload is committed. A non-distributable
layer (a descriptor with `urls`) that the layout lacks is skipped, as skopeo skips foreign
layers.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

from .. import jsonio
from ..errors import FormatError, UsageError
from ..graph import Digest, Image, Platform, WrittenBlob, settle
from ..spec.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from ..readers.blobs import Blobs, DirBlobs, blob_path
from .client import MAX_MANIFEST, BlobResult, RegistryClient, connect
from .reference import Reference, parse

REF_NAME = "org.opencontainers.image.ref.name"
MAX_DEPTH = 16


class TagExists(Exception):
    """Raised by a push's `first` check: the destination's tag names a manifest already
    (`have`: what `RegistryClient.head_manifest` said), which the caller compares first."""

    def __init__(self, have: dict) -> None:
        super().__init__("the tag exists")
        self.have = have


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


def push_image(image: Image, dest: str | Reference, *, compression: str = "gzip",
               platform: Platform | None = None, tag: str | None = None,
               mount_from: tuple[str, ...] = (), client: RegistryClient | None = None,
               memo=None, first=None, **client_options):
    """Encode `image` (prepared for OCI: rendered, squashed as asked) straight into `dest`.
    Returns (the `writers.oci.OciResult` a layout write would have, with `path` the
    destination; the `PushResult`). `tag` is only the result's ref.name, as for a layout; the
    registry's tag is the destination's. `memo` (a batch's ledger: `lookup(key)` gives a
    value or None, `claim_path(key)` where a claim on encoding a layer goes, `publish(repo,
    digest, key, value)` records at once) names layers made before: such a layer is found by
    HEAD or mounted without being read (`memo.py`). A layer this push encoded is published
    to it as soon as its blob is in.

    `first`, if given, is called once before anything is sent, and may raise to stop the push
    (`TagExists`): for a first layer that is streamed, it runs in the upload's thread while
    the layer is being encoded, so a check the push depends on (and the client's first
    request, which imports the HTTP library) costs no time before encoding starts. What was
    encoded by then is dropped."""
    from ..spec import schemas
    from ..spec.mediatypes import OCI_MANIFEST
    from ..writers import oci as oci_writer
    from . import memo as layer_memo

    dest = parse(dest) if isinstance(dest, str) else dest
    platform, tag = oci_writer.checked(image, compression, platform, tag)
    own = client is None
    client = client or connect(dest, **client_options)
    repo, result = dest.repository, PushResult("", "", "", 0)
    try:
        written: list[WrittenBlob] = []
        spool = False  # the registry refused a streamed upload: spool the rest
        for layer in image.layers:
            key = layer_memo.key(layer, compression) if memo is not None else None
            found, claim = layer_memo.obtain(memo, key.text) if key else (None, None)
            try:
                if first is not None and found is not None:  # no upload thread to run it
                    check, first = first, None
                    check()
                if found is not None:
                    reused = _reuse(client, repo, layer, found, compression, mount_from,
                                    key.size)
                    if reused is not None:
                        result.blobs.append(reused[0])
                        written.append(reused[1])
                        continue
                pushed, blob, spool = _encode(client, repo, layer, compression, mount_from,
                                              spool, first)
                first = None
                result.blobs.append(pushed)
                written.append(blob)
                if key is not None and found is None and key.unchanged():
                    # in the repository now: a push waiting on the claim, or any later one,
                    # mounts it from here
                    memo.publish(repo, pushed.digest, key.text, layer_memo.value(blob, layer))
            finally:
                if claim is not None:
                    claim.release()
        if first is not None:  # no layer to encode
            first()
        image = settle(image)
        config = oci_writer.config_document(image, platform, written)
        config_digest, config_size = _push_json(client, repo, config, "oci-config", schemas,
                                                mount_from, result)
        manifest = oci_writer.manifest_document(image, written, config_digest, config_size)
        schemas.check("oci-manifest", manifest, file="(generated oci-manifest)")
        data = jsonio.dumps(manifest)
        result.digest = client.put_manifest(repo, dest.reference, data, OCI_MANIFEST)
        result.reference = f"docker://{dest.name}@{result.digest}"
        result.media_type, result.size = OCI_MANIFEST, len(data)
    finally:
        if own:
            client.close()
    return oci_writer.OciResult(
        path=str(dest), tag=tag, manifest=Digest.parse(result.digest), config=config_digest,
        layers=tuple(written), archive=False, source_image_id=image.image_id,
        signed_by=image.origin.signed_by if image.origin else None), result


def _encode(client: RegistryClient, repo: str, layer, compression: str,
            mount_from: tuple[str, ...], spool: bool, first=None):
    """The layer encoded into the registry: (BlobResult, WrittenBlob, spool), `spool` true
    once the registry has refused a streamed upload (every later layer is spooled)."""
    from ..spec.mediatypes import OCI_LAYER
    from .upload import StreamRefused

    try:
        pushed, size, diff_id = None, 0, None
        if not spool:
            try:
                pushed, size, diff_id = _stream_layer(client, repo, layer, compression,
                                                      mount_from, first)
            except StreamRefused:
                spool = True
        if spool:
            pushed, size, diff_id = _spool_layer(client, repo, layer, compression, mount_from)
    except FormatError as exc:
        raise exc.at(file=layer.source)
    digest = Digest.parse(pushed.digest)
    return pushed, WrittenBlob(digest=digest, size=size, media_type=OCI_LAYER[compression],
                               diff_id=diff_id or digest), spool


def _reuse(client: RegistryClient, repo: str, layer, found: dict, compression: str,
           mount_from: tuple[str, ...], file_size: int):
    """A layer the memo knows, without reading it: (BlobResult, WrittenBlob) if the repository
    has its blob (HEAD) or a mount brings it in; None to encode it as usual (the memo's blob
    is gone from the registry, or the line does not fit the layer)."""
    from .. import meter
    from . import memo as layer_memo
    from .auth import scope

    written = layer_memo.reusable(found, layer, compression)
    if written is None:
        return None
    digest = str(written.digest)
    sources = tuple(r for r in mount_from if r != repo)
    scopes = (scope(repo, ("pull", "push")),) + tuple(scope(r, ("pull",)) for r in sources)
    have = client.blob_size(repo, digest, scopes=scopes)
    if have is not None:
        if have >= 0 and have != written.size:
            return None
        how = "exists"
    elif client.try_mount(repo, digest, sources, scopes):
        how = "mounted"
    else:
        return None
    layer_memo.settle(layer, found)
    meter.skipped(file_size)  # the ACI's bytes, as progress counts them (`meter.py`)
    return BlobResult(digest, written.size, how), written


def _stream_layer(client: RegistryClient, repo: str, layer, compression: str,
                  mount_from: tuple[str, ...], first=None):
    """The layer encoded straight into an upload session: (BlobResult, size, diff_id)."""
    from ..writers.oci import encode_layer
    from .upload import StreamedUpload

    upload = StreamedUpload(client, repo, mount_from=mount_from, first=first)
    try:
        diff_id = encode_layer(layer, upload, compression)
    except BaseException:
        upload.abort()
        raise
    return upload.commit(), upload.count, diff_id


def _spool_layer(client: RegistryClient, repo: str, layer, compression: str,
                 mount_from: tuple[str, ...]):
    """For a registry that wants a blob's size first: the layer encoded into a temporary
    file, then uploaded from it (HEAD and mount first, as its digest is then known)."""
    import tempfile

    from ..compression import HashingWriter
    from ..writers.oci import encode_layer

    with tempfile.TemporaryFile(prefix="acioci-push-") as fh:
        sink = HashingWriter(fh)
        diff_id = encode_layer(layer, sink, compression)
        fh.seek(0)
        digest = f"sha256:{sink.hash.hexdigest()}"
        return client.upload_blob(repo, fh, digest=digest, size=sink.count,
                                  mount_from=mount_from), sink.count, diff_id


def _push_json(client: RegistryClient, repo: str, doc: dict, kind: str, schemas,
               mount_from: tuple[str, ...], result: PushResult) -> tuple[Digest, int]:
    schemas.check(kind, doc, file=f"(generated {kind})")
    data = jsonio.dumps(doc)
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    result.blobs.append(client.upload_blob(repo, io.BytesIO(data), digest=str(digest),
                                           size=len(data), mount_from=mount_from))
    return digest, len(data)


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
