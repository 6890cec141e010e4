"""The one walk over an OCI index: index.json's descriptors, nested indexes, down to manifests.

The reader (choose an image), the validator (find every problem) and layout garbage collection
(which blobs does an image reach) all walk the same tree; they differ in what they do at each
node and whether a problem stops the walk, not in how the tree is walked. So the walk is here,
once, with the guards every caller needs against a hostile layout (oci.md §1, §3.1):
- a nested index is expanded once per top-level entry, however many descriptors point at it
  (a fan-out of 4 children on each of 12 levels, all naming the same next index, is 12 loads,
  not 4^12);
- a cycle is an index that names one of its own ancestors, and says so; a deep but acyclic
  chain is "nested too deeply", not a cycle;
- the number of descriptors visited is capped.
What a problem does is the caller's `problems` policy: `Raise` stops with a FormatError, the
validator's report collects it and the walk goes on past the broken node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from ..errors import FormatError
from .mediatypes import INDEX_TYPES, MANIFEST_TYPES

MAX_DEPTH = 16            # nested indexes below index.json
MAX_DESCRIPTORS = 100_000  # descriptors visited in one walk


class Problems(Protocol):
    def error(self, rule: str, place: str, message: str, expected=None, actual=None): ...

    def warn(self, rule: str, place: str, message: str, expected=None, actual=None): ...


class Raise:
    """A policy that stops at the first error (readers); warnings are dropped."""

    def __init__(self, where: str) -> None:
        self.where = where

    def error(self, rule: str, place: str, message: str, expected=None, actual=None):
        raise FormatError(message, file=self.where, entry=place, expected=expected,
                          actual=actual)

    def warn(self, rule: str, place: str, message: str, expected=None, actual=None):
        return None


@dataclass(frozen=True)
class Visit:
    """One descriptor met on the walk: `kind` is "index", "manifest" or "other" (a media type
    the walk does not descend into, which the spec says to skip); `root` is the position of the
    index.json entry it hangs from."""

    desc: dict
    place: str
    kind: str
    root: int


def kind_of(desc: dict) -> str:
    mt = desc.get("mediaType")
    return "index" if mt in INDEX_TYPES else "manifest" if mt in MANIFEST_TYPES else "other"


def walk(roots: list, load_index: Callable[[Visit], "dict | None"], problems: Problems,
         place: str = "index.json#/manifests") -> Iterator[Visit]:
    """Every descriptor reachable from `roots` (index.json's `manifests`), parents first.
    `load_index(visit)` returns a nested index's document (None when it could not, having
    reported why); the walk descends into its `manifests`."""
    count = 0
    for pos, desc in enumerate(roots):
        expanded: set[str] = set()

        def visit(desc, here: str, path: tuple) -> Iterator[Visit]:
            nonlocal count
            count += 1
            if count > MAX_DESCRIPTORS:
                problems.error("oci.index.too-many", here,
                               f"more than {MAX_DESCRIPTORS} descriptors; not walked further")
                return
            if not isinstance(desc, dict):
                return  # the index's schema says what is wrong with it
            v = Visit(desc, here, kind_of(desc), pos)
            yield v
            if v.kind != "index":
                return
            digest = desc.get("digest")
            if digest in path:
                problems.error("oci.index.cycle", here,
                               f"index {digest} refers back to itself (cycle)")
                return
            if len(path) >= MAX_DEPTH:
                problems.error("oci.index.depth", here,
                               f"indexes nested more than {MAX_DEPTH} deep")
                return
            if digest in expanded:
                return  # its subtree was walked already from this entry
            expanded.add(digest)
            doc = load_index(v)
            if not isinstance(doc, dict):
                return
            children = doc.get("manifests") or []
            for i, sub in enumerate(children if isinstance(children, list) else []):
                yield from visit(sub, f"{_blob_place(digest)}#/manifests/{i}", path + (digest,))

        yield from visit(desc, f"{place}/{pos}", ())
        if count > MAX_DESCRIPTORS:
            return


def _blob_place(digest) -> str:
    alg, _, hexpart = str(digest).partition(":")
    return f"blobs/{alg}/{hexpart}"
