"""rkt's keystore, read as rkt laid it out, deciding which keys may sign which names.

    DIR/root.d/<fingerprint>                      trusted for every name
    DIR/prefix.d/<name prefix path>/<fingerprint> trusted for that prefix and the names below it

`prefix.d/example.com/app/<fp>` trusts `example.com/app` and `example.com/app/x`, and not
`example.com/application`: prefixes are compared by path components. (rkt compared strings
here, which trusted the key for `example.com/application` too; that is not kept.)

The directories are searched in precedence order, by default `/etc/rkt/trustedkeys` (the
administrator's) then `/usr/lib/rkt/trustedkeys` (shipped with the distribution). A file in an
earlier directory hides the file of the same relative path in later ones, and an empty file
there disables it. Each file holds an armored or binary public key and must be named after its
fingerprint (lower-case hex), as rkt required; a file that is not is an error, not a skip,
since a keystore that says something other than it seems to must not be half-believed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..errors import AciociError, SourceUnreadableError
from .openpgp import MAX_KEY_FILE, first_key

DEFAULT_TRUST_DIRS = ("/etc/rkt/trustedkeys", "/usr/lib/rkt/trustedkeys")
ROOT_D = "root.d"
PREFIX_D = "prefix.d"
MAX_FILES = 10_000  # per directory listing walked for an error message


@dataclass(frozen=True)
class TrustedKey:
    fingerprint: str  # lower-case hex
    path: str         # the key file
    scope: str        # the name prefix it is trusted for; "" for root.d (every name)
    packets: bytes    # the binary key, for a gpgv keyring


def _scopes(name: str) -> list[tuple[str, str]]:
    """(scope, directory relative to a trust dir) that may hold keys for `name`."""
    parts = name.split("/")
    out = [("", ROOT_D)]
    for end in range(1, len(parts) + 1):
        prefix = "/".join(parts[:end])
        out.append((prefix, os.path.join(PREFIX_D, *parts[:end])))
    return out


def _files(directory: str) -> list[str]:
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SourceUnreadableError(f"cannot list trusted keys: {exc.strerror}",
                                    file=directory) from None
    return names[:MAX_FILES]


def _is_file(path: str) -> tuple[bool, int]:
    try:
        st = os.stat(path)
    except OSError:
        return False, 0
    return stat.S_ISREG(st.st_mode), st.st_size


def _load(path: str, scope: str) -> TrustedKey:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise SourceUnreadableError(f"cannot read trusted key: {exc.strerror}",
                                    file=path) from None
    try:
        fingerprint, packets = first_key(data)
    except AciociError as exc:
        raise SourceUnreadableError(f"trusted key file is unusable: {exc.message}",
                                    file=path) from None
    if os.path.basename(path).lower() != fingerprint:
        raise SourceUnreadableError(
            "trusted key file is not named after its key's fingerprint", file=path,
            expected=fingerprint, actual=os.path.basename(path))
    return TrustedKey(fingerprint=fingerprint, path=path, scope=scope, packets=packets)


def keys_for(name: str, dirs: tuple[str, ...] | list[str] = DEFAULT_TRUST_DIRS) -> list[TrustedKey]:
    """Every key trusted to sign images named `name`, root.d keys first, each key once."""
    out: dict[str, TrustedKey] = {}
    for scope, rel in _scopes(name):
        winners: dict[str, tuple[str, int]] = {}
        for base in dirs:
            directory = os.path.join(base, rel)
            for fname in _files(directory):
                path = os.path.join(directory, fname)
                regular, size = _is_file(path)
                if regular and fname not in winners:
                    winners[fname] = (path, size)
        for fname, (path, size) in sorted(winners.items()):
            if size == 0:
                continue  # disabled by an empty file of the same name
            key = _load(path, scope)
            out.setdefault(key.fingerprint, key)
    return list(out.values())


def keyring(keys: list[TrustedKey]) -> bytes:
    """A binary keyring of exactly these keys, as gpgv reads it."""
    return b"".join(k.packets for k in keys)


def scopes_of(key: str, dirs: tuple[str, ...] | list[str] = DEFAULT_TRUST_DIRS) -> list[str]:
    """The name prefixes a key (a fingerprint, or a key ID: its tail) is trusted for anywhere
    in the keystore ("" is every name); only for telling the user where a key that signed an
    image is trusted instead."""
    key = key.lower()
    if not key:
        return []
    found: list[str] = []
    hidden: set[str] = set()
    for base in dirs:
        for rel_root in (ROOT_D, PREFIX_D):
            top = os.path.join(base, rel_root)
            seen = 0
            for root, subdirs, files in os.walk(top):
                subdirs.sort()
                seen += len(files)
                if seen > MAX_FILES:
                    break
                if rel_root == ROOT_D and root != top:
                    continue
                for fname in files:
                    if not fname.lower().endswith(key):
                        continue
                    rel = os.path.relpath(os.path.join(root, fname), base)
                    if rel in hidden:
                        continue
                    hidden.add(rel)
                    if _is_file(os.path.join(root, fname))[1] == 0:
                        continue
                    scope = "" if rel_root == ROOT_D else os.path.relpath(root, top)
                    if scope not in found:
                        found.append(scope)
    return found
