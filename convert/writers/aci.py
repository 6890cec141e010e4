"""ACI writer: a one-layer graph image into an `.aci` (aci.md §1–2, §6).

Archive: `manifest` first, then the `rootfs` directory entry, then the layer's entries under
`rootfs/` (hardlink targets too). The image ID is the SHA-512 of exactly the uncompressed bytes
written. Compression gzip (default), bzip2, xz or none; deterministic (gzip mtime 0, fixed
levels, manifest and rootfs entries with mtime 0 unless the layer carried a root entry).

Manifest: when the graph came from an ACI (acioci's `io.acioci.aci.*` annotations were decoded
by the reader), labels and annotations are restored verbatim; otherwise they are mapped from OCI
(version from the tag, os/arch from the platform table, created/authors/homepage/documentation
from the config and OCI annotations, Entrypoint and Cmd kept apart in `appc.io/docker/*` as
docker2aci does). The manifest is validated against the schema before anything is written.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import ClassVar

from ..spec import vocabulary
from ..atomic import atomic_destination
from ..background import BackgroundWriter
from ..compression import Compressor, HashingWriter
from ..errors import FormatError, UsageError
from ..graph import Image, settled
from ..tarstream import Entry
from ..tarwrite import TarWriter
from ..spec import schemas
from ..spec.aci_rules import semantic_problems

COMPRESSIONS = ("gzip", "bzip2", "xz", "none")
AC_VERSION = "0.8.11"
_ACID = re.compile(r"^[a-z0-9]+([-._~/][a-z0-9]+)*$")
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class AciResult:
    unchanged: ClassVar[bool] = False  # a write always wrote (a push may not)
    path: str
    image_id: str
    name: str
    manifest: dict

    def to_dict(self) -> dict:
        return {"destination": self.path, "format": "aci", "name": self.name,
                "imageID": self.image_id}

    def to_text(self) -> str:
        return f"wrote ACI {self.path} ({self.name})\n  image ID {self.image_id}"


def _nv(pairs) -> list[dict]:
    return [{"name": k, "value": v} for k, v in pairs]


def _given(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def _app(image: Image) -> dict | None:
    rc = image.config
    if rc is None:
        return None
    app: dict = {}
    exec_ = list(rc.entrypoint or ()) + list(rc.cmd or ())
    if exec_:
        app["exec"] = exec_
    if rc.group is not None:
        app["user"], app["group"] = rc.user or "0", rc.group
    else:
        app["user"], app["group"] = vocabulary.aci_user_group(rc.user, settled(rc.primary_group))
    if rc.supplementary_gids:
        app["supplementaryGIDs"] = list(rc.supplementary_gids)
    if rc.event_handlers:
        app["eventHandlers"] = list(rc.event_handlers)
    if rc.working_dir:
        wd = rc.working_dir
        app["workingDirectory"] = wd if wd.startswith("/") else "/" + wd
    if rc.env:
        app["environment"] = _nv(rc.env)
    if rc.isolators:
        app["isolators"] = list(rc.isolators)
    if rc.mount_points:
        names = vocabulary.volume_names([m.path for m in rc.mount_points])
        # optional fields the source did not give (None) stay absent: a round trip adds nothing
        app["mountPoints"] = [_given({"name": m.name or n, "path": m.path,
                                     "readOnly": m.read_only})
                              for m, n in zip(rc.mount_points, names)]
    if rc.ports:
        app["ports"] = [_given({"name": p.name or vocabulary.sanitize_acname(f"{p.port}-{p.protocol}"),
                                "protocol": p.protocol, "port": p.port, "count": p.count,
                                "socketActivated": p.socket_activated}) for p in rc.ports]
    if rc.user_annotations:
        app["userAnnotations"] = dict(rc.user_annotations)
    if rc.labels:
        app["userLabels"] = dict(rc.labels)
    return app


def _oci_annotations(image: Image) -> list[tuple[str, str]]:
    """ACI annotations for an image that came from OCI (no stash to restore)."""
    oci = dict(image.annotations)
    out: dict[str, str] = {}
    created = image.created or oci.get("org.opencontainers.image.created")
    if created and _RFC3339.match(created):
        out["created"] = created
    authors = image.author or oci.get("org.opencontainers.image.authors")
    if authors:
        out["authors"] = authors
    for aci_key, oci_key in (("homepage", "org.opencontainers.image.url"),
                             ("documentation", "org.opencontainers.image.documentation")):
        url = oci.get(oci_key)
        if url and re.match(r"^https?://\S+$", url):
            out[aci_key] = url
    mapped = set(vocabulary.ACI_TO_OCI_ANNOTATION.values())
    for key, value in sorted(oci.items()):
        if key not in mapped and _ACID.match(key) and key not in out:
            out[key] = value
    rc = image.config
    if rc is not None:
        if rc.entrypoint:
            out[vocabulary.ANN_DOCKER_ENTRYPOINT] = json.dumps(list(rc.entrypoint))
        if rc.cmd:
            out[vocabulary.ANN_DOCKER_CMD] = json.dumps(list(rc.cmd))
        if rc.user and rc.group is None and ":".join(vocabulary.aci_user_group(rc.user)) != rc.user:
            out[vocabulary.ANN_OCI_USER] = rc.user
        if rc.stop_signal:
            out[vocabulary.ANN_OCI_STOP_SIGNAL] = rc.stop_signal
    return list(out.items())


def manifest_doc(image: Image, *, name: str | None = None,
                 dependencies: list[dict] | None = None,
                 path_whitelist: list[str] | None = None) -> dict:
    origin = image.origin
    restored = origin is not None and origin.vocabulary == "aci"
    name = name or image.name
    if not name:
        raise UsageError(f"{image.source}: the image has no name to give the ACI; give one",
                         hint_option="name")
    name = vocabulary.sanitize_identifier(name) if not _ACID.match(name) else name
    doc: dict = {"acKind": "ImageManifest", "acVersion": (origin and origin.ac_version) or AC_VERSION,
                 "name": name}
    if restored and image.labels:
        labels = list(image.labels)
    else:
        if image.platform is None:
            raise UsageError(f"{image.source}: the image config names no os/architecture")
        try:
            os_, arch = vocabulary.platform_to_appc(image.platform)
        except UsageError as exc:
            raise exc.at(file=image.source)
        labels = [("version", image.version)] if image.version else []
        labels += [("os", os_), ("arch", arch)]
    doc["labels"] = _nv(labels)
    app = _app(image)
    if app is not None:
        doc["app"] = app
    annotations = list(image.annotations) if restored else _oci_annotations(image)
    if annotations:
        doc["annotations"] = _nv(annotations)
    if dependencies:
        doc["dependencies"] = dependencies
    if path_whitelist:
        doc["pathWhitelist"] = path_whitelist
    return doc


def check(doc: dict, where: str) -> None:
    schemas.check("aci-manifest", doc, file=where, entry="manifest")
    found = semantic_problems(doc)
    if found:
        _rule, ptr, msg = found[0]
        raise FormatError(f"generated manifest: {msg}", file=where, entry=f"manifest#{ptr}")


def _entry_under_rootfs(e: Entry) -> Entry:
    link = "rootfs/" + e.linkname if e.kind == "hardlink" else None
    return e.renamed("rootfs/" + e.path, linkname=link)


def write(image: Image, dest: str, *, compression: str = "gzip", name: str | None = None,
          dependencies: list[dict] | None = None, path_whitelist: list[str] | None = None,
          overwrite: bool = False) -> AciResult:
    if compression not in COMPRESSIONS:
        raise UsageError(f"ACI compression must be one of {', '.join(COMPRESSIONS)}, not "
                         f"{compression!r}")
    if len(image.layers) != 1 or (image.dependencies and not image.rendered):
        raise UsageError("the ACI writer takes one rendered layer; squash the image first")
    doc = manifest_doc(image, name=name, dependencies=dependencies,
                       path_whitelist=path_whitelist or (list(image.path_whitelist)
                                                         if image.path_whitelist else None))
    check(doc, dest)
    mbytes = json.dumps(doc, indent=4, ensure_ascii=False).encode("utf-8")
    with atomic_destination(dest, directory=False, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            comp = Compressor(compression, fh)
            # the image ID's SHA-512 and the compression run beside the tar work
            ident = HashingWriter(comp, "sha512", threaded=True)
            background = BackgroundWriter(ident)
            tar = TarWriter(background)
            layer = image.layers[0]
            try:  # from the first write on, every way out stops the threads
                tar.add(Entry("manifest", "file", mode=0o644, size=len(mbytes)),
                        io.BytesIO(mbytes))
                with layer.open() as entries:
                    first = True
                    for e in entries:
                        if e.path == "":
                            if first:
                                tar.add(e.renamed("rootfs"))
                                first = False
                            continue
                        if first:
                            tar.add(Entry("rootfs", "dir", mode=0o755))
                            first = False
                        tar.add(_entry_under_rootfs(e))
                    if first:
                        tar.add(Entry("rootfs", "dir", mode=0o755))
                tar.close()
                background.close()
                comp.close()
            except BaseException as exc:
                background.abort()
                ident.hash.close()
                if isinstance(exc, FormatError):
                    raise exc.at(file=layer.source)
                raise
    return AciResult(path=dest, image_id="sha512-" + ident.hash.hexdigest(), name=doc["name"],
                     manifest=doc)






@dataclass(frozen=True)
class ChainResult:
    unchanged: ClassVar[bool] = False  # a write always wrote (a push may not)
    path: str
    images: tuple[AciResult, ...]

    def to_dict(self) -> dict:
        return {"destination": self.path, "format": "aci-layered",
                "images": [r.to_dict() for r in self.images]}

    def to_text(self) -> str:
        return f"wrote {len(self.images)} layer ACIs into {self.path}\n" + "\n".join(
            r.to_text() for r in self.images)


def write_chain(images: list[Image], dest_dir: str, *, compression: str = "gzip",
                name: str | None = None, overwrite: bool = False) -> ChainResult:
    """A chain of one-layer images (bottom first), each depending on the one below by
    imageID, into a new directory that works as a `--store`. The top keeps `name`."""
    results: list[AciResult] = []
    with atomic_destination(dest_dir, directory=True, overwrite=overwrite) as tmp:
        for i, image in enumerate(images):
            top = i == len(images) - 1
            deps = None
            if results:
                deps = [{"imageName": results[-1].name, "imageID": results[-1].image_id}]
            img_name = name if top and name else image.name
            stem = vocabulary.sanitize_acname((img_name or "image").replace("/", "-"))
            path = f"{tmp}/{stem}.aci"
            res = write(image, path, compression=compression, name=img_name,
                        dependencies=deps)
            results.append(res)
    final = [AciResult(path=r.path.replace(str(tmp), dest_dir, 1), image_id=r.image_id,
                       name=r.name, manifest=r.manifest) for r in results]
    return ChainResult(path=dest_dir, images=tuple(final))
