"""The shipped JSON Schemas, loaded offline through a `referencing` registry.

Format checks are real: `date-time` needs rfc3339-validator and `uri` needs rfc3987, both
runtime dependencies, or jsonschema would let every string pass silently.

jsonschema is imported only for a document that `quick_schema` cannot vouch for (an invalid
one, or one it is unsure of): its import is a third of a conversion's start-up, and the
documents a conversion checks are nearly always valid.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

from ..errors import FormatError
from ..jsonio import pointer
from .quick_schema import Walker

SCHEMAS = {
    "oci-layout": "oci/layout.json",
    "oci-index": "oci/index.json",
    "oci-manifest": "oci/manifest.json",
    "oci-config": "oci/config.json",
    "oci-descriptor": "oci/descriptor.json",
    "docker-manifest": "oci/docker-manifest.json",
    "docker-manifest-list": "oci/docker-manifest-list.json",
    "aci-manifest": "aci/image-manifest.json",
}


@lru_cache(maxsize=None)
def _documents() -> dict[str, dict]:
    """Every shipped schema by its path under schemas/ ("oci/index.json"). Read from the
    package's directory when it has one: importlib.resources (with zipfile and tempfile) is
    a few ms of every start-up; it stays the way for a package without a directory (a zip)."""
    from importlib.util import find_spec
    from pathlib import Path

    places = find_spec("convert.schemas").submodule_search_locations or []
    root = Path(places[0]) if places and os.path.isdir(places[0]) else None
    if root is None:
        from importlib import resources

        root = resources.files("convert.schemas")
    docs: dict[str, dict] = {}
    for sub in ("oci", "aci"):
        for item in root.joinpath(sub).iterdir():
            if item.name.endswith(".json"):
                docs[f"{sub}/{item.name}"] = _ecma_ends(json.loads(item.read_text("utf-8")))
    return docs


def _ecma_ends(node):
    """The schema with each pattern's final `$` as `\\Z`. JSON Schema patterns are ECMA-262,
    where `$` is the end of the string; Python's `$` also matches before a final newline, so
    `"name": "busybox\\n"` would pass `^[a-z0-9]+$` (actool refuses it). Both validators
    read the schemas from here."""
    def end(pattern: str) -> str:
        body = pattern[:-1]
        escaped = (len(body) - len(body.rstrip("\\"))) % 2 == 1
        return body + "\\Z" if pattern.endswith("$") and not escaped else pattern

    if isinstance(node, list):
        return [_ecma_ends(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            out[key] = end(value)
        elif key == "patternProperties" and isinstance(value, dict):
            out[key] = {end(k): _ecma_ends(v) for k, v in value.items()}
        else:
            out[key] = _ecma_ends(value)
    return out


@lru_cache(maxsize=None)
def _walker() -> Walker:
    return Walker({doc["$id"]: doc for doc in _documents().values()})


@lru_cache(maxsize=None)
def _registry():
    from referencing import Registry, Resource

    registry = Registry()
    for doc in _documents().values():
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
    return registry


@lru_cache(maxsize=None)
def validator(kind: str):
    """jsonschema's validator for `kind` (a `jsonschema.protocols.Validator`)."""
    import jsonschema

    schema = _documents()[SCHEMAS[kind]]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)


def problems(kind: str, document) -> list[tuple[str, str]]:
    """Every schema violation as (JSON pointer, message), deepest first, in a stable order."""
    if _walker().decide(_documents()[SCHEMAS[kind]]["$id"], document) is True:
        return []  # valid, as jsonschema would find it (see quick_schema)
    found = []
    for err in validator(kind).iter_errors(document):
        leaf = min(_leaves(err), key=lambda e: (-len(e.absolute_path), e.message))
        found.append((pointer(leaf.absolute_path), leaf.message))
    return sorted(set(found))


def _leaves(err):
    if not err.context:
        yield err
        return
    for sub in err.context:
        yield from _leaves(sub)


def check(kind: str, document, *, file: str | None = None, entry: str | None = None) -> None:
    """Raise one FormatError listing every violation; the first one's pointer is the place."""
    found = problems(kind, document)
    if found:
        ptr, msg = found[0]
        more = f" (and {len(found) - 1} more: " + "; ".join(
            f"{p or '/'}: {m}" for p, m in found[1:4]) + ")" if len(found) > 1 else ""
        exc = FormatError(f"{kind} fails its schema at {ptr or '/'}: {msg}{more}", file=file,
                          pointer=ptr or "/")
        if entry is not None:
            exc.entry = f"{entry}#{ptr}" if ptr else entry
        raise exc
