"""The Python API's ergonomics: `api.convert` takes the option keywords `api.read` does, `dir`
shows the API and not the modules it uses, library messages do not assume the CLI's flags, and
an error's JSON pointer is in `e.pointer` whichever way the reader gave it."""

from __future__ import annotations

import json

import pytest

from convert import api
from convert.errors import AciociError, FormatError
from helpers import ROOT

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
