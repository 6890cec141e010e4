"""Registry failures as `convert.errors` classes, so the CLI's exit codes hold unchanged.

A registry that cannot be reached, refuses a request or rejects credentials is not the image's
fault: exit 2, like an unreadable file. Content that is wrong (a digest mismatch, a manifest
over the size limit, a schema 1 manifest) is reported with the existing `FormatError` family:
exit 1. Every message names the URL with its secrets removed (`redact.url`).
"""

from __future__ import annotations

from ..errors import SourceUnreadableError


class RegistryError(SourceUnreadableError):
    """The registry could not be reached, or answered a request with an error."""

    def __init__(self, message: str, *, status: int | None = None, tls: bool = False,
                 **kw) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.tls = tls  # the TLS handshake failed (a plain-HTTP or self-signed registry?)


class AuthenticationError(RegistryError):
    """Credentials are missing, rejected, or do not grant the access the request needs."""


class NotFoundError(RegistryError):
    """The manifest, tag or blob is not in the repository (or the repository does not exist)."""
