"""The shared layout's index.json in a cluster batch (`--one-layout`): written by the client only.

Locally, workers add their images to a shared layout under a flock on it (writers/oci_add).
On a cluster the layout is on shared storage (NFS and the like), where a flock may not be
honoured, so no worker touches index.json: each renames its content-addressed blobs in and
returns its manifest descriptor (cluster_child.py), and the client, the one writer, adds the
descriptors here. The rules are oci_add's, so the layout is the same bytes as a local batch's:
a new tag goes before the first entry tagged after it (the same images give the same index
whatever order they finish in), a tag already there (`--force`) is replaced in place, and the
blobs only a replaced image reached are removed, but only by `collect`, called when no worker
of the batch is left: until then a blob the old image had may be one a new image is about to
be indexed with.

index.json is rewritten at most every `EVERY` seconds (each time in one rename) and at the
end, not once per image: a store of many thousand images would otherwise rewrite it as often.
A tag written to blobs but not yet indexed when the client dies is converted again by a rerun.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import jsonio
from .atomic import atomic_destination
from .spec import schemas
from .writers import oci_add

EVERY = 2.0  # seconds


class SharedIndex:
    def __init__(self, layout: str) -> None:
        self.layout = Path(os.path.realpath(layout))  # where workers put the blobs
        self.queued: list[tuple[str, dict]] = []
        self.replaced: list[dict] = []
        self.written = time.monotonic()

    def add(self, tag: str, desc: dict) -> None:
        self.queued.append((tag, desc))
        if time.monotonic() - self.written >= EVERY:
            self.flush()

    def flush(self) -> None:
        """Every queued descriptor into index.json, in one rename."""
        if not self.queued:
            return
        index = oci_add.read_index(self.layout)
        manifests = list(index.get("manifests", []))
        for tag, desc in self.queued:
            pos = oci_add.tagged({"manifests": manifests}, tag)
            if pos is None:
                at = next((i for i, d in enumerate(manifests) if (oci_add.tag_of(d) or "") > tag),
                          len(manifests))
                manifests.insert(at, desc)
            else:
                if manifests[pos]["digest"] != desc["digest"]:
                    self.replaced.append(manifests[pos])
                manifests[pos] = desc
        index = {**index, "manifests": manifests}
        schemas.check("oci-index", index, file="(generated index.json)")
        with atomic_destination(self.layout / "index.json", directory=False,
                                overwrite=True) as tmp:
            tmp.write_bytes(jsonio.dumps(index))
        self.queued.clear()
        self.written = time.monotonic()

    def collect(self) -> None:
        """Remove the blobs only replaced images reached (as oci_add does after a replace);
        only once no worker of the batch can still be writing."""
        self.flush()
        if not self.replaced:
            return
        index = oci_add.read_index(self.layout)
        for old in self.replaced:
            oci_add.collect_replaced(self.layout, index, old)
        self.replaced.clear()
