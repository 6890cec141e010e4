"""Validation results as data, and their two renderings.

Text: one line per finding, `FILE::PLACE: severity [rule] message (expected X, got Y)`, then a
verdict per file and a summary. JSON (`--json`), a stable shape:

    {"files": [{"file": str, "type": str, "valid": bool, "imageID": str|null,
                "findings": [{"severity": "error"|"warning", "rule": str, "place": str,
                              "message": str, "expected": any, "actual": any}]}],
     "summary": {"files": int, "valid": int, "invalid": int, "unreadable": int,
                 "errors": int, "warnings": int}}

`type` is one of oci-layout, oci-archive, docker-archive, aci, aci-manifest, oci-manifest,
oci-index, oci-config, oci-layout-file, unknown. An unreadable input has `valid: false` and
one finding with rule `input.unreadable`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    rule: str
    place: str
    message: str
    expected: object = None
    actual: object = None


@dataclass
class FileReport:
    file: str
    type: str
    findings: list[Finding] = field(default_factory=list)
    image_id: str | None = None
    unreadable: bool = False

    def error(self, rule: str, place: str, message: str, expected=None, actual=None) -> None:
        self.findings.append(Finding("error", rule, place, message, expected, actual))

    def warn(self, rule: str, place: str, message: str, expected=None, actual=None) -> None:
        self.findings.append(Finding("warning", rule, place, message, expected, actual))

    def valid(self, strict: bool = False) -> bool:
        bad = ("error", "warning") if strict else ("error",)
        return not self.unreadable and not any(f.severity in bad for f in self.findings)


def render_text(reports: list[FileReport], strict: bool, verbose: bool = True) -> str:
    lines = []
    for r in reports:
        for f in r.findings:
            extra = ""
            if f.expected is not None or f.actual is not None:
                extra = f" (expected {f.expected}, got {f.actual})"
            where = f"{r.file}::{f.place}" if f.place else r.file
            lines.append(f"{where}: {f.severity} [{f.rule}] {f.message}{extra}")
        if r.unreadable:
            verdict = "unreadable"
        elif r.valid(strict):
            verdict = "valid" + (f" {r.type}, image ID {r.image_id}" if r.image_id else f" {r.type}")
        else:
            verdict = f"INVALID {r.type}"
        if verbose or not r.valid(strict):
            lines.append(f"{r.file}: {verdict}")
    s = summary(reports, strict)
    lines.append(f"{s['files']} checked: {s['valid']} valid, {s['invalid']} invalid, "
                 f"{s['unreadable']} unreadable ({s['errors']} errors, {s['warnings']} warnings)")
    return "\n".join(lines)


def summary(reports: list[FileReport], strict: bool) -> dict:
    return {
        "files": len(reports),
        "valid": sum(r.valid(strict) for r in reports),
        "invalid": sum(not r.valid(strict) and not r.unreadable for r in reports),
        "unreadable": sum(r.unreadable for r in reports),
        "errors": sum(f.severity == "error" for r in reports for f in r.findings),
        "warnings": sum(f.severity == "warning" for r in reports for f in r.findings),
    }


def render_json(reports: list[FileReport], strict: bool) -> str:
    return json.dumps({
        "files": [{"file": r.file, "type": r.type, "valid": r.valid(strict),
                   "imageID": r.image_id, "findings": [asdict(f) for f in r.findings]}
                  for r in reports],
        "summary": summary(reports, strict)}, indent=2, default=str)
