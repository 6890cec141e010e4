"""Secrets out of anything printed: URLs in errors, and any text a registry echoes back.

Credentials live only in request headers, never in URLs, but a URL can still carry secrets
from elsewhere: user information in a `Location` or token realm, a signed upload state, a
pre-signed CDN query. Errors name the URL with those removed, keeping the query keys that
help diagnose (`mount`, `from`, `digest`...).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

_KEEP = frozenset({"mount", "from", "digest", "n", "last", "service", "scope", "ns"})


def url(text: str) -> str:
    """`text` without user information, with query values other than `_KEEP` elided, and
    shown (a `Location` is the server's text)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{key}={quote(value, safe=':/,') if key in _KEEP else '…'}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True))
    return shown(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every occurrence of each secret (longest first) replaced by `***`, and
    shown (`shown`): a registry's words go into our one-line errors."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return shown(text)


def shown(text: str) -> str:
    """`text` with what a terminal would act on (line breaks, escape sequences, any other
    control or unprintable character) written as its Python escape: a server's text
    (an error message, a header) cannot end our error's line or move the cursor."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
