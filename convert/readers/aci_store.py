"""Resolving ACI dependencies from `--store` directories, as rkt's store does (aci.md §3.1).

- With an `imageID`, the image is found by ID alone: any unique prefix of at least
  `sha512-` + 2 hex digits (rkt's `ResolveKey`); name and labels are then not consulted.
- Without one, by exact name plus every requested label with an identical value (extra labels
  on the candidate are fine), as rkt's `GetACI`.
- Several distinct images matching is an error: rkt would pick the newest import, which a file
  store cannot know.

Hashing a whole store is expensive, so IDs are computed lazily: first for files whose manifest
names the wanted image, and for the rest only if that did not settle it.

The store reads its files through the `aci.AciFiles` it is given, the same one that opened the
image whose dependencies it resolves: one expansion limit for the whole chain.

A file that cannot be read (a compression bomb past that limit, a corrupt or truncated archive,
a FIFO named `.aci`) is not an image of the store, as an image rkt could not import is not in
rkt's: resolution goes on among the readable files, in any order of the files. What it must not
do is hide the file when the dependency then goes unresolved, since it may be the very image
asked for. So:
- A dependency found among readable files resolves silently, whatever else could not be read:
  the readable match is the answer rkt would give, and a conversion should not fail over an
  unrelated broken file in a shared store (the library has no warning channel from here).
- A dependency not found names the files that could not be read and may hold it, and why (at
  most `_LISTED` of them): for a name, the matching files and those whose manifest could not be
  read; for an imageID, every unreadable file, since an ID ignores names.
- When exactly one file could be it and its manifest names the dependency, its own error is
  raised instead (`store/base.aci::rootfs/zeros: decompressed size exceeds…`), as when it is
  the one match by name: that file is what the user must fix, and the error's file and entry
  are then its own.
"""

from __future__ import annotations

import os

from ..errors import AciociError, ResolutionError, SourceUnreadableError
from . import aci, aci_manifest

_MIN_ID = len("sha512-") + 2
_LISTED = 3  # unreadable files an unresolved dependency names, at most


class AciStore:
    def __init__(self, dirs: list[str], acis: aci.AciFiles) -> None:
        self.acis = acis
        self.files: list[str] = []
        for d in dirs:
            if not os.path.isdir(d):
                raise SourceUnreadableError("store is not a directory", file=d)
            for root, subdirs, names in os.walk(d, followlinks=False):
                subdirs.sort()
                self.files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".aci")]
        self._heads: dict[str, tuple[str, dict[str, str]] | None] = {}
        self._scans: dict[str, aci.ScanResult] = {}
        # files that could not be read, with why; each is read (up to the limit) once only
        self.skipped: dict[str, AciociError] = {}

    def _head(self, path: str) -> tuple[str, dict[str, str]] | None:
        """(name, labels) from the manifest, or None for a file that is not a usable ACI."""
        if path not in self._heads:
            try:
                doc, _ = aci_manifest.parse(self.acis.find_manifest(path), file=path)
                self._heads[path] = (doc["name"], dict(aci_manifest.pairs(doc.get("labels"))))
            except AciociError as exc:
                self._heads[path] = None
                self.skipped[path] = exc
        return self._heads[path]

    def scan(self, path: str) -> aci.ScanResult:
        if path not in self._scans:
            self._scans[path] = self.acis.scan(path)
        return self._scans[path]

    def _ids(self, paths) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in paths:
            if self._head(p) is None or p in self.skipped:
                continue
            try:
                out.setdefault(self.scan(p).image_id, []).append(p)
            except AciociError as exc:
                self.skipped[p] = exc
        return out

    def resolve(self, dep: dict, *, needed_by: str, pointer: str) -> aci.ScanResult:
        name = dep["imageName"]
        entry = f"manifest#{pointer}"
        want_id = dep.get("imageID")
        if want_id:
            if len(want_id) < _MIN_ID:
                raise ResolutionError(f"imageID {want_id!r} is too short to match (need at least "
                                      "sha512- and 2 hex digits)", file=needed_by, entry=entry)
            named = [p for p in self.files if (self._head(p) or ("",))[0] == name]
            by_id = {i: ps for i, ps in self._ids(named).items() if i.startswith(want_id)}
            if len(by_id) != 1:
                by_id = {i: ps for i, ps in self._ids(self.files).items() if i.startswith(want_id)}
            if not by_id:
                same = self._ids(named)
                unreadable = [p for p in self.files if p in self.skipped]
                if not same:
                    self._raise_if_only(unreadable, named)
                hint = ""
                if same:
                    found = ", ".join(f"{ps[0]} is {i[:23]}…" for i, ps in sorted(same.items()))
                    hint = f"; an image named {name} exists but its ID differs ({found})"
                raise ResolutionError(
                    f"dependency {name} with imageID {want_id} is not in the store{hint}"
                    + self._where(unreadable), file=needed_by, entry=entry, expected=want_id,
                    actual=next(iter(same), None) if same else None,
                    hint_option=self._hints(unreadable))
            if len(by_id) > 1:
                raise ResolutionError(
                    f"imageID prefix {want_id} is ambiguous: "
                    + ", ".join(f"{ps[0]} ({i[:23]}…)" for i, ps in sorted(by_id.items())),
                    file=needed_by, entry=entry)
            return self.scan(next(iter(by_id.values()))[0])
        labels = dict(aci_manifest.pairs(dep.get("labels")))
        matches = []
        for p in self.files:
            head = self._head(p)
            if head and head[0] == name and all(head[1].get(k) == v for k, v in labels.items()):
                matches.append(p)
        distinct = self._ids(matches)
        if not distinct:  # no file names it, or none of those that do can be read
            unreadable = [p for p in self.files if p in self.skipped
                          and (p in matches or self._head(p) is None)]
            self._raise_if_only(unreadable, matches)
            want = name + "".join(f" {k}={v}" for k, v in sorted(labels.items()))
            raise ResolutionError(f"dependency {want} is not in the store"
                                  + self._where(unreadable), file=needed_by, entry=entry,
                                  hint_option=self._hints(unreadable))
        if len(distinct) > 1:
            raise ResolutionError(
                f"dependency {name} is ambiguous: it matches "
                + ", ".join(sorted(ps[0] for ps in distinct.values()))
                + "; pin it with an imageID or more labels", file=needed_by, entry=entry)
        return self.scan(next(iter(distinct.values()))[0])

    def _raise_if_only(self, unreadable: list[str], named: list[str]) -> None:
        """The error of the one file that could have been the dependency, when its manifest
        names the dependency (see the module docstring)."""
        if len(unreadable) == 1 and unreadable == named:
            raise self.skipped[unreadable[0]]

    def _hints(self, unreadable: list[str]) -> tuple[str, ...]:
        """The store, and the options that bear on why the files listed could not be read
        (the expansion limit, for a bomb)."""
        hints = ["store"]
        for p in unreadable[:_LISTED]:
            hints += [h for h in self.skipped[p].hint_option if h not in hints]
        return tuple(hints)

    def _where(self, unreadable: list[str] = ()) -> str:
        if not self.files:
            return " (no store given, or it holds no .aci files)"
        why = ""
        if unreadable:
            shown = "; ".join(str(self.skipped[p]) for p in unreadable[:_LISTED])
            more = len(unreadable) - _LISTED
            why = (f"; {len(unreadable)} could not be read and may hold it: {shown}"
                   + (f"; and {more} more" if more > 0 else ""))
        return f" (searched {len(self.files)} .aci files{why})"
