"""ACI manifest rules that a JSON Schema cannot state (aci.md §2): unique label, annotation,
environment and event-handler names, port ranges, and the os/arch table on the image's labels
and on every dependency's labels. Shared by the reader, the writer and the validator."""

from __future__ import annotations


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
