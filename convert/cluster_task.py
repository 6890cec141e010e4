"""The Dask task of a cluster batch: runs on a worker, has one job converted by the converter
process of its thread (cluster_child.py), and returns the outcome.

Stopping: a running Dask task cannot be cancelled from outside (`Future.cancel()` only forgets
it, dask/distributed#4694), and a PID means nothing on another host. So the client sets a Dask
`Event` named for its batch, and every task polls it (every `POLL` seconds, one small message to
the scheduler) while its converter works: once it is set, the task sends the converter SIGTERM,
which unwinds it and removes its temporaries, waits for it (SIGKILL after `GRACE` seconds), and
returns `interrupted`. A task that starts after the event is set returns at once. The client
waits for every task it submitted to come back before it exits, so when `acioci batch` exits
after Ctrl-C no converter of its batch is still writing.

Each worker thread keeps its converter between tasks (started on first use, replaced when it
died, was stopped, or has idled long enough to be about to leave): the Python start and the
imports are paid once per thread, not once per image. The converter runs in a session of its
own, so that a Ctrl-C typed at the terminal of a `dask worker` does not reach it: only its task
decides.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

from .cluster_child import IDLE, PARENT_ENV

POLL = 0.5   # seconds between two looks at the stop event
GRACE = 30   # seconds a stopped converter has to remove its temporaries before SIGKILL


def _environment() -> dict[str, str]:
    """The worker's environment without what Dask's nanny set for its worker processes
    (`distributed.nanny.pre-spawn-environ`): MALLOC_TRIM_THRESHOLD_=65536 among them, which
    makes glibc give memory back so eagerly that a conversion costs 40% more CPU (measured:
    48 ACIs of 100 MB, 29 s against 21 s). A value the user set otherwise is kept."""
    env = dict(os.environ)
    try:
        import dask

        for key, value in (dask.config.get("distributed.nanny.pre-spawn-environ") or {}).items():
            if env.get(key) == str(value):
                del env[key]
    except Exception:  # no such setting in this Dask: nothing was set
        pass
    env[PARENT_ENV] = str(os.getpid())
    return env


class _Converter:
    """One converter process and the pipes to it."""

    def __init__(self) -> None:
        self.err = tempfile.TemporaryFile()  # its stderr: the last line says why it died
        self.proc = subprocess.Popen([sys.executable, "-m", "convert.cluster_child"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, start_new_session=True,
                                     env=_environment())
        self.pending = b""
        self.used = time.monotonic()

    def usable(self) -> bool:
        return self.proc.poll() is None and time.monotonic() - self.used < IDLE - 10

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float) -> bytes | None:
        """The next line it writes, if one is complete within `timeout` (b"" once it closed
        its output: it died)."""
        fd = self.proc.stdout.fileno()
        if b"\n" not in self.pending and select.select([fd], [], [], timeout)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            self.pending += chunk
        if b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            self.used = time.monotonic()
            return line
        return None

    def died(self) -> str:
        self.proc.wait()
        code = self.proc.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        self.err.seek(0)
        lines = self.err.read().decode(errors="replace").strip().splitlines()
        self.close()
        return how + (f": {lines[-1][-2000:]}" if lines else "")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        for fh in (self.proc.stdin, self.proc.stdout, self.err):
            try:
                fh.close()
            except OSError:
                pass


_converters: dict[int, _Converter] = {}  # a worker thread's own


def _converter() -> _Converter:
    me = threading.get_ident()
    conv = _converters.get(me)
    if conv is not None and not conv.usable():
        conv.stop()  # idle for long, or dead: SIGTERM is harmless to either
        conv = None
    if conv is None:
        conv = _converters[me] = _Converter()
    return conv


def _stopped(event) -> bool:
    """Whether the batch was stopped. A scheduler that cannot answer right now does not stop
    the conversion: its output is atomic, so finishing it is always safe."""
    try:
        return bool(event.is_set())
    except Exception:
        return False


def _publisher(progress):
    """Where a job's byte counts go: to the client, as events of the batch's topic (`progress`
    is [topic, job number]), at most one every `POLL` seconds. Fire and forget: an event is a
    message the worker batches with its others to the scheduler, which hands it to the
    client; none waits for an answer."""
    if not progress:
        return lambda counts: None
    topic, n = progress
    last = [0.0]

    def publish(counts) -> None:
        now = time.monotonic()
        if now - last[0] < POLL:
            return
        last[0] = now
        try:
            from distributed import get_worker

            get_worker().log_event(topic, [n, *counts])
        except Exception:  # not on a worker, or it is closing: progress is not the result
            pass

    return publish


def run_task(data: bytes, stop_name: str) -> dict:
    """Convert one job (`cluster_child.payload`). Returns a dict with `kind`: `record` (the
    converter's outcome: `record`, `retry`, `descriptor`), `interrupted`, or `crashed` (no
    outcome: the converter died or could not start; `error` says how); and `worker`, the
    worker's address."""
    from distributed import Event, get_worker

    try:
        worker = get_worker().address
    except ValueError:  # not on a worker (called directly)
        worker = socket.gethostname()
    stop = Event(stop_name)
    if _stopped(stop):
        return {"kind": "interrupted", "worker": worker}
    asked = json.loads(data)
    cwd = asked["cwd"]
    publish = _publisher(asked.get("progress"))
    if not os.path.isdir(cwd):
        return {"kind": "crashed", "worker": worker,
                "error": f"the worker {worker} does not see {cwd}, the directory acioci batch "
                         "ran in (relative paths start there: give absolute paths, or run it "
                         "on the shared storage)"}
    me = threading.get_ident()
    try:
        conv = _converter()
        conv.send(data)
    except OSError as exc:  # could not start, or died as the job went in
        conv = _converters.pop(me, None)
        why = conv.died() if conv is not None else str(exc)
        return {"kind": "crashed", "worker": worker,
                "error": f"the converter on {worker} failed: {why}"}
    try:
        looked = time.monotonic()
        while True:
            line = conv.reply(POLL)
            if line is None and conv.proc.poll() is not None:
                line = conv.reply(0.1)  # what it wrote before it went, if anything
            if line:
                said = json.loads(line)
                if "progress" not in said:
                    return {"kind": "record", "worker": worker, **said}
                publish(said["progress"])
            elif line is not None or conv.proc.poll() is not None:
                _converters.pop(me, None)
                return {"kind": "crashed", "worker": worker,
                        "error": f"the converter on {worker} died ({conv.died()})"}
            if time.monotonic() - looked >= POLL:  # progress lines or not
                looked = time.monotonic()
                if _stopped(stop):
                    _converters.pop(me, None)
                    conv.stop()
                    return {"kind": "interrupted", "worker": worker}
    except BaseException:  # the worker is closing this thread: leave no converter behind
        _converters.pop(me, None)
        conv.stop()
        raise
