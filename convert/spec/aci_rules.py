"""ACI rules beyond the JSON Schema (aci.md §1–2), as data: the archive layout rules for each
tar entry, and the manifest rules a schema cannot state (unique label, annotation, environment
and event-handler names, port ranges, the os/arch table on the image's and every dependency's
labels). Shared by the reader (which stops at the first), the writer and the validator (which
reports them all)."""

from __future__ import annotations


def semantic_problems(m: dict) -> list[tuple[str, str, str]]:
    """Rules a JSON Schema cannot state, as (rule, JSON pointer, message), the shape of
    `strict_problems`: each rule is named where it is found, so that no caller has to guess
    it from the message's words."""
    found = []

    def unique(items, ptr, what):
        seen = set()
        for i, item in enumerate(items or []):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue  # the schema reports it
            if item.get("name") in seen:
                found.append(("aci.manifest.duplicate", f"{ptr}/{i}/name",
                              f"duplicate {what} {item.get('name')!r}"))
            else:
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
                    found.append(("aci.manifest.rule", f"/app/ports/{i}/count",
                                  "port + count exceeds 65536"))
    labels = _label_map(m.get("labels"))
    for ptr, lab in [("/labels", labels)] + [
            (f"/dependencies/{i}/labels", _label_map(dep.get("labels")))
            for i, dep in enumerate(m.get("dependencies") or []) if isinstance(dep, dict)]:
        os_, arch = lab.get("os"), lab.get("arch")
        if os_ is not None and arch is not None and not _valid_osarch(os_, arch):
            found.append(("aci.osarch", ptr, f"bad arch {arch!r} for {os_}"))
    return found


_VALID_ARCH = {
    "linux": {"amd64", "i386", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv7b", "ppc64",
              "ppc64le", "s390x"},
    "freebsd": {"amd64", "i386", "arm"},
    "darwin": {"x86_64", "i386"},
}


def _label_map(items) -> dict:
    """name -> value of a label list whatever JSON it holds (the schema reports what is not
    a list of {name, value} strings): these rules must not fail on what they do not judge."""
    if not isinstance(items, list):
        return {}
    return {d["name"]: d.get("value") for d in items
            if isinstance(d, dict) and isinstance(d.get("name"), str)}


def _valid_osarch(os_: str, arch: str) -> bool:
    if not isinstance(os_, str) or not isinstance(arch, str):
        return True  # not strings: the schema reports it
    return arch in _VALID_ARCH.get(os_, set())


def entry_problems(entry, seen: dict[str, str], implied: set[str]) -> list[tuple[str, str]]:
    """(rule, message) for one gated ACI archive entry, given the entries before it; records
    the entry in `seen` and its parents in `implied`."""
    p = entry.path
    kind = entry.kind
    parent = p.rpartition("/")[0]
    if kind != "hardlink" and parent in implied and p[:7] == "rootfs/" and \
            seen.get(parent, "dir") == "dir" and (kind == "dir" or p not in implied):
        # The common entry, in a directory already known: every rule below passes unless it
        # is a duplicate. This runs once per entry of every ACI read, and `seen` grows to
        # every path of the image: one lookup in it (not `in`, then a store) saves a cache
        # miss per entry on large trees.
        known = len(seen)
        seen.setdefault(p, kind)
        if len(seen) != known:
            return []
    out = []
    if p in ("manifest", "rootfs"):
        expected = "file" if p == "manifest" else "dir"
        if entry.kind != expected:
            out.append((f"aci.layout.{p}-type",
                        f"{p} must be a {'regular file' if p == 'manifest' else 'directory'}, "
                        f"not a {entry.kind}"))
    elif not p.startswith("rootfs/"):
        out.append(("aci.layout.outside-rootfs",
                    "entry outside rootfs/ (an ACI holds only manifest and rootfs/)"))
    if p in seen:
        out.append(("aci.entry.duplicate", "duplicate entry"))
    if entry.kind != "dir" and p in implied:
        out.append(("aci.entry.replaces-dir",
                    f"{entry.kind} replaces a directory that earlier entries live in"))
    parent = p.rpartition("/")[0]
    while parent:
        kind = seen.get(parent)
        if kind is not None and kind != "dir":
            out.append(("aci.entry.below-non-dir", f"entry lies below {parent!r}, which is a "
                        f"{kind}; extracting it would write through that path"))
            break
        if parent in implied:
            break
        implied.add(parent)
        parent = parent.rpartition("/")[0]
    if entry.kind == "hardlink":
        target = entry.linkname
        tkind = seen.get(target)
        if not target.startswith("rootfs/"):
            out.append(("aci.hardlink.outside-rootfs",
                        f"hardlink target {target!r} is outside rootfs/"))
        elif tkind is None:
            out.append(("aci.hardlink.dangling",
                        f"hardlink target {target!r} is not an earlier entry of this ACI"))
        elif tkind == "dir":
            out.append(("aci.hardlink.directory", f"hardlink to directory {target!r}"))
    seen.setdefault(p, entry.kind)
    return out


_Q = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"


def _quantity(v) -> bool:
    import re

    return isinstance(v, (int, float)) and not isinstance(v, bool) or \
        isinstance(v, str) and re.match(_Q, v) is not None


def _isolator_value(name: str, v) -> str | None:
    """Why an isolator's value has the wrong shape (aci.md §2.4), or None."""
    if name in ("resource/cpu", "resource/memory"):
        if not isinstance(v, dict) or v.get("default") not in (None, False):
            return "must be an object with request/limit quantities and no default"
        for k in ("request", "limit"):
            if k in v and not _quantity(v[k]):
                return f"{k} {v[k]!r} is not a quantity (e.g. 500m, 1Gi)"
    elif name.startswith("resource/"):
        if not isinstance(v, dict) or v.get("default") is not True or "request" in v:
            return "must be an object with default: true and a limit"
        if "limit" in v and not _quantity(v["limit"]):
            return f"limit {v['limit']!r} is not a quantity"
    elif name.startswith("os/linux/capabilities-") or name.startswith("os/linux/seccomp-"):
        if not isinstance(v, dict) or not isinstance(v.get("set"), list) or not v["set"] \
                or not all(isinstance(x, str) for x in v["set"]):
            return "must be an object with a non-empty set of strings"
        import re

        if "errno" in v and not (isinstance(v["errno"], str)
                                 and re.match(r"^(E[A-Z0-9]*)?$", v["errno"])):
            return "errno must be empty or E[A-Z0-9]*"
    elif name == "os/linux/no-new-privileges":
        if not isinstance(v, bool):
            return "must be true or false"
    elif name == "os/linux/oom-score-adj":
        if not isinstance(v, int) or isinstance(v, bool) or not -1000 <= v <= 1000:
            return "must be an integer from -1000 to 1000"
    elif name == "os/linux/cpu-shares":
        if not isinstance(v, int) or isinstance(v, bool) or not 2 <= v <= 262144:
            return "must be an integer from 2 to 262144"
    elif name == "os/linux/selinux-context":
        if not isinstance(v, dict) or not all(isinstance(v.get(k), str) and v.get(k)
                                              for k in ("user", "role", "type", "level")):
            return "must have non-empty user, role, type and level"
        # a context is user:role:type:level; only the level (s0:c1,c2) may hold a colon, as
        # appc's SELinux isolator type (types/isolator_linux_specific.go) refuses one elsewhere
        bad = [k for k in ("user", "role", "type") if ":" in v[k]]
        if bad:
            return f"{', '.join(bad)} must not contain ':' (only level may)"
    elif name == "os/linux/apparmor-profile":
        if not isinstance(v, dict) or not isinstance(v.get("profile"), str) or not v["profile"]:
            return "must have a non-empty profile"
    elif name == "os/unix/sysctl":
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            return "must be an object of strings"
    return None


def strict_problems(m: dict) -> list[tuple[str, str, str]]:
    """(rule, JSON pointer, message) for what the validator checks beyond what readers need:
    isolator value shapes, absolute pathWhitelist entries."""
    found = []
    app = m.get("app") if isinstance(m.get("app"), dict) else {}
    for i, iso in enumerate(app.get("isolators") or []):
        if isinstance(iso, dict) and isinstance(iso.get("name"), str):
            why = _isolator_value(iso["name"], iso.get("value"))
            if why:
                found.append(("aci.isolator.value", f"/app/isolators/{i}/value",
                              f"{iso['name']}: {why}"))
    own = _label_map(m.get("labels"))
    for i, dep in enumerate(m.get("dependencies") or []):
        if isinstance(dep, dict) and dep.get("imageName") == m.get("name") and not dep.get(
                "imageID") and all(own.get(k) == v for k, v in _label_map(dep.get("labels"))
                                   .items()):
            found.append(("aci.dependency.self", f"/dependencies/{i}",
                          "the image depends on itself (dependency cycle)"))
    for i, p in enumerate(m.get("pathWhitelist") or []):
        if isinstance(p, str) and not p.startswith("/"):
            found.append(("aci.whitelist.relative", f"/pathWhitelist/{i}",
                          f"pathWhitelist entry {p!r} is not absolute"))
    return found
