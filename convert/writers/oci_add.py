"""Adding an image to an OCI layout that already holds others, as `skopeo copy` to
`oci:DIR:TAG` does: one layout can then hold a whole migrated store, its images sharing the
blobs of their common layers.

The image is first written as a complete layout in a temporary sibling (as a new layout is).
Under an exclusive lock on the layout directory, its blobs are then renamed into the layout
(those not already there), and index.json is replaced by a new one in one rename. Until that
rename the layout's index is untouched and the moved blobs are unreferenced; a failure before
it removes them again. A killed process can leave unreferenced blobs, which the spec allows,
never a broken index.

A new tag goes before the first entry whose tag sorts after it, so a layout that acioci
alone fills is in tag order, and any layout ends the same whatever order the same images
were added in. An image already tagged TAG in the layout is refused; with `--overwrite` its
descriptor is replaced in place and the blobs that only it reached are removed afterwards.
Other tags are never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from .. import jsonio
from ..atomic import atomic_destination
from ..errors import AciociError, DestinationError
from ..graph import Digest
from ..regular import NotRegularFileError, read_regular
from ..spec import oci_walk, schemas, vocabulary
from ..spec.mediatypes import OCI_INDEX as MT_INDEX

def is_layout(path: str | os.PathLike) -> bool:
    """A directory that says it is an OCI image layout (the spec's two marker files)."""
    path = Path(path)
    return path.is_dir() and (path / "oci-layout").is_file() and (path / "index.json").is_file()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive flock on the layout directory: two acioci processes adding to one layout
    (a batch into a shared store) must not both rewrite index.json from the same old one."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_index(layout: Path) -> dict:
    """The layout's index, checked against the schema (errors name the file and pointer).
    Blobs are renamed into `blobs/sha256`: if it (or `blobs`) is a symlink, they would land
    wherever it points, so such a layout is refused, as the OCI reader refuses it."""
    for part in (layout / "blobs", layout / "blobs" / "sha256"):
        if part.is_symlink():
            raise DestinationError(f"{part.relative_to(layout)} is a symlink; not adding to "
                                   "this layout", file=str(layout))
        if os.path.lexists(part) and not part.is_dir():
            raise DestinationError(f"{part.relative_to(layout)} is not a directory; not "
                                   "adding to this layout", file=str(layout))
    marker = layout / "oci-layout"
    doc = jsonio.loads(_read_own(layout, "oci-layout"), file=str(marker))
    schemas.check("oci-layout", doc, file=str(marker))
    path = layout / "index.json"
    index = jsonio.loads(_read_own(layout, "index.json"), file=str(path))
    schemas.check("oci-index", index, file=str(path))
    return index


def _read_own(layout: Path, name: str) -> bytes:
    """A marker file of the layout, read only if it is a regular file of its own: an
    index.json that is a symlink would be read through (another file's entries merged into
    the new index, and the link then replaced by a file), and a FIFO would block forever."""
    path = layout / name
    try:
        data = read_regular(path, jsonio.MAX_JSON_BYTES, follow=False)
    except NotRegularFileError as exc:
        raise DestinationError(f"{name} {exc.strerror}; not adding to this layout",
                               file=str(layout)) from None
    except OSError as exc:
        if path.is_symlink():
            raise DestinationError(f"{name} is a symlink; not adding to this layout",
                                   file=str(layout)) from None
        raise DestinationError(f"cannot read {name}: {exc.strerror}", file=str(layout)) from None
    if len(data) > jsonio.MAX_JSON_BYTES:
        raise DestinationError(f"{name} is over the limit of {jsonio.MAX_JSON_BYTES} bytes",
                               file=str(layout))
    return data


def tag_of(desc: dict) -> str | None:
    return (desc.get("annotations") or {}).get(vocabulary.REF_NAME)


def tagged(index: dict, tag: str) -> int | None:
    """Position of the descriptor tagged `tag` in index.json, if any."""
    for pos, desc in enumerate(index.get("manifests", [])):
        if tag_of(desc) == tag:
            return pos
    return None


def ensure_layout(path: str | os.PathLike) -> None:
    """An empty layout at `path` unless one is there (made in a sibling and renamed, so that
    no adder ever sees half of one); anything else at `path` is refused."""
    path = Path(path)
    if is_layout(path):
        return
    if os.path.lexists(path) and not (path.is_dir() and not any(path.iterdir())):
        raise DestinationError("exists and is not an OCI layout", file=str(path))
    with atomic_destination(path, directory=True) as tmp:  # an empty directory is taken
        (tmp / "blobs" / "sha256").mkdir(parents=True)
        write_layout_files(tmp, [])


def write_layout_files(root: Path, manifests: list[dict]) -> None:
    """`index.json` listing `manifests`, and `oci-layout`, both checked against the schemas:
    what makes a folder of blobs a layout (a new one, or an empty one to add to)."""
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
    schemas.check("oci-index", index, file="(generated index.json)")
    (root / "index.json").write_bytes(jsonio.dumps(index))
    layout = {"imageLayoutVersion": "1.0.0"}
    schemas.check("oci-layout", layout, file="(generated oci-layout)")
    (root / "oci-layout").write_bytes(jsonio.dumps(layout))


def _taken(layout: Path, tag: str) -> DestinationError:
    return DestinationError(f"tag {tag!r} already exists in this OCI layout (give another tag, "
                            "or overwrite to replace that image; the layout's other images "
                            "stay)", file=str(layout), hint_option=("tag", "overwrite"))


def refuse_taken(layout: Path, tag: str, overwrite: bool) -> None:
    """Fail before any work when the tag is taken (checked again under the lock at the end)."""
    if not overwrite and tagged(read_index(layout), tag) is not None:
        raise _taken(layout, tag)


def add(built: Path, layout: Path, tag: str, overwrite: bool) -> None:
    """Move the single-image layout `built` into `layout` under `tag`; `built` is left for the
    caller to remove."""
    new_desc = jsonio.loads((built / "index.json").read_bytes())["manifests"][0]
    src_blobs, dst_blobs = built / "blobs" / "sha256", layout / "blobs" / "sha256"
    moved: list[Path] = []
    with locked(layout):
        index = read_index(layout)
        pos = tagged(index, tag)
        if pos is not None and not overwrite:
            raise _taken(layout, tag)
        old_desc = index["manifests"][pos] if pos is not None else None
        try:
            dst_blobs.mkdir(parents=True, exist_ok=True)
            for blob in sorted(src_blobs.iterdir()):
                target = dst_blobs / blob.name
                if not target.exists():
                    os.rename(blob, target)
                    moved.append(target)
            manifests = list(index.get("manifests", []))
            if pos is None:
                # before the first entry tagged after it: the same images then give the same
                # index whatever order they were added in (a batch's workers finish in any)
                at = next((i for i, d in enumerate(manifests) if (tag_of(d) or "") > tag),
                          len(manifests))
                manifests.insert(at, new_desc)
            else:
                manifests[pos] = new_desc
            index = {**index, "manifests": manifests}
            schemas.check("oci-index", index, file="(generated index.json)")
            with atomic_destination(layout / "index.json", directory=False,
                                    overwrite=True) as tmp:
                tmp.write_bytes(jsonio.dumps(index))
        except BaseException as exc:
            for path in moved:
                with contextlib.suppress(OSError):
                    path.unlink()
            if isinstance(exc, OSError):
                raise DestinationError(f"cannot write: {exc.strerror or exc}",
                                       file=str(layout)) from None
            raise
        if old_desc is not None and old_desc["digest"] != new_desc["digest"]:
            collect_replaced(layout, index, old_desc)


def collect_replaced(layout: Path, index: dict, old: dict) -> None:
    """Remove the blobs that only the replaced descriptor `old` reached, now that `index` (the
    layout's index.json as written) no longer holds it: after `add` replaced a tag here, and in
    a cluster batch's shared layout once its client has written the index (layout_index.py).
    If any image left in the layout cannot be walked (a media type we do not know, a missing blob), nothing is removed:
    a blob kept too many is harmless, one removed too many breaks an image."""
    try:
        gone = _reachable(layout, [old]) - _reachable(layout, index["manifests"])
    except (AciociError, OSError, KeyError, TypeError, ValueError):
        return
    for digest in gone:
        algorithm, _, hexpart = digest.partition(":")
        with contextlib.suppress(OSError):
            (layout / "blobs" / algorithm / hexpart).unlink()


def _reachable(layout: Path, roots: list) -> set[str]:
    """Every digest the descriptors reach (the shared walk, spec/oci_walk.py): themselves, and
    for a manifest its config, its layers and the manifest it refers to (`subject`: a
    signature keeps its image), for an index its manifests. Raises on a media type it cannot
    walk, and on anything the walk finds wrong."""
    out: set[str] = set()

    def load(desc: dict) -> dict:
        algorithm, _, hexpart = _checked(desc["digest"]).partition(":")
        path = layout / "blobs" / algorithm / hexpart
        # a blob of the layout: never through a link, never a FIFO (the caller keeps
        # every blob when this raises)
        doc = jsonio.loads(read_regular(path, jsonio.MAX_JSON_BYTES, follow=False),
                           file=str(path))
        if "subject" in doc:
            out.add(_checked(doc["subject"]["digest"]))
        return doc

    for v in oci_walk.walk(roots, lambda v: load(v.desc), oci_walk.Raise(str(layout))):
        if v.kind == "other":
            raise ValueError(v.desc.get("mediaType"))
        out.add(_checked(v.desc["digest"]))
        if v.kind == "manifest":
            doc = load(v.desc)
            out.add(_checked(doc["config"]["digest"]))
            out.update(_checked(layer["digest"]) for layer in doc.get("layers", []))
    return out


def _checked(digest) -> str:
    """A digest that names a file under blobs/ and nothing else (`Digest.parse`): blobs are
    removed by these names, and a layout's manifests are not ours (`sha256:../../x` must never
    reach unlink)."""
    return str(Digest.parse(digest))
