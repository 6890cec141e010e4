"""Credentials found as containers-auth.json(5) says, and never shown."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from convert.errors import FormatError, UsageError
from convert.registry.credentials import Credentials, auth_files, find


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def env_for(home: Path, **extra) -> dict:
    return {"HOME": str(home), "PATH": os.environ.get("PATH", ""), **extra}


def test_search_order(tmp_path, home):
    run = tmp_path / "run"
    env = env_for(home, XDG_RUNTIME_DIR=str(run))
    assert [p for p, _ in auth_files(env=env)] == [
        str(run / "containers/auth.json"), str(home / ".config/containers/auth.json"),
        str(home / ".docker/config.json"), str(home / ".dockercfg")]
    assert auth_files(env={**env, "REGISTRY_AUTH_FILE": "/x.json"}) == [("/x.json", False)]
    assert auth_files(authfile="/y.json", env={**env, "REGISTRY_AUTH_FILE": "/x.json"}) == [
        ("/y.json", False)]
    env2 = env_for(home, XDG_CONFIG_HOME=str(tmp_path / "cfg"), DOCKER_CONFIG=str(tmp_path / "d"))
    assert [p for p, _ in auth_files(env=env2)] == [
        str(tmp_path / "cfg/containers/auth.json"), str(tmp_path / "d/config.json"),
        str(home / ".dockercfg")]


def test_first_file_that_knows_the_registry_wins(tmp_path, home):
    run = tmp_path / "run"
    write(run / "containers/auth.json", {"auths": {"other.io": {"auth": b64("o:o")}}})
    write(home / ".config/containers/auth.json", {"auths": {"r.io": {"auth": b64("u1:p1")}}})
    write(home / ".docker/config.json", {"auths": {"r.io": {"auth": b64("u2:p2")}}})
    found = find("r.io", "app", env=env_for(home, XDG_RUNTIME_DIR=str(run)))
    assert (found.username, found.password) == ("u1", "p1")
    assert "auth.json" in found.origin


def test_longest_namespace_key_wins(home):
    write(home / ".docker/config.json", {"auths": {
        "r.io": {"auth": b64("host:1")}, "r.io/team": {"auth": b64("team:2")},
        "r.io/team/app": {"auth": b64("app:3")}}})
    env = env_for(home)
    assert find("r.io", "team/app", env=env).username == "app"
    assert find("r.io", "team/app2", env=env).username == "team"
    assert find("r.io", "teams/app", env=env).username == "host"
    assert find("r.io:5000", "team/app", env=env) is None


def test_docker_hub_keys_and_legacy_file(home):
    write(home / ".docker/config.json",
          {"auths": {"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}})
    assert find("docker.io", "library/busybox", env=env_for(home)).username == "hub"
    (home / ".docker/config.json").unlink()
    write(home / ".dockercfg", {"https://legacy.io/v1/": {"auth": b64("old:pw")}})
    assert find("legacy.io", "x", env=env_for(home)).username == "old"


def test_explicit_creds_and_authfile(tmp_path, home):
    write(home / ".docker/config.json", {"auths": {"r.io": {"auth": b64("file:pw")}}})
    assert find("r.io", "a", creds="me:secret:with:colons", env=env_for(home)).password == \
        "secret:with:colons"
    assert find("r.io", "a", creds="me", prompt=lambda _: "asked", env=env_for(home)).password \
        == "asked"
    with pytest.raises(UsageError):
        find("r.io", "a", creds="me", env=env_for(home))
    only = write(tmp_path / "only.json", {"auths": {"x.io": {"auth": b64("x:y")}}})
    assert find("r.io", "a", authfile=str(only), env=env_for(home)) is None
    with pytest.raises(UsageError):
        find("r.io", "a", authfile=str(tmp_path / "missing.json"), env=env_for(home))


def test_bad_entries_name_the_file_not_the_secret(home):
    path = write(home / ".docker/config.json", {"auths": {"r.io": {"auth": b64("nocolon")}}})
    with pytest.raises(FormatError) as info:
        find("r.io", "a", env=env_for(home))
    assert str(path) in str(info.value) and b64("nocolon") not in str(info.value)


def helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_credential_helpers(tmp_path, home):
    bins = tmp_path / "bin"
    helper(bins, "fake", 'read server; [ "$1" = get ] || exit 3\n'
           'case "$server" in\n'
           '  r.io) echo \'{"ServerURL":"r.io","Username":"hu","Secret":"hs"}\' ;;\n'
           '  https://index.docker.io/v1/) echo \'{"Username":"<token>","Secret":"idt"}\' ;;\n'
           '  *) echo "credentials not found in native keychain"; exit 1 ;;\n'
           'esac\n')
    helper(bins, "broken", 'echo "secret-looking output"; exit 2\n')
    env = {"HOME": str(home), "PATH": f"{bins}:{os.environ['PATH']}"}
    write(home / ".docker/config.json", {"credHelpers": {"r.io": "fake"},
                                         "credsStore": "fake",
                                         "auths": {"s.io": {}}})
    got = find("r.io", "a", env=env)
    assert (got.username, got.password) == ("hu", "hs") and "docker-credential-fake" in got.origin
    hub = find("docker.io", "library/x", env=env)
    assert hub.identity_token == "idt" and hub.username == ""
    assert find("s.io", "a", env=env) is None  # credsStore: not found
    write(home / ".docker/config.json", {"credsStore": "broken"})
    with pytest.raises(UsageError) as info:
        find("r.io", "a", env=env)
    assert "exit 2" in str(info.value) and "secret-looking" not in str(info.value)
    write(home / ".docker/config.json", {"credsStore": "absent"})
    with pytest.raises(UsageError, match="not installed"):
        find("r.io", "a", env=env)


def test_repr_hides_secrets():
    creds = Credentials("alice", "s3cret", identity_token="tok3n", origin="here")
    for text in (repr(creds), str(creds)):
        assert "s3cret" not in text and "tok3n" not in text and "alice" in text
    assert b64("alice:s3cret") in creds.secrets()
