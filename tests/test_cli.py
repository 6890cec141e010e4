"""The CLI surface: help with examples on every command, inspect in both shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import acioci

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures/sample/hello-1.0.0-linux-amd64.aci"


@pytest.mark.parametrize("command", ["convert", "inspect"])
def test_help_has_examples(command):
    proc = acioci(command, "--help", check=0)
    assert "Examples:" in proc.stdout and f"acioci {command}" in proc.stdout


def test_inspect_json_shows_the_graph():
    proc = acioci("inspect", SAMPLE, "--store", SAMPLE.parent / "store", "--json", check=0)
    data = json.loads(proc.stdout)
    assert data["name"] == "example.com/hello" and data["platform"] == "linux/amd64"
    assert data["imageID"].startswith("sha512-") and len(data["imageID"]) == 135
    dep = data["dependencies"][0]
    assert dep["requested"]["labels"] == {"version": "1.0.0"}
    assert dep["image"]["name"] == "example.com/base"
    assert data["app"]["isolators"] == [{"name": "resource/memory", "value": {"limit": "256Mi"}}]


def test_inspect_tree_and_missing_store():
    proc = acioci("inspect", SAMPLE, "--store", SAMPLE.parent / "store", check=0)
    assert "depends on (by name+labels):" in proc.stdout and "example.com/base:1.0.0" in proc.stdout
    proc = acioci("inspect", SAMPLE)
    assert proc.returncode == 1
    assert "example.com/base version=1.0.0 is not in the store" in proc.stderr
    assert "Traceback" not in proc.stderr
