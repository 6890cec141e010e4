"""appc rendering: an ACI dependency graph into an ordered stack of layers (aci.md §3).

Order: appc's `createDepList` (§3.2): the top image first, each image's dependencies inserted
directly after it, so later dependencies take precedence over earlier ones and an image's own
dependencies sit just beneath it. The first image in the list that provides a path wins.

Which entries survive (§3.3, `getACIFiles`), per image in list order:
1. a non-directory not in the image's own non-empty `pathWhitelist` is dropped;
2. a path not in the inherited whitelist `up`, when there is one, is dropped (directories too);
3. a path an upper image already claimed is dropped; so is anything below a path an upper image
   claimed as a non-directory (an upper symlink hides a lower subtree; links are never followed).

The inherited whitelist has two readings (`WhitelistMode`):
- `rkt` (default): exactly `getUpperPWLM`, the whitelist of the top-most ancestor that has one,
  including its quirk that a preceding sibling's subtree can pass for ancestors
  (`A→[B, C(wl)]`, `C→[D]` gives list `A C D B` and B inherits C's whitelist). This is what rkt
  ran, so a migrated image behaves as it did.
- `spec`: the spec's intent, the intersection of the whitelists of every real ancestor.

Output: one layer per list element, bottom (last) first. Each layer holds exactly the entries
that element claimed, and its own entry for a directory an upper element also has (applied
later, the upper entry wins on unpack; this keeps a base ACI's layer the same bytes alone and in
a chain). No other path is in two layers and no whiteouts are needed: what a whitelist removes
from a lower image is simply never written. A whiteout could not express
appc's rule anyway, since an image's own whitelist also filters its own files. A layer that
holds all of its image's entries, as the image alone renders them, keeps `Layer.whole_file`
(the file it is read from), which a push's layer memo keys on; any filtering leaves it None.

Deliberate differences from rkt, each deterministic and documented in the README:
- Parent directories that no image provides (filtered away, or never present) are written as
  explicit 0755 root-owned directories with mtime 0; rkt creates them at render time.
- A hardlink whose target was dropped (whitelist or override) becomes a regular file under the
  first surviving link name, and later links point there (docker2aci's squash rule); rkt fails
  on a missing target, or links to whatever upper file replaced it.
- A lower non-directory where an upper image needs a directory (upper `/lib/x`, lower symlink
  `/lib`) is dropped instead of making extraction fail.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Iterator

from .errors import LimitError
from .graph import HistoryEntry, Image, Layer, stream
from .spec.vocabulary import ANN_IMAGE_ID, ANN_NAME
from .tarstream import Entry

MAX_ELEMENTS = 10_000  # diamond-heavy graphs expand exponentially in appc's list


class WhitelistMode(str, Enum):
    rkt = "rkt"
    spec = "spec"


@dataclass
class Element:
    """One position of the appc dependency list; an image may occupy several."""

    image: Image
    level: int
    parent: "Element | None"


def dependency_list(top: Image) -> list[Element]:
    out = [Element(top, 0, None)]
    k = 0
    while k < len(out):
        el = out[k]
        for dep in el.image.dependencies:
            out.insert(k + 1, Element(dep.image, el.level + 1, el))
            if len(out) > MAX_ELEMENTS:
                raise LimitError(f"dependency graph expands to more than {MAX_ELEMENTS} images",
                                 file=top.source)
        k += 1
    return out


def _wl(image: Image) -> frozenset[str] | None:
    """Whitelist entries as our relative paths, matched as Go's filepath.Join("rootfs", p)."""
    if not image.path_whitelist:
        return None
    keys = set()
    for p in image.path_whitelist:
        cleaned = posixpath.normpath("rootfs/" + p)
        if cleaned.startswith("rootfs/"):
            keys.add(cleaned[len("rootfs/"):])
    return frozenset(keys)


def inherited_whitelist(elements: list[Element], pos: int, mode: WhitelistMode):
    if mode is WhitelistMode.rkt:
        up = None
        cur = elements[pos].level
        for i in range(pos, -1, -1):
            el = elements[i]
            if el.level < cur and el.image.path_whitelist:
                up = _wl(el.image)
            cur = el.level
        return up
    up = None
    anc = elements[pos].parent
    while anc is not None:
        wl = _wl(anc.image)
        if wl is not None:
            up = wl if up is None else up & wl
        anc = anc.parent
    return up


@dataclass
class Claims:
    """Who provides each path: element position and entry kind. Memory grows with the number of
    paths, never with bytes."""

    owner: dict[str, tuple[int, str]]
    # per element: dropped hardlink target -> the first surviving link that materialises it
    materialise: list[dict[str, str]]
    # per element: hardlink path -> its ultimate (non-link) target inside the same image
    link_root: list[dict[str, str]]
    # per element: directories an upper element claims that this one has too. With a layer per
    # element, each layer writes its own entry for them (the upper one is applied later and
    # wins on unpack, as rkt's rendering does), so that an ACI's layer is the same bytes alone
    # or as the base of a chain and a registry or shared layout stores it once. Empty when
    # squashing into one layer, where a path appears once.
    shared_dirs: list[set[str]] = field(default_factory=list)


def claim(elements: list[Element], mode: WhitelistMode) -> Claims:
    owner: dict[str, tuple[int, str]] = {}
    implied: set[str] = set()
    materialise: list[dict[str, str]] = []
    link_root: list[dict[str, str]] = []
    shared: list[set[str]] = []
    for i, el in enumerate(elements):
        own = _wl(el.image)
        up = inherited_whitelist(elements, i, mode)
        mat: dict[str, str] = {}
        roots: dict[str, str] = {}
        dirs: set[str] = set()
        index = el.image.layers[0].index or ()
        for path, kind, link in index:
            if kind == "hardlink":
                roots[path] = roots.get(link, link)
            if kind != "dir" and own is not None and path not in own:
                continue
            if up is not None and path not in up:
                continue
            if path in owner:
                if kind == "dir" and owner[path][1] == "dir" and \
                        not _hidden_by_upper(path, owner):
                    dirs.add(path)
                continue
            if _hidden_by_upper(path, owner):
                continue
            if kind != "dir" and path in implied:
                continue
            owner[path] = (i, kind)
            parent = path.rpartition("/")[0]
            while parent and parent not in implied:
                implied.add(parent)
                parent = parent.rpartition("/")[0]
            if kind == "hardlink":
                target = roots[path]
                if owner.get(target, (None,))[0] != i and target not in mat:
                    mat[target] = path
        materialise.append(mat)
        link_root.append(roots)
        shared.append(dirs)
    return Claims(owner, materialise, link_root, shared)


def _hidden_by_upper(path: str, owner: dict[str, tuple[int, str]]) -> bool:
    parent = path.rpartition("/")[0]
    while parent:
        got = owner.get(parent)
        if got is not None and got[1] != "dir":
            return True
        parent = parent.rpartition("/")[0]
    return False


def _synthetic_dir(path: str) -> Entry:
    return Entry(path=path, kind="dir", mode=0o755)


def _emitted_names(pos: int, index, claims: Claims) -> Iterator[tuple[str, str]]:
    """(name, kind) of what element `pos` writes, in stream order, from the index alone."""
    owner, mat, shared = claims.owner, claims.materialise[pos], claims.shared_dirs[pos]
    for path, kind, _ in index:
        got = owner.get(path)
        if got is None or got[0] != pos:
            if path in mat and kind != "hardlink":
                yield mat[path], kind
            elif kind == "dir" and path in shared:
                yield path, kind
            continue
        if kind == "hardlink" and mat.get(claims.link_root[pos].get(path, "")) == path:
            continue  # already written as the materialised file
        yield path, kind


def plan_parents(elements: list[Element], claims: Claims,
                 squash: bool) -> list[dict[str, tuple[str, ...]]]:
    """For each element, the directories to synthesise right before a given entry.

    Computed from the indexes before any byte is written, so every layer can be reopened and
    gives the same entries. A directory is synthesised when no layer at or below the current
    one provides it: a claimed directory counts only if its owner writes it in this layer or a
    lower one (with one layer per element: the owner is this element or a lower one).
    """
    present: set[str] = set()
    plans: list[dict[str, tuple[str, ...]]] = [{} for _ in elements]
    for pos in range(len(elements) - 1, -1, -1):
        index = elements[pos].image.layers[0].index or ()
        for name, kind in _emitted_names(pos, index, claims):
            missing = []
            parent = name.rpartition("/")[0]
            while parent and parent not in present:
                got = claims.owner.get(parent)
                if not (got and got[1] == "dir" and (squash or got[0] >= pos
                                                     or parent in claims.shared_dirs[pos])):
                    missing.append(parent)
                present.add(parent)
                parent = parent.rpartition("/")[0]
            if kind == "dir":
                present.add(name)
            if missing:
                plans[pos][name] = tuple(reversed(missing))
    return plans


def _renders_alone(elements: list[Element], pos: int, claims: Claims,
                   plans: list[dict[str, tuple[str, ...]]]) -> bool:
    """Whether element `pos`'s layer holds the very entries its image's layer has when the
    image is converted alone (then the layer is the same blob, and a push may reuse what it
    learnt of that blob: `Layer.whole_file`). Decided from the indexes: every entry the image
    has is written (claimed by this element, or a directory an upper one shares), no
    hardlink is materialised or pointed elsewhere, and the parents synthesised are those the
    image alone gets. An image with a whitelist of its own is never counted whole (it filters
    itself): the memo then misses, which costs only an encoding."""
    image = elements[pos].image
    index = image.layers[0].index
    if index is None or image.path_whitelist or claims.materialise[pos]:
        return False
    alone = [Element(image, 0, None)]
    alone_claims = claim(alone, WhitelistMode.rkt)
    if alone_claims.materialise[0]:
        return False
    owner, shared, roots = claims.owner, claims.shared_dirs[pos], claims.link_root[pos]
    for path, kind, _ in index:
        got = owner.get(path)
        if got is None or got[0] != pos:
            if not (kind == "dir" and path in shared):
                return False
        elif kind == "hardlink" and owner.get(roots.get(path, ""), (None,))[0] != pos:
            return False
    return list(_emitted_names(pos, index, claims)) == \
        list(_emitted_names(0, index, alone_claims)) and \
        plans[pos] == plan_parents(alone, alone_claims, False)[0]


def _layer_entries(pos: int, stream: Iterator[Entry], claims: Claims,
                   before: dict[str, tuple[str, ...]]) -> Iterator[Entry]:
    """Turn one element's stream into the entries its layer holds."""
    owner = claims.owner
    mat = claims.materialise[pos]
    roots = claims.link_root[pos]
    shared = claims.shared_dirs[pos]
    for entry in stream:
        p = entry.path
        got = owner.get(p)
        if got is None or got[0] != pos:
            first = mat.get(p)
            if first is not None and entry.kind != "hardlink":
                yield from map(_synthetic_dir, before.get(first, ()))
                yield entry.renamed(first)
            elif entry.kind == "dir" and p in shared:
                yield from map(_synthetic_dir, before.get(p, ()))
                yield entry
            continue
        if entry.kind == "hardlink":
            target = roots.get(p, entry.linkname)
            if owner.get(target, (None,))[0] == pos:
                entry = entry.renamed(p, linkname=target)
            elif mat.get(target) != p:
                entry = entry.renamed(p, linkname=mat[target])
            else:
                continue
        yield from map(_synthetic_dir, before.get(p, ()))
        yield entry


def _layer_annotations(img: Image) -> tuple[tuple[str, object], ...]:
    """Which ACI a layer came from (no ID when the ACIs were read without, `record_id`)."""
    ids = ((ANN_IMAGE_ID, img.image_id),) if img.image_id is not None else ()
    return ids + ((ANN_NAME, img.name),)


def _history(img: Image) -> HistoryEntry:
    what = img.name + (f":{img.version}" if img.version else "")
    return HistoryEntry(created=img.created, author=img.author,
                        created_by=f"acioci: ACI {what}", comment=img.image_id)


class OutOfOrder(Exception):
    """A one-pass rendering synthesised a parent directory that the archive provides after
    all, further on. Only the complete index could have told (`plan_parents`): `one_pass`
    indexes the image (`with_index`) and renders again; nothing written so far is kept."""


def _in_archive_order(layer: Layer):
    """The entries of a lone image without a whitelist, which rendering leaves as they are but
    for the parent directories it synthesises. Which parents to synthesise is known without an
    index when an archive lists directories ahead of their contents, as tar writers do, or not
    at all: a parent not seen yet is synthesised at once, as `plan_parents` would, and if the
    archive brings that directory later the rendering starts over with the index
    (`OutOfOrder`). Hardlink chains point at their first target, as `_layer_entries` writes
    them."""

    def entries():
        present: set[str] = set()
        synthesised: set[str] = set()
        roots: dict[str, str] = {}
        with layer.open() as source:
            for entry in source:
                path = entry.path
                if path in synthesised:
                    raise OutOfOrder(path)
                parent = path.rpartition("/")[0]
                if parent and parent not in present:
                    missing = []
                    while parent and parent not in present:
                        missing.append(parent)
                        present.add(parent)
                        parent = parent.rpartition("/")[0]
                    synthesised.update(missing)
                    yield from map(_synthetic_dir, reversed(missing))
                if entry.kind == "dir":
                    present.add(path)
                elif entry.kind == "hardlink":
                    target = roots[path] = roots.get(entry.linkname, entry.linkname)
                    if target != entry.linkname:
                        entry = entry.renamed(path, linkname=target)
                yield entry

    return stream(entries)


def with_index(top: Image) -> Image:
    """`top` with the index of its own layer taken by a pass over it, for when the reader did
    not pay for one (see `OutOfOrder`)."""
    layer = top.layers[0]
    with layer.open() as source:
        index = tuple((e.path, e.kind, e.linkname) for e in source)
    return replace(top, layers=(replace(layer, index=index),) + top.layers[1:])


def render(top: Image, *, mode: WhitelistMode = WhitelistMode.rkt, squash: bool = False) -> Image:
    """The image with `layers` replaced by the rendered stack (bottom first); `dependencies`
    stay as provenance for the writer to record. Marks the result `rendered`.

    An image with no dependencies, no whitelist and no index (read once, see readers/aci)
    renders in archive order with no planning; it may raise `OutOfOrder` while streaming."""
    elements = dependency_list(top)
    order = list(range(len(elements) - 1, -1, -1))  # bottom first
    if len(elements) == 1 and top.layers[0].index is None and not top.path_whitelist:
        whole = [True]  # a lone image's entries, as they are

        def opener(positions: list[int]):
            return _in_archive_order(top.layers[0])
    else:
        claims = claim(elements, mode)
        if squash:  # one layer: a path is written once, by its owner
            claims.shared_dirs = [set() for _ in elements]
        plans = plan_parents(elements, claims, squash)

        def opener(positions: list[int]):
            def entries():
                for pos in positions:
                    with elements[pos].image.layers[0].open() as source:
                        yield from _layer_entries(pos, source, claims, plans[pos])

            return stream(entries)

        whole = [not squash and _renders_alone(elements, pos, claims, plans)
                 for pos in range(len(elements))]
    if squash:
        layers = (Layer(open=opener(order), source=top.source,
                        history=HistoryEntry(created=top.created, author=top.author,
                                             created_by="acioci: squashed ACI rendering",
                                             comment=top.image_id)),)
    else:
        layers = tuple(
            Layer(open=opener([pos]), source=elements[pos].image.source,
                  annotations=_layer_annotations(elements[pos].image),
                  history=_history(elements[pos].image),
                  whole_file=elements[pos].image.layers[0].whole_file if whole[pos] else None)
            for pos in order)
    return replace(top, layers=layers, rendered=True)
