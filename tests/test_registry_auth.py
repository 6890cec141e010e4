"""WWW-Authenticate parsing, token scope coverage, and that importing the registry modules
imports no HTTP stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convert.registry.auth import Challenge, covers, parse_challenges
from helpers import modules_after


@pytest.mark.parametrize("header, want", [
    ('Bearer realm="https://auth.example/token",service="registry.example",'
     'scope="repository:a/b:pull,push"',
     [Challenge("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                           "scope": "repository:a/b:pull,push"})]),
    ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
    ('BEARER Realm = "r" , Service=s', [Challenge("bearer", {"realm": "r", "service": "s"})]),
    ('Bearer realm="a \\"quoted\\" , comma",error="insufficient_scope"',
     [Challenge("bearer", {"realm": 'a "quoted" , comma', "error": "insufficient_scope"})]),
    ('Basic realm="x", Bearer realm="y",scope="repository:r:pull,push repository:s:pull"',
     [Challenge("basic", {"realm": "x"}),
      Challenge("bearer", {"realm": "y", "scope": "repository:r:pull,push repository:s:pull"})]),
    ("Bearer", [Challenge("bearer", {})]),
    ('Bearer realm="unterminated, scope=x', [Challenge("bearer",
                                                        {"realm": "unterminated, scope=x"})]),
    ("", []),
    (None, []),
    (",,;;", []),
])
def test_parse_challenges(header, want):
    assert parse_challenges(header) == want


def test_parse_challenges_ends_on_any_input():
    for junk in ['="', "a=", "a=b=c", 'x y="', "\\", 'Bearer ,,,realm="a",,', "Basic abc=="]:
        parse_challenges(junk)  # terminates, whatever it makes of it


def test_covers():
    have = ("repository:a:pull,push", "repository:b:pull")
    assert covers(have, ("repository:a:pull",))
    assert covers(have, ("repository:a:push", "repository:b:pull"))
    assert not covers(have, ("repository:b:push",))
    assert not covers(have, ("repository:c:pull",))
    assert not covers(("repository:ab:pull",), ("repository:a:pull",))


def test_importing_the_package_does_not_import_requests():
    """Nor any HTTP stack: http.client comes with the first request (`http.Http.pool`)."""
    assert modules_after("import convert.registry, convert.registry.reference, "
                         "convert.registry.client, convert.registry.blobs, "
                         "convert.registry.push, convert.registry.upload, "
                         "convert.transports.docker",
                         ("requests", "urllib3", "http.client", "urllib.request")) == []
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c", "import convert.registry"],
                           capture_output=True, text=True, check=True).stderr
    assert "requests" not in trace
