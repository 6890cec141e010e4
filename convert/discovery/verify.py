"""Checking an ACI's detached signature with `gpgv`, against only the keys trusted for its name.

gpgv, not a Python OpenPGP library: it streams (0.47 s and 3 MB RSS for a 93 MB ACI), needs no
home directory of ours and starts no agent, and it is the verifier distributions already trust.
It treats every key of its keyring as valid, so the keyring is built for each image from the
keys trusted for that image's name alone (trust.py): a signature by any other key, including
one trusted for another prefix, comes back as a missing public key.

Results are read from `--status-fd`, never from the human-readable text or the exit code alone,
and the signing key is checked once more against the trusted fingerprints (VALIDSIG names the
primary key). Only signatures over binary documents (class 00) are accepted: a text-mode
signature would tolerate line-ending changes in a binary archive.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import SignatureError, SourceUnreadableError
from . import trust
from .trust import TrustedKey

_counter = itertools.count()


@dataclass(frozen=True)
class Verified:
    signed_by: str   # fingerprint of the signing key's primary key, lower-case hex
    key_path: str    # the trusted key file that vouched for it
    scope: str       # the prefix it is trusted for ("" for root.d)


def _statuses(out: str) -> list[tuple[str, list[str]]]:
    lines = []
    for line in out.splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, *fields = line[9:].split(" ")
            lines.append((keyword, fields))
    return lines


def _gpgv() -> str:
    path = shutil.which("gpgv")
    if path is None:
        raise SourceUnreadableError("gpgv is not installed; it is needed to check signatures "
                                    "(install gnupg, or skip the check with insecure options: "
                                    "image)", hint_option="insecure")
    return path


def verify(aci: str, sig: str, *, name: str, image: str, keys: list[TrustedKey],
           workdir: str, trust_dirs, pubkeys=()) -> Verified:
    """Check that `sig` is a good signature of `aci` by a key in `keys`; SignatureError (one
    line: the image, the key, why) if not. `image` is how errors name the image."""
    home = os.path.join(workdir, "gnupg")
    os.makedirs(home, mode=0o700, exist_ok=True)
    ring = os.path.join(workdir, f"keyring-{next(_counter)}.gpg")
    fd = os.open(ring, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(trust.keyring(keys))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "GNUPGHOME": home}
    proc = subprocess.run([_gpgv(), "--homedir", home, "--status-fd", "1", "--keyring", ring,
                           sig, aci], stdin=subprocess.DEVNULL, capture_output=True, env=env)
    os.unlink(ring)
    status = _statuses(proc.stdout.decode("utf-8", "replace"))
    trusted = {k.fingerprint: k for k in keys}

    def fail(why: str) -> SignatureError:
        return SignatureError(why, file=image)

    valid = None
    for keyword, f in status:
        if keyword == "BADSIG":
            raise fail(f"bad signature by key {_fpr(status, keys, f[0])}: the image does not "
                       "match its signature")
        if keyword == "EXPKEYSIG":
            raise fail(f"signed by key {_fpr(status, keys, f[0])}, which has expired")
        if keyword == "REVKEYSIG":
            raise fail(f"signed by key {_fpr(status, keys, f[0])}, which has been revoked")
        if keyword == "EXPSIG":
            raise fail(f"the signature by key {_fpr(status, keys, f[0])} has expired")
        if keyword == "VALIDSIG" and len(f) >= 9:
            primary = (f[9] if len(f) > 9 else f[0]).lower()
            if primary in trusted and f[8] == "00" and valid is None:
                valid = trusted[primary]
            elif primary in trusted:
                raise fail(f"signature by key {primary} is of class {f[8]}, not over a "
                           "binary document")
    if valid is not None and proc.returncode == 0 and \
            any(k == "GOODSIG" for k, _ in status):
        return Verified(signed_by=valid.fingerprint, key_path=valid.path, scope=valid.scope)
    for keyword, f in status:
        if keyword == "ERRSIG":
            key = f[6] if len(f) > 6 and f[6] not in ("", "-") else f[0]
            rc = f[5] if len(f) > 5 else ""
            if rc != "9":
                raise fail(f"the signature by key {key} cannot be checked (gpgv error {rc})")
            raise fail(_untrusted(key.lower(), name, trust_dirs, pubkeys))
        if keyword == "NO_PUBKEY":
            raise fail(_untrusted(f[0].lower(), name, trust_dirs, pubkeys))
    said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    raise fail("no valid signature: gpgv said: "
               + (said[-1] if said else f"exit {proc.returncode}"))


def _fpr(status, keys: list[TrustedKey], keyid: str) -> str:
    """The primary key fingerprint for the key ID gpgv named: from its VALIDSIG, or the
    trusted key it belongs to (a signing subkey's ID is looked up in VALIDSIG only)."""
    keyid = keyid.lower()
    for keyword, f in status:
        if keyword == "VALIDSIG" and f:
            primary = (f[9] if len(f) > 9 else f[0]).lower()
            if primary.endswith(keyid) or f[0].lower().endswith(keyid):
                return primary
    for k in keys:
        if k.fingerprint.endswith(keyid):
            return k.fingerprint
    return keyid


def _untrusted(key: str, name: str, trust_dirs, pubkeys) -> str:
    text = f"signed by key {key}, which is not trusted for {name}"
    scopes = trust.scopes_of(key, trust_dirs) if key else []
    if scopes:
        text += " (it is trusted for " + ", ".join(s or "every name" for s in scopes) + " only)"
    if pubkeys:
        where = os.path.join(trust_dirs[0] if trust_dirs else trust.DEFAULT_TRUST_DIRS[0],
                             trust.PREFIX_D, name, "<fingerprint>")
        text += ("; the discovery page offers keys at " + ", ".join(pubkeys)
                 + f" (check one, then install it as {where})")
    return text
