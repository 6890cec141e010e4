"""One exception hierarchy for the whole library.

Every error carries the place it happened (a file, and inside it a tar entry or a JSON pointer)
and, where it applies, what was expected and what was found. Library code raises; only the CLI
renders, so the same error reads the same whether it came from a reader, a writer or the
validator.
"""

from __future__ import annotations


class AciociError(Exception):
    """Base of every error the library raises on purpose.

    `exit_code` follows the CLI contract: 1 for bad input (the image is wrong), 2 for things
    that are not the image's fault (unreadable paths, usage, a destination that cannot be
    written).
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        entry: str | None = None,
        pointer: str | None = None,
        expected: object = None,
        actual: object = None,
        hint_option: str | tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.entry = entry
        self.pointer = pointer
        self.expected = expected
        self.actual = actual
        # The options that bear on the error, by their library names (the fields of
        # ConvertOptions / ReadOptions, as `api.convert` takes them as keywords): the message
        # speaks the library's terms, and a front end names its own spelling of them (the CLI
        # adds "(use --store DIR)"). Not part of str(self).
        self.hint_option = (hint_option,) if isinstance(hint_option, str) else tuple(hint_option)

    @property
    def pointer(self) -> str | None:
        """The JSON pointer of the place: the one given, else the part after `#` of an entry
        like `manifest#/app/ports/0` (readers name the place that way), so that library users
        find it here whichever way it was given."""
        if self._pointer is not None:
            return self._pointer
        if self.entry is not None and "#" in self.entry:
            return self.entry.partition("#")[2] or "/"
        return None

    @pointer.setter
    def pointer(self, value: str | None) -> None:
        self._pointer = value

    def place(self) -> str:
        """`FILE::ENTRY-OR-POINTER`, the same shape the validator uses for its findings."""
        where = self.file or ""
        inner = self.entry if self.entry is not None else self._pointer
        if inner is not None:
            where = f"{where}::{inner}" if where else inner
        return where

    def __str__(self) -> str:
        text = self.message
        if self.expected is not None and self.actual is not None:
            text += f" (expected {self.expected}, got {self.actual})"
        elif self.expected is not None:  # nothing was found: "got None" would say nothing
            text += f" (expected {self.expected})"
        elif self.actual is not None:
            text += f" (got {self.actual})"
        where = self.place()
        return f"{where}: {text}" if where else text

    def at(self, *, file: str | None = None, entry: str | None = None) -> "AciociError":
        """Fill in the file or the entry when a lower layer did not know it; returns self for
        `raise e.at()`."""
        if self.file is None and file is not None:
            self.file = file
        if self.entry is None and entry:
            self.entry = entry
        return self


class FormatError(AciociError):
    """The input is not what its format promises: bad tar, bad JSON, schema violation."""


class UnsafePathError(FormatError):
    """A tar entry or link would land outside the root it belongs to."""


class DigestMismatchError(FormatError):
    """Content does not hash to the digest (or image ID) that names it."""


class ResolutionError(AciociError):
    """An ACI dependency is missing, ambiguous, mismatched or part of a cycle."""


class LimitError(FormatError):
    """Input exceeded a documented safety limit (manifest size, expansion ratio...)."""


class UsageError(AciociError):
    """The caller asked for something that cannot be done as asked."""

    exit_code = 2


class SourceUnreadableError(AciociError):
    """The path does not exist or cannot be opened: not the image's fault."""

    exit_code = 2


class DestinationError(AciociError):
    """The destination cannot be written (exists, missing parent, permissions, disk full,
    read-only file system).

    Exit 2, like a usage error: the image is fine, and the same command with another
    destination (or --overwrite, or more room) succeeds. Exit 1 stays the image's fault only,
    so that a script can tell "fix the image" from "fix the command or the machine"."""

    exit_code = 2


class SignatureError(AciociError):
    """An image's signature is missing, bad, or by a key not trusted for the image's name."""
