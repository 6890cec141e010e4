"""One OCI (or Docker schema 2) image into the graph: config, layers, and what acioci stashed.

Shared by the layout and docker-archive readers. Layers stay lazy: `Layer.open()` streams the
blob through size and digest verification, decompression (tar, gzip or zstd, by magic bytes,
whatever the media type claims) and diff_id verification, and yields tar entries; a mismatch
raises when the stream ends, naming the blob, expected and actual. `Layer.headers()` is the
same stream unverified, for an index pass (squash, --layered) that reads no data.

If the image was written by acioci from an ACI, the `io.acioci.aci.*` annotations are decoded
back into the graph fields they came from (labels, annotations, isolators, port and mount-point
names...), so the ACI writer can restore the original manifest.
"""

from __future__ import annotations

import json

from .. import jsonio
from ..spec import vocabulary
from ..compression import HashingReader
from ..errors import DigestMismatchError, FormatError
from ..graph import (Digest, HistoryEntry, Image, Layer, MountPoint, Origin, Platform, Port,
                     RuntimeConfig, stream)
from ..meter import metered
from ..tarstream import read_entries
from . import aci_manifest
from .blobs import Blobs


class _DiffIdReader(HashingReader):
    """Hashes the decompressed stream in a thread beside the reader; at EOF compares it with
    the config's diff_id. `close()` on every way out (it stops the hashing thread)."""

    def __init__(self, raw, expected: str | None, name: str, where: str) -> None:
        super().__init__(raw, "sha256", threaded=True)
        self.expected = expected
        self.name = name
        self.where = where

    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        if not data and self.expected is not None:
            got = "sha256:" + self.hash.hexdigest()
            if got != self.expected:
                raise DigestMismatchError(f"diff_id of layer {self.name} does not match the "
                                          "config", file=self.where, entry=self.name,
                                          expected=self.expected, actual=got)
            self.expected = None
        return data

    def close(self) -> None:
        self.hash.close()


def layer(blobs: Blobs, rel: str, *, digest: Digest | None, size: int | None,
          diff_id: str | None, history: HistoryEntry | None) -> Layer:
    def decompressed(raw):
        try:
            return blobs.open_decompressed(raw, allowed=("tar", "gzip", "zstd"), what="layer")
        except FormatError as exc:
            exc.entry = exc.entry or rel
            raise exc.at(file=blobs.where)

    def located(exc: FormatError) -> FormatError:
        if exc.file is None:
            exc.file = blobs.where
            exc.entry = f"{rel}::{exc.entry}" if exc.entry else rel
        return exc

    def entries():
        raw = metered(blobs.open_verified(rel, digest, size, threaded=True))
        checked = None
        try:
            checked = _DiffIdReader(decompressed(raw)[1], diff_id, rel, blobs.where)
            yield from read_entries(checked)
            while checked.read(1 << 20):
                pass
            while raw.read(1 << 20):  # trailing bytes after the compressed stream
                pass
        except FormatError as exc:
            raise located(exc)
        finally:
            if checked is not None:
                checked.close()
            raw.close()

    def headers():
        """The entries for an index pass, which reads no data and hashes nothing: the pass
        that emits the data verifies every byte it emits. A blob that fails to parse is
        checked against its digest first, so that tampering is reported as such."""
        raw = blobs.open(rel)
        try:
            kind, plain = decompressed(raw)
            length = blobs.size(rel) if kind == "tar" else None
            if length is not None:  # an uncompressed layer: unread data is sought past
                raw.seek(0)
                plain = raw
            yield from read_entries(plain, length=length)
        except FormatError as exc:
            blobs.verify(rel, digest, size)
            raise located(exc)
        finally:
            raw.close()

    return Layer(open=stream(entries), headers=stream(headers),
                 size=size if size is not None else blobs.size(rel),
                 source=f"{blobs.where}::{rel}", history=history)


def _shown(value) -> str | None:
    """A JSON value as an error shows it: as JSON (`{"a":true}`, not Python's `{'a': True}`),
    cut to 80 characters; None when the document has no value there."""
    if value is None or isinstance(value, str):
        return value
    return jsonio.dumps(value).decode("utf-8")[:80]


def _pairs(obj) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in (obj or {}).items())


def _stash(ann: dict[str, str], key: str, where: str):
    if key not in ann:
        return None
    try:  # strict like every other document: no NaN, huge numbers or lone surrogates
        return jsonio.loads(ann[key].encode("utf-8"), file=where)
    except FormatError as exc:
        raise FormatError(f"annotation {key}: {exc.message}", file=where) from None


def build(*, blobs: Blobs, where: str, config_bytes: bytes, annotations: dict[str, str],
          layers: list[tuple[str, Digest | None, int | None]], ref_name: str | None,
          source_format: str = "oci") -> Image:
    """The graph of one image. `layers` are (relative path, digest, size), bottom first."""
    config = jsonio.loads(config_bytes, file=where, entry="config")
    if not isinstance(config, dict):
        raise FormatError("config is not a JSON object", file=where, entry="config")
    _check_types(config, where)
    rootfs = config.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") or []
    if rootfs.get("type") != "layers":
        raise FormatError("config rootfs.type must be 'layers'", file=where,
                          entry="config#/rootfs/type", expected="layers",
                          actual=_shown(rootfs.get("type")))
    if len(diff_ids) != len(layers):
        raise FormatError("config has a diff_id per layer", file=where,
                          entry="config#/rootfs/diff_ids", expected=len(layers),
                          actual=len(diff_ids))
    history = [h for h in config.get("history") or [] if isinstance(h, dict)
               and not h.get("empty_layer")]
    graph_layers = []
    for i, (rel, digest, size) in enumerate(layers):
        h = history[i] if i < len(history) and len(history) == len(layers) else None
        entry = HistoryEntry(created=h.get("created"), author=h.get("author"),
                             created_by=h.get("created_by"), comment=h.get("comment")) if h else None
        graph_layers.append(layer(blobs, rel, digest=digest, size=size, diff_id=diff_ids[i],
                                  history=entry))
    os_, arch = config.get("os"), config.get("architecture")
    platform = Platform(os=os_, architecture=arch, variant=config.get("variant")) \
        if os_ and arch else None
    cfg = config.get("config") or {}
    stash_app = {k[len(vocabulary.ANN_APP):]: _stash(annotations, k, where)
                 for k in annotations if k.startswith(vocabulary.ANN_APP)}
    has_app = annotations.get(vocabulary.ANN_HAS_APP) != "false" and "config" in config
    labels = _stash(annotations, vocabulary.ANN_LABELS, where)
    aci_annotations = _stash(annotations, vocabulary.ANN_ANNOTATIONS, where)
    if labels is not None or aci_annotations is not None or stash_app:
        _check_stash(labels, aci_annotations, stash_app, where)
    runtime = _runtime(cfg, stash_app, where) if has_app else None
    origin = Origin(format=source_format,
                    vocabulary="aci" if vocabulary.ANN_NAME in annotations else "oci",
                    ac_version=annotations.get(vocabulary.ANN_AC_VERSION))
    plain = {k: v for k, v in annotations.items() if not k.startswith(vocabulary.PREFIX)}
    docker_only = _docker_only(cfg)
    if aci_annotations is not None or origin.vocabulary == "aci":
        # from an ACI, the stash is the whole list (none written: the ACI had none); the OCI
        # annotations the writer derived from it (version, created...) are not added back
        kept = [(d["name"], d["value"]) for d in aci_annotations or []]
        kept += [(k, v) for k, v in docker_only if k not in dict(kept)]
    else:
        kept = sorted({**plain, **dict(docker_only)}.items())
    ref_repo, version = vocabulary.split_reference(ref_name) if ref_name else (None, None)
    if labels:
        version = dict((d["name"], d["value"]) for d in labels).get("version", version)
    name = annotations.get(vocabulary.ANN_NAME) or (
        vocabulary.sanitize_identifier(ref_repo) if ref_repo else "")
    return Image(
        name=name,
        source=where, version=version,
        labels=tuple((d["name"], d["value"]) for d in labels or []),
        platform=platform, config=runtime,
        annotations=tuple(kept),
        layers=tuple(graph_layers),
        created=config.get("created"), author=config.get("author"),
        image_id=annotations.get(vocabulary.ANN_IMAGE_ID), origin=origin,
    )


def _check_stash(labels, aci_annotations, stash_app: dict, where: str) -> None:
    """The stash annotations carry ACI manifest fields through OCI; what they hold is read
    back into the graph as if an ACI manifest had said it, so it is held to the same schema
    and rules (a port count that expands to a billion ExposedPorts keys, a label that is not
    an object), as part of a stand-in manifest. The first problem names its annotation."""
    doc: dict = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/stash"}
    if labels is not None:
        doc["labels"] = labels
    if aci_annotations is not None:
        doc["annotations"] = aci_annotations
    if stash_app:
        doc["app"] = {"exec": ["/stash"], "user": "0", "group": "0", **stash_app}
    try:
        aci_manifest.parse(jsonio.dumps(doc), file=where)
    except FormatError as exc:
        ptr = (exc.entry or "").partition("#")[2] or exc.pointer or "/"
        parts = ptr.split("/")
        key = vocabulary.ANN_LABELS if parts[1:2] == ["labels"] else \
            vocabulary.ANN_ANNOTATIONS if parts[1:2] == ["annotations"] else \
            vocabulary.ANN_APP + (parts[2] if len(parts) > 2 else "")
        raise FormatError(f"annotation {key} does not hold what an ACI manifest may "
                          f"({exc.message})", file=where) from None


def _docker_only(cfg: dict) -> list[tuple[str, str]]:
    """Docker-only config fields (Healthcheck, OnBuild, Shell) as annotations, the value as
    compact JSON. Neither OCI's config nor an ACI app has a field for them; dropping them would
    lose what `docker build` put there (a healthcheck, the ONBUILD triggers a derived image
    runs). The annotations are kept on the image, so the ACI writer carries them into the
    ACI's annotations and the OCI writer into its annotation stash."""
    return [(key, jsonio.dumps(cfg[field]).decode("utf-8"))
            for field, key in vocabulary.DOCKER_CONFIG_ANNOTATION.items()
            if cfg.get(field) not in (None, [], {}, "")]


def _strings(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _string_map(v) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


# The config fields the graph takes, and the JSON type each must have (null is "absent", as
# Docker writes it). Checked where the config is parsed, so that `"Entrypoint": "/bin/sh"` or
# `"Labels": ["x"]` is one error naming its JSON pointer, not a garbled ACI (exec "/", "b", ...)
# or a traceback further on. The schema's finer rules (an Env entry without "=") stay the
# validator's: converting has always skipped such an entry.
_FIELD_TYPES = {
    "Entrypoint": (_strings, "an array of strings"), "Cmd": (_strings, "an array of strings"),
    "Env": (_strings, "an array of strings"), "Labels": (_string_map, "an object of strings"),
    "ExposedPorts": (lambda v: isinstance(v, dict), "an object"),
    "Volumes": (lambda v: isinstance(v, dict), "an object"),
    "User": (lambda v: isinstance(v, str), "a string"),
    "WorkingDir": (lambda v: isinstance(v, str), "a string"),
    "StopSignal": (lambda v: isinstance(v, str), "a string"),
}


def _check_types(config: dict, where: str) -> None:
    """The JSON types the graph relies on, each refused with its pointer (see _FIELD_TYPES)."""
    for key in ("os", "architecture", "variant", "created", "author"):
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            raise FormatError(f"config field {key} must be a string", file=where,
                              entry=f"config#/{key}", actual=json.dumps(value)[:80])
    rootfs = config.get("rootfs")
    if rootfs is not None and not isinstance(rootfs, dict):
        raise FormatError("config rootfs must be an object", file=where,
                          entry="config#/rootfs", actual=json.dumps(rootfs)[:80])
    diff_ids = (rootfs or {}).get("diff_ids")
    if diff_ids is not None and not _strings(diff_ids):
        raise FormatError("config rootfs.diff_ids must be an array of strings", file=where,
                          entry="config#/rootfs/diff_ids", actual=json.dumps(diff_ids)[:80])
    history = config.get("history")
    if history is not None and not isinstance(history, list):
        raise FormatError("config history must be an array", file=where,
                          entry="config#/history", actual=json.dumps(history)[:80])
    for i, h in enumerate(history or ()):
        for key in ("created", "author", "created_by", "comment"):
            value = h.get(key) if isinstance(h, dict) else None
            if value is not None and not isinstance(value, str):
                raise FormatError(f"config history entry field {key} must be a string",
                                  file=where, entry=f"config#/history/{i}/{key}",
                                  actual=json.dumps(value)[:80])
    cfg = config.get("config")
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        raise FormatError("config.config must be an object", file=where,
                          entry="config#/config", actual=type(cfg).__name__)
    for key, (ok, what) in _FIELD_TYPES.items():
        value = cfg.get(key)
        if value is not None and not ok(value):
            raise FormatError(f"config field {key} must be {what}", file=where,
                              entry=f"config#/config/{key}", actual=json.dumps(value)[:80])


def _runtime(cfg: dict, stash: dict, where: str) -> RuntimeConfig:
    ports = []
    for key in sorted(cfg.get("ExposedPorts") or {}):
        num, _, proto = key.partition("/")
        try:
            ports.append(Port(name=None, protocol=proto or "tcp", port=int(num)))
        except ValueError:
            raise FormatError("an ExposedPorts key is not PORT[/PROTOCOL]", file=where,
                              entry="config#/config/ExposedPorts", actual=key) from None
    if stash.get("ports"):
        # fields the stash leaves out were absent in the ACI: they stay None (see graph.Port)
        stashed = [Port(name=p.get("name"), protocol=p.get("protocol", "tcp"), port=p["port"],
                        count=p.get("count"), socket_activated=p.get("socketActivated"))
                   for p in stash["ports"]]
        keys = {f"{q}/{p.protocol}" for p in stashed
                for q in range(p.port, p.port + (p.count or 1))}
        if keys == {f"{p.port}/{p.protocol}" for p in ports}:
            ports = stashed  # the config still says what the stash says: restore names
    volumes = sorted(cfg.get("Volumes") or {})
    mounts = [MountPoint(name=None, path=v) for v in volumes]
    if stash.get("mountPoints"):
        stashed_m = [MountPoint(name=m.get("name"), path=m.get("path", ""),
                                read_only=m.get("readOnly")) for m in stash["mountPoints"]]
        if sorted(m.path for m in stashed_m) == volumes:
            mounts = stashed_m
    env = []
    for item in cfg.get("Env") or []:
        key, sep, value = str(item).partition("=")
        if sep:
            env.append((key, value))
    return RuntimeConfig(
        entrypoint=tuple(cfg["Entrypoint"]) if cfg.get("Entrypoint") else None,
        cmd=tuple(cfg["Cmd"]) if cfg.get("Cmd") else None,
        user=cfg.get("User") or None, group=None,
        env=tuple(env), working_dir=cfg.get("WorkingDir") or None,
        ports=tuple(ports), mount_points=tuple(mounts),
        labels=tuple(sorted(_pairs(cfg.get("Labels")))),
        stop_signal=cfg.get("StopSignal") or None,
        isolators=tuple(stash.get("isolators") or ()),
        event_handlers=tuple(stash.get("eventHandlers") or ()),
        supplementary_gids=tuple(stash.get("supplementaryGIDs") or ()),
        user_annotations=tuple(sorted((stash.get("userAnnotations") or {}).items())),
    )
