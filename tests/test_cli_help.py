"""Help and option conventions a user expects of a command line tool: -h, --version, shell
completion, metavars that say what to type, choices listed and checked, sizes with suffixes,
options grouped by what they are for, the same spelling of the same thing in every verb, and
usage errors as one `acioci: error:` line with exit 2."""

from __future__ import annotations

import json
import re

import pytest

from helpers import ROOT, acioci

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = SAMPLE.parent / "store"
VERBS = ["convert", "inspect", "validate", "batch"]


@pytest.mark.parametrize("verb", VERBS)
def test_dash_h_is_help(verb):
    short = acioci(verb, "-h", check=0).stdout
    assert short == acioci(verb, "--help", check=0).stdout
    assert "<str>" not in short and "<int>" not in short and "INTEGER" not in short
    assert "TEXT" not in short


def test_version_flag_and_verb():
    flag = acioci("--version", check=0).stdout
    assert flag.startswith("acioci ") and flag == acioci("version", check=0).stdout


def test_shell_completion_is_offered():
    top = acioci("--help", check=0).stdout
    assert "--install-completion" in top and "--show-completion" in top


def test_metavars_and_choices_in_help():
    text = acioci("convert", "--help", check=0).stdout
    for shown in ("--platform OS/ARCH[/VARIANT]", "--ref REF", "--name NAME", "--tag TAG",
                  "--compression gzip|zstd|bzip2|xz|none", "--whitelist-mode rkt|spec",
                  "aci|oci|oci-archive", "--max-expand SIZE", "64G"):
        assert shown in text, shown
    assert "68719476736" not in text
    batch = acioci("batch", "--help", check=0).stdout
    assert "--jobs N" in batch and "--to oci|aci" in batch and "--report FILE" in batch


def test_options_are_grouped():
    text = acioci("convert", "--help", check=0).stdout
    headings = [line.rstrip(":") for line in text.splitlines() if re.fullmatch(r"\S.*:", line)]
    assert headings[-5:] == ["Input selection", "Output", "Behaviour",
                             "Remote sources (appc:, docker://)", "Other options"], headings


@pytest.mark.parametrize("args", [
    ["convert", "a.aci", "out", "--compression", "lz4"],
    ["convert", "a.aci", "out", "--whitelist-mode", "loose"],
    ["convert", "a.aci", "out", "--to", "tarball"],
    ["batch", "a.aci", "--to", "tarball", "--out", "x"],
    ["validate", "--type", "nonsense", "a"],
    ["convert", "a.aci", "out", "--max-expand", "12Q"],
    ["convert", "a.aci", "out", "--no-such-option"],
    ["convert", "a.aci"],
])
def test_usage_errors_are_one_line_exit_2(args):
    proc = acioci(*args, check=2)
    assert proc.stderr.startswith("acioci: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Usage:" not in proc.stderr and "Traceback" not in proc.stderr


def test_max_expand_takes_suffixes(tmp_path):
    proc = acioci("convert", SAMPLE, tmp_path / "o.tar", "--store", STORE, "--max-expand", "1K",
                  check=1)
    assert "1024 bytes" in proc.stderr
    acioci("convert", SAMPLE, tmp_path / "p.tar", "--store", STORE, "--max-expand", "1G",
           "-q", check=0)


def test_overwrite_and_force_in_both_verbs(tmp_path):
    out = tmp_path / "o.tar"
    acioci("convert", SAMPLE, out, "--store", STORE, "-q", check=0)
    acioci("convert", SAMPLE, out, "--store", STORE, "-q", "--force", check=0)
    acioci("convert", SAMPLE, out, "--store", STORE, "-q", "--overwrite", check=0)
    acioci("batch", STORE, "--to", "oci", "--out", tmp_path / "b", "-q", check=0)
    proc = acioci("batch", STORE, "--to", "oci", "--out", tmp_path / "b", "--overwrite",
                  "--json", check=0)
    assert json.loads(proc.stdout)["summary"]["converted"] == 1  # not skipped


def test_quiet_validate_prints_only_problems(tmp_path):
    bad = tmp_path / "bad.aci"
    bad.write_bytes(SAMPLE.read_bytes()[:500])
    proc = acioci("validate", "-q", SAMPLE, check=0)
    assert proc.stdout == ""
    proc = acioci("validate", "-q", SAMPLE, bad)
    assert proc.returncode in (1, 2)
    assert str(SAMPLE) not in proc.stdout and "checked" not in proc.stdout
    assert str(bad) in proc.stdout


def test_quiet_convert_prints_failures(tmp_path):
    proc = acioci("convert", SAMPLE, tmp_path / "o.tar", "-q")  # no --store: a failure
    assert proc.returncode == 1 and proc.stdout == "" and "acioci: error:" in proc.stderr
