"""What the command builds before it parses a line: only the verb it is given (typer builds a
click command for each verb it holds), and every verb for anything else."""

from __future__ import annotations

import subprocess
import sys

from convert import cli
from helpers import ROOT


def names(app) -> list[str]:
    return [c.name or c.callback.__name__ for c in app.registered_commands]


def test_a_named_verb_is_built_alone_and_the_app_keeps_every_verb(monkeypatch):
    monkeypatch.delenv("_ACIOCI_COMPLETE", raising=False)
    every = names(cli.app)
    assert {"convert", "inspect", "validate", "batch", "version"} <= set(every)
    assert names(cli._app_for(["convert", "a.aci", "out"])) == ["convert"]
    assert names(cli.app) == every
    for argv in ([], ["--help"], ["--version"], ["conver", "a.aci"]):
        assert cli._app_for(argv) is cli.app


def test_shell_completion_gets_every_verb(monkeypatch):
    monkeypatch.setenv("_ACIOCI_COMPLETE", "bash_complete")
    assert cli._app_for(["convert"]) is cli.app


def test_a_misspelt_verb_still_gets_suggestions():
    out = subprocess.run([sys.executable, "-m", "convert", "conver", "a.aci", "b"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert "Did you mean 'convert'?" in out.stderr


def test_a_conversion_imports_only_what_it_uses(tmp_path):
    """A plain ACI -> OCI conversion makes no temporary directory and no pipe: tempfile (with
    random and its seeding) and multiprocessing stay unimported (~1.7 and ~10 ms of start-up)."""
    aci = ROOT / "fixtures" / "sample" / "store" / "base-1.0.0-linux-amd64.aci"
    code = ("import sys, runpy; sys.argv = ['acioci', 'convert', sys.argv[1], sys.argv[2], '-q']\n"
            "try:\n    runpy.run_module('convert', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('tempfile', 'random', 'multiprocessing') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(aci), str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "index.json").exists()
    assert out.stdout.strip().splitlines()[-1] == "[]"
