"""`acioci inspect`: the graph as data (for --json) and as a readable tree.

Shared images in a dependency DAG are described once and referred to by image ID after that,
so a diamond does not print twice and the JSON stays a tree.
"""

from __future__ import annotations

from dataclasses import asdict

from .graph import Image


def describe(image: Image, _seen: set[str] | None = None) -> dict:
    seen = set() if _seen is None else _seen
    out: dict = {"name": image.name, "source": image.source}
    if image.image_id:
        out["imageID"] = image.image_id
    if image.image_id in seen:
        out["seeAbove"] = True
        return out
    if image.image_id:
        seen.add(image.image_id)
    out["version"] = image.version
    out["labels"] = dict(image.labels)
    out["platform"] = str(image.platform) if image.platform else None
    if image.config is not None:
        rc = asdict(image.config)
        out["app"] = {k: v for k, v in rc.items() if v not in (None, (), [], {})}
    out["annotations"] = dict(image.annotations)
    if image.path_whitelist:
        out["pathWhitelist"] = list(image.path_whitelist)
    out["layers"] = [{"source": layer.source, "entries": n}
                     for layer, n in zip(image.layers, _entry_counts(image))]
    out["dependencies"] = [
        {"requested": {"imageName": d.name, "labels": dict(d.labels), "imageID": d.image_id},
         "image": describe(d.image, seen)} for d in image.dependencies]
    return out


def _entry_counts(image: Image) -> list[int]:
    """Entries per layer. An ACI's scan already counted them; OCI layers are read once through
    the squash index pass, so inspect verifies digests, diff_ids, names, duplicates and
    hardlinks exactly as a conversion would."""
    if all(layer.index is not None for layer in image.layers):
        return [len(layer.index) for layer in image.layers]
    from .squash import build_tree

    return build_tree(image.layers, verify=True).entries


def render_tree(data: dict, indent: str = "") -> str:
    lines = []
    title = (data["name"] or "(no name)") + (f":{data['version']}" if data.get("version") else "")
    ident = f"  {data['imageID'][:23]}…" if data.get("imageID") else ""
    lines.append(f"{indent}{title}{ident}  {data['source']}")
    if data.get("seeAbove"):
        lines[-1] += "  (shown above)"
        return "\n".join(lines)
    pad = indent + "  "
    if data.get("platform"):
        lines.append(f"{pad}platform: {data['platform']}")
    other = {k: v for k, v in data.get("labels", {}).items() if k not in ("version", "os", "arch")}
    if other:
        lines.append(f"{pad}labels: " + ", ".join(f"{k}={v}" for k, v in other.items()))
    app = data.get("app")
    if app:
        if app.get("entrypoint"):
            lines.append(f"{pad}exec: {' '.join(app['entrypoint'])}")
        user = app.get("user") or "0"
        lines.append(f"{pad}user: {user}" + (f":{app['group']}" if app.get("group") else ""))
        for key in ("env", "working_dir", "ports", "mount_points", "isolators", "event_handlers",
                    "supplementary_gids", "labels", "user_annotations"):
            if app.get(key):
                lines.append(f"{pad}{key.replace('_', ' ')}: {app[key]}")
    for k, v in data.get("annotations", {}).items():
        lines.append(f"{pad}annotation {k}: {v}")
    if data.get("pathWhitelist"):
        lines.append(f"{pad}pathWhitelist: {len(data['pathWhitelist'])} paths")
    for layer in data.get("layers", []):
        lines.append(f"{pad}layer: {layer['entries']} entries")
    for dep in data.get("dependencies", []):
        req = dep["requested"]
        how = "by imageID" if req.get("imageID") else "by name+labels"
        lines.append(f"{pad}depends on ({how}):")
        lines.append(render_tree(dep["image"], pad + "  "))
    return "\n".join(lines)
