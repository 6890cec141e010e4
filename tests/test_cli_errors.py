"""Error messages for people: one `acioci: error:` line, no reprs of our objects (`None`,
`Source(...)`), no "got None", and a selection that matches nothing says what there is."""

from __future__ import annotations

import build as fx
from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
DOCKER = ROOT / "fixtures/valid/valid-docker-archive/image.tar"
PINNED = ROOT / "fixtures/valid/valid-aci-xz-everything/image.aci"


def one_line(proc) -> str:
    assert proc.stderr.startswith("acioci: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_a_missing_dependency_says_what_was_expected_not_got_none(tmp_path):
    text = one_line(acioci("convert", PINNED, tmp_path / "o.tar", check=1))
    assert "expected sha512-" in text and "got None" not in text


def test_an_aci_without_platform_labels_is_said_in_words(tmp_path):
    src = tmp_path / "bare.aci"
    fx.write_aci(src, fx.manifest("example.com/bare", os_=None, arch=None),
                 [fx.entry("f", data=b"x")])
    text = one_line(acioci("convert", src, tmp_path / "o.tar", check=2))
    assert "None" not in text and "no os and arch labels" in text and "--platform" in text


def test_a_platform_no_image_has_lists_what_there_is(tmp_path):
    for verb, args in (("convert", [DOCKER, tmp_path / "o.aci"]), ("inspect", [DOCKER])):
        text = one_line(acioci(verb, *args, "--platform", "linux/s390x", check=2))
        assert "x:1 (linux/amd64)" in text, text
        assert "0 images match" not in text


def test_usage_errors_have_one_style():
    text = one_line(acioci("inspect", SAMPLE, "--no-such", check=2))
    assert "Usage:" not in text and "No such option: --no-such" in text
