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
