"""A compression bomb that hits the expansion limit while a writer reads an entry's data names
the file and the tar entry, as the same bomb does when a reader's own loop hits it (a chain's
base, validate).

The case that did not: a lone ACI converted in one pass hands its entries straight to the
writer, so the limit hit inside the writer's read of `rootfs/zeros`, outside the loop that
names entries, and the error said only `bomb.aci: decompressed size exceeds…`. The same gap
was on the OCI side, for a layer blob read by a writer or skipped by an index pass. The bomb
is fixtures/hostile.py's: 64 KB of gzip that expand to a 64 MB file `rootfs/zeros`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import acioci

from convert import api
from convert.errors import LimitError

LIMIT = 1 << 20
SAID = (f"decompressed size exceeds the limit of {LIMIT} bytes (a compression bomb?); the "
        "limit is the max-expand option (use --max-expand SIZE)")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """The bomb as an ACI, and converted (under the default limit) to an OCI layout, an
    oci-archive and a docker-archive, whose one layer is then the bomb."""
    from hostile import _bomb_gzip

    d = tmp_path_factory.mktemp("bombs")
    out = {"aci": d / "bomb.aci", "oci": d / "layout", "oci-archive": d / "bomb-oci.tar",
           "docker-archive": d / "bomb-docker.tar"}
    out["aci"].write_bytes(_bomb_gzip())
    for kind in ("oci", "oci-archive", "docker-archive"):
        api.convert(str(out["aci"]), f"{kind}:{out[kind]}")
    return out


def layer_blob(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_bytes())
    man = json.loads((layout / "blobs" / "sha256" /
                      index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    return "blobs/sha256/" + man["layers"][0]["digest"].split(":")[1]


DESTINATIONS = {"oci": "oci:{}", "oci-archive": "oci-archive:{}.tar",
                "docker-archive": "docker-archive:{}.tar", "aci": "{}.aci"}


@pytest.mark.parametrize("to", sorted(DESTINATIONS))
def test_a_lone_aci_bomb_converted_in_one_pass_names_the_entry(tmp_path, bombs, to):
    bomb = bombs["aci"]
    dest = DESTINATIONS[to].format(tmp_path / "out")
    with pytest.raises(LimitError) as err:
        api.convert(str(bomb), dest, max_expand=LIMIT)
    assert (err.value.file, err.value.entry) == (str(bomb), "rootfs/zeros")
    assert list(tmp_path.iterdir()) == []

    proc = acioci("convert", bomb, dest, "--max-expand", "1M")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"acioci: error: {bomb}::rootfs/zeros: {SAID}"]
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == [], "something was left at the destination"


@pytest.mark.parametrize("source", ["oci", "oci-archive", "docker-archive"])
@pytest.mark.parametrize("to", ["aci", "layered", "oci"])
def test_a_layer_blob_that_is_a_bomb_names_the_blob_and_the_entry(tmp_path, bombs, source,
                                                                  to):
    """Whichever pass meets the limit (the writer reading `zeros`, or an index pass skipping
    it), the error names the source, the blob in it and the entry: `SRC::blobs/…::zeros`."""
    src = bombs[source]
    blob = layer_blob(bombs["oci"])  # the same blob in the three sources
    args = {"aci": [tmp_path / "out.aci"], "layered": [tmp_path / "out", "--to", "aci",
                                                       "--layered"],
            "oci": [f"oci:{tmp_path / 'out'}"]}[to]
    proc = acioci("convert", f"{source}:{src}", *args, "--max-expand", "1M")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"acioci: error: {src}::{blob}::zeros: {SAID}"]
    assert list(tmp_path.iterdir()) == [], "something was left at the destination"


def test_validate_names_the_entry_of_a_layer_blob_that_is_a_bomb(bombs):
    proc = acioci("validate", f"oci:{bombs['oci']}", "--max-expand", "1M")
    assert proc.returncode == 1
    place = f"oci:{bombs['oci']}::{layer_blob(bombs['oci'])}::zeros"
    assert f"{place}: error [oci.layer.unreadable] decompressed size exceeds" in proc.stdout
