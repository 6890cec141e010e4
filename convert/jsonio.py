"""Strict JSON in, deterministic JSON out.

In: UTF-8 only, no duplicate keys (Python would silently keep the last one, Go the last one
too, so two tools could read one document two ways), bounded size and nesting.
Out: one fixed encoding (compact separators, key order as built, UTF-8 without escapes), so the
same document always gives the same digest.
"""

from __future__ import annotations

import json

from .errors import FormatError, LimitError

MAX_JSON_BYTES = 16 << 20  # manifests and configs are kilobytes; 16 MiB is generous


def _no_duplicates(pairs):
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise FormatError(f"duplicate key {key!r} in JSON object")
        seen[key] = value
    return seen


def loads(data: bytes, *, file: str | None = None, entry: str | None = None,
          limit: int = MAX_JSON_BYTES):
    if len(data) > limit:
        raise LimitError(f"JSON document of {len(data)} bytes exceeds the limit of {limit}",
                         file=file, entry=entry)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"JSON is not valid UTF-8 at byte {exc.start}", file=file,
                          entry=entry) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except FormatError as exc:
        exc.file, exc.entry = file, entry
        raise
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                          file=file, entry=entry) from None
    except RecursionError:
        raise LimitError("JSON nested too deeply", file=file, entry=entry) from None


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pointer(path) -> str:
    """RFC 6901 JSON pointer for a jsonschema error path."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path \
        else ""
