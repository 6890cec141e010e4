"""Turning a signal into KeyboardInterrupt without breaking a lock on the way.

A Python signal handler runs in the main thread at whatever bytecode it has reached, and an
exception it raises unwinds from there. Inside `threading` and `queue` that is not safe:
`Condition.notify` releases a waiter's lock and then removes it from the waiter list, and a
KeyboardInterrupt between the two leaves a stale entry that a later notify "wakes" in place of
the real waiter. The compressing writer's thread then never sees the end marker its owner puts
in its queue while cleaning up, and the process hangs in `join` until it is killed, its
temporary output left behind (the intermittent batch SIGTERM failure of issue 20). A pipe
message sent halfway is as bad: its reader unpickles garbage. (A receive cut short harms only
the process that stops reading.) And an exception raised in a finalizer (`__del__`, a weakref
callback, which the garbage collector runs wherever it happens to run) is printed as
"Exception ignored" and lost: the stop would never happen.

So `interrupt(frame)` raises KeyboardInterrupt at once only if no frame of the main thread's
stack is inside such code; otherwise it looks again `RETRY` seconds later (SIGALRM), by which
time the lock or the send is done. One place inside `threading` is safe and is where a
waiting thread spends its time: the blocking acquire of `Condition.wait` (a queue's get or
put, an Event) and of a join, whose try/finally (or except) puts everything back; waiting
there for a safe moment would wait as long as the wait (a cluster client in its queue, a
writer waiting for its compressor).
"""

from __future__ import annotations

import functools
import queue
import signal
import sys
import threading
import weakref

RETRY = 0.01  # seconds
_UNSAFE = frozenset({threading.__file__, queue.__file__, weakref.__file__})
# Pipes are multiprocessing.connection's, looked up when a signal comes: a process that never
# imported it (a single conversion) has no frame inside it, and importing it only for its file
# name cost every command ~10 ms of start-up
_PIPES_MODULE = "multiprocessing.connection"
_PIPE_SENDS = frozenset({"send", "send_bytes", "_send_bytes", "_send"})  # a reader's problem


@functools.cache
def _blocking_acquires() -> frozenset:
    """(code, line) of the blocking acquires in `Condition.wait` and `Thread.join`'s helper
    that sit inside their try blocks: read from this Python's own threading.py, when the first
    signal asks (reading and tokenizing that source cost every command ~4 ms of start-up).
    `inspect` is already imported by then (dataclasses imports it), so nothing is imported
    inside a signal handler."""
    import inspect

    found = set()
    for func, call in ((threading.Condition.wait, "waiter.acquire("),
                       (getattr(threading.Thread, "_wait_for_tstate_lock", None), "lock.acquire(")):
        try:
            lines, first = inspect.getsourcelines(func)
        except (OSError, TypeError):
            continue
        inside_try = False
        for i, text in enumerate(lines):
            inside_try = inside_try or text.strip() == "try:" or text.strip().startswith("try: ")
            if inside_try and call in text and not text.strip().startswith("#"):
                found.add((func.__code__, first + i))
    return frozenset(found)


def _unsafe(frame) -> bool:
    waiting = frame is not None and (frame.f_code, frame.f_lineno) in _blocking_acquires()
    pipes = sys.modules.get(_PIPES_MODULE)
    pipes_file = getattr(pipes, "__file__", None)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename == weakref.__file__:
            return True
        if code.co_filename in _UNSAFE and not waiting:
            return True
        if code.co_filename == pipes_file and code.co_name in _PIPE_SENDS:
            return True
        frame = frame.f_back
    return False


def interrupt(frame) -> None:
    """Raise KeyboardInterrupt in the main thread, from a signal handler that was given
    `frame`: now, or as soon as the main thread is out of lock and pipe code."""
    if not _unsafe(frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGALRM, lambda signum, later: interrupt(later))
    signal.setitimer(signal.ITIMER_REAL, RETRY)


def cancel() -> None:
    """Forget a pending look (at the end of what the interrupt was for): a SIGALRM left armed
    past the interpreter's exit, when Python has put back the default action, kills it."""
    signal.setitimer(signal.ITIMER_REAL, 0)


def once_on(*signums: int) -> None:
    """The first of `signums` interrupts (`interrupt`); every later one is ignored, so that
    nothing cuts short the cleanup the first one started. For a process whose every stop is a
    clean stop: a batch worker, a cluster converter."""
    def handler(signum, frame):
        for s in signums:
            signal.signal(s, signal.SIG_IGN)
        interrupt(frame)

    for s in signums:
        signal.signal(s, handler)
