"""Where a registry's credentials come from: containers-auth.json(5), as skopeo reads it.

Order: explicit `creds` ("USER[:PASS]"); else the auth files. An explicit `authfile` (skopeo's
`--authfile`), or else `REGISTRY_AUTH_FILE`, is the only file read. Otherwise, in order:
`$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json` (default
`~/.config`), `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), and the legacy
`~/.dockercfg`. The first file that knows the registry wins.

In a file: `credHelpers[registry]` first; then `auths`, where keys are `host[:port]` or
`host[:port]/namespace...` and the longest that contains the repository wins (then any key
that normalises to the registry: `https://host/v1/`, `index.docker.io`); then `credsStore`.
A helper is `docker-credential-<name> get`, given the registry on stdin (Docker Hub's is
`https://index.docker.io/v1/`), answering JSON `Username`/`Secret`; a user of `<token>` means
the secret is an identity (refresh) token.

Nothing here prints or logs a secret: `Credentials` hides them from `repr`, and errors name
files and keys, never values.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..errors import FormatError, UsageError
from .reference import DOCKER_HUB, DOCKER_HUB_AUTH_KEY

HELPER_TIMEOUT = 30  # seconds; a helper may ask a keyring daemon


@dataclass(frozen=True)
class Credentials:
    """A user name with a password, or an identity token (OAuth2 refresh token)."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)
    origin: str = ""  # where they came from, for messages: "--creds", a file and key, a helper

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never be printed: the password, the token, and the base64
        forms a Basic header or an auth file would hold."""
        out = [s for s in (self.password, self.identity_token) if s]
        if self.password:
            pair = f"{self.username}:{self.password}".encode()
            out.append(base64.b64encode(pair).decode())
        return tuple(out)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, origin={self.origin!r})"


def from_creds(creds: str, prompt: Callable[[str], str] | None = None) -> Credentials:
    """`USER:PASS`, or `USER` with the password asked through `prompt` (skopeo prompts)."""
    user, sep, password = creds.partition(":")
    if not user:
        raise UsageError("credentials need a user name: USER[:PASSWORD]")
    if not sep:
        if prompt is None:
            raise UsageError("credentials need USER:PASSWORD (no way to ask for the password)")
        password = prompt(f"Password for {user}: ")
    return Credentials(user, password, origin="explicit credentials")


def auth_files(*, authfile: str | None = None, env: Mapping[str, str] | None = None,
               home: str | None = None) -> list[tuple[str, bool]]:
    """The files to read, in order, as (path, legacy format)."""
    env = os.environ if env is None else env
    home = home or env.get("HOME") or os.path.expanduser("~")
    if authfile:
        return [(authfile, False)]
    if env.get("REGISTRY_AUTH_FILE"):
        return [(env["REGISTRY_AUTH_FILE"], False)]
    paths = []
    if env.get("XDG_RUNTIME_DIR"):
        paths.append((os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"), False))
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    paths.append((os.path.join(config_home, "containers", "auth.json"), False))
    docker_dir = env.get("DOCKER_CONFIG") or os.path.join(home, ".docker")
    paths.append((os.path.join(docker_dir, "config.json"), False))
    paths.append((os.path.join(home, ".dockercfg"), True))
    return paths


def find(registry: str, repository: str, *, creds: str | None = None,
         authfile: str | None = None, env: Mapping[str, str] | None = None,
         home: str | None = None,
         prompt: Callable[[str], str] | None = None) -> Credentials | None:
    """The credentials for `registry/repository`, or None (anonymous)."""
    if creds is not None:
        return from_creds(creds, prompt)
    files = auth_files(authfile=authfile, env=env, home=home)
    if authfile and not os.path.exists(authfile):
        raise UsageError(f"auth file {authfile} does not exist")
    for path, legacy in files:
        found = _from_file(path, legacy, registry, repository, env)
        if found is not None:
            return found
    return None


def searched(*, authfile: str | None = None, env: Mapping[str, str] | None = None,
             home: str | None = None) -> str:
    """The files `find` reads, for a message saying where no credentials were found."""
    return ", ".join(p for p, _ in auth_files(authfile=authfile, env=env, home=home))


def _load(path: str) -> dict | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 20)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read auth file {path}: {exc.strerror}") from None
    if not data.strip():
        return None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise FormatError("auth file is not valid JSON", file=path) from None
    if not isinstance(doc, dict):
        raise FormatError("auth file is not a JSON object", file=path)
    return doc


def normalize_key(key: str, legacy: bool) -> str:
    """An auth-file key as `host[:port][/path]`: scheme and (for URL keys, as docker writes
    them) the path dropped, Docker Hub's aliases folded into `docker.io`."""
    if "://" in key:
        key = key.split("://", 1)[1].split("/", 1)[0]
    elif legacy:
        key = key.split("/", 1)[0]
    host, sep, rest = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
    return host + sep + rest


def _candidate_keys(registry: str, repository: str) -> list[str]:
    """`host/a/b/c`, `host/a/b`, `host/a`, `host`: longest (most specific) first."""
    parts = repository.split("/")
    return [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)] + [registry]


def helper_server(registry: str) -> str:
    return DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry


def _from_file(path: str, legacy: bool, registry: str, repository: str,
               env: Mapping[str, str] | None) -> Credentials | None:
    doc = _load(path)
    if doc is None:
        return None
    if legacy:
        auths, helpers, store = doc, {}, None
    else:
        auths = doc.get("auths") or {}
        helpers = doc.get("credHelpers") or {}
        store = doc.get("credsStore")
    if not isinstance(auths, dict) or not isinstance(helpers, dict):
        raise FormatError("auth file: auths and credHelpers must be objects", file=path)
    for key, helper in helpers.items():
        if normalize_key(key, False) == registry:
            return run_helper(helper, helper_server(registry), env)
    by_key = {}
    for key, value in auths.items():
        by_key.setdefault(normalize_key(key, legacy), (key, value))
    for want in ([registry] if legacy else _candidate_keys(registry, repository)):
        if want in by_key:
            key, value = by_key[want]
            found = _decode_entry(value, path, key)
            if found is not None:
                return found
    if isinstance(store, str) and store:
        return run_helper(store, helper_server(registry), env)
    return None


def _decode_entry(value, path: str, key: str) -> Credentials | None:
    if not isinstance(value, dict):
        raise FormatError("auth entry is not an object", file=path, pointer=f"/auths/{key}")
    origin = f"{path} ({key})"
    token = value.get("identitytoken") or None
    encoded = value.get("auth")
    if not encoded:
        if token:
            return Credentials("", identity_token=token, origin=origin)
        return None  # docker writes empty entries beside credsStore
    try:
        pair = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise FormatError("auth entry is not base64 of USER:PASSWORD", file=path,
                          pointer=f"/auths/{key}/auth") from None
    user, sep, password = pair.partition(":")
    if not sep:
        raise FormatError("auth entry is not base64 of USER:PASSWORD", file=path,
                          pointer=f"/auths/{key}/auth")
    return Credentials(user, password, identity_token=token, origin=origin)


def run_helper(name: str, server: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """`docker-credential-<name> get`; None when it knows no credentials for `server`."""
    program = f"docker-credential-{name}"
    try:
        proc = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=HELPER_TIMEOUT,
                              env=dict(env) if env is not None else None)
    except FileNotFoundError:
        raise UsageError(f"credential helper {program} is not installed") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"credential helper {program} did not answer in "
                         f"{HELPER_TIMEOUT} s") from None
    if proc.returncode != 0:
        if b"credentials not found" in proc.stdout + proc.stderr:
            return None
        # the helper's own output could hold anything: name only the exit status
        raise UsageError(f"credential helper {program} failed (exit {proc.returncode})")
    try:
        doc = json.loads(proc.stdout)
        user, secret = doc["Username"], doc["Secret"]
        if not isinstance(user, str) or not isinstance(secret, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"credential helper {program} gave no Username/Secret JSON") from None
    origin = f"credential helper {program}"
    if user == "<token>":
        return Credentials("", identity_token=secret, origin=origin)
    return Credentials(user, secret, origin=origin)
