"""appc discovery (spec/discovery.md): from a name and labels to ACI and signature URLs.

GET `https://NAME?ac-discovery=1` (redirects followed, each hop checked); when the answer is
not 200 (the spec says 4xx; rkt walked on any failure) or the page has no usable
`ac-discovery` tag for the name, try the parent path, up to the bare host. A failure to reach
the host at all (connection, TLS) ends the walk at once: every prefix lives on that same host.
With `insecure_http`, a host unreachable over https is asked over plain http, as rkt did.

Everything skipped on the way (a status, a refused redirect, a template with an unrendered
variable or a forbidden scheme) is kept as a note, so that when nothing is found the error says
why, and when something is, the caller may show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LimitError, SourceUnreadableError
from . import meta, template
from .client import Client, Page, RefusedURL, Unreachable
from .name import AppName
from .template import Endpoint

MAX_PAGE = 1 << 20  # bytes of one discovery page


@dataclass(frozen=True)
class Discovery:
    app: AppName
    endpoints: tuple[Endpoint, ...]  # best matching first-found page's, in page order
    pubkeys: tuple[str, ...]         # key URLs offered for the name (never trusted by us)
    page: str                        # the page the endpoints came from
    attempts: tuple[str, ...]        # pages that gave nothing, and why
    skipped: tuple[str, ...]         # templates skipped or refused on the pages read


def prefixes(name: str) -> list[str]:
    """`a/b/c` -> [`a/b/c`, `a/b`, `a`]: the discovery walk, longest first."""
    parts = name.split("/")
    return ["/".join(parts[:end]) for end in range(len(parts), 0, -1)]


def _page(client: Client, prefix: str, notes: list[str]) -> Page | None:
    url = f"https://{prefix}?ac-discovery=1"
    try:
        return client.page(url, limit=MAX_PAGE)
    except Unreachable as exc:
        if not client.insecure_http:
            raise
        try:
            return client.page(f"http://{prefix}?ac-discovery=1", limit=MAX_PAGE)
        except Unreachable as plain:
            raise Unreachable(f"{exc.message}; over http: {plain.message}",
                              file=url) from None
    except (RefusedURL, LimitError) as exc:
        notes.append(f"{url}: {exc.message}")
        return None


def discover(client: Client, app: AppName) -> Discovery:
    """The endpoints for `app`; SourceUnreadableError naming every failed step if none."""
    values = app.template_vars()
    attempts: list[str] = []  # pages that gave nothing
    skipped: list[str] = []   # templates not used
    trail: list[str] = []     # both, in the order met, for the error when nothing is found
    keys: list[str] = []
    for prefix in prefixes(app.name):
        page = _page(client, prefix, attempts)
        if page is not None and page.status != 200:
            attempts.append(f"{page.url}: HTTP {page.status}")
            page = None
        if page is None:
            trail.append(attempts[-1])
            continue
        metas = meta.parse(page.body)
        keys += [k for k in template.pubkeys(metas, app.name) if k not in keys]
        found, notes = template.endpoints(metas, app.name, values,
                                          insecure_http=client.insecure_http)
        notes = [f"{page.url}: {n}" for n in notes]
        skipped += notes
        trail += notes
        if found:
            return Discovery(app=app, endpoints=tuple(found), pubkeys=tuple(keys),
                             page=page.url, attempts=tuple(attempts), skipped=tuple(skipped))
        if not notes:
            attempts.append(f"{page.url}: no ac-discovery tag for {app.name}")
            trail.append(attempts[-1])
    raise SourceUnreadableError("discovery found no image: " + "; ".join(trail),
                                file=str(app))
