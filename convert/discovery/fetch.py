"""Fetching an ACI and every dependency it needs, each one signed by a key trusted for its name.

    with fetch("appc:example.com/app:1.0.0", platform="linux/amd64") as got:
        image = convert.readers.aci_chain.read(got.top_path, store=got.stores)

Everything lands in one temporary directory owned by the returned `Fetched`, which deletes it
on `close()` / leaving the `with`; if `fetch` itself fails (bad signature, Ctrl-C, anything)
it deletes it before the exception leaves. Downloads are streamed to files there, bounded in
size, never held in memory.

For each image, in this order: discovery (discover.py); the signature and then the ACI,
downloaded; the signature checked with gpgv against the keys trusted for the name (verify.py)
before a byte of the archive is parsed; then one pass over the archive (layout checks, image
ID); the manifest's name must be the name asked for and it must carry every label asked for
with the same value (spec/discovery.md, Validation); a dependency pinned by `imageID` must hash
to it.

Dependencies are found first among what was already fetched (which also stops a cycle), then
in the local stores given, and only then by discovery, by name and labels as rkt did. A
dependency that states no os/arch inherits those of the image that needs it, for rendering
templates only. The number of images and the depth of the chain are bounded: a hostile server
could otherwise serve an endless chain of distinct images.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import AciociError, DigestMismatchError, LimitError, ResolutionError, \
    SourceUnreadableError, UsageError
from ..readers import aci as aci_reader
from ..readers import aci_manifest
from . import name as names
from . import trust, verify
from .client import Client, HttpStatusError
from .discover import discover
from .name import AppName
from .trust import DEFAULT_TRUST_DIRS

_MIN_ID = len("sha512-") + 2


@dataclass(frozen=True)
class FetchOptions:
    trust_dirs: tuple[str, ...] = DEFAULT_TRUST_DIRS  # rkt keystores, in precedence order
    cert_dir: str | None = None       # `*.crt` CAs trusted besides the default ones
    insecure_http: bool = False       # --insecure-options http
    insecure_tls: bool = False        # --insecure-options tls
    insecure_skip_image: bool = False  # --insecure-options image: no signature check
    store: tuple[str, ...] = ()       # local stores searched for dependencies first
    max_download: int = 16 << 30      # bytes of one ACI as served
    max_signature: int = 1 << 20      # bytes of one .asc
    max_images: int = 64              # images fetched for one reference, dependencies included
    max_depth: int = 16               # dependency levels below the top image
    timeout: float = 60.0             # seconds of silence before a request fails
    acis: aci_reader.AciFiles = aci_reader.AciFiles()  # how ACIs are opened: the bomb limit
    tmpdir: str | None = None         # where the temporary directory goes (default: TMPDIR)


@dataclass(frozen=True)
class FetchedImage:
    asked: AppName                     # what discovery was asked for
    name: str                          # the manifest's name (== asked.name)
    labels: tuple[tuple[str, str], ...]  # the manifest's labels
    image_id: str                      # sha512-… of the uncompressed archive
    path: str                          # the ACI, inside Fetched.store_dir
    url: str
    signature_url: str | None          # None when signatures were skipped
    signed_by: str | None              # primary key fingerprint; None when skipped
    trusted_as: str | None             # the key file that vouched for it


class Fetched:
    """The fetched ACIs, in a directory usable as a `--store`; removed by `close()`."""

    def __init__(self, root: str, user_stores: tuple[str, ...]) -> None:
        self.root = root
        self.store_dir = os.path.join(root, "store")
        self.work_dir = os.path.join(root, "work")
        self.user_stores = user_stores
        self.images: list[FetchedImage] = []  # the top image first
        self.warnings: list[str] = []
        os.mkdir(self.store_dir, 0o700)
        os.mkdir(self.work_dir, 0o700)

    @property
    def top(self) -> FetchedImage:
        return self.images[0]

    @property
    def top_path(self) -> str:
        return self.top.path

    @property
    def stores(self) -> tuple[str, ...]:
        """What `convert.readers.aci_chain.read(top_path, store=...)` needs to render the chain."""
        return (self.store_dir, *self.user_stores)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Fetched":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fetch(ref: "str | AppName", *, platform: str | None = None,
          options: FetchOptions = FetchOptions()) -> Fetched:
    """Discover, download and verify `ref` (`appc:NAME[:VERSION][,LABEL=VALUE...]` or an
    AppName) and its dependencies. Raises an AciociError, leaving nothing behind, when any
    image cannot be fetched, is not what was asked for, or is not signed by a trusted key."""
    if isinstance(ref, AppName):
        if platform is not None:
            raise UsageError("give the platform to parse_name(), not with an AppName")
        app = ref
    else:
        app = names.parse(ref, platform=platform)
    for d in options.store:
        if not os.path.isdir(d):
            raise SourceUnreadableError("store is not a directory", file=d)
    root = tempfile.mkdtemp(prefix="acioci-appc-", dir=options.tmpdir)
    try:
        fetched = Fetched(root, tuple(options.store))
        _Run(fetched, options).run(app)
        return fetched
    except BaseException:  # Ctrl-C included: nothing of a failed fetch may stay behind
        shutil.rmtree(root, ignore_errors=True)
        raise


class _Run:
    def __init__(self, fetched: Fetched, options: FetchOptions) -> None:
        self.out = fetched
        self.opt = options
        self.store = None
        if options.store:
            from ..readers.aci_store import AciStore
            self.store = AciStore(list(options.store), options.acis)
        self.local: set[str] = set()  # image IDs of store images already walked

    def run(self, top: AppName) -> None:
        client = Client(workdir=self.out.work_dir, insecure_http=self.opt.insecure_http,
                        insecure_tls=self.opt.insecure_tls, cert_dir=self.opt.cert_dir,
                        timeout=self.opt.timeout)
        if self.opt.insecure_tls:
            self.out.warnings.append("TLS certificates are not verified "
                                     "(insecure options: tls)")
        try:
            doc = self._one(client, top, pin=None)
            pending = deque([(doc, self.out.images[-1].url, 1)])
            while pending:
                doc, where, depth = pending.popleft()
                for i, dep in enumerate(doc.get("dependencies") or []):
                    found = self._dependency(client, doc, dep, where, f"/dependencies/{i}",
                                             depth)
                    if found is not None:
                        pending.append((*found, depth + 1))
        finally:
            client.close()

    def _dependency(self, client: Client, parent: dict, dep: dict, where: str, pointer: str,
                    depth: int):
        """(manifest, where) of a dependency whose own dependencies still need walking, or
        None when it was already handled."""
        entry = f"manifest#{pointer}"
        labels = aci_manifest.pairs(dep.get("labels"))
        pin = dep.get("imageID") or None
        for img in self.out.images:
            if _matches(img.name, img.labels, img.image_id, dep["imageName"], labels, pin):
                return None
        if self.store is not None:
            try:
                res = self.store.resolve(dep, needed_by=where, pointer=pointer)
            except ResolutionError:
                res = None  # not there (or ambiguous there): discovery decides
            if res is not None:
                if res.image_id in self.local:
                    return None
                self.local.add(res.image_id)
                doc, _ = aci_manifest.parse(res.manifest_bytes, file=res.path)
                return doc, res.path
        if depth > self.opt.max_depth:
            raise LimitError(f"dependency chain deeper than {self.opt.max_depth} images",
                             file=where, entry=entry)
        if len(self.out.images) >= self.opt.max_images:
            raise LimitError(f"more than {self.opt.max_images} images to fetch", file=where,
                             entry=entry)
        if pin is not None and len(pin) < _MIN_ID:
            raise ResolutionError(f"imageID {pin!r} is too short to match", file=where,
                                  entry=entry)
        parent_labels = dict(aci_manifest.pairs(parent.get("labels")))
        given = dict(labels)
        hints = [(k, parent_labels[k]) for k in ("os", "arch")
                 if k not in given and k in parent_labels]
        try:
            app = names.check(dep["imageName"], labels, hints=hints, what="dependency")
        except UsageError as exc:
            raise ResolutionError(f"cannot discover this dependency: {exc.message}",
                                  file=where, entry=entry) from None
        doc = self._one(client, app, pin=pin)
        return doc, self.out.images[-1].url

    def _one(self, client: Client, app: AppName, *, pin: str | None) -> dict:
        """Fetch, verify and check one image; returns its manifest."""
        skip = self.opt.insecure_skip_image
        keys = [] if skip else trust.keys_for(app.name, self.opt.trust_dirs)
        found = discover(client, app)
        self.out.warnings += [f"{app}: {n}" for n in found.skipped]
        stem = os.path.join(self.out.store_dir, f"{len(self.out.images):02d}-"
                            + app.name.replace("/", "_")[:100])
        aci_path, sig_path = stem + ".aci", stem + ".aci.asc"
        failures = []
        for ep in found.endpoints:
            try:
                if not skip:
                    client.download(ep.sig, sig_path, limit=self.opt.max_signature)
                client.download(ep.aci, aci_path, limit=self.opt.max_download)
            except HttpStatusError as exc:
                failures.append(f"{exc.url}: {exc.message}")
                for p in (sig_path, aci_path):
                    if os.path.exists(p):
                        os.unlink(p)
                continue
            break
        else:
            hint = "" if skip else " (the signature is fetched first)"
            raise SourceUnreadableError(f"no endpoint served the image{hint}: "
                                        + "; ".join(failures), file=str(app))
        if skip:
            self.out.warnings.append(f"{app}: signature not checked (insecure options: image)")
            checked = None
        else:
            checked = verify.verify(aci_path, sig_path, name=app.name, image=str(app),
                                    keys=keys, workdir=self.out.work_dir,
                                    trust_dirs=self.opt.trust_dirs, pubkeys=found.pubkeys)
        for url in (ep.aci, ep.sig):
            if urlsplit(url).scheme == "http" and (url == ep.aci or not skip):
                self.out.warnings.append(f"{app}: {url} fetched over plain http")
        try:
            res = self.opt.acis.scan(aci_path)
            doc, _ = aci_manifest.parse(res.manifest_bytes, file=ep.aci)
        except AciociError as exc:
            exc.file = ep.aci
            raise
        labels = aci_manifest.pairs(doc.get("labels"))
        if doc["name"] != app.name:
            raise ResolutionError(f"the image served for {app.name} is named {doc['name']}",
                                  file=ep.aci, entry="manifest#/name", expected=app.name,
                                  actual=doc["name"])
        have = dict(labels)
        for key, value in app.labels:
            if have.get(key) != value:
                raise ResolutionError(f"the image served for {app} has label {key}="
                                      f"{have.get(key, '(none)')}", file=ep.aci,
                                      entry="manifest#/labels", expected=value,
                                      actual=have.get(key))
        assert isinstance(res.image_id, str)
        if pin is not None and not res.image_id.startswith(pin):
            raise DigestMismatchError(f"the image served for {app} is not the imageID its "
                                      "dependent pins", file=ep.aci, expected=pin,
                                      actual=res.image_id)
        self.out.images.append(FetchedImage(
            asked=app, name=doc["name"], labels=labels, image_id=res.image_id, path=aci_path,
            url=ep.aci, signature_url=None if skip else ep.sig,
            signed_by=checked.signed_by if checked else None,
            trusted_as=checked.key_path if checked else None))
        return doc


def _matches(name: str, labels, image_id: str, want_name: str, want_labels,
             pin: str | None) -> bool:
    """rkt's store rule (aci.md §3.1): by imageID alone when pinned, else exact name plus
    every asked label with the same value."""
    if pin:
        return image_id.startswith(pin)
    have = dict(labels)
    return name == want_name and all(have.get(k) == v for k, v in want_labels)
