"""Kinds are data, never guessed from words (issue 14): a validation rule is named where the
problem is found, not derived from its message (`"aci.osarch" if "bad arch" in msg`), and no
error is told apart by its text or its class's name."""

from __future__ import annotations

import ast

from convert.spec.aci_rules import semantic_problems
from convert.validation.report import FileReport
from convert.validation.aci import manifest_findings
from helpers import ROOT


def manifest(**extra) -> dict:
    doc = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/x",
           "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}]}
    doc.update(extra)
    return doc


def test_semantic_problems_name_their_rules():
    doc = manifest(labels=[{"name": "os", "value": "linux"}, {"name": "arch", "value": "sparc"},
                           {"name": "os", "value": "linux"}],
                   app={"exec": ["/x"], "user": "0", "group": "0",
                        "ports": [{"name": "p", "protocol": "tcp", "port": 65535,
                                   "count": 5}]})
    found = semantic_problems(doc)
    assert sorted(rule for rule, _ptr, _msg in found) == [
        "aci.manifest.duplicate", "aci.manifest.rule", "aci.osarch"]
    assert ("aci.osarch", "/labels", "bad arch 'sparc' for linux") in found
    assert semantic_problems(manifest()) == []


def test_the_validator_reports_the_rule_it_is_given():
    """The validator's rules come from the rule table, whatever the messages say."""
    import json

    doc = manifest(labels=[{"name": "os", "value": "linux"}, {"name": "arch", "value": "sparc"}],
                   dependencies=[{"imageName": "example.com/dep",
                                  "labels": [{"name": "os", "value": "linux"},
                                             {"name": "arch", "value": "duplicate"}]}])
    report = FileReport(file="m", type="aci-manifest")
    manifest_findings(json.dumps(doc).encode(), report, "manifest")
    rules = [(f.rule, f.place) for f in report.findings]
    assert rules == [("aci.osarch", "manifest#/labels"),
                     ("aci.osarch", "manifest#/dependencies/0/labels")], rules


# Where a decision on words stays, and why: the stdlib's LZMAError carries liblzma's
# MEMLIMIT code only in its message; readers/docker.py avoids saying an entry twice (another
# helper's file).
ALLOWED = {("convert/compression.py", "memory usage limit"),
           ("convert/readers/docker.py", "exc.entry")}


def _wordy(node: ast.Compare) -> str | None:
    """The needle of `"x" in msg`, `"x" in str(exc)`, `... in exc.message`,
    `type(exc).__name__ ==/in ...`, or None."""
    left = node.left
    needle = left.value if isinstance(left, ast.Constant) else ast.unparse(left)
    for side in (node.left, *node.comparators):
        if (isinstance(side, ast.Attribute) and side.attr == "__name__"
                and isinstance(side.value, ast.Call)
                and getattr(side.value.func, "id", None) == "type"):
            return needle
    if not any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
        return None
    hay = node.comparators[0]
    while isinstance(hay, ast.Call) and isinstance(hay.func, ast.Attribute):
        hay = hay.func.value  # str(exc).lower()
    texty = (isinstance(hay, ast.Name) and hay.id in ("msg", "message")
             or isinstance(hay, ast.Attribute) and hay.attr == "message"
             or isinstance(hay, ast.Call) and getattr(hay.func, "id", None) == "str"
             and hay.args and getattr(hay.args[0], "id", "") in ("e", "exc", "err", "error"))
    return needle if texty else None


def test_no_kind_is_guessed_from_a_message():
    found = []
    for path in sorted((ROOT / "convert").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                needle = _wordy(node)
                if needle is not None and (rel, needle) not in ALLOWED:
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
