"""The house rule: every module of the package stays under 500 lines (a module past it is a
room that wants splitting: see README.md, "Layout of the code")."""

from __future__ import annotations

from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "convert"
LIMIT = 500


def test_every_module_is_under_500_lines():
    sizes = {str(p.relative_to(PKG.parent)): len(p.read_text().splitlines())
             for p in PKG.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n >= LIMIT} == {}
