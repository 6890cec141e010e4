"""`acioci inspect`: the graph as data (for --json) and as text for people.

Shared images in a dependency DAG are described once and referred to by image ID after that,
so a diamond does not print twice and the JSON stays a tree.

The JSON uses one naming style, camelCase, as the ACI and OCI documents themselves do
(`workingDirectory`, `mountPoints`, `socketActivated`, `mediaType`); `env` is a list of
"K=V" strings, as OCI's `Env` is, because order and repeated names matter. The text form
aligns its keys and puts one item (an env variable, a port, a layer) per line; nothing in
either is a Python repr.

For an OCI layout or archive the description also gives what identifies the image there: the
manifest's digest, media type and size, its tags, and each layer's digest, media type and size.
`tags` lists every image of a layout, as `umoci ls` does.
"""

from __future__ import annotations

import json

from . import jsonio
from .graph import Digest, Image, RuntimeConfig
from .readers import oci as oci_reader
from .readers.blobs import blob_path


def describe(image: Image, _seen: set[str] | None = None, *, manifest: dict | None = None) -> dict:
    """The image as JSON-ready data; `manifest` is what `manifests` found for it, if anything."""
    seen = set() if _seen is None else _seen
    out: dict = {"name": image.name, "source": image.source}
    if image.image_id:
        out["imageID"] = str(image.image_id)
    if image.image_id in seen:
        out["seeAbove"] = True
        return out
    if image.image_id:
        seen.add(image.image_id)
    out["version"] = image.version
    if manifest is not None:
        out["manifest"] = {k: manifest[k] for k in ("digest", "mediaType", "size", "tags")}
    out["labels"] = dict(image.labels)
    out["platform"] = str(image.platform) if image.platform else None
    if image.config is not None:
        out["app"] = _app(image.config)
    out["annotations"] = dict(image.annotations)
    if image.path_whitelist:
        out["pathWhitelist"] = list(image.path_whitelist)
    layer_types = (manifest or {}).get("layerMediaTypes", {})
    out["layers"] = []
    for layer, n in zip(image.layers, _entry_counts(image)):
        item = {"source": layer.source, "entries": n, "size": layer.size}
        digest = _blob_digest(layer.source)
        if digest:
            item["digest"] = digest
            if digest in layer_types:
                item["mediaType"] = layer_types[digest]
        out["layers"].append(item)
    out["dependencies"] = [
        {"requested": {"imageName": d.name, "labels": dict(d.labels), "imageID": d.image_id},
         "image": describe(d.image, seen)} for d in image.dependencies]
    return out


def _app(rc: RuntimeConfig) -> dict:
    """The runtime config in the ACI/OCI documents' camelCase; empty fields left out."""
    app = {
        "entrypoint": list(rc.entrypoint) if rc.entrypoint else None,
        "cmd": list(rc.cmd) if rc.cmd else None,
        "user": rc.user, "group": rc.group,
        "env": [f"{k}={v}" for k, v in rc.env],
        "workingDirectory": rc.working_dir,
        "ports": [{"name": p.name, "protocol": p.protocol, "port": p.port,
                   "count": p.count or 1, "socketActivated": bool(p.socket_activated)}
                  for p in rc.ports],
        "mountPoints": [{"name": m.name, "path": m.path, "readOnly": bool(m.read_only)}
                        for m in rc.mount_points],
        "isolators": [dict(i) if isinstance(i, dict) else i for i in rc.isolators],
        "eventHandlers": list(rc.event_handlers),
        "supplementaryGIDs": list(rc.supplementary_gids),
        "labels": dict(rc.labels),
        "userAnnotations": dict(rc.user_annotations),
        "stopSignal": rc.stop_signal,
    }
    return {k: v for k, v in app.items() if v not in (None, [], {})}


def _blob_digest(source: str) -> str | None:
    """`sha256:…` of a layer read from a blob (`WHERE::blobs/sha256/HEX`), else None."""
    rel = source.rpartition("::")[2]
    parts = rel.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        return f"{parts[1]}:{parts[2]}"
    return None


def _entry_counts(image: Image) -> list[int]:
    """Entries per layer. An ACI's scan already counted them; OCI layers are read once through
    the squash index pass, so inspect verifies digests, diff_ids, names, duplicates and
    hardlinks exactly as a conversion would."""
    if all(layer.index is not None for layer in image.layers):
        return [len(layer.index) for layer in image.layers]
    from .squash import build_tree

    return build_tree(image.layers, verify=True).entries


def manifests(source) -> list[dict] | None:
    """Every image manifest of an OCI layout or archive source (None for other sources): its
    digest, media type, size, tags and platform, and its layers' media types, in index.json
    order. Read from the same index walk the reader selects from, so a layout's `@N` and tags
    mean the same here."""
    blobs = getattr(source, "blobs", None)
    if blobs is None or getattr(source, "read", None) is not oci_reader.read_images:
        return None
    found = []
    for cand in oci_reader.candidates(blobs):
        desc = cand.descriptor
        item = {"digest": desc.get("digest"), "mediaType": desc.get("mediaType"),
                "size": desc.get("size"), "tags": list(dict.fromkeys(cand.refs)),
                "position": cand.position,
                "platform": str(cand.platform) if cand.platform else None,
                "layerMediaTypes": {}}
        try:
            digest = Digest.parse(desc.get("digest"))
            doc = jsonio.loads(blobs.read_small(blob_path(digest), oci_reader.MAX_JSON, digest,
                                                desc.get("size")),
                               file=blobs.where, entry=blob_path(digest))
            item["layerMediaTypes"] = {ld.get("digest"): ld.get("mediaType")
                                       for ld in doc.get("layers") or [] if isinstance(ld, dict)}
        except Exception:  # the reader reports a bad manifest in its own words
            pass
        found.append(item)
    return found


def matching(found: list[dict] | None, image: Image) -> dict | None:
    """The manifest of `found` that `image` was read from: the one whose layers are the
    image's, in order. Entries of one manifest under several tags are merged; when two
    different manifests have the same layers, None (it cannot be told here)."""
    if not found:
        return None
    digests = [_blob_digest(layer.source) for layer in image.layers]
    same = [m for m in found if list(m["layerMediaTypes"]) == digests]
    if len({m["digest"] for m in same}) != 1:
        return None
    tags = [t for m in same for t in m["tags"]]
    return {**same[0], "tags": list(dict.fromkeys(tags))}


def render_tags(found: list[dict]) -> str:
    """One line per image of a layout: tags (or @N, its index.json entry), platform,
    manifest digest."""
    rows = [(", ".join(m["tags"]) or f"@{m['position']}", m["platform"] or "-",
             m["digest"] or "-") for m in found]
    head = ("TAG", "PLATFORM", "MANIFEST")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(2)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[2]
                     for r in [head] + rows)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render_tree(data: dict, indent: str = "") -> str:
    """Text for people: `key   value` aligned, one item per line for lists."""
    title = (data["name"] or "(no name)") + (f":{data['version']}" if data.get("version") else "")
    if data.get("seeAbove"):
        return f"{indent}{title}  (shown above)"
    rows: list[tuple[str, list[str]]] = [("source", [data["source"]])]
    if data.get("imageID"):
        rows.append(("image ID", [data["imageID"]]))
    manifest = data.get("manifest")
    if manifest:
        rows.append(("manifest", [f"{manifest['digest']}  {manifest['mediaType']}  "
                                  f"{_size(manifest['size'])}"]))
        if manifest["tags"]:
            rows.append(("tags", manifest["tags"]))
    if data.get("platform"):
        rows.append(("platform", [data["platform"]]))
    other = {k: v for k, v in data.get("labels", {}).items() if k not in ("version", "os", "arch")}
    if other:
        rows.append(("labels", [f"{k}={v}" for k, v in other.items()]))
    app = data.get("app") or {}
    if app:
        if app.get("entrypoint"):
            rows.append(("exec", [" ".join(app["entrypoint"])]))
        if app.get("cmd"):
            rows.append(("cmd", [" ".join(app["cmd"])]))
        user = app.get("user") or "0"
        rows.append(("user", [user + (f":{app['group']}" if app.get("group") else "")]))
        if app.get("env"):
            rows.append(("env", app["env"]))
        if app.get("workingDirectory"):
            rows.append(("working dir", [app["workingDirectory"]]))
        if app.get("ports"):
            rows.append(("ports", [_port(p) for p in app["ports"]]))
        if app.get("mountPoints"):
            rows.append(("mount points", [f"{m['name']}  {m['path']}"
                                          + ("  read-only" if m.get("readOnly") else "")
                                          for m in app["mountPoints"]]))
        for key, title_ in (("isolators", "isolators"), ("eventHandlers", "event handlers")):
            if app.get(key):
                rows.append((title_, [_named(x) for x in app[key]]))
        if app.get("supplementaryGIDs"):
            rows.append(("supplementary GIDs", [" ".join(map(str, app["supplementaryGIDs"]))]))
        for key, title_ in (("labels", "app labels"), ("userAnnotations", "user annotations")):
            if app.get(key):
                rows.append((title_, [f"{k}={v}" for k, v in app[key].items()]))
        if app.get("stopSignal"):
            rows.append(("stop signal", [app["stopSignal"]]))
    if data.get("annotations"):
        rows.append(("annotations", [f"{k}={v}" for k, v in data["annotations"].items()]))
    if data.get("pathWhitelist"):
        rows.append(("pathWhitelist", [f"{len(data['pathWhitelist'])} paths"]))
    layers = []
    for layer in data.get("layers", []):
        text = f"{layer['entries']} entries, {_size(layer.get('size'))}"
        if layer.get("digest"):
            text += f"  {layer['digest']}"
        if layer.get("mediaType"):
            text += f"  {layer['mediaType']}"
        layers.append(text)
    if layers:
        rows.append(("layers", layers))
    pad = indent + "  "
    width = max(len(k) for k, _ in rows)
    lines = [f"{indent}{title}"]
    for key, values in rows:
        for i, value in enumerate(values):
            lines.append(f"{pad}{(key if i == 0 else '').ljust(width)}  {value}")
    for dep in data.get("dependencies", []):
        req = dep["requested"]
        how = "by imageID" if req.get("imageID") else "by name+labels"
        lines.append(f"{pad}depends on ({how}):")
        lines.append(render_tree(dep["image"], pad + "  "))
    return "\n".join(lines)


def _port(p: dict) -> str:
    text = f"{p['name'] or '-'}  {p['port']}/{p['protocol']}"
    if p.get("count", 1) != 1:
        text += f" (+{p['count'] - 1})"
    if p.get("socketActivated"):
        text += "  socket-activated"
    return text


def _named(item) -> str:
    """An isolator or event handler: its name, then its value as compact JSON."""
    if isinstance(item, dict) and "name" in item:
        rest = {k: v for k, v in item.items() if k != "name"}
        value = rest.get("value", rest) if len(rest) == 1 else rest
        return f"{item['name']}  {json.dumps(value, ensure_ascii=False, sort_keys=True)}"
    return json.dumps(item, ensure_ascii=False, default=str)
