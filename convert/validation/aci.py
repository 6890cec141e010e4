"""ACIs and bare ACI manifests: every problem, with its place (aci.md §1–2, §4).

One streaming pass: the archive layout rules for every entry (stricter than actool, which
misses `..`, hardlink targets and `rootfsX/`), then the manifest: JSON, schema, the rules a
schema cannot state, and the stricter ones (isolator value shapes, absolute whitelist paths).
A valid ACI's image ID is reported. The archive, and with a store its dependencies, are opened
through the caller's `AciFiles`, which holds the expansion limit.
"""

from __future__ import annotations

from .. import jsonio
from ..errors import AciociError
from ..readers.aci import MAX_MANIFEST, AciFiles, read_whole
from ..readers.aci_manifest import canonical_keys
from ..spec import schemas
from ..spec.aci_rules import entry_problems, semantic_problems, strict_problems
from .report import FileReport


def manifest_findings(data: bytes, report: FileReport, place: str) -> None:
    try:
        raw = jsonio.loads(data)
    except AciociError as exc:
        report.error("json.invalid", place, exc.message)
        return
    if not isinstance(raw, dict):
        report.error("aci.manifest.shape", place, "manifest is not a JSON object")
        return
    try:
        doc = canonical_keys(raw)
    except AciociError as exc:
        report.error("aci.manifest.keys", place, exc.message)
        return
    sub = lambda ptr: f"{place}#{ptr}" if ptr else place  # noqa: E731
    for ptr, msg in schemas.problems("aci-manifest", doc):
        report.error("aci.manifest.schema", sub(ptr), msg)
    for rule, ptr, msg in semantic_problems(doc) + strict_problems(doc):
        report.error(rule, sub(ptr), msg)


def validate_aci(path: str, report: FileReport, *, acis: AciFiles = AciFiles(),
                 store: tuple[str, ...] = ()) -> None:
    archive = acis.archive(path, check=False)
    seen: dict[str, str] = {}
    implied: set[str] = set()
    manifest = None

    def unsafe(name: str, message: str) -> None:
        rule = "aci.entry.absolute" if name.startswith("/") else "aci.entry.dotdot" \
            if ".." in name.split("/") else "aci.entry.name"
        report.error(rule, name, message)

    archive_entries = archive.entries(on_unsafe=unsafe)
    try:
        for entry in archive_entries:
            name = entry.path
            for rule, message in entry_problems(entry, seen, implied):
                report.error(rule, name or "/", message)
            if name == "manifest" and entry.kind == "file" and manifest is None:
                if entry.size > MAX_MANIFEST:
                    report.error("aci.manifest.size", "manifest",
                                 f"manifest of {entry.size} bytes exceeds {MAX_MANIFEST}")
                else:
                    manifest = read_whole(entry)
    except AciociError as exc:
        report.error("aci.archive.unreadable", exc.entry or "", exc.message)
        return
    if "manifest" not in seen:
        report.error("aci.layout.no-manifest", "", "no manifest entry")
    if seen.get("rootfs") != "dir":
        report.error("aci.layout.no-rootfs", "", "no rootfs directory entry")
    if manifest is not None:
        manifest_findings(manifest, report, "manifest")
    report.image_id = archive.image_id
    if store and not report.findings:
        from ..readers import aci_chain

        try:  # with --store, dependencies must resolve: missing, ambiguous, cycles
            aci_chain.read(path, store=store, acis=acis)
        except AciociError as exc:
            where = exc.entry or exc.pointer or ""
            if exc.file and exc.file != path:
                where = f"{exc.file}::{where}"
            report.error("aci.dependency.resolve", where, exc.message)
