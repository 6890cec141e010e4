"""Opening a file that must be a regular file, without blocking on one that is not.

`open()` on a FIFO blocks until a writer comes, forever if none does; a layer blob, an
index.json, an `.aci` in a store or among batch inputs can be a FIFO in a hostile layout or
folder. A FIFO opened with O_NONBLOCK returns at once, so the file is opened that way, its
type checked on the open descriptor (no window between a stat and the open for a swap), and
only then is O_NONBLOCK cleared for ordinary reads. A device or a socket is refused the same
way. With `follow=False` a symlink is refused too (O_NOFOLLOW), for files of a layout that
must not be read through a link.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat


class NotRegularFileError(OSError):
    """The path names a FIFO, a device, a socket or a directory, not a regular file; its
    `strerror` says which, for callers that render `exc.strerror`."""


def kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def open_regular(path, *, follow: bool = True):
    """A binary file object on `path`, which must be a regular file. Raises OSError as `open`
    does (FileNotFoundError, PermissionError, ELOOP for a refused symlink), and
    NotRegularFileError for anything but a regular file, without ever blocking."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = kind(mode)
            code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
            raise NotRegularFileError(code, f"is {what}, not a regular file", os.fspath(path))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, limit: int, *, follow: bool = True) -> bytes:
    """The whole of a small regular file, at most `limit` + 1 bytes (the caller refuses a
    longer one by its length)."""
    with open_regular(path, follow=follow) as fh:
        return fh.read(limit + 1)
