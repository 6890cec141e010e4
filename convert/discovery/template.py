"""Rendering `ac-discovery` URL templates, and the policy for the URLs they yield.

Substitution is one pass over the template (`{var}` -> value), so a value can never introduce
a variable of its own; values were checked when the name was parsed (see name.py). A
template left with any brace is skipped, as the spec says, and among those fully rendered only
the best matching are kept: those substituting the most labels (spec/discovery.md). A
rendered URL whose scheme is not https (or http when explicitly allowed) is refused and the
reason kept, so an error can say why nothing was fetched: a discovery page is remote input, and
`file:///etc/passwd` or `ftp://` must never be dereferenced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .meta import Meta

_VAR = re.compile(r"\{([^{}]*)\}")
_NOT_LABELS = ("name", "ext")
EXT_ACI = "aci"
EXT_SIG = "aci.asc"


@dataclass(frozen=True)
class Endpoint:
    aci: str
    sig: str
    template: str


def url_problem(url: str, *, insecure_http: bool) -> str | None:
    """Why `url` may not be fetched, or None if it may."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    scheme = parts.scheme.lower()
    if scheme == "http" and not insecure_http:
        return "is plain http (allowed only with insecure options: http)"
    if scheme not in ("https", "http"):
        return f"has scheme {scheme or 'none'!r}; only https is fetched"
    if not parts.hostname:
        return "names no host"
    if any(c in url for c in "\r\n\t \\"):
        return "contains whitespace or a backslash"
    return None


def _render(template: str, values: dict[str, str]) -> tuple[str, int]:
    """(rendered text, number of label variables substituted)."""
    used = 0

    def sub(m: re.Match) -> str:
        nonlocal used
        key = m.group(1)
        if key not in values:
            return m.group(0)
        if key not in _NOT_LABELS:
            used += 1
        return values[key]

    return _VAR.sub(sub, template), used


def endpoints(metas: list[Meta], name: str, values: dict[str, str], *,
              insecure_http: bool) -> tuple[list[Endpoint], list[str]]:
    """The best matching endpoints for `name` among the page's `ac-discovery` tags, and a
    note for every tag that matched the name but was skipped or refused."""
    candidates: list[tuple[int, Endpoint]] = []
    notes: list[str] = []
    for m in metas:
        if m.kind != "ac-discovery" or not m.applies_to(name):
            continue
        if "{ext}" not in m.value:
            notes.append(f"template {m.value!r} skipped: it has no {{ext}}")
            continue
        aci, used = _render(m.value, {**values, "ext": EXT_ACI})
        sig, _ = _render(m.value, {**values, "ext": EXT_SIG})
        if "{" in aci or "}" in aci:
            left = sorted(set(_VAR.findall(aci)))
            what = ", ".join("{%s}" % v for v in left) if left else "a stray brace"
            notes.append(f"template {m.value!r} skipped: nothing to substitute for {what}")
            continue
        problem = url_problem(aci, insecure_http=insecure_http) or \
            url_problem(sig, insecure_http=insecure_http)
        if problem:
            notes.append(f"template {m.value!r} refused: {aci} {problem}")
            continue
        candidates.append((used, Endpoint(aci=aci, sig=sig, template=m.value)))
    best = max((u for u, _ in candidates), default=0)
    return [e for u, e in candidates if u == best], notes


def pubkeys(metas: list[Meta], name: str) -> list[str]:
    return [m.value for m in metas if m.kind == "ac-discovery-pubkeys" and m.applies_to(name)]
