"""The ACI image manifest: parse as the Go reference types do, validate, map into the graph.

Go matches JSON keys case-insensitively and treats `null` as absent (aci.md §2), so a manifest
that actool and rkt accept must not fail here because it says `supplementaryGids` or `Name`.
Keys are folded to the canonical spelling first, then the schema and the semantic rules that a
schema cannot state (unique label, annotation and environment names, one handler per event)
run on the folded document.
"""

from __future__ import annotations

import json
from dataclasses import replace

from .. import jsonio
from ..spec import vocabulary
from ..errors import FormatError
from ..graph import MountPoint, Platform, Port, RuntimeConfig
from ..spec.vocabulary import APPC_TO_OCI
from ..spec import schemas
from ..spec.aci_rules import semantic_problems

_NV = ("name", "value")
_SHAPES: dict[str, tuple] = {
    "": ("acKind", "acVersion", "name", "labels", "app", "annotations", "dependencies",
         "pathWhitelist"),
    "app": ("exec", "user", "group", "supplementaryGIDs", "eventHandlers", "workingDirectory",
            "environment", "isolators", "mountPoints", "ports", "userAnnotations", "userLabels"),
    "labels[]": _NV, "annotations[]": _NV, "app.environment[]": _NV, "app.isolators[]": _NV,
    "app.eventHandlers[]": ("name", "exec"),
    "app.mountPoints[]": ("name", "path", "readOnly"),
    "app.ports[]": ("name", "protocol", "port", "count", "socketActivated"),
    "dependencies[]": ("imageName", "imageID", "labels", "size"),
    "dependencies[].labels[]": _NV,
}


def canonical_keys(doc, shape: str = ""):
    """Fold known keys to their canonical spelling, drop nulls (Go: null means absent)."""
    if isinstance(doc, list):
        return [canonical_keys(v, shape + "[]") for v in doc]
    if not isinstance(doc, dict) or shape not in _SHAPES:
        return doc
    known = {k.lower(): k for k in _SHAPES[shape]}
    out: dict = {}
    for key, value in doc.items():
        canon = known.get(key.lower(), key) if isinstance(key, str) else key
        if canon in out:
            raise FormatError(f"keys {canon!r} given twice (JSON keys match case-insensitively)",
                              pointer=f"/{shape.replace('.', '/')}")
        if value is None:
            continue
        sub = f"{shape}.{canon}" if shape else canon
        out[canon] = canonical_keys(value, sub)
    return out


def parse(data: bytes, *, file: str) -> tuple[dict, object]:
    """Bytes -> (canonical manifest dict, the raw parsed JSON). Raises FormatError with the
    JSON pointer of the first problem and a count of the rest."""
    raw = jsonio.loads(data, file=file, entry="manifest")
    if not isinstance(raw, dict):
        raise FormatError("manifest is not a JSON object", file=file, entry="manifest")
    try:
        doc = canonical_keys(raw)
    except FormatError as exc:
        exc.file, exc.entry = file, f"manifest#{exc.pointer}"
        raise
    schemas.check("aci-manifest", doc, file=file, entry="manifest")
    found = semantic_problems(doc)
    if found:
        _rule, ptr, msg = found[0]
        raise FormatError(f"manifest: {msg}", file=file, entry=f"manifest#{ptr}", pointer=ptr)
    return doc, raw


def pairs(items) -> tuple[tuple[str, str], ...]:
    return tuple((d["name"], d["value"]) for d in items or [])


def platform(labels: dict[str, str]) -> Platform | None:
    """The OCI platform the labels name, or None when they name none (or none OCI has)."""
    os_, arch = labels.get("os"), labels.get("arch")
    if os_ is None or arch is None or (os_, arch) not in APPC_TO_OCI:
        return None
    oci_os, oci_arch, variant = APPC_TO_OCI[(os_, arch)]
    return Platform(os=oci_os, architecture=oci_arch, variant=variant)


def runtime_config(app: dict | None) -> RuntimeConfig | None:
    if app is None:
        return None
    # count, socketActivated and readOnly stay None when the manifest leaves them out (appc's
    # defaults apply): a writer then leaves them out too, and a round trip adds no field
    ports = tuple(Port(name=p.get("name"), protocol=p.get("protocol", "tcp"), port=p.get("port", 0),
                       count=p.get("count"), socket_activated=p.get("socketActivated"))
                  for p in app.get("ports") or [])
    mounts = tuple(MountPoint(name=m.get("name"), path=m.get("path", ""),
                              read_only=m.get("readOnly"))
                   for m in app.get("mountPoints") or [])
    exec_ = app.get("exec")
    return RuntimeConfig(
        entrypoint=tuple(exec_) if exec_ else None,
        user=app.get("user"), group=app.get("group"),
        env=pairs(app.get("environment")),
        working_dir=app.get("workingDirectory") or None,
        ports=ports, mount_points=mounts,
        labels=tuple(sorted((app.get("userLabels") or {}).items())),
        isolators=tuple(app.get("isolators") or ()),
        event_handlers=tuple(app.get("eventHandlers") or ()),
        supplementary_gids=tuple(app.get("supplementaryGIDs") or ()),
        user_annotations=tuple(sorted((app.get("userAnnotations") or {}).items())),
    )


def restore_oci_fields(rc: RuntimeConfig | None, annotations: tuple[tuple[str, str], ...]):
    """Undo what the ACI writer stashed for OCI fields ACI has no home for (Entrypoint vs Cmd,
    a User that user/group cannot say, StopSignal), when the manifest still agrees with it.
    The stash annotations are consumed: they become graph fields again."""
    ann = dict(annotations)
    keys = (vocabulary.ANN_DOCKER_ENTRYPOINT, vocabulary.ANN_DOCKER_CMD, vocabulary.ANN_OCI_USER,
            vocabulary.ANN_OCI_STOP_SIGNAL)
    if rc is None or not any(k in ann for k in keys):
        return rc, annotations
    try:
        ep = json.loads(ann.get(vocabulary.ANN_DOCKER_ENTRYPOINT, "[]"))
        cmd = json.loads(ann.get(vocabulary.ANN_DOCKER_CMD, "[]"))
    except ValueError:
        return rc, annotations
    if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in (ep, cmd)):
        return rc, annotations  # not what the writer stashes: left as plain annotations
    if list(rc.entrypoint or ()) == ep + cmd:
        rc = replace(rc, entrypoint=tuple(ep) or None, cmd=tuple(cmd) or None)
    user = ann.get(vocabulary.ANN_OCI_USER)
    # a User without a group got its group from the image's /etc/passwd (or the user's own name)
    if user is not None and vocabulary.aci_user_group(user, rc.group) == (rc.user, rc.group):
        rc = replace(rc, user=user, group=None)
    if vocabulary.ANN_OCI_STOP_SIGNAL in ann:
        rc = replace(rc, stop_signal=ann[vocabulary.ANN_OCI_STOP_SIGNAL])
    return rc, tuple((k, v) for k, v in annotations if k not in keys)
