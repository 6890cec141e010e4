"""The ACI image manifest: parse as the Go reference types do, validate, map into the graph.

Go matches JSON keys case-insensitively and treats `null` as absent (aci.md §2), so a manifest
that actool and rkt accept must not fail here because it says `supplementaryGids` or `Name`.
Keys are folded to the canonical spelling first, then the schema and the semantic rules that a
schema cannot state (unique label, annotation and environment names, one handler per event)
run on the folded document.
"""

from __future__ import annotations

from .. import jsonio
from ..errors import FormatError
from ..graph import MountPoint, Platform, Port, RuntimeConfig
from ..mapping import APPC_TO_OCI
from ..validation import schemas

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


def semantic_problems(m: dict) -> list[tuple[str, str]]:
    """Rules a JSON Schema cannot state, as (JSON pointer, message)."""
    found = []

    def unique(items, ptr, what):
        seen = set()
        for i, item in enumerate(items or []):
            if isinstance(item, dict) and item.get("name") in seen:
                found.append((f"{ptr}/{i}/name", f"duplicate {what} {item.get('name')!r}"))
            elif isinstance(item, dict):
                seen.add(item.get("name"))

    unique(m.get("labels"), "/labels", "label")
    unique(m.get("annotations"), "/annotations", "annotation")
    app = m.get("app") or {}
    if isinstance(app, dict):
        unique(app.get("environment"), "/app/environment", "environment variable")
        unique(app.get("eventHandlers"), "/app/eventHandlers", "event handler")
        for i, port in enumerate(app.get("ports") or []):
            if isinstance(port, dict) and isinstance(port.get("port"), int):
                count = port.get("count") or 1
                if isinstance(count, int) and port["port"] + count > 65536:
                    found.append((f"/app/ports/{i}/count", "port + count exceeds 65536"))
    labels = {d.get("name"): d.get("value") for d in m.get("labels") or [] if isinstance(d, dict)}
    for ptr, lab in [("/labels", labels)] + [
            (f"/dependencies/{i}/labels", {d.get("name"): d.get("value")
                                           for d in (dep.get("labels") or [])
                                           if isinstance(d, dict)})
            for i, dep in enumerate(m.get("dependencies") or []) if isinstance(dep, dict)]:
        os_, arch = lab.get("os"), lab.get("arch")
        if os_ is not None and arch is not None and not _valid_osarch(os_, arch):
            found.append((ptr, f"bad arch {arch!r} for {os_}"))
    return found


_VALID_ARCH = {
    "linux": {"amd64", "i386", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv7b", "ppc64",
              "ppc64le", "s390x"},
    "freebsd": {"amd64", "i386", "arm"},
    "darwin": {"x86_64", "i386"},
}


def _valid_osarch(os_: str, arch: str) -> bool:
    return arch in _VALID_ARCH.get(os_, set())


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
        ptr, msg = found[0]
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
    ports = tuple(Port(name=p.get("name"), protocol=p.get("protocol", "tcp"), port=p.get("port", 0),
                       count=p.get("count") or 1, socket_activated=p.get("socketActivated", False))
                  for p in app.get("ports") or [])
    mounts = tuple(MountPoint(name=m.get("name"), path=m.get("path", ""),
                              read_only=m.get("readOnly", False))
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
