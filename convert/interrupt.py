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
time the lock or the send is done. The delay is what the interrupted operation takes: a
queue put waiting for room, a join, one message.
"""

from __future__ import annotations

import multiprocessing.connection
import queue
import signal
import threading
import weakref

RETRY = 0.01  # seconds
_UNSAFE = frozenset({threading.__file__, queue.__file__, weakref.__file__})
_PIPES = multiprocessing.connection.__file__
_PIPE_SENDS = frozenset({"send", "send_bytes", "_send_bytes", "_send"})  # a reader's problem


def _unsafe(frame) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_filename in _UNSAFE or code.co_name == "__del__":
            return True
        if code.co_filename == _PIPES and code.co_name in _PIPE_SENDS:
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
