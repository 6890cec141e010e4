"""The Python API's ergonomics: `api.convert` takes the option keywords `api.read` does, `dir`
shows the API and not the modules it uses, library messages do not assume the CLI's flags, and
an error's JSON pointer is in `e.pointer` whichever way the reader gave it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re

import pytest

from convert import api
from convert.cli_options import FLAGS
from convert.errors import AciociError, FormatError, ResolutionError
from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = SAMPLE.parent / "store"


def test_convert_takes_option_keywords(tmp_path):
    by_keywords = api.convert(str(SAMPLE), f"oci:{tmp_path / 'a'}:v1", store=[str(STORE)],
                              squash=True)
    by_options = api.convert(str(SAMPLE), f"oci:{tmp_path / 'b'}:v1",
                             options=api.ConvertOptions(store=(str(STORE),), squash=True))
    assert by_keywords.manifest == by_options.manifest
    assert len(json.loads((tmp_path / "a" / "index.json").read_text())["manifests"]) == 1


def test_convert_refuses_unknown_or_doubled_options(tmp_path):
    with pytest.raises(TypeError, match="sqush"):
        api.convert(str(SAMPLE), str(tmp_path / "x"), sqush=True)
    with pytest.raises(TypeError, match="not both"):
        api.convert(str(SAMPLE), str(tmp_path / "x"), options=api.ConvertOptions(),
                    squash=True)


def test_dir_shows_only_the_api():
    names = set(dir(api))
    assert {"convert", "read", "open", "ConvertOptions", "ReadOptions"} <= names
    assert not names & {"os", "dataclass", "replace", "transports", "prepare", "Callable"}
    assert all(not n.startswith("_") for n in names)


def test_library_messages_name_no_cli_flags(tmp_path):
    with pytest.raises(api.UsageError) as info:
        api.render(api.read(str(STORE / "base-1.0.0-linux-amd64.aci")), whitelist_mode="loose")
    assert "--" not in str(info.value)
    out = tmp_path / "o"
    api.convert(str(SAMPLE), str(out), store=[str(STORE)])
    with pytest.raises(api.UsageError) as info:
        api.convert(str(out), str(tmp_path), to="oci", overwrite=True)
    assert "--" not in str(info.value)


def test_pointer_is_set_when_the_place_is_a_json_pointer():
    err = FormatError("bad", file="x.aci", entry="manifest#/app/ports/0")
    assert err.pointer == "/app/ports/0" and err.entry == "manifest#/app/ports/0"
    assert str(err) == "x.aci::manifest#/app/ports/0: bad"
    assert FormatError("bad", entry="rootfs/etc/passwd").pointer is None
    assert FormatError("bad", pointer="/a").pointer == "/a"


def test_got_none_is_not_said():
    text = str(AciociError("missing", file="f", expected="sha512-abc"))
    assert text == "f: missing (expected sha512-abc)"
    assert "got" not in text


def test_every_function_takes_its_options_as_keywords_and_shows_them():
    """read, read_all, open, convert and convert_all take their options dataclass's fields as
    keywords (or `options=`), and their signatures list them with the dataclass's defaults."""
    for fn, kind, without in [(api.read, api.ReadOptions, {"once", "select_all"}),
                              (api.read_all, api.ReadOptions, {"once"}),
                              (api.open, api.ReadOptions, {"once"}),
                              (api.convert, api.ConvertOptions, set()),
                              (api.convert_all, api.ConvertOptions, {"select_all"})]:
        params = inspect.signature(fn).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in params.values()), fn.__name__
        assert "options" in params
        for f in dataclasses.fields(kind):
            if f.name in without:
                assert f.name not in params, (fn.__name__, f.name)
                continue
            assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert params[f.name].default == default, (fn.__name__, f.name)


def test_read_takes_the_remote_options_and_an_options_object():
    by_keywords = api.read(str(SAMPLE), store=[str(STORE)], tls_verify=False, image_id=False)
    by_options = api.read(str(SAMPLE), options=api.ReadOptions(store=(str(STORE),)))
    assert by_keywords.name == by_options.name == "example.com/hello"
    with api.open(str(SAMPLE), store=[str(STORE)]) as source:
        assert [i.name for i in source.images()] == ["example.com/hello"]
    with pytest.raises(TypeError, match="squash"):
        api.read(str(SAMPLE), squash=True)  # an output option means nothing to a read


def test_a_library_error_names_no_flag_and_the_cli_names_it(tmp_path):
    """Without a store, the library says so in its terms and points at the option by its
    library name; the CLI renders that as the flag of the verb at hand."""
    with pytest.raises(ResolutionError) as info:
        api.convert(str(SAMPLE), str(tmp_path / "a"))
    assert "--" not in str(info.value) and "no store given" in str(info.value)
    assert info.value.hint_option == ("store",)
    assert not (tmp_path / "a").exists()
    proc = acioci("convert", SAMPLE, tmp_path / "b", check=1)
    assert proc.stderr.rstrip().endswith("(use --store DIR)"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_the_cli_names_only_the_flags_its_verb_has(tmp_path):
    api.convert(str(SAMPLE), str(tmp_path / "layout"), store=[str(STORE)])
    proc = acioci("convert", SAMPLE, tmp_path / "layout", "--store", STORE, check=2)
    assert "(use --tag TAG or --overwrite)" in proc.stderr
    with pytest.raises(api.AciociError) as info:
        api.convert(str(SAMPLE), str(tmp_path / "layout"), store=[str(STORE)])
    assert info.value.hint_option == ("tag", "overwrite") and "--" not in str(info.value)


def _string_constants(tree):
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings):
            yield node


def test_no_library_message_names_a_flag():
    """Every string in the library (docstrings and comments aside) that mentions `--word` is
    a flag handed to another program (`gpgv --homedir`), never text for a user; the flags are
    the CLI's to name (cli.py, cli_options.py)."""
    found = []
    for path in sorted((ROOT / "convert").rglob("*.py")):
        if path.name in ("cli.py", "cli_options.py"):
            continue
        tree = ast.parse(path.read_text())
        for node in _string_constants(tree):
            text = node.value
            if re.search(r"--[a-z]", text) and not re.fullmatch(r"--[a-z][a-z0-9-]*(=\S*)?",
                                                                 text):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
        for node in ast.walk(tree):  # "--" + name: a flag made up on the fly
            if (isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant)
                    and node.left.value == "--"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: '--' + ...")
    assert found == []


def test_every_hinted_option_has_a_flag():
    """A `hint_option=` the library gives is one the CLI knows how to spell."""
    named = set()
    for path in sorted((ROOT / "convert").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "hint_option":
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                named |= {v.value for v in values if isinstance(v, ast.Constant)}
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute)
                    and node.targets[0].attr == "hint_option"):
                named |= {v.value for v in getattr(node.value, "elts", [])}
    assert named and named <= set(FLAGS), named - set(FLAGS)
    fields = {f.name for f in dataclasses.fields(api.ConvertOptions)}
    assert named <= fields | {"to"}


def test_a_json_error_has_its_pointer(tmp_path):
    """A bad value in an ACI manifest: the error names the JSON pointer in `e.pointer`."""
    import build as fx

    bad = tmp_path / "bad.aci"
    man = fx.manifest("example.com/bad", app={"exec": ["/x"], "user": "0", "group": "0",
                                              "ports": [{"name": "p", "protocol": "tcp",
                                                         "port": "eighty"}]})
    fx.write_aci(bad, man, [fx.entry("x", data=b"x")])
    with pytest.raises(FormatError) as info:
        api.read(str(bad))
    assert info.value.pointer is not None and info.value.pointer.startswith("/app/ports/0")
