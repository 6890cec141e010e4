"""The package's import graph: no cycles, and each layer imports only what is below it.

Every import counts, also those inside functions (a deferred import hides a cycle from the
interpreter, not from a reader of the code). Layers, lowest first:
- base: errors, jsonio, tar and compression streams, the graph, options, meter, atomic writes;
- spec: schemas, media types, vocabulary tables, ACI rules (imports only base);
- readers and writers: never each other, never validation, transports or the commands;
- validation, prepare and the transformations (render, squash, layered);
- transports, api, batch, inspect, cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "convert"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("convert")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("convert"):
                continue
            for alias in node.names:  # `from . import x` imports the module x
                sub = f"{mod}.{alias.name}"
                out.add(sub if (PKG.parent / (sub.replace(".", "/") + ".py")).exists()
                        or (PKG.parent / sub.replace(".", "/")).is_dir() else mod)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PKG.rglob("*.py")}


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if nxt == "convert" or nxt not in g:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)


def _importers_of(prefixes: tuple[str, ...], g) -> dict[str, set[str]]:
    return {m: {i for i in deps if i.startswith(prefixes)} for m, deps in g.items()}


def test_spec_layer_imports_nothing_above_it():
    allowed = ("convert.errors", "convert.jsonio", "convert.graph", "convert.tarstream",
               "convert.tarbuffer", "convert.spec")
    g = graph()
    for mod, deps in g.items():
        if mod.startswith("convert.spec"):
            assert all(d.startswith(allowed) for d in deps), (mod, deps)


def test_readers_and_writers_meet_only_at_the_graph():
    g = graph()
    above = ("convert.validation", "convert.transports", "convert.api", "convert.cli",
             "convert.batch", "convert.inspect")
    for mod, deps in g.items():
        if mod.startswith("convert.readers"):
            bad = {d for d in deps if d.startswith(("convert.writers",) + above)}
            assert not bad, (mod, bad)
        if mod.startswith("convert.writers"):
            bad = {d for d in deps if d.startswith(("convert.readers",) + above)}
            assert not bad, (mod, bad)


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    """The cycle check itself can fail: a two-module loop is reported."""
    pkg = tmp_path / "convert"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    try:
        test_no_import_cycles()
    except AssertionError as exc:
        assert "convert.a -> convert.b -> convert.a" in str(exc) or \
            "convert.b -> convert.a -> convert.b" in str(exc)
    else:
        raise AssertionError("a cycle went unnoticed")
