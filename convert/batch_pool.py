"""`LocalPool`: a batch's conversions in worker processes on this machine (`--jobs`).

Invariants:
- A worker holds no job but the one it converts: the parent hands out one job per idle
  worker, so a stop has nothing queued to drain, and pending inputs are never converted after
  it.
- A stop (Ctrl-C or SIGTERM in the parent, as batch.py maps them) sends each worker exactly
  one SIGTERM. A worker's first SIGTERM unwinds its conversion, whose atomic writers remove
  their temporaries, from a point where that is safe (interrupt.py: never inside a lock of the
  writers' threads, which hung the cleanup); any later one is ignored, so nothing cuts that
  cleanup short. The parent waits for every worker (SIGKILL after `STOP_GRACE` seconds)
  before it returns.
- Workers ignore Ctrl-C: only the parent decides. Both signals are blocked while a worker
  starts, so none lands before its handlers are in place.
- A worker that dies (killed, out of memory) fails its own job and is replaced; the others go
  on.
- As a worker reads its input it sends byte counts (`batch_job.ByteReport`)
  over the pipe it gets its jobs from; the parent passes them to the batch's `progress`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Callable

from . import interrupt
from .batch_job import (ByteReport, Job, Progress, Record, Work, convert_job,
                        failed_record)
from .errors import AciociError

STOP_GRACE = 30        # seconds a stopped worker has to remove its temporaries before SIGKILL
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker(conn, to: str, options) -> None:
    """A `LocalPool` worker process: converts the jobs the parent sends, one at a time, and
    sends back byte counts and each job's record. It holds no job but the one it converts, so
    that a stop has nothing queued to drain. Ctrl-C is the parent's alone (ignored here);
    the first SIGTERM stops the conversion cleanly, at a point where that is safe, and any
    later one is ignored (`interrupt.once_on`). Both arrive blocked from the parent, so that
    none lands before these handlers are in place."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupt.once_on(signal.SIGTERM)
    code = 0
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        while (msg := conn.recv()) is not None:
            n, job = msg
            start = time.perf_counter()
            try:
                report = ByteReport(lambda done, total, n=n: conn.send(("bytes", n, done, total)))
                rec = convert_job(job, to, options, report)
            except (AciociError, OSError) as exc:
                rec = failed_record(job, exc, time.perf_counter() - start)
            except Exception as exc:  # a bug: this input's record says so, the batch goes on
                rec = Record(job.source, job.destination, "failed", job.size,
                             time.perf_counter() - start,
                             error=f"{job.source}: worker failed: {type(exc).__name__}: {exc}")
            conn.send(("done", n, rec))
    except KeyboardInterrupt:  # stopped; the temporaries went while unwinding
        code = 130
    except (EOFError, OSError):  # the parent is gone
        code = 1
    os._exit(code)  # nothing of the parent's (atexit hooks, buffers) runs here


class _Slot:
    """One worker process, the parent's end of its pipe, and the job it converts."""

    def __init__(self, ctx, work: Work) -> None:
        ours, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(theirs, work.to, work.options),
                                daemon=True)
        self.proc.start()
        theirs.close()  # else a later worker inherits it and a death shows no EOF
        self.conn = ours
        self.job: tuple[int, Job] | None = None

    @classmethod
    def start(cls, ctx, work: Work, slots: list["_Slot"], at: int | None = None) -> None:
        """A new worker into `slots` (at index `at`, in place of a dead one). Ctrl-C and
        SIGTERM are held meanwhile: the worker starts with them blocked, so that each finds
        its handler set, and no worker can be started without being in `slots` to stop."""
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            slot = cls(ctx, work)
            if at is None:
                slots.append(slot)
            else:
                slots[at].conn.close()
                slots[at] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def give(self, item: tuple[int, Job]) -> None:
        self.job = item
        try:
            self.conn.send(item)
        except OSError:  # it died idle: its sentinel says so next, and the job fails with it
            pass

    def died(self) -> str:
        self.proc.join(5)
        code = self.proc.exitcode
        return (f"killed by signal {-code}" if code is not None and code < 0
                else f"exit status {code}")


def _context():
    """fork where there is one: a worker starts at once, with the parent's imports (a
    `spawn` or `forkserver` child would import the `__main__` of `python -m convert`)."""
    import multiprocessing

    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return multiprocessing.get_context()


class LocalPool:
    """Worker processes on this machine (`--jobs`), each converting one job at a time.

    Not `concurrent.futures.ProcessPoolExecutor`: its workers take queued calls ahead (a stop
    converted inputs that were pending), its manager thread reacts to a worker's death by
    terminating the others a second time, during their cleanup, and its interpreter-exit hook
    writes to a wake-up pipe its shutdown may have closed. Here the parent alone hands out
    jobs, one per idle worker; on a stop it sends each worker one SIGTERM, drops what is
    pending, and waits for the workers (SIGKILL after `STOP_GRACE` seconds). A worker that
    dies (killed, out of memory) fails its job alone and is replaced."""

    def __init__(self, jobs: int | None = None) -> None:
        self.workers = max(1, jobs or os.cpu_count() or 1)

    def run(self, jobs: list[Job], work: Work, emit: Callable[[Record], None],
            progress: Progress | None = None) -> bool:
        from multiprocessing.connection import wait as wait_for

        ctx = _context()
        todo = list(enumerate(jobs))
        todo.reverse()  # popped from the end: handed out in plan order
        slots: list[_Slot] = []
        interrupted = False
        try:
            for _ in range(min(self.workers, len(jobs))):
                _Slot.start(ctx, work, slots)
            while True:
                for slot in slots:
                    if slot.job is None and todo:
                        slot.give(todo.pop())
                busy = [s for s in slots if s.job is not None]
                if not busy:
                    break
                ready = set(wait_for([s.conn for s in busy] + [s.proc.sentinel for s in busy]))
                for i, slot in enumerate(slots):
                    if slot.conn in ready or slot.proc.sentinel in ready:
                        if not self._hear(slot, jobs, emit, progress):
                            _Slot.start(ctx, work, slots, i)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            _close(slots, stop=interrupted or any(s.job is not None for s in slots))
        return interrupted

    @staticmethod
    def _hear(slot: _Slot, jobs: list[Job], emit, progress) -> bool:
        """Take what a worker sent; False when it died (its job then failed)."""
        try:
            while slot.conn.poll():
                kind, n, *rest = slot.conn.recv()
                if kind == "bytes":
                    if progress is not None:
                        progress(jobs[n], *rest)
                else:
                    slot.job = None
                    emit(rest[0])
        except (EOFError, OSError):  # it closed its end: it is exiting
            slot.proc.join(5)
        if slot.proc.is_alive():
            return True
        if slot.job is not None:
            job = slot.job[1]
            slot.job = None
            emit(Record(job.source, job.destination, "failed", job.size,
                        error=f"{job.source}: worker failed: {slot.died()}"))
        return False


def _close(slots: list[_Slot], stop: bool) -> None:
    """End every worker: idle ones are told to go; with `stop`, each gets one SIGTERM (a
    running conversion removes its temporaries). Ctrl-C and SIGTERM wait meanwhile: the wait
    is bounded, and cutting it short would leave workers writing."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        for slot in slots:
            if not slot.proc.is_alive():
                continue
            if stop:
                slot.proc.terminate()
            else:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
        deadline = time.monotonic() + STOP_GRACE
        for slot in slots:
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()
            slot.conn.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
