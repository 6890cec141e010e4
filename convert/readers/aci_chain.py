"""An ACI together with every image it depends on, resolved from stores, as one graph.

Kept apart from `aci.py` (one archive) and `aci_store.py` (finding a dependency's file): the
store scans archives with `aci.py`, and this module uses both, so neither imports the other's
user. The top ACI and every dependency are opened through one `aci.AciFiles` (the expansion
limit's owner): the store is given the same one, so a bomb anywhere in the chain stops at the
same limit. The top ACI is scanned directly, not through the store, which caches only what it
found in its directories.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ResolutionError
from ..graph import Dependency, Image
from . import aci, aci_manifest
from .aci import AciFiles
from .aci_store import AciStore


def read(path: str, *, store: list[str] | tuple[str, ...] = (),
         acis: AciFiles = AciFiles(), once: bool = False, record_id: bool = True) -> Image:
    """Read an ACI and, through `store` (directories), every image it depends on, into one
    graph; every file is opened through `acis`.

    With `once` (conversions), an ACI that needs no rendering is not scanned first: see
    `AciFiles.read_once`; its image ID is then `Pending` until the layer has been streamed.
    Without `record_id` the graph carries no image IDs (`Image.image_id` is None; the IDs
    that manifests pin for their dependencies stay). A lone ACI is then never hashed: its
    SHA-512 runs at about 0.5 GB/s on one core, the longest chain of a one-pass conversion,
    and without it ACI -> OCI takes about two thirds of the time. A chain is still hashed,
    because its dependencies are matched and told apart by ID.

    Images are shared: a diamond (A→B, A→C, B→D, C→D) yields one `Image` for D reachable
    twice, as an ACI dependency DAG should. A dependency cycle, self-dependency included, is an
    error naming the chain.
    """
    if once and (image := acis.read_once(path, record_id)) is not None:
        return image
    aci_store = AciStore(list(store), acis)
    built: dict[str, Image] = {}

    def build(res: aci.ScanResult, chain: tuple[tuple[str, str], ...]) -> Image:
        if res.image_id in built:
            return built[res.image_id]
        doc, _ = aci_manifest.parse(res.manifest_bytes, file=res.path)
        chain = chain + ((res.image_id, doc["name"]),)
        deps = []
        for i, d in enumerate(doc.get("dependencies") or []):
            dep = aci_store.resolve(d, needed_by=res.path, pointer=f"/dependencies/{i}")
            if any(dep.image_id == cid for cid, _ in chain):
                names = " -> ".join(n for _, n in chain) + f" -> {d['imageName']}"
                raise ResolutionError(f"dependency cycle: {names}", file=res.path,
                                      entry=f"manifest#/dependencies/{i}")
            deps.append(Dependency(image=build(dep, chain), name=d["imageName"],
                                   labels=aci_manifest.pairs(d.get("labels")),
                                   image_id=d.get("imageID"), size=d.get("size")))
        layer = acis.rootfs_layer(res.path, res.image_id, res.index, stat=res.stat)
        image = aci.image(res, doc, tuple(deps), layer)
        if not record_id:
            image = replace(image, image_id=None)
        built[res.image_id] = image
        return image

    return build(acis.scan(path), ())
