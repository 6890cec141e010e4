"""Reading `ac-discovery` and `ac-discovery-pubkeys` meta tags from a discovery page.

The page comes from a server we do not trust, so it is parsed with the stdlib's tolerant
`html.parser` (no entity expansion beyond HTML's own, no network, no scripts), from bytes that
the HTTP layer has already bounded, and no more than `MAX_TAGS` tags are kept. Tags are
read wherever they appear, as appc's tokenizer did; the spec puts them in `<head>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

DISCOVERY = "ac-discovery"
PUBKEYS = "ac-discovery-pubkeys"
MAX_TAGS = 256
MAX_CONTENT = 4096  # characters of one content attribute


@dataclass(frozen=True)
class Meta:
    kind: str    # DISCOVERY or PUBKEYS
    prefix: str  # the name prefix the tag applies to
    value: str   # a URL template (DISCOVERY) or a key URL (PUBKEYS)

    def applies_to(self, name: str) -> bool:
        """appc compares as strings: prefix `example.com/app` also covers
        `example.com/application`. Trust is decided elsewhere, by path components."""
        return name.startswith(self.prefix)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Meta] = []

    def handle_starttag(self, tag, attrs):
        if tag != "meta" or len(self.found) >= MAX_TAGS:
            return
        values = {k.lower(): v for k, v in attrs if v is not None}
        kind = values.get("name", "").strip().lower()
        if kind not in (DISCOVERY, PUBKEYS):
            return
        content = values.get("content", "")
        if len(content) > MAX_CONTENT:
            return
        parts = content.split(None, 1)
        if len(parts) != 2:
            return
        self.found.append(Meta(kind=kind, prefix=parts[0], value=parts[1].strip()))

    handle_startendtag = handle_starttag


def parse(page: bytes) -> list[Meta]:
    """The discovery meta tags of a page, in page order. Never raises on malformed HTML."""
    collector = _Collector()
    collector.feed(page.decode("utf-8", errors="replace"))
    collector.close()
    return collector.found
