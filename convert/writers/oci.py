"""OCI writer: the graph into an image layout directory or an oci-archive (oci.md §1–6).

Each graph layer streams through one pipeline, never held in memory:
    tar encoder -> sha256 (diff_id) -> compressor -> sha256 + size (blob digest) -> blob file
Every JSON document is validated against `schemas/` before it is written. Output is
deterministic (no clocks; gzip mtime 0; fixed JSON encoding; oci-archive members sorted, owned
by 0:0 with mtime 0) and atomic (built in a temporary sibling, renamed at the end).

What the graph knows and OCI has no field for (ACI labels, annotations, isolators, event
handlers, supplementary GIDs, port and mount-point names, dependencies, path whitelist) goes
into manifest annotations under `io.acioci.aci.` (see `vocabulary.py` and the README), so the
reverse direction can restore it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from typing import ClassVar
from pathlib import Path

from .. import jsonio
from ..spec import vocabulary
from ..atomic import atomic_destination, scratch_sibling
from ..background import BackgroundWriter
from ..compression import Compressor, HashingWriter
from ..errors import FormatError, UsageError
from ..graph import Digest, Image, Layer, Platform, WrittenBlob, settle
from ..tarstream import Entry
from ..tarwrite import TarWriter
from ..spec import schemas
from . import oci_add

from ..spec.mediatypes import OCI_CONFIG as MT_CONFIG
from ..spec.mediatypes import OCI_LAYER as MT_LAYER
from ..spec.mediatypes import OCI_MANIFEST as MT_MANIFEST

COMPRESSIONS = tuple(MT_LAYER)


@dataclass(frozen=True)
class OciResult:
    """What was written: enough for a caller to print or to check."""

    unchanged: ClassVar[bool] = False  # a write always wrote (a push may not)
    path: str
    tag: str
    manifest: Digest
    config: Digest
    layers: tuple[WrittenBlob, ...]
    archive: bool
    source_image_id: str | None = None  # the ACI's appc image ID, when the source was one
    signed_by: str | None = None  # appc: the key whose signature vouched for the source
    docker_name: str | None = None  # docker-archive: the NAME:TAG `docker load` gives it

    def to_dict(self) -> dict:
        kind = "docker-archive" if self.docker_name else \
            "oci-archive" if self.archive else "oci"
        out = {"destination": self.path, "format": kind, "tag": self.tag, "manifest": str(self.manifest), "config": str(self.config),
               "layers": [{"digest": str(b.digest), "size": b.size, "diffID": str(b.diff_id),
                           "mediaType": b.media_type} for b in self.layers]}
        if self.source_image_id:  # the ID rkt knew the image by: a migration maps it
            out["sourceImageID"] = self.source_image_id
        if self.signed_by:
            out["signedBy"] = self.signed_by
        if self.docker_name:
            out["name"] = self.docker_name
        return out

    def to_text(self) -> str:
        kind = "docker-archive" if self.docker_name else \
            "oci-archive" if self.archive else "OCI layout"
        named = f"name {self.docker_name}" if self.docker_name else f"tag {self.tag}"
        lines = [f"wrote {kind} {self.path} ({named})",
                 f"  manifest {self.manifest}", f"  config   {self.config}"]
        lines += [f"  layer {i}  {b.digest}  {b.size} bytes  (diff_id {b.diff_id})"
                  for i, b in enumerate(self.layers)]
        if self.source_image_id:
            lines.append(f"  from ACI {self.source_image_id}")
        if self.signed_by:
            lines.append(f"  signed by {self.signed_by}")
        return "\n".join(lines)


class _BlobFile:
    """A blob being written: a temporary file renamed to its digest on close."""

    def __init__(self, blobs: Path) -> None:
        self.blobs = blobs
        self.tmp = blobs / f".tmp-{os.getpid()}-{id(self)}"
        self.fh = open(self.tmp, "wb")
        self.hasher = HashingWriter(self.fh)

    def write(self, data: bytes) -> None:
        self.hasher.write(data)

    def commit(self) -> tuple[Digest, int]:
        self.fh.close()
        digest = Digest("sha256", self.hasher.hash.hexdigest())
        final = self.blobs / digest.hex
        if final.exists():
            self.tmp.unlink()  # identical content already written (a layer used twice)
        else:
            os.rename(self.tmp, final)
        return digest, self.hasher.count


def _write_json_blob(blobs: Path, doc: dict, kind: str) -> tuple[Digest, int]:
    schemas.check(kind, doc, file=f"(generated {kind})")
    blob = _BlobFile(blobs)
    blob.write(jsonio.dumps(doc))
    return blob.commit()


def write_layer(layer: Layer, blobs: Path, compression: str) -> WrittenBlob:
    """One layer into a blob file of the layout (see `encode_layer`)."""
    blob = _BlobFile(blobs)
    try:
        diff_id = encode_layer(layer, blob, compression)
    except BaseException:
        blob.fh.close()
        raise
    digest, size = blob.commit()
    return WrittenBlob(digest=digest, size=size, media_type=MT_LAYER[compression],
                       diff_id=diff_id or digest)


def encode_layer(layer: Layer, sink, compression: str) -> Digest | None:
    """The layer's tar, compressed, into `sink.write()`; returns the diff_id, or None without
    compression (the blob is then the tar itself, so its digest is the diff_id: one hash, not
    two). Three threads beside the tar work of the caller's: compression with the sink's
    writes (a blob file and its hash, or an upload), the diff_id's SHA-256, and (in the
    reader) an ACI's SHA-512. Every writer of layers goes through here, so a layer has the
    same bytes in a layout, an archive or a registry."""
    comp = diff = None
    if compression != "none":
        comp = Compressor(compression, sink)
        diff = HashingWriter(comp, threaded=True)
    background = BackgroundWriter(diff or sink)
    tar = TarWriter(background)
    try:
        with layer.open() as entries:
            for entry in entries:
                tar.add(entry)
        tar.close()
        background.close()
        if comp is not None:
            comp.close()  # the compressor's last bytes
    except BaseException:
        background.abort()
        if diff is not None:
            diff.hash.close()
        raise
    return None if diff is None else Digest("sha256", diff.hash.hexdigest())


def config_document(image: Image, platform: Platform, layers: list[WrittenBlob]) -> dict:
    doc: dict = {}
    if image.created:
        doc["created"] = image.created
    if image.author:
        doc["author"] = image.author
    doc["architecture"] = platform.architecture
    doc["os"] = platform.os
    if platform.variant:
        doc["variant"] = platform.variant
    rc = image.config
    if rc is not None:
        cfg: dict = {}
        user = vocabulary.oci_user(rc.user, rc.group)
        if user:
            cfg["User"] = user
        ports = {}
        for p in rc.ports:
            for key in vocabulary.oci_port_keys(p.protocol, p.port, p.count or 1):
                ports[key] = {}
        if ports:
            cfg["ExposedPorts"] = ports
        if rc.env:
            cfg["Env"] = [f"{k}={v}" for k, v in rc.env]
        if rc.entrypoint:
            cfg["Entrypoint"] = list(rc.entrypoint)
        if rc.cmd:
            cfg["Cmd"] = list(rc.cmd)
        if rc.mount_points:
            cfg["Volumes"] = {m.path: {} for m in rc.mount_points}
        if rc.working_dir:
            cfg["WorkingDir"] = rc.working_dir
        if rc.labels:
            cfg["Labels"] = dict(rc.labels)
        if rc.stop_signal:
            cfg["StopSignal"] = rc.stop_signal
        doc["config"] = cfg
    doc["rootfs"] = {"type": "layers", "diff_ids": [str(b.diff_id) for b in layers]}
    history = []
    for layer in image.layers:
        h = layer.history
        item = {}
        if h is not None:
            for key, value in (("created", h.created), ("author", h.author),
                               ("created_by", h.created_by), ("comment", h.comment)):
                if value:
                    item[key] = value
        history.append(item)
    doc["history"] = history
    return doc


def manifest_document(image: Image, written: list[WrittenBlob], config_digest: Digest,
                      config_size: int) -> dict:
    """The image manifest over its written config and layers (`image` settled)."""
    layer_descs = []
    for layer, blob in zip(image.layers, written):
        desc: dict = {"mediaType": blob.media_type, "digest": str(blob.digest), "size": blob.size}
        if layer.annotations:
            desc["annotations"] = dict(layer.annotations)
        layer_descs.append(desc)
    manifest: dict = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": str(config_digest), "size": config_size},
        "layers": layer_descs,
    }
    ann = manifest_annotations(image)
    if ann:
        manifest["annotations"] = ann
    return manifest


def _given(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def _nv(pairs) -> list[dict]:
    return [{"name": k, "value": v} for k, v in pairs]


def manifest_annotations(image: Image) -> dict[str, str]:
    """Standard OCI annotations, plus every graph field OCI cannot hold, under one prefix."""
    ann: dict[str, str] = {}
    acis = dict(image.annotations)
    for aci_key, oci_key in vocabulary.ACI_TO_OCI_ANNOTATION.items():
        if acis.get(aci_key):
            ann[oci_key] = acis[aci_key]
    if image.version:
        ann["org.opencontainers.image.version"] = image.version
    dumps = lambda v: jsonio.dumps(v).decode()  # noqa: E731
    ann[vocabulary.ANN_NAME] = image.name
    if image.labels:
        ann[vocabulary.ANN_LABELS] = dumps(_nv(image.labels))
    if image.annotations:
        ann[vocabulary.ANN_ANNOTATIONS] = dumps(_nv(image.annotations))
    origin = image.origin
    if origin is not None and origin.ac_version:
        ann[vocabulary.ANN_AC_VERSION] = origin.ac_version
    if image.image_id:
        ann[vocabulary.ANN_IMAGE_ID] = image.image_id
    if origin is not None and origin.signed_by:
        ann[vocabulary.ANN_SIGNED_BY] = origin.signed_by
    rc = image.config
    if rc is None and origin is not None and origin.vocabulary == "aci":
        ann[vocabulary.ANN_HAS_APP] = "false"
    if rc is not None:
        app_only = {
            "isolators": list(rc.isolators),
            "eventHandlers": list(rc.event_handlers),
            "supplementaryGIDs": list(rc.supplementary_gids),
            "userAnnotations": dict(rc.user_annotations),
            # the stash holds only what the source said (None: unsaid, left out), so the
            # reverse direction gives back the manifest without appc's defaults spelled out
            "ports": [_given({"name": p.name, "protocol": p.protocol, "port": p.port,
                              "count": p.count, "socketActivated": p.socket_activated})
                      for p in rc.ports
                      if (p.name, p.count, p.socket_activated) != (None, None, None)],
            "mountPoints": [_given({"name": m.name, "path": m.path, "readOnly": m.read_only})
                            for m in rc.mount_points],
        }
        for key, value in app_only.items():
            if value:
                ann[vocabulary.ANN_APP + key] = dumps(value)
    if image.dependencies:
        deps = []
        for d in image.dependencies:
            item: dict = {"imageName": d.name}
            if d.image_id:
                item["imageID"] = d.image_id
            if d.labels:
                item["labels"] = _nv(d.labels)
            if d.size is not None:
                item["size"] = d.size
            deps.append(item)
        ann[vocabulary.ANN_DEPENDENCIES] = dumps(deps)
    if image.path_whitelist:
        ann[vocabulary.ANN_PATH_WHITELIST] = dumps(list(image.path_whitelist))
    return ann


def checked(image: Image, compression: str, platform: Platform | None,
            tag: str | None) -> tuple[Platform, str]:
    """What every OCI output refuses before writing a byte, and the platform and tag the
    image gets: the given ones, else its own platform and its version label (or latest)."""
    if image.dependencies and not image.rendered:
        raise UsageError("image has dependencies that were not rendered into its layers")
    if compression not in MT_LAYER:
        raise UsageError(f"OCI layer compression must be one of {', '.join(COMPRESSIONS)}, "
                         f"not {compression!r}")
    platform = platform or image.platform
    if platform is None:
        labels = dict(image.labels)
        given = ", ".join(f"{k}={labels[k]}" for k in ("os", "arch") if labels.get(k))
        has = f"its labels say only {given}" if given else "it has no os and arch labels"
        raise UsageError(
            f"{image.source}: the image names no platform OCI can express ({has}); give "
            "the platform as os/arch[/variant]", hint_option="platform")
    if tag is None:
        tag = vocabulary.ref_name_from_version(image.version) if image.version else "latest"
    elif not vocabulary.is_ref_name(tag):
        raise UsageError(f"tag {tag!r} is not a valid org.opencontainers.image.ref.name")
    return platform, tag


def write(image: Image, dest: str, *, tag: str | None = None, compression: str = "gzip",
          archive: bool = False, platform: Platform | None = None,
          overwrite: bool = False, add: bool = True,
          docker_name: str | None = None) -> OciResult:
    """Write `image` (its `layers` are the complete stack, bottom first) as a layout at `dest`,
    or as an oci-archive tar when `archive` is true. With `add`, an existing layout at `dest`
    gets the image added under `tag` (`oci_add`); `overwrite` then replaces only an image of
    that tag. Otherwise an existing `dest` is refused, or replaced whole with `overwrite`.
    With `docker_name` (NAME:TAG), the archive is Docker 25's shape, at once an OCI layout and
    a `docker save` archive: `manifest.json` beside `index.json`, and the full name in the
    index's `io.containerd.image.name`, so docker, podman, containerd and skopeo all load it
    under that name."""
    archive = archive or docker_name is not None
    platform, tag = checked(image, compression, platform, tag)
    if add and not archive and oci_add.is_layout(dest):
        # an existing layout gets this image beside its others, as skopeo copy does; built
        # beside where the layout really is, so that its blobs can be renamed into it
        layout = Path(os.path.realpath(dest))
        oci_add.refuse_taken(layout, tag, overwrite)
        with scratch_sibling(layout) as tmp:
            result = _write_layout(image, tmp, tag, compression, platform)
            oci_add.add(tmp, layout, tag, overwrite)
        return replace(result, path=str(dest), archive=False)
    with atomic_destination(dest, directory=not archive, overwrite=overwrite) as tmp:
        root = Path(tmp) if not archive else Path(str(tmp) + ".layout")
        try:
            result = _write_layout(image, root, tag, compression, platform, docker_name)
            if docker_name:
                _write_docker_manifest(root, result, docker_name)
            if archive:
                _tar_layout(root, Path(tmp))
        finally:
            if archive:
                shutil.rmtree(root, ignore_errors=True)
    return replace(result, path=str(dest), archive=archive)


def _write_docker_manifest(root: Path, result: OciResult, name: str) -> None:
    """`docker save`'s manifest.json over the layout's own blobs (Docker 25 writes the same)."""
    doc = [{"Config": blob_rel(result.config), "RepoTags": [name],
            "Layers": [blob_rel(b.digest) for b in result.layers]}]
    (root / "manifest.json").write_bytes(jsonio.dumps(doc))


def blob_rel(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def _write_layout(image: Image, root: Path, tag: str, compression: str,
                  platform: Platform, docker_name: str | None = None) -> OciResult:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    written: list[WrittenBlob] = []
    for layer in image.layers:
        try:
            written.append(write_layer(layer, blobs, compression))
        except FormatError as exc:
            raise exc.at(file=layer.source)
    image = settle(image)  # an image ID streamed with its layer is known from here on
    config = config_document(image, platform, written)
    config_digest, config_size = _write_json_blob(blobs, config, "oci-config")
    manifest = manifest_document(image, written, config_digest, config_size)
    man_digest, man_size = _write_json_blob(blobs, manifest, "oci-manifest")
    plat: dict = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        plat["variant"] = platform.variant
    names = {vocabulary.REF_NAME: tag}
    full = docker_name or (tag if vocabulary.split_reference(tag)[0] else None)
    if full:  # containerd names what it imports by this, not by a bare-tag ref.name
        names["io.containerd.image.name"] = full
    oci_add.write_layout_files(root, [{
        "mediaType": MT_MANIFEST, "digest": str(man_digest), "size": man_size,
        "annotations": names, "platform": plat}])
    return OciResult(path=str(root), tag=tag, manifest=man_digest, config=config_digest,
                     layers=tuple(written), archive=False, source_image_id=image.image_id,
                     signed_by=image.origin.signed_by if image.origin else None,
                     docker_name=docker_name)


def _tar_layout(root: Path, out: Path) -> None:
    """A deterministic tar of the layout: sorted members, 0:0, mtime 0, fixed modes. Written
    by the layers' own `TarWriter`, so the archive's bytes depend on this code alone (stdlib
    `tarfile`, used before, made them depend on the Python version)."""
    members = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    with open(out, "wb") as fh:
        tar = TarWriter(fh)
        for name in members:
            path = root / name
            if path.is_dir():
                tar.add(Entry(name, "dir", mode=0o755))
            else:
                with open(path, "rb") as src:
                    size = os.fstat(src.fileno()).st_size
                    tar.add(Entry(name, "file", mode=0o644, size=size), src)
        tar.close()
