"""OCI layer semantics: apply layers with whiteouts into one filesystem tree (oci.md §5).

Two passes over each layer, never holding file data: the index pass reads headers and builds a
tree of paths (memory grows with the number of paths, never with bytes); the write pass streams
the layers again and emits what survived.

Rules, as umoci applies them:
- `.wh.NAME` removes NAME (and its subtree) and `.wh..wh..opq` removes every child of its
  directory, from *lower* layers only: a layer's whiteouts are applied before its own entries,
  whatever their position in the tar, so a path re-added in the same layer survives.
- Other `.wh..wh.*` names are AUFS metadata and are dropped; a bare `.wh.` is an error.
- An entry replaces what was at its path, except that a directory over a directory only updates
  the attributes; a non-directory replacing a directory drops its subtree.
- Parent components are resolved through symlinks already in the tree, confined to the root
  (layer 1 `lib -> usr/lib`, layer 2 `lib/x.so` lands at `usr/lib/x.so`); a missing parent is
  created as a 0755 root directory with mtime 0. `..` is taken by name (`f/..` is where `f`
  is, whatever `f` is); a parent that is not a directory is an error, as it is to umoci.
- A hardlink binds its name to the node currently at its target: later replacing either name
  leaves the other with the old content. If the original name of some content is gone at the
  end, the content is written under the first surviving name and the other names link to it.

Output order: the root entry (if a layer carried `./`), every directory sorted parents first,
then the non-directories layer by layer in archive order, each content followed by its links.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from .errors import FormatError
from .graph import HistoryEntry, Image, Layer, stream
from .tarstream import Entry

WH = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_LINK_HOPS = 40
_KIND_NAMES = {"file": "regular file", "char": "character device", "block": "block device"}


class Inode:
    """Content: the (layer, ordinal) of the entry that carries it."""

    __slots__ = ("layer", "ordinal", "path")

    def __init__(self, layer: int, ordinal: int, path: str) -> None:
        self.layer, self.ordinal, self.path = layer, ordinal, path


class Node:
    __slots__ = ("kind", "children", "inode", "meta", "link", "bound")

    def __init__(self, kind: str, *, inode: Inode | None = None, meta: Entry | None = None,
                 link: str = "", bound: tuple[int, int] = (-1, -1)) -> None:
        self.kind = kind
        self.children: dict[str, Node] | None = {} if kind == "dir" else None
        self.inode = inode
        self.meta = meta  # directories: the header that set their attributes (None: synthetic)
        self.link = link  # symlinks: the target
        # (layer, ordinal) of the entry that put this name here (ordinal -1: a synthesised
        # parent directory); what --layered writes into each layer's ACI
        self.bound = bound


def _strip(entry: Entry) -> Entry:
    e = replace(entry)
    e.data = None
    return e


class Tree:
    def __init__(self) -> None:
        self.root = Node("dir")
        self.root_meta: Entry | None = None
        self.layer = 0  # the layer being applied, for synthesised directories
        self.links: list[tuple[int, int, str, Inode]] = []  # hardlink bindings, for --layered
        self.entries: list[int] = []  # entries read per layer (inspect reports them)

    def _walk_parent(self, path: str, *, create: bool, where: str) -> tuple[Node, str, str] | None:
        """(parent node, its real path, final name) after resolving the parent components
        through symlinks, confined to the root."""
        parts = path.split("/")
        name = parts.pop()
        node, real = self.root, []
        hops = 0
        stack = list(reversed(parts))
        while stack:
            part = stack.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if real:
                    real.pop()
                node = self._lookup("/".join(real))
                continue
            child = node.children.get(part)
            if child is None:
                if not create:
                    return None
                child = Node("dir", bound=(self.layer, -1))
                node.children[part] = child
            elif child.kind == "symlink":
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise FormatError("too many levels of symbolic links", entry=where)
                target = child.link
                if target.startswith("/"):
                    real, node = [], self.root
                stack.extend(reversed([p for p in target.split("/") if p]))
                continue
            elif child.kind != "dir":
                # `f/..` is resolved by the name alone, as umoci's securejoin does, and never
                # touches `f`; anything else below a non-directory is ENOTDIR to umoci and to
                # docker: refused here, so that no file is ever turned into a directory
                while stack and stack[-1] in ("", "."):
                    stack.pop()
                if stack and stack[-1] == "..":
                    stack.pop()
                    continue
                if not create:
                    return None
                shown = "/".join([*real, part])
                what = _KIND_NAMES.get(child.kind, child.kind)
                raise FormatError(f"parent {shown!r} is a {what}, not a directory (unpacking "
                                  "fails with ENOTDIR)", entry=where)
            node = child
            real.append(part)
        return node, "/".join(real), name

    def _lookup(self, path: str) -> Node:
        node = self.root
        for part in path.split("/") if path else []:
            node = node.children[part]
        return node

    def resolve(self, path: str, where: str, *, create: bool = True):
        got = self._walk_parent(path, create=create, where=where)
        if got is None:
            return None
        parent, real, name = got
        return parent, (f"{real}/{name}" if real else name), name

    def whiteout(self, path: str, where: str) -> None:
        parent_path, _, base = path.rpartition("/")
        if base == OPAQUE:
            got = self._walk_parent(parent_path + "/x" if parent_path else "x", create=False,
                                    where=where)
            if got is not None:
                got[0].children.clear()
            return
        if base.startswith(WH + WH):
            return  # AUFS metadata
        name = base[len(WH):]
        if not name:
            raise FormatError("bare whiteout '.wh.' names nothing", entry=where)
        got = self._walk_parent(f"{parent_path}/{name}" if parent_path else name, create=False,
                                where=where)
        if got is not None:
            got[0].children.pop(got[2], None)

    def add(self, layer: int, ordinal: int, entry: Entry, where: str) -> None:
        if entry.path == "":
            if entry.kind == "dir":
                self.root_meta = _strip(entry)
            return
        parent, real, name = self.resolve(entry.path, where)
        existing = parent.children.get(name)
        if entry.kind == "dir":
            if existing is not None and existing.kind == "dir":
                existing.meta = _strip(entry)
                existing.bound = (layer, ordinal)
            else:
                parent.children[name] = Node("dir", meta=_strip(entry), bound=(layer, ordinal))
            return
        if entry.kind == "hardlink":
            got = self.resolve(entry.linkname, where, create=False)
            target = got[0].children.get(got[2]) if got else None
            if target is None or target.kind == "dir":
                what = "a directory" if target is not None else "missing"
                raise FormatError(f"hardlink target {entry.linkname!r} is {what}", entry=where)
            parent.children[name] = Node(target.kind, inode=target.inode, link=target.link,
                                         bound=(layer, ordinal))
            self.links.append((layer, ordinal, real, target.inode))
            return
        parent.children[name] = Node(entry.kind, inode=Inode(layer, ordinal, real),
                                     link=entry.linkname if entry.kind == "symlink" else "",
                                     bound=(layer, ordinal))

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Every path, parents before children, siblings sorted (deterministic output)."""
        stack = [("", self.root)]
        while stack:
            path, node = stack.pop()
            if path:
                yield path, node
            if node.children:
                for name in sorted(node.children, reverse=True):
                    stack.append((f"{path}/{name}" if path else name, node.children[name]))


def _is_whiteout(path: str) -> bool:
    return path.rpartition("/")[2].startswith(WH)


def build_tree(layers: tuple[Layer, ...], after_layer=None, *, verify: bool = False) -> Tree:
    """The index pass: apply every layer's headers to a path tree. `after_layer(index, tree)`
    is called once each layer is applied (--layered takes its snapshots there). Without
    `verify`, layers are read through `Layer.headers` where they have it: a conversion
    verifies the bytes in the pass that emits them, and hashing twice cost a third of an
    OCI -> ACI conversion."""
    tree = Tree()
    for li, layer in enumerate(layers):
        tree.layer = li
        whiteouts: list[tuple[str, str]] = []
        additions: list[tuple[int, Entry]] = []
        seen: set[str] = set()
        tree.entries.append(0)
        with (layer.open if verify else layer.headers or layer.open)() as entries:
            for ordinal, entry in enumerate(entries):
                if entry.path in seen:
                    raise FormatError("duplicate entry in one layer (OCI layers MUST NOT hold "
                                      "two entries for one path)", file=layer.source,
                                      entry=entry.path)
                seen.add(entry.path)
                tree.entries[li] += 1
                if _is_whiteout(entry.path):
                    whiteouts.append((entry.path, entry.path))
                else:
                    additions.append((ordinal, _strip(entry)))
        try:
            for path, where in whiteouts:
                tree.whiteout(path, where)
            for ordinal, entry in additions:
                tree.add(li, ordinal, entry, entry.path)
        except FormatError as exc:
            exc.file = exc.file or layer.source
            raise
        if after_layer is not None:
            after_layer(li, tree)
    return tree


def plan(tree: Tree) -> tuple[list[Entry], dict[tuple[int, int], list[str]]]:
    """Directories to write first, and per content entry (layer, ordinal) its output names
    (the first gets the content, the rest are hardlinks to it)."""
    dirs: list[Entry] = [replace(tree.root_meta, path="")] if tree.root_meta else []
    names: dict[int, tuple[Inode, list[str]]] = {}
    for path, node in tree.walk():
        if node.kind == "dir":
            meta = node.meta if node.meta is not None else Entry(path, "dir", mode=0o755)
            dirs.append(replace(meta, path=path))
        else:
            names.setdefault(id(node.inode), (node.inode, []))[1].append(path)
    content: dict[tuple[int, int], list[str]] = {}
    for inode, paths in names.values():
        if inode.path in paths:  # keep content at its own name when that survived
            paths.remove(inode.path)
            paths.insert(0, inode.path)
        content[(inode.layer, inode.ordinal)] = paths
    return dirs, content


def squash(image: Image) -> Image:
    """The image with its layers replaced by one layer holding the applied result."""
    layers = image.layers
    cache: dict[str, tuple] = {}

    def prepared():
        if "plan" not in cache:  # the index pass runs once, however often the layer is opened
            cache["plan"] = plan(build_tree(layers))
        return cache["plan"]

    def squashed():
        dirs, content = prepared()
        yield from dirs
        for li, layer in enumerate(layers):
            with layer.open() as entries:
                for ordinal, entry in enumerate(entries):
                    paths = content.get((li, ordinal))
                    if not paths:
                        continue
                    yield entry.renamed(paths[0])
                    for other in paths[1:]:
                        yield entry.hardlink_to(other, paths[0])

    history = HistoryEntry(created=image.created, author=image.author,
                           created_by=f"acioci: {len(layers)} layers squashed")
    return replace(image, layers=(Layer(open=stream(squashed), source=image.source,
                                        history=history),), rendered=True)
