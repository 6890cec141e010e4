"""OCI image layouts (directories and oci-archives) and docker archives: every problem, with
its place (oci.md §1–4, §7–8).

Beyond the schemas: every reachable blob exists at `blobs/<alg>/<hex>` with the size and digest
its descriptor says; a manifest's or index's own mediaType matches the descriptor pointing to
it; `len(diff_ids) == len(layers)` and each diff_id is the digest of the decompressed layer
(`fast` skips reading layers); config os/arch agree with the index platform; nested indexes are
followed with a cycle guard; each layer's tar is readable and its names stay inside the root.
Warnings: unreferenced blobs, missing blobs of layers that have `urls` or a non-distributable
type, `null` where Docker writes it, empty layer lists, unknown layer media types, an os or
architecture outside Go's GOOS/GOARCH lists (config.md's SHOULD).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass

from .. import jsonio
from ..compression import HashingReader
from ..errors import AciociError, FormatError
from ..graph import Digest
from ..readers.blobs import Blobs, NotADirectoryInLayout, TarBlobs, blob_path
from ..tarstream import read_entries
from ..spec import oci_walk, schemas, vocabulary
from .report import FileReport

from ..spec.mediatypes import CONFIG_TYPES, LAYER_TYPES, schema_of

MAX_JSON = jsonio.MAX_JSON_BYTES
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Checked:
    """What reading a layer blob once found: enough to judge another descriptor, diff_id or
    set of lower layers that names the same blob without reading it again."""

    digest: str           # "algorithm:hex" of the blob's bytes
    size: int
    diff_id: str | None   # "sha256:hex" of the decompressed tar; None: it could not be read
    paths: frozenset      # the tar's paths (a layer above may hardlink to them)
    outside: tuple        # (place, target) of hardlinks to nothing earlier in this layer


class LayerChecks:
    """The layer blobs read so far, shared by every walk of one archive. A layer that several
    manifests name (a chain's base in one layout, a layer every platform shares), or that a
    docker archive's manifest.json and its OCI index both name, is decompressed once, and its
    faults are reported once."""

    def __init__(self) -> None:
        self.done: dict[tuple[str, str], _Checked] = {}
        self.said: set[tuple] = set()  # findings that depend on the caller, once reported

    def first(self, *finding) -> bool:
        """Whether `finding` is new (and now known): two walks that name one layer with the
        same diff_id, or above the same lower paths, report its fault once."""
        new = finding not in self.said
        self.said.add(finding)
        return new


class _Walker:
    def __init__(self, blobs: Blobs, report: FileReport, fast: bool,
                 checks: LayerChecks | None = None) -> None:
        self.blobs = blobs
        self.r = report
        self.fast = fast
        self.referenced: set[str] = set()
        self.checks = LayerChecks() if checks is None else checks

    # -- helpers ---------------------------------------------------------------------------

    def _json(self, rel: str, kind: str, place: str):
        try:
            data = self.blobs.read_small(rel, MAX_JSON)
        except AciociError as exc:
            self.r.error("oci.file.unreadable", rel, exc.message)
            return None
        try:
            doc = jsonio.loads(data)
        except AciociError as exc:
            self.r.error("json.invalid", rel, exc.message)
            return None
        for ptr, msg in schemas.problems(kind, doc):
            self.r.error(f"{kind}.schema", f"{place}#{ptr}" if ptr else place, msg)
        return doc

    def _blob(self, desc: dict, place: str, *, optional: bool = False) -> str | None:
        """Check a descriptor's blob exists with its size and digest; the relative path if so."""
        descriptor_data(desc, place, self.r)
        try:
            digest = Digest.parse(desc.get("digest"))
        except FormatError as exc:
            self.r.error("oci.digest.grammar", f"{place}/digest", exc.message)
            return None
        rel = blob_path(digest)
        self.referenced.add(rel)
        try:
            exists = self.blobs.exists(rel)
        except NotADirectoryInLayout as exc:
            self.r.error("oci.layout.not-a-directory", rel, exc.message)
            return None
        except AciociError as exc:
            self.r.error("oci.path.unsafe", rel, exc.message)
            return None
        if not exists:
            if optional:
                self.r.warn("oci.blob.foreign-missing", rel, "blob of a non-distributable layer "
                            "(or one with urls) is not in the layout")
            else:
                self.r.error("oci.blob.missing", rel, f"blob referenced at {place} is missing")
            return None
        return rel

    def _hash_blob(self, rel: str, desc: dict) -> None:
        digest = Digest.parse(desc["digest"])
        try:
            fh = self.blobs.open(rel)
        except AciociError as exc:
            self.r.error("oci.blob.unreadable", rel, exc.message)
            return
        raw = HashingReader(fh, digest.algorithm)
        try:
            while raw.read(_CHUNK):
                pass
        finally:
            fh.close()
        self._compare(rel, desc, f"{raw.hash.name}:{raw.hash.hexdigest()}", raw.count)

    def _compare(self, rel: str, desc: dict, got: str, n: int) -> None:
        """`got`: the blob's "algorithm:hex", `n` its size, against its descriptor's."""
        if isinstance(desc.get("size"), int) and n != desc["size"]:
            self.r.error("oci.blob.size", rel, "blob size differs from its descriptor",
                         desc["size"], n)
        if got != desc["digest"]:
            self.r.error("oci.blob.digest", rel, "blob content does not hash to its digest",
                         desc["digest"], got)

    def _json_blob(self, desc: dict, place: str, kind: str):
        rel = self._blob(desc, place)
        if rel is None:
            return None, None
        self._hash_blob(rel, desc)
        doc = self._json(rel, kind, rel)
        if isinstance(doc, dict) and kind != "oci-config":
            inner = doc.get("mediaType")
            if inner is not None and inner != desc.get("mediaType"):
                self.r.error("oci.mediatype.mismatch", f"{rel}#/mediaType",
                             "mediaType differs from the descriptor that points here",
                             desc.get("mediaType"), inner)
        return doc, rel

    # -- walk ------------------------------------------------------------------------------

    def visit(self, v: oci_walk.Visit) -> None:
        """One node of the shared walk; a nested index is loaded (and checked) by
        `load_index`, when the walk descends into it."""
        if v.kind == "manifest":
            doc, rel = self._json_blob(v.desc, v.place,
                                       schema_of(v.desc.get("mediaType"), "oci-manifest"))
            if isinstance(doc, dict):
                self.manifest(doc, rel, v.desc.get("platform"))
        elif v.kind == "other":
            self.r.warn("oci.mediatype.unknown", f"{v.place}/mediaType",
                        f"unknown media type {v.desc.get('mediaType')!r} skipped")

    def load_index(self, v: oci_walk.Visit):
        child = self._json_blob(v.desc, v.place,
                                schema_of(v.desc.get("mediaType"), "oci-index"))[0]
        if isinstance(child, dict) and isinstance(child.get("manifests"), list):
            child = {**child, "manifests": _walkable(child["manifests"])}
        return child

    def manifest(self, doc: dict, rel: str, platform: dict | None) -> None:
        cdesc = doc.get("config") if isinstance(doc.get("config"), dict) else None
        layers = [d for d in doc.get("layers") or [] if isinstance(d, dict)]
        if not layers:
            self.r.warn("oci.manifest.no-layers", f"{rel}#/layers", "manifest has no layers")
        config = None
        if cdesc is not None:
            if not _named(cdesc.get("mediaType"), CONFIG_TYPES):
                self.r.warn("oci.config.mediatype", f"{rel}#/config/mediaType",
                            "not an image config; not checked", actual=cdesc.get("mediaType"))
            else:
                config, crel = self._json_blob(cdesc, f"{rel}#/config", "oci-config")
                if isinstance(config, dict):
                    self.config(config, crel, platform)
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list):
            diff_ids = None  # the config's schema check reports it
        if isinstance(diff_ids, list) and len(diff_ids) != len(layers):
            self.r.error("oci.diffids.count", f"{rel}#/layers",
                         "config rootfs.diff_ids and manifest layers differ in number",
                         len(diff_ids), len(layers))
            diff_ids = None
        lower: set[str] = set()
        for i, ldesc in enumerate(layers):
            mt = ldesc.get("mediaType")
            place = f"{rel}#/layers/{i}"
            if not _named(mt, LAYER_TYPES):
                self.r.warn("oci.layer.mediatype", f"{place}/mediaType",
                            "unknown layer media type", actual=mt)
            foreign = bool(ldesc.get("urls")) or "nondistributable" in str(mt) \
                or "foreign" in str(mt)
            lrel = self._blob(ldesc, place, optional=foreign)
            if lrel is None:
                continue
            expected = diff_ids[i] if diff_ids else None
            if self.fast:
                continue
            self.layer(lrel, ldesc, expected if isinstance(expected, str) else None, lower)

    def layer(self, rel: str, desc: dict | None, diff_id: str | None,
              lower: set[str] | None = None) -> None:
        """One pass: blob digest (when a descriptor gives one), decompression, diff_id, and the
        tar's names: unsafe, duplicate, bare whiteouts, hardlinks to nothing earlier, entries
        below a symlink. `lower` collects the paths of the layers below (and gains this one's)."""
        lower = set() if lower is None else lower
        digest = Digest.parse(desc["digest"]) if desc else Digest("sha256", "")
        done = self.checks.done.get((rel, digest.algorithm))
        if done is None:
            done = self.checks.done[(rel, digest.algorithm)] = self._read_layer(rel, digest)
        for place, target in done.outside:
            if target not in lower and self.checks.first("dangling", place):
                self.r.error("oci.layer.hardlink-dangling", place, f"hardlink target "
                             f"{target!r} is neither earlier in this layer nor in a lower one")
        lower |= done.paths
        if desc:
            self._compare(rel, desc, done.digest, done.size)
        if diff_id is not None and done.diff_id is not None and done.diff_id != diff_id \
                and self.checks.first("diff_id", rel, diff_id):
            self.r.error("oci.diffid.mismatch", rel, "decompressed layer does not hash to "
                         "its diff_id", diff_id, done.diff_id)

    def _read_layer(self, rel: str, digest: Digest) -> _Checked:
        """The one read of a layer blob: its digest and size, its diff_id, and the tar's
        faults, reported here (see `layer`)."""
        outside: list[tuple[str, str]] = []
        fh = self.blobs.open(rel)
        raw = HashingReader(fh, digest.algorithm)  # the blob digest, as bytes are read
        plain, readable = False, True
        here: set[str] = set()
        try:
            kind, stream = self.blobs.open_decompressed(raw, allowed=("tar", "gzip", "zstd"),
                                                        what="layer")
            plain = kind == "tar" and digest.algorithm == "sha256"
            # an uncompressed layer's diff_id is its digest: hash the bytes once, not twice
            src = stream if plain else HashingReader(stream)

            def unsafe(name, message):
                self.r.error("oci.layer.unsafe-path", f"{rel}::{name}", message)

            links: set[str] = set()
            for entry in read_entries(src, on_unsafe=unsafe):
                place = f"{rel}::{entry.path}"
                if entry.path in here:
                    self.r.error("oci.layer.duplicate", place, "two entries for one path "
                                 "(OCI layers MUST NOT)")
                here.add(entry.path)
                if entry.kind == "symlink":
                    links.add(entry.path)
                parent = entry.path.rpartition("/")[0]
                while parent:
                    if parent in links:
                        self.r.warn("oci.layer.through-symlink", place,
                                    f"entry lies below symlink {parent!r}: converters resolve "
                                    "it inside the root, a plain tar -x writes through the link")
                        break
                    parent = parent.rpartition("/")[0]
                base = entry.path.rpartition("/")[2]
                if base == ".wh.":
                    self.r.error("oci.layer.bare-whiteout", place, "whiteout names nothing")
                if entry.kind == "hardlink" and (entry.linkname == entry.path
                                                 or entry.linkname not in here):
                    outside.append((place, entry.linkname))  # judged against lower in `layer`
            while src.read(_CHUNK):
                pass
            while raw.read(_CHUNK):
                pass
        except AciociError as exc:
            self.r.error("oci.layer.unreadable", f"{rel}::{exc.entry}" if exc.entry else rel,
                         exc.message)
            while raw.read(_CHUNK):
                pass
            readable = False
        finally:
            fh.close()
        diff = "sha256:" + (raw.hash if plain else src.hash).hexdigest() if readable else None
        return _Checked(f"{raw.hash.name}:{raw.hash.hexdigest()}", raw.count, diff,
                        frozenset(here), tuple(outside))

    def config(self, doc: dict, rel: str, platform: dict | None) -> None:
        cfg = doc.get("config")
        if isinstance(cfg, dict):
            for key, value in cfg.items():
                if value is None:
                    self.r.warn("oci.config.null", f"{rel}#/config/{key}",
                                f"{key} is null (Docker writes this; the spec reads it as absent)")
        platform_names(doc, rel, self.r)
        if isinstance(platform, dict):
            for key in ("os", "architecture", "variant"):
                if key in platform and platform.get(key) != doc.get(key):
                    self.r.error("oci.platform.mismatch", f"{rel}#/{key}",
                                 "config differs from the index platform", platform.get(key),
                                 doc.get(key))


def platform_names(config: dict, rel: str, report: FileReport) -> None:
    """config.md asks for Go's GOOS and GOARCH values; another name (`aarch64`, appc's and the
    kernel's spelling of `arm64`) is one no runtime or registry client matches, so the image
    is never chosen for any machine. A warning: the spec says SHOULD, and nothing refuses it."""
    for key, known, go, rule in (
            ("os", vocabulary.GOOS, "GOOS", "oci.platform.unknown-os"),
            ("architecture", vocabulary.GOARCH, "GOARCH", "oci.platform.unknown-arch")):
        value = config.get(key)
        if isinstance(value, str) and value not in known:
            alias = vocabulary.ARCH_ALIASES.get(value) if key == "architecture" else None
            hint = f"; OCI's name for it is {'/'.join(a for a in alias if a)}" if alias else ""
            report.warn(rule, f"{rel}#/{key}", f"{key} {value!r} is not one of Go's {go} "
                        f"values, so runtimes will not match it to a machine{hint}")


def _named(media_type, types) -> bool:
    """`media_type in types`, for a value that may be any JSON (the schema reports a list)."""
    return isinstance(media_type, str) and media_type in types


def _walkable(descriptors: list) -> list:
    """The descriptors as the shared walk can take them: a mediaType that is not a string
    (an error the schema has reported) becomes its JSON text, an unknown type the walk skips
    with a warning, instead of a TypeError in the walk."""
    out = []
    for desc in descriptors:
        mt = desc.get("mediaType") if isinstance(desc, dict) else None
        if mt is not None and not isinstance(mt, str):
            desc = {**desc, "mediaType": jsonio.dumps(mt).decode("utf-8")}
        out.append(desc)
    return out


_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def descriptor_data(desc: dict, place: str, report: FileReport) -> None:
    """A descriptor's `data` (descriptor.md: the embedded content) is RFC 4648 §4 base64,
    padded, in the standard alphabet (the schema's pattern says so too), and its bytes are the
    content itself: their length is `size` and they hash to `digest`. A reader that trusts the
    embedded bytes instead of fetching the blob would get other content than the digest names."""
    data = desc.get("data") if isinstance(desc, dict) else None
    if not isinstance(data, str):
        return
    where = f"{place}/data"
    if not _BASE64.fullmatch(data):
        report.error("oci.descriptor.data", where, "data is not padded standard base64 "
                     "(RFC 4648 §4)")
        return
    raw = base64.b64decode(data, validate=True)
    size = desc.get("size")
    if type(size) is int and len(raw) != size:
        report.error("oci.descriptor.data", where, "decoded data differs in length from size",
                     size, len(raw))
    try:
        digest = Digest.parse(desc.get("digest"))
    except FormatError:
        return  # reported where the digest is checked
    got = f"{digest.algorithm}:{hashlib.new(digest.algorithm, raw).hexdigest()}"
    if got != str(digest):
        report.error("oci.descriptor.data", where, "decoded data does not hash to the digest",
                     str(digest), got)


def document_findings(kind: str, doc, report: FileReport) -> None:
    """What `validate --type oci-index|oci-manifest` checks in a bare document beyond its
    schema, as a layout walk checks it: each descriptor's embedded data, and a manifest
    without layers (the same warning)."""
    if not isinstance(doc, dict):
        return
    descs = []
    if kind == "oci-manifest":
        descs.append((doc.get("config"), "#/config"))
        layers = doc.get("layers")
        if isinstance(layers, list):
            descs += [(d, f"#/layers/{i}") for i, d in enumerate(layers)]
            if not layers:
                report.warn("oci.manifest.no-layers", "#/layers", "manifest has no layers")
        descs.append((doc.get("subject"), "#/subject"))
    elif kind == "oci-index":
        manifests = doc.get("manifests")
        if isinstance(manifests, list):
            descs += [(d, f"#/manifests/{i}") for i, d in enumerate(manifests)]
        descs.append((doc.get("subject"), "#/subject"))
    elif kind == "oci-descriptor":
        descs.append((doc, "#"))
    for desc, place in descs:
        if isinstance(desc, dict):
            descriptor_data(desc, place, report)


def validate_layout(blobs: Blobs, report: FileReport, *, fast: bool = False,
                    unreferenced: bool = True, checks: LayerChecks | None = None) -> None:
    """`unreferenced`: warn of blobs nothing points at (a registry cannot list its blobs).
    Layers decompress within the limit `blobs` was opened with. `checks`: the layers another
    walk of the same archive read already (`LayerChecks`)."""
    w = _Walker(blobs, report, fast, checks)
    layout = w._json("oci-layout", "oci-layout", "oci-layout")
    index = w._json("index.json", "oci-index", "index.json")
    if layout is None and index is None:
        return
    if isinstance(index, dict) and isinstance(index.get("manifests"), list):
        for visit in oci_walk.walk(_walkable(index["manifests"]), w.load_index, report):
            w.visit(visit)
    for rel in _all_blobs(blobs) if unreferenced else ():
        if rel not in w.referenced:
            report.warn("oci.blob.unreferenced", rel, "blob is not referenced")


def _all_blobs(blobs: Blobs) -> list[str]:
    if isinstance(blobs, TarBlobs):
        return sorted(n for n in blobs.names() if n.startswith("blobs/") and n.count("/") == 2
                      and blobs.members[n][0] == "file")
    root = os.path.join(blobs.where, "blobs")
    if not os.path.isdir(root) or os.path.islink(root):
        return []
    out = []
    for alg in sorted(os.listdir(root)):
        d = os.path.join(root, alg)
        if os.path.isdir(d) and not os.path.islink(d):
            out += [f"blobs/{alg}/{n}" for n in sorted(os.listdir(d))]
    return out


def validate_docker(blobs: TarBlobs, report: FileReport, *, fast: bool = False,
                    checks: LayerChecks | None = None) -> None:
    try:
        data = blobs.read_small("manifest.json", MAX_JSON)
        doc = jsonio.loads(data)
    except AciociError as exc:
        report.error("docker.manifest.invalid", "manifest.json", exc.message)
        return
    if not isinstance(doc, list):
        report.error("docker.manifest.shape", "manifest.json", "must be a JSON array")
        return
    checks = LayerChecks() if checks is None else checks  # a layer two items share: read once
    for i, item in enumerate(doc):
        place = f"manifest.json#/{i}"
        if not isinstance(item, dict):
            report.error("docker.manifest.shape", place, "must be an object")
            continue
        cfg = item.get("Config")
        layers = item.get("Layers")
        if not isinstance(cfg, str):
            report.error("docker.config.missing", f"{place}/Config", "Config path is missing")
        elif not blobs.exists(cfg):
            report.error("docker.config.missing", f"{place}/Config",
                         f"config {cfg} is not in the archive")
        if not isinstance(layers, list):
            report.error("docker.layers.missing", f"{place}/Layers", "Layers list is missing")
            continue
        for j, rel in enumerate(layers):
            if not isinstance(rel, str) or not blobs.exists(rel):
                report.error("docker.layer.missing", f"{place}/Layers/{j}",
                             f"layer {rel} is not in the archive")
        diff_ids = None
        if isinstance(cfg, str) and blobs.exists(cfg):
            try:
                config = jsonio.loads(blobs.read_small(cfg, MAX_JSON))
                if isinstance(config, dict):
                    platform_names(config, cfg, report)
                rootfs = config.get("rootfs") if isinstance(config, dict) else None
                diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
                if not isinstance(diff_ids, list):
                    report.error("docker.config.invalid", f"{cfg}#/rootfs/diff_ids",
                                 "rootfs.diff_ids must be an array")
                    diff_ids = None
                elif len(diff_ids) != len(layers):
                    report.error("docker.diffids.count", f"{cfg}#/rootfs/diff_ids",
                                 "diff_ids and Layers differ in number", len(layers),
                                 len(diff_ids))
                    diff_ids = None
            except (AciociError, AttributeError) as exc:
                report.error("docker.config.invalid", cfg, str(exc))
        if fast:
            continue
        walker, lower = _Walker(blobs, report, fast, checks), set()
        for j, rel in enumerate(layers):
            if isinstance(rel, str) and blobs.exists(rel):
                walker.layer(rel, None, diff_ids[j] if diff_ids else None, lower)
