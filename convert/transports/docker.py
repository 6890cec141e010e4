"""`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: an image in a registry (the distribution API),
with Docker Hub's conventions for bare names (`docker://busybox` is
`registry-1.docker.io/library/busybox:latest`), as skopeo reads them.

As a source, the registry is read through the same OCI reader as a layout (`RegistryBlobs`
serves `index.json` for the reference and every blob by digest, each verified while it
streams). As a destination, each layer is uploaded while it is encoded (no layout on disk; see
`registry/push.py` and `registry/upload.py`), a duplicate found by its digest is not committed
twice, and the manifest goes last, so a failed push never leaves a tag pointing at missing
blobs. The HTTP client (the standard library's http.client, `registry/connections.py`) is
imported only on a registry's first request. See `convert/registry/`.

A tag that already names the manifest just written is left alone (no blob is touched) unless
`overwrite` is set: output is deterministic, so the same digest is the same image, and a batch
rerun resumes this way. In a batch, `OciOutput.mount_ledger` names a file that every push of
the batch appends `REGISTRY REPOSITORY DIGEST` lines to, one per blob the repository holds; a
blob that a repository of the same registry has is mounted from it (a chain's base layer,
pushed as an image of its own first) instead of uploaded again. The ledger is a hint: a line
for a blob the registry lost only costs a refused mount, then the upload.

The ledger also holds the batch's layer memo (`registry/memo.py`), lines of `#layer KEY
JSON`: a layer encoded from one whole ACI file, keyed on that file's identity, the encoding
and the code, with the descriptor and diff_id it gave. A later push about to encode the same
layer HEADs or mounts its digest instead and never reads the file; if the registry has lost
the blob, the layer is encoded as if there were no line. A memo line goes in as soon as its
blob is in, with that blob's holder line, for a worker that waits on the layer's claim
(`ledger.claim-KEY`, so that two workers do not encode it at once) and every later push; the
holder lines of a push's other blobs go in once the push is done.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..graph import Image
from ..options import OciOutput, ReadOptions
from .base import Reference
from .oci_layout import blob_source

NAME = "docker"
MEMO = "#layer"  # a ledger line of the layer memo (no registry name starts with '#')
FORMAT = "oci"
HELP = "an image in a registry: docker://HOST[:PORT]/REPO[:TAG|@DIGEST]"


def parse(rest: str, text: str) -> Reference:
    from ..registry.reference import parse as parse_registry

    if not rest.startswith("//"):
        raise UsageError(f"{text!r}: a registry reference is docker://HOST/REPO[:TAG]")
    ref = parse_registry(text)
    return Reference(NAME, ref.name, ref.reference, text)


def output_name(ref: Reference) -> str:
    """`docker://host:5000/apps/app:1.0` -> `apps/app-1.0` (batch output names)."""
    repo = ref.path.split("/", 1)[-1] if "/" in ref.path else ref.path
    return f"{repo}-{(ref.ref or 'latest').replace(':', '-')}"


def open(ref: Reference, options: ReadOptions):
    from ..readers import oci as oci_reader
    from ..registry.blobs import open_source

    blobs = open_source(ref.text, spool=True, max_expand=options.max_expand,  # squash reads twice
                        **options.registry())
    return blob_source(blobs, Reference(NAME, ref.path, None, ref.text), options,
                       oci_reader.read_images)


@dataclass(frozen=True)
class PushedResult:
    """A local layout's result, pushed: the digest names the image in the registry."""

    written: object  # the OciResult a layout write would have given
    reference: str   # docker://registry/repo@digest
    digest: str
    destination: str
    blobs: tuple = ()        # (digest, how) per blob: exists (HEAD), mounted, uploaded
    unchanged: bool = False  # the tag named this manifest already: nothing was pushed

    def to_dict(self) -> dict:
        out = self.written.to_dict()
        out.update(destination=self.destination, format="docker", pushed=self.reference,
                   unchanged=self.unchanged,
                   blobs=[{"digest": d, "how": how} for d, how in self.blobs])
        return out

    def to_text(self) -> str:
        lines = self.written.to_text().splitlines()
        lines[0] = (f"unchanged {self.destination} (already {self.reference})" if self.unchanged
                    else f"pushed {self.destination} ({self.reference})")
        return "\n".join(lines)


class Ledger:
    """Which repository of a registry has which blob, as the pushes of one batch found out
    (see the module's docstring). Lines are appended with one `write` each (O_APPEND), so
    workers in parallel never interleave; a ledger file that does not exist (a batch on a
    cluster, whose workers do not share the client's temporary directory) is no ledger: it is
    never created here."""

    def __init__(self, path: str, registry: str) -> None:
        self.path, self.registry = path, registry
        self._offset = 0  # where the next read starts
        self._holders: dict[str, list[str]] = {}  # digest -> repositories, first-recorded first
        self._memo: dict[str, dict] = {}          # memo key -> its first value that parses

    def _refresh(self) -> None:
        """Take in the lines added since the last look. The ledger only grows (appends), so a
        push that polls for a claimed layer, or looks up each of its blobs, pays for the new
        lines, not for the whole ledger again. A line still being written waits for its end;
        bytes that are not UTF-8 make lines that match nothing (the ledger is this user's
        own file, in a directory only this user can write, but a damaged one must not stop a
        push)."""
        import json

        try:
            with io.open(self.path, "rb") as fh:  # `open` in this module is the transport's
                fh.seek(self._offset)
                added = fh.read()
        except OSError:  # gone (the batch ended) or never there (a cluster's other hosts)
            self._offset, self._holders, self._memo = 0, {}, {}
            return
        complete = added.rfind(b"\n") + 1
        self._offset += complete
        for line in added[:complete].decode("utf-8", "replace").splitlines():
            first, _, rest = line.partition(" ")
            if first == MEMO:
                key, _, text = rest.partition(" ")
                if key in self._memo:
                    continue
                try:
                    value = json.loads(text)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    self._memo[key] = value
            elif first == self.registry:
                parts = rest.split(" ")
                if len(parts) == 2:
                    repos = self._holders.setdefault(parts[1], [])
                    if parts[0] not in repos:
                        repos.append(parts[0])

    def holders(self, digest: str) -> list[str]:
        """The repositories that have `digest`, first-recorded first."""
        self._refresh()
        return list(self._holders.get(digest, ()))

    def lookup(self, key: str) -> dict | None:
        """The layer memo's value for `key` (`registry/memo.py`): the first line for it that
        parses, or None."""
        self._refresh()
        return self._memo.get(key)

    def record(self, repo: str, digests) -> None:
        """`digests` are in `repo` now."""
        self._append("".join(f"{self.registry} {repo} {d}\n" for d in digests))

    def claim_path(self, key: str) -> str | None:
        """Where a push claims encoding the layer of a memo key (`registry/memo.obtain`):
        beside the ledger, and only while the ledger exists."""
        return f"{self.path}.claim-{key}" if os.path.exists(self.path) else None

    def publish(self, repo: str, digest: str, key: str, value: dict) -> None:
        """A layer encoded for the memo `key` is in `repo`: its holder and memo lines in one
        write, at once, for the pushes that wait on its claim and every later one."""
        import json

        self._append(f"{self.registry} {repo} {digest}\n{MEMO} {key} "
                     f"{json.dumps(value, separators=(',', ':'), sort_keys=True)}\n")

    def _append(self, text: str) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError:
            return
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


class _LedgerClient:
    """A registry client whose blob uploads and mounts try the repositories the ledger names
    for each blob (`write` records where the blobs went, once the push is done)."""

    def __init__(self, client, ledger: Ledger) -> None:
        self._client, self._ledger = client, ledger

    def __getattr__(self, name):
        return getattr(self._client, name)

    def upload_blob(self, repo, source, *, digest=None, size=None, mount_from=()):
        holders = self._ledger.holders(digest) if digest else []
        return self._client.upload_blob(repo, source, digest=digest, size=size,
                                        mount_from=tuple(holders) + tuple(mount_from))

    def try_mount(self, repo, digest, mount_from, scopes) -> bool:
        """A streamed layer's digest is known only at its commit: the holders are asked then
        (with pull scope on each, which a token for the upload's own scopes lacks)."""
        from ..registry.auth import scope

        holders = [r for r in self._ledger.holders(digest) if r != repo]
        scopes = tuple(scopes) + tuple(scope(r, ("pull",)) for r in holders)
        return self._client.try_mount(repo, digest, tuple(holders) + tuple(mount_from), scopes)


class _Spool:
    """Owns the temporary layout of a push that compares first (its finalizer is the net if
    `write` is interrupted before its own cleanup)."""


def write(image: Image, ref: Reference, options: OciOutput):
    """Stream the image into the registry; but when the destination's tag exists and
    `overwrite` is off, the image is first written to a temporary layout, so that its manifest
    digest is known before anything is sent: the same digest leaves the tag alone (a rerun
    resumes without moving a byte), another is pushed from that layout. The tag is looked up
    beside the first layer's encoding, not before it (`push_image`'s `first`): a push to a
    new tag, the usual case, starts encoding without waiting on the registry, and one to a
    tag that exists drops the little it encoded and goes the layout's way."""
    from .. import meter, prepare
    from ..registry.client import connect
    from ..registry.push import TagExists, push_image
    from ..registry.reference import parse as parse_registry

    dest = parse_registry(ref.text)
    ledger = Ledger(options.mount_ledger, dest.registry) if options.mount_ledger else None
    with connect(dest, **options.registry.client()) as client:
        pushing = _LedgerClient(client, ledger) if ledger else client

        def tag_is_free() -> None:  # run by the push beside its first layer's encoding
            have = client.head_manifest(dest.repository, dest.tag)
            if have is not None:
                if not have.get("digest"):  # not every registry says it on HEAD: the bytes do
                    have = client.get_manifest(dest.repository, dest.tag).descriptor()
                raise TagExists(have)

        compare = not options.overwrite and dest.tag is not None
        try:
            written, pushed = push_image(prepare.for_oci(image, options), dest,
                                         compression=options.compression, tag=options.tag,
                                         client=pushing, memo=ledger,
                                         first=tag_is_free if compare else None)
            result = PushedResult(written, pushed.reference, pushed.digest, ref.text,
                                  tuple((b.digest, b.how) for b in pushed.blobs))
        except TagExists as exists:
            meter.rereading()  # the layout is written from the first byte again
            result = _compare_then_push(image, ref, dest, options, exists.have, pushing)
    if ledger:  # what a later image of the batch may mount from here, or skip
        ledger.record(dest.repository, [str(result.written.config)] +
                      [str(b.digest) for b in result.written.layers])
    return result


def _compare_then_push(image, ref, dest, options, have: dict, pushing):
    from ..atomic import owned_tempdir
    from ..registry.push import push_layout
    from .oci_layout import write as write_layout

    spool = _Spool()
    tmp, cleanup = owned_tempdir(spool, "acioci-push-")
    try:
        layout = Reference("oci", str(Path(tmp) / "layout"), None)
        written = write_layout(image, layout, options)
        digest = str(written.manifest)
        if have.get("digest") == digest:
            return PushedResult(written, f"docker://{dest.name}@{digest}", digest,
                                ref.text, unchanged=True)
        pushed = push_layout(layout.path, dest, ref=written.tag, client=pushing)
        return PushedResult(written, pushed.reference, pushed.digest, ref.text,
                            tuple((b.digest, b.how) for b in pushed.blobs))
    finally:
        cleanup()


def validate(ref: Reference, report, *, fast: bool, options: ReadOptions) -> None:
    from ..registry.blobs import open_source
    from ..validation.oci import validate_layout

    with open_source(ref.text, max_expand=options.max_expand, **options.registry()) as blobs:
        validate_layout(blobs, report, fast=fast, unreferenced=False)
