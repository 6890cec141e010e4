"""A fast "yes" for documents that pass their schema, without importing jsonschema.

Importing jsonschema (with referencing, attrs and the metaschemas it loads) is a third of what
a conversion costs before it reads its first byte: more than the tar work of a 200 MB rootfs.
Nearly every document a conversion checks is valid (the ACI manifest it reads, the config,
manifest and index it writes), and a valid document needs no messages. So `decide` walks the
schema itself, for the few keywords our schemas use, and answers in three values:

- True: the document is valid, exactly as jsonschema (Draft 2020-12, with format checks) would
  find it;
- False: it is not (needed inside `not`, `oneOf` and `if`, where both answers matter);
- None: not sure (a keyword, `$ref` or value shape this walker does not know, a format its
  library did not confirm): the caller asks jsonschema.

Only True is taken on trust, and only where every step is exact; anything else goes to
jsonschema, which then produces the messages. `tests/test_quick_schema.py` holds the walker to
jsonschema's answer on every fixture and on mutated documents.
"""

from __future__ import annotations

import re

# keywords that assert nothing (Draft 2020-12 annotations, and $defs, reached through $ref)
_IGNORED = frozenset({"$schema", "title", "description", "$defs", "contentEncoding",
                      "$comment"})
_PATTERNS: dict[str, re.Pattern] = {}


def _and(results) -> bool | None:
    """Three-valued AND: False wins, then None."""
    out: bool | None = True
    for got in results:
        if got is False:
            return False
        if got is None:
            out = None
    return out


def _is_type(name: str, value) -> bool | None:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if name == "integer":
        if isinstance(value, int):
            return True
        return None if isinstance(value, float) else False  # 1.0 is an integer to jsonschema
    if name == "number":
        return True if isinstance(value, (int, float)) else None
    return None


def _equal(a, b) -> bool | None:
    """jsonschema's `equal` for scalars (a bool is never equal to a number)."""
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _format(name: str, value) -> bool | None:
    """True only when the library jsonschema itself calls for the format accepts the value."""
    if not isinstance(value, str):
        return True
    try:
        if name == "date-time":
            from rfc3339_validator import validate_rfc3339

            return True if validate_rfc3339(value.upper()) else None
        if name == "uri":
            import rfc3987

            rfc3987.parse(value, rule="URI")
            return True
    except (ImportError, ValueError):
        return None
    return None


class Walker:
    """`decide(schema_id, document)` over the documents of one registry (`$id` -> schema)."""

    def __init__(self, documents: dict[str, dict]) -> None:
        self.documents = documents

    def decide(self, schema_id: str, value) -> bool | None:
        try:
            return self._check(self.documents[schema_id], value, schema_id)
        except RecursionError:
            return None

    def _resolve(self, ref: str, base: str):
        target, _, fragment = ref.partition("#")
        if target:
            if "/" in target or ":" in target:
                return None, base
            base = base.rsplit("/", 1)[0] + "/" + target
        doc = self.documents.get(base)
        if doc is None or (fragment and not fragment.startswith("/")):
            return None, base
        for part in fragment.split("/")[1:] if fragment else ():
            if "~" in part or "%" in part or not isinstance(doc, dict) or part not in doc:
                return None, base
            doc = doc[part]
        return doc, base

    def _check(self, schema, value, base: str) -> bool | None:
        if schema is True:
            return True
        if not isinstance(schema, dict):
            return None
        result: bool | None = True
        for key, arg in schema.items():
            if key in _IGNORED or key == "then" or key == "else":
                continue
            got = self._keyword(key, arg, schema, value, base)
            if got is False:
                return False
            if got is None:
                result = None
        return result

    def _keyword(self, key: str, arg, schema: dict, value, base: str) -> bool | None:
        if key == "type":
            return _or_types(arg, value)
        if key == "$ref":
            target, target_base = self._resolve(arg, base)
            return None if target is None else self._check(target, value, target_base)
        if key == "$id":
            return True if arg == base else None  # a nested resource: not followed here
        if key == "properties":
            if not isinstance(value, dict):
                return True
            return _and(self._check(sub, value[name], base)
                        for name, sub in arg.items() if name in value)
        if key == "required":
            return True if not isinstance(value, dict) else all(k in value for k in arg)
        if key == "additionalProperties":
            if not isinstance(value, dict):
                return True
            if "patternProperties" in schema:
                return None
            known = schema.get("properties", {})
            return _and(self._check(arg, v, base) for k, v in value.items() if k not in known)
        if key == "propertyNames":
            if not isinstance(value, dict):
                return True
            return _and(self._check(arg, k, base) for k in value)
        if key == "items":
            if not isinstance(value, list):
                return True
            if "prefixItems" in schema:
                return None
            return _and(self._check(arg, item, base) for item in value)
        if key == "pattern":
            if not isinstance(value, str):
                return True
            compiled = _PATTERNS.get(arg)
            if compiled is None:
                compiled = _PATTERNS[arg] = re.compile(arg)
            return compiled.search(value) is not None
        if key == "minLength":
            return True if not isinstance(value, str) else len(value) >= arg
        if key in ("minimum", "maximum"):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value >= arg if key == "minimum" else value <= arg
            return True if value is None or isinstance(value, (bool, str, list, dict)) else None
        if key == "const":
            return _equal(value, arg)
        if key == "enum":
            found = [_equal(value, each) for each in arg]
            return True if True in found else None if None in found else False
        if key == "format":
            return _format(arg, value)
        if key == "allOf":
            return _and(self._check(sub, value, base) for sub in arg)
        if key == "not":
            got = self._check(arg, value, base)
            return None if got is None else not got
        if key == "oneOf":
            found = [self._check(sub, value, base) for sub in arg]
            if None in found:
                return None
            return found.count(True) == 1
        if key == "if":
            got = self._check(arg, value, base)
            if got is None:
                return None
            branch = schema.get("then" if got else "else")
            return True if branch is None else self._check(branch, value, base)
        return None  # a keyword this walker does not know


def _or_types(types, value) -> bool | None:
    names = types if isinstance(types, list) else [types]
    found = [_is_type(name, value) for name in names]
    return True if True in found else None if None in found else False
