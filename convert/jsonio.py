"""Strict JSON in, deterministic JSON out.

In: UTF-8 only, no duplicate keys (Python would silently keep the last one, Go the last one
too, so two tools could read one document two ways), bounded size and nesting. JSON has no
NaN or Infinity (Python's parser accepts them, Go's refuses them); integers longer than
Python's int-string limit make Python raise ValueError, not a JSON error; a `\ud800` escape
with no partner decodes to a lone surrogate that only blows up later, when it is encoded for
output. All three are refused here, at parse time, naming the file, so every caller gets an
AciociError and nothing downstream meets such a value.
Out: one fixed encoding (compact separators, key order as built, UTF-8 without escapes), so the
same document always gives the same digest.
"""

from __future__ import annotations

import json
import math

from .errors import FormatError, LimitError

MAX_JSON_BYTES = 16 << 20  # manifests and configs are kilobytes; 16 MiB is generous


def _no_duplicates(pairs):
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise FormatError(f"duplicate key {key!r} in JSON object")
        seen[key] = value
    return seen


def _no_constants(name: str):
    raise FormatError(f"{name} is not JSON")


def _finite(text: str) -> float:
    """`1e999` is a JSON number, but Python reads it as infinity, which JSON cannot write
    back (and Go refuses to decode): out of range, refused."""
    value = float(text)
    if math.isinf(value):
        raise FormatError(f"JSON number {text[:40]} is out of range")
    return value


def _surrogate_pointer(value, path=()) -> str | None:
    """The JSON pointer of the first string (key or value) holding a lone surrogate, or None.
    Strings decoded from valid UTF-8 cannot hold one; only a `\\udXXX` escape can."""
    stack = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return pointer(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _encodable(key):  # not named: the message must stay printable
                    return (pointer(path) or "/") + " (a key)"
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


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
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants,
                         parse_float=_finite)
    except FormatError as exc:
        exc.file, exc.entry = file, entry
        raise
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {syntax_error(exc, text)}", file=file,
                          entry=entry) from None
    except RecursionError:
        raise LimitError("JSON nested too deeply", file=file, entry=entry) from None
    except ValueError:
        # not a JSONDecodeError: int() refused a number past sys.get_int_max_str_digits()
        raise LimitError("JSON number has too many digits", file=file, entry=entry) from None
    if "\\u" in text:  # only an escape can make a lone surrogate; skip the walk otherwise
        where = _surrogate_pointer(doc)
        if where is not None:
            raise FormatError(f"JSON string at {where or '/'} holds a lone surrogate "
                              "(an unpaired \\ud800-\\udfff escape)", file=file, entry=entry)
    return doc


# Python's parser messages, said for people (some end in " at", which Python completes with
# the position: "Unterminated string starting at: line 1 column 5 (char 4)")
_SYNTAX = {
    "Expecting value": "expected a value",
    "Expecting ',' delimiter": "expected ',' or a closing ] or }",
    "Expecting ':' delimiter": "expected ':'",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes",
    "Unterminated string starting at": "unterminated string",
    "Invalid control character at": "control character in a string",
    "Invalid \\escape": "invalid backslash escape",
    "Invalid \\uXXXX escape": "invalid \\uXXXX escape",
    "Extra data": "more after the JSON value",
}


def syntax_error(exc: json.JSONDecodeError, text: str) -> str:
    """`unterminated string at line 1 column 236 (byte 235)`: what is wrong, in words, and
    where, with the byte offset in the UTF-8 input (Python counts characters)."""
    what = _SYNTAX.get(exc.msg)
    if what is None:
        what = exc.msg.removesuffix(" at")
        what = what[:1].lower() + what[1:]
    byte = len(text[:exc.pos].encode("utf-8", "surrogatepass"))
    return f"{what} at line {exc.lineno} column {exc.colno} (byte {byte})"


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pointer(path) -> str:
    """RFC 6901 JSON pointer for a jsonschema error path."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path \
        else ""
