"""OCI layers into a chain of ACIs, one per layer (`--layered`), that appc renders exactly as
the squashed rootfs (aci.md §3, §6.10).

ACI k holds what layer k put in the tree (names resolved through symlinked parents, duplicates
reduced to the last, whiteouts gone) and depends on ACI k-1 by imageID. Its pathWhitelist is
cumulative: every path that exists once layers 0..k are applied. Rendering ACI k with appc's
rules (the top-most whitelist filters every lower image; the upper image wins a path) then gives
the filesystem as of layer k, so every ACI of the chain is itself a usable image, and the top one
gives the squashed rootfs.

Hardlinks cannot cross ACIs (rkt extracts upper images first, so a link into a lower image finds
no target). A link stays a link only when its content sits in the same layer under a name that
still holds it at the end; otherwise it is written as a copy of the content, fetched from the
layer that holds it. The squashed output keeps those links; this is the one way --layered
differs from it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace

from .errors import FormatError
from .graph import Image, Layer, stream
from .squash import Inode, Tree, account_files, build_tree, with_primary_group
from .tarstream import Entry


@dataclass
class _Plan:
    whitelist: list[str]
    dirs: list[Entry]
    actions: dict[int, list[list]] = field(default_factory=dict)


def _snapshot(li: int, tree: Tree, plans: list[_Plan], where: str) -> None:
    whitelist, dirs, actions = [], [], {}
    for path, node in tree.walk():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError(f"path {path!r} is not UTF-8 and cannot be listed in a "
                              "pathWhitelist; use squashed output", file=where) from None
        whitelist.append("/" + path)
        if node.bound[0] != li:
            continue
        if node.kind == "dir":
            meta = node.meta if node.meta is not None else Entry(path, "dir", mode=0o755)
            dirs.append(replace(meta, path=path))
        elif node.bound == (node.inode.layer, node.inode.ordinal):
            actions.setdefault(node.bound[1], []).append(["content", path])
        else:
            actions.setdefault(node.bound[1], []).append(["link?", path, node.inode])
    plans.append(_Plan(whitelist or ["/"], dirs, actions))


def _intact(tree: Tree) -> set[int]:
    """Inodes whose content entry still sits under its own name at the end."""
    out = set()
    for path, node in tree.walk():
        if node.kind != "dir" and node.inode.path == path \
                and node.bound == (node.inode.layer, node.inode.ordinal):
            out.add(id(node.inode))
    return out


def layer_images(image: Image, name: str) -> list[Image]:
    """The chain, bottom first; the last image is the top, with the app."""
    plans: list[_Plan] = []
    tree = build_tree(image.layers, lambda li, t: _snapshot(li, t, plans, image.source))
    intact = _intact(tree)
    accounts = account_files(tree, image.layers)  # the top ACI's app: the user's group
    for li, plan in enumerate(plans):
        for acts in plan.actions.values():
            for act in acts:
                if act[0] == "link?":
                    inode: Inode = act[2]
                    if inode.layer == li and id(inode) in intact:
                        act[:] = ["link", act[1], inode.path]
                    else:
                        act[:] = ["copy", act[1], (inode.layer, inode.ordinal)]
    layers = image.layers
    out = []
    for li, plan in enumerate(plans):
        layer = Layer(open=_opener(layers, li, plan), source=layers[li].source,
                      history=layers[li].history)
        if li == len(plans) - 1:
            out.append(replace(image, layers=(layer,), path_whitelist=tuple(plan.whitelist),
                               rendered=True,
                               config=with_primary_group(image.config, lambda: accounts)))
        else:
            # a lower layer's image has no manifest of its own to restore: its fields are
            # written afresh, whatever the top image's vocabulary
            origin = image.origin and replace(image.origin, vocabulary="oci")
            out.append(Image(name=f"{name}-layer{li}", source=layers[li].source,
                             version=image.version, platform=image.platform, layers=(layer,),
                             path_whitelist=tuple(plan.whitelist), origin=origin, rendered=True,
                             created=image.created))
    return out


def _opener(layers, li: int, plan: _Plan):
    def layer_entries():
        copies = sorted({a[2] for acts in plan.actions.values() for a in acts if a[0] == "copy"})
        spool = tempfile.mkdtemp(prefix="acioci-layered-")
        try:
            fetched = _fetch(layers, copies, spool)
            yield from plan.dirs
            with layers[li].open() as entries:
                for ordinal, entry in enumerate(entries):
                    for act in plan.actions.get(ordinal, ()):
                        if act[0] == "content":
                            yield entry.renamed(act[1])
                        elif act[0] == "link":
                            yield entry.hardlink_to(act[1], act[2])
                        else:
                            header, path = fetched[act[2]]
                            copy = replace(header, path=act[1])
                            copy.data = open(path, "rb") if path else None
                            try:
                                yield copy
                            finally:
                                if copy.data is not None:
                                    copy.data.close()
        finally:
            shutil.rmtree(spool, ignore_errors=True)

    return stream(layer_entries)


def _fetch(layers, wanted: list[tuple[int, int]], spool: str) -> dict:
    """Headers and data (spooled to disk, never memory) of the entries copies are made of."""
    out: dict = {}
    by_layer: dict[int, set[int]] = {}
    for lj, ordinal in wanted:
        by_layer.setdefault(lj, set()).add(ordinal)
    for lj, ordinals in by_layer.items():
        with layers[lj].open() as entries:
            for ordinal, entry in enumerate(entries):
                if ordinal not in ordinals:
                    continue
                header = replace(entry)
                header.data = None
                path = None
                if entry.kind == "file":
                    path = f"{spool}/{lj}-{ordinal}"
                    with open(path, "wb") as fh:
                        shutil.copyfileobj(entry.data, fh, 1 << 20)
                out[(lj, ordinal)] = (header, path)
    return out
