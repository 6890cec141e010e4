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

from .spec import vocabulary
from .errors import FormatError
from .graph import HistoryEntry, Image, Layer, Pending, RuntimeConfig, stream
from .tarstream import Entry

WH = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_LINK_HOPS = 40
# Files the index pass keeps the data of (the user database, see `account_files`): kept when
# named so and no larger than this, and while the kept total stays under ACCOUNT_BUDGET, so an
# image of many files named `group` cannot grow memory.
ACCOUNT_FILES = ("etc/passwd", "etc/group")
ACCOUNT_FILE_MAX = 1 << 20
ACCOUNT_BUDGET = 4 << 20
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
        # data of the entries that may end up as ACCOUNT_FILES, by (layer, ordinal)
        self.kept: dict[tuple[int, int], bytes] = {}
        self.kept_bytes = 0

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

    def keep(self, layer: int, ordinal: int, entry: Entry) -> None:
        """Keep the data of an entry that may end up as one of ACCOUNT_FILES. Its path is
        resolved only after the layer (symlinked parents, whiteouts), so every small regular
        file with the right base name is kept, within the budget."""
        base = entry.path.rpartition("/")[2]
        if entry.kind != "file" or entry.size > ACCOUNT_FILE_MAX or entry.data is None \
                or base not in ("passwd", "group"):
            return
        if self.kept_bytes + entry.size > ACCOUNT_BUDGET:
            return
        self.kept[(layer, ordinal)] = _read_all(entry)
        self.kept_bytes += entry.size

    def locate_file(self, path: str) -> tuple[int, int] | None:
        """(layer, ordinal) of the entry whose content the regular file at `path` has in the
        applied tree, symlinks followed inside the root; None if there is no such file."""
        for _ in range(MAX_LINK_HOPS):
            try:
                got = self.resolve(path, path, create=False)
            except FormatError:
                return None
            node = got[0].children.get(got[2]) if got else None
            if node is None or node.kind not in ("file", "symlink"):
                return None
            if node.kind == "file":
                return node.inode.layer, node.inode.ordinal
            parent = got[1].rpartition("/")[0]
            target = node.link
            path = target.lstrip("/") if target.startswith("/") else \
                (f"{parent}/{target}" if parent else target)
        return None

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
                    tree.keep(li, ordinal, entry)
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


def account_files(tree: Tree, layers: tuple[Layer, ...]) -> tuple[bytes | None, bytes | None]:
    """The data of /etc/passwd and /etc/group in the applied tree (None: absent, or larger
    than ACCOUNT_FILE_MAX). The index pass kept them when they are named so; a file reached
    through a symlink to another name (rare) costs a read of its layer up to that entry."""
    out = []
    for path in ACCOUNT_FILES:
        where = tree.locate_file(path)
        data = None if where is None else tree.kept.get(where)
        if where is not None and data is None:
            layer = layers[where[0]]
            with (layer.headers or layer.open)() as entries:
                for ordinal, entry in enumerate(entries):
                    if ordinal == where[1]:
                        if entry.size <= ACCOUNT_FILE_MAX:
                            data = _read_all(entry)
                        break
        out.append(data)
    return out[0], out[1]


def _read_all(entry: Entry) -> bytes:
    chunks, left = [], entry.size
    while left > 0:
        chunk = entry.data.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


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


def with_primary_group(config: RuntimeConfig | None, accounts) -> RuntimeConfig | None:
    """`config` with its `primary_group` from the (passwd, group) data `accounts()` returns,
    when its OCI User names no group (`u` or `u:`); unchanged otherwise. Pending: computed
    only if a writer asks (the ACI writer, which must name a group)."""
    if config is None or not config.user or config.group is not None \
            or config.user.partition(":")[2]:
        return config
    user = config.user
    return replace(config,
                   primary_group=Pending(lambda: vocabulary.primary_group(user, *accounts())))


def squash(image: Image) -> Image:
    """The image with its layers replaced by one layer holding the applied result. The user
    database of the result is read in the same index pass (`with_primary_group`)."""
    layers = image.layers
    cache: dict[str, tuple] = {}

    def prepared():
        if "plan" not in cache:  # the index pass runs once, however often the layer is opened
            tree = build_tree(layers)
            cache["accounts"] = account_files(tree, layers)
            cache["plan"] = plan(tree)
        return cache["plan"]

    def accounts():
        prepared()
        return cache["accounts"]

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
                                        history=history),), rendered=True,
                   config=with_primary_group(image.config, accounts))
