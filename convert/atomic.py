"""Atomic destinations: build in a temporary sibling, rename into place at the end.

Invariant: whatever happens (bad input found halfway, a full disk, Ctrl-C, SIGTERM turned into
KeyboardInterrupt by the CLI), the destination either does not change or is complete. The
sibling lives in the same directory, so the final rename never crosses file systems.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import signal
import threading
import weakref
from pathlib import Path
from typing import Iterator

from .errors import DestinationError


def _remove(path: Path) -> None:
    """Best effort: cleaning up must never hide the error that made us clean up."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def sibling(dest: Path, kind: str = "tmp") -> Path:
    """A fresh name beside `dest`: `.NAME.acioci-tmp-PID-HOST-START-HEX` (or `-old-`). A
    later batch removes a killed writer's leftovers (batch.py), and must never remove a live
    writer's: on shared storage a PID alone proves nothing (another host's PID 1234 is not
    ours, and a PID is reused), so the name also carries this host and boot (`host_tag`) and
    the writer's start time (`process_start`); see `provably_stale`."""
    pid = os.getpid()
    return dest.parent / (f".{dest.name}.acioci-{kind}-{pid}-{host_tag()}-"
                          f"{process_start(pid) or 0}-{os.urandom(4).hex()}")


@functools.lru_cache(maxsize=None)
def host_tag() -> str:
    """12 hex digits naming this host and this boot (hostname and the kernel's boot_id): a
    PID means something only on the host, and only in the boot, that issued it."""
    boot = ""
    with contextlib.suppress(OSError):
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read(100).strip()
    # os.uname's nodename is what gethostname() returns (glibc implements it so), without
    # importing socket (and secrets above is os.urandom): a few ms of every start-up
    return hashlib.sha256(f"{os.uname().nodename}\0{boot}".encode()).hexdigest()[:12]


def process_start(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (/proc/PID/stat field 22); None where it
    cannot be read (no such process, no /proc). Two processes with one PID in one boot have
    different start times."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read(4096)
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def provably_stale(name: str) -> bool:
    """Whether the temporary `name` (made by `sibling`) was left by a writer that is gone:
    made on this host in this boot, and its PID is dead or now another process (a different
    start time). Anything else is kept: another host's, an older name without host and start
    time, or one whose writer cannot be checked (a PID we may not look at is not dead)."""
    try:
        fields = name.split(".acioci-", 1)[1].split("-")
        pid, host, start = int(fields[1]), fields[2], int(fields[3])
    except (IndexError, ValueError):
        return False
    if len(fields) != 5 or host != host_tag() or pid <= 0:
        return False
    now = process_start(pid)
    if now is not None:
        return start != 0 and now != start
    try:  # no /proc entry (gone, hidden by hidepid, or no /proc): ask the kernel
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, someone else's
        return False
    return False


def owned_tempdir(owner: object, prefix: str) -> tuple[str, "weakref.finalize"]:
    """A directory in $TMPDIR removed when `owner` is garbage or the interpreter exits, or
    earlier by calling the returned finalizer. Ctrl-C and SIGTERM are held back while the
    directory is made and its finalizer registered: a signal landing between the two would
    leave a directory that nothing removes (and the CLI turns both into KeyboardInterrupt)."""
    import tempfile  # with random and its seeding: ~1.7 ms that a plain conversion never needs

    held = {signal.SIGINT, signal.SIGTERM}
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held) if in_main else None
    try:
        path = tempfile.mkdtemp(prefix=prefix)
        return path, weakref.finalize(owner, shutil.rmtree, path, True)
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _ours(dest: Path, directory: bool) -> bool:
    """Whether `dest` is what a writer of this kind writes, so that --overwrite may replace
    it: a file (or a link) for a file, an OCI layout or a directory of nothing but .aci files
    (a --layered chain) for a directory. Anything else is someone's data."""
    if not dest.is_dir() or dest.is_symlink():
        return not directory or dest.is_symlink()
    if not directory:
        return False
    if (dest / "oci-layout").is_file():
        return True
    return all(p.is_file() and p.name.endswith(".aci") for p in dest.iterdir())


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back (delivered when it ends): a Python handler runs between any
    two bytecodes, and a KeyboardInterrupt between two renames that must go together would
    leave the state between them."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_destination(dest: str | os.PathLike, *, directory: bool,
                       overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to fill; on success it replaces `dest`. An empty directory at
    `dest` counts as no destination (a user's `mkdir out` first, as skopeo allows): it is
    removed with rmdir at the end, which fails rather than delete anything put there since."""
    dest = Path(dest)
    parent = dest.parent
    if not parent.is_dir():
        raise DestinationError("parent directory does not exist", file=str(dest))
    if os.path.lexists(dest) and not _empty_dir(dest):
        if not _ours(dest, directory):
            # --overwrite would not help, and must never be suggested: it is someone's folder
            raise DestinationError("destination exists and is not an image acioci writes "
                                   "(a directory of other files); it is never replaced",
                                   file=str(dest))
        if not overwrite:
            raise DestinationError("destination exists, and replacing it was not asked for",
                                   file=str(dest), hint_option="overwrite")
    tmp = sibling(dest)
    try:
        if directory:
            tmp.mkdir()
        yield tmp
        if os.path.lexists(dest) and not overwrite:
            os.rmdir(dest)  # the empty directory found at the start, and still empty
            os.rename(tmp, dest)
        elif not directory and os.path.isfile(dest) and not os.path.islink(dest):
            os.replace(tmp, dest)  # a file over a file: one rename, never a moment without
        elif os.path.lexists(dest):
            trash = sibling(dest, "old")
            # between the two renames dest would be neither. Holding the signals back covers
            # most of it (not all: with other threads alive the kernel may hand a signal to
            # one of them, and Python still raises in this one), so a failure or an interrupt
            # anywhere in the pair puts the old output back.
            with _signals_deferred():
                try:
                    os.rename(dest, trash)
                    os.rename(tmp, dest)
                except BaseException:
                    if not os.path.lexists(dest) and os.path.lexists(trash):
                        os.rename(trash, dest)  # the old one back: never neither
                    raise
            _remove(trash)
        else:
            os.rename(tmp, dest)
    except OSError as exc:
        _remove(tmp)
        raise DestinationError(f"cannot write: {exc.strerror or exc}", file=str(dest)) from None
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def scratch_sibling(dest: str | os.PathLike) -> Iterator[Path]:
    """A temporary directory beside `dest` (same file system, so its files can be renamed into
    `dest`), removed afterwards whatever happens."""
    tmp = sibling(Path(dest))
    try:
        tmp.mkdir()
        yield tmp
    except OSError as exc:
        raise DestinationError(f"cannot write: {exc.strerror or exc}", file=str(dest)) from None
    finally:
        _remove(tmp)
