"""TLS settings for one registry, found where skopeo (containers/image) looks for them.

Verification is on by default. With `cert_dir`, only that directory is read; otherwise the
first of the per-registry directories `<root>/HOST[:PORT]/` that exists, under the roots
`~/.config/containers/certs.d`, `/etc/containers/certs.d` and `/etc/docker/certs.d` (tests
pass roots of their own). In a directory, every `*.crt` is a CA added to the system's, and
each `*.cert` with the `*.key` of the same stem is a client certificate (docker's and
containers' convention; `client.cert` + `client.key` is the usual pair).

`verify=False` means what skopeo's `--tls-verify=false` means: certificates are not checked
and plain HTTP may be used when HTTPS fails.
"""

from __future__ import annotations

import glob
import os
import ssl
from dataclasses import dataclass

from ..errors import UsageError

DEFAULT_ROOTS = ("~/.config/containers/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d")


@dataclass(frozen=True)
class TlsSettings:
    verify: bool = True
    ca_files: tuple[str, ...] = ()
    client_pairs: tuple[tuple[str, str], ...] = ()  # (certificate, key)

    def context(self) -> ssl.SSLContext:
        """An SSL context with the system CAs plus ours, and our client certificates. Without
        verification no CA is consulted, so the system's are not loaded: parsing the bundle
        takes ~27 ms, which a push to a registry whose TLS is not checked (a local or test
        registry, tried over https before http) would pay before its first request."""
        if self.verify:
            ctx = ssl.create_default_context()
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # create_default_context's, no CAs
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            for ca in self.ca_files:
                ctx.load_verify_locations(cafile=ca)
            for cert, key in self.client_pairs:
                ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load TLS material: {exc}") from None
        return ctx


def settings(registry: str, *, verify: bool = True, cert_dir: str | None = None,
             roots: tuple[str, ...] | None = None) -> TlsSettings:
    """The TLS settings for `registry` (`host[:port]`)."""
    if cert_dir is not None:
        if not os.path.isdir(cert_dir):
            raise UsageError(f"certificate directory {cert_dir} does not exist")
        return _read_dir(cert_dir, verify)
    for root in DEFAULT_ROOTS if roots is None else roots:
        directory = os.path.join(os.path.expanduser(root), registry)
        if os.path.isdir(directory):
            return _read_dir(directory, verify)
    return TlsSettings(verify=verify)


def _read_dir(directory: str, verify: bool) -> TlsSettings:
    cas = tuple(sorted(glob.glob(os.path.join(glob.escape(directory), "*.crt"))))
    pairs = []
    for cert in sorted(glob.glob(os.path.join(glob.escape(directory), "*.cert"))):
        key = cert[: -len(".cert")] + ".key"
        if not os.path.exists(key):
            raise UsageError(f"client certificate {cert} has no key {os.path.basename(key)}")
        pairs.append((cert, key))
    for key in glob.glob(os.path.join(glob.escape(directory), "*.key")):
        if not os.path.exists(key[: -len(".key")] + ".cert"):
            raise UsageError(f"client key {key} has no certificate "
                             f"{os.path.basename(key[:-len('.key')])}.cert")
    return TlsSettings(verify=verify, ca_files=cas, client_pairs=tuple(pairs))
