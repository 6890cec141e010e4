"""`acioci batch --cluster`: the batch's conversions run as tasks on a Dask cluster.

Everything that decides what a batch does stays in the client and in batch.py: the plan, the
output names, collisions (refused before any work), what is skipped, the report. This module
only replaces `batch.LocalPool` by `ClusterPool`, so a cluster batch writes the same bytes and
the same report (apart from timings) as a local one with the same inputs and options.

- Tasks carry references, never image bytes: the paths the client names, which every worker
  must see at the same place (shared storage); each task returns its report record.
- Each conversion runs in a child process of its worker (cluster_task.py, cluster_child.py):
  it can be stopped, and its memory is one conversion's.
- Ctrl-C (or SIGTERM): the client sets the batch's stop event, every running task kills its
  child (whose atomic writers remove their temporaries), and the client waits for every task
  it submitted to come back (at most `STOP_WAIT` seconds) before the batch reports
  "interrupted". Then, and at the end of any batch whose tasks all came back, temporaries that
  lost converters left under --out are removed by the local batch's rule, on the client and on
  every worker: only one provably stale (made on that host, by a process that is gone).
- Retries: a bad input (a format, dependency or usage error) is a failed record at once. An
  I/O error, an unreadable path or a destination that cannot be written, and a converter that
  died, are tried again on a worker that has not tried that job, `ATTEMPTS` tries in all; the
  last error is the record. A worker lost while converting (killed, host down) is Dask's to
  reschedule (its `allowed-failures`, 3 by default); a job that lost that many is failed.
- With `--one-layout` the workers rename their blobs into the shared layout and the client is
  index.json's only writer (layout_index.py): no lock on shared storage is needed.
- Progress: a running task publishes its converter's byte counts as Dask events of the
  batch's topic (fire and forget, at most one every 0.5 s a task), which the client passes to
  the batch's progress callback; images still count when they finish.
- At most twice as many tasks as the cluster has threads are submitted at a time: a stop then
  has few queued tasks to drain, and a store of any size costs the scheduler little.

Dask is imported only here and only when --cluster is given: a local batch never loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
import uuid
from typing import Callable

from .batch import clean_stale_temporaries
from .batch_job import Job, Progress, Record, Work
from .cluster_child import payload
from .errors import AciociError, UsageError
from .layout_index import SharedIndex

ATTEMPTS = 3           # tries of one job that failed for a reason another worker may not have
CONNECT_TIMEOUT = 30   # seconds to reach the scheduler
NO_WORKERS = 120       # seconds the cluster may have no worker at all before the batch gives up
CLEAN_WAIT = 30        # seconds the workers have to clean their hosts' stale temporaries
STOP_WAIT = 90         # seconds a stop waits for running tasks (cluster_task.GRACE is 30)
_LOCAL_HOST = "127.0.0.1"
# `local:N` shares this machine's cores with the conversions it runs, so its scheduler and
# workers wake less often than Dask's defaults have them (measured idle: 1.2 CPU s in 20 s
# for local:2, 0.25 s with these): no thread profiles (the workers' threads only wait for
# their converters), event loop health ticks every 1 s (20 ms), memory and system monitors
# every 1 s and 2 s (100 ms, 500 ms; the converters' memory is not the workers' anyway), and
# no work stealing (tasks wait on the scheduler until a thread is free: nothing to steal).
_LOCAL_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.scheduler.work-stealing": False,
}


class ClusterError(AciociError):
    """The cluster cannot be used: no scheduler there, no worker joined. Not an image's
    fault."""

    exit_code = 2


def _target(cluster: str | None, scheduler_file: str | None) -> tuple[str, object]:
    """("local", N), ("address", "tcp://..."), or ("file", path), checked before any work."""
    if cluster and scheduler_file:
        raise UsageError("give a cluster or a scheduler file, not both")
    if scheduler_file:
        return "file", scheduler_file
    if cluster and cluster.startswith("local:"):
        n = cluster[len("local:"):]
        if not n.isdigit() or not 1 <= int(n) <= 256:
            raise UsageError(f"cluster {cluster}: local:N takes a number of workers, 1 to 256")
        return "local", int(n)
    if cluster and "://" in cluster:
        return "address", cluster
    raise UsageError(f"cluster {cluster}: give a scheduler address (tcp://HOST:PORT) or "
                     "local:N")


def _dask():
    try:
        import distributed
    except ImportError:
        raise UsageError("a cluster needs Dask: pip install 'acioci[cluster]' "
                         "(that is, dask[distributed])") from None
    return distributed


@contextlib.contextmanager
def _quiet_logs(keep: bool = False):
    """Dask logs a lost worker or a closing connection as it copes with it; the batch reports
    what matters (records, errors), so only Dask's own errors get through. With `keep`, the
    quiet outlasts the batch: after an in-process cluster's `close` had returned (its event
    loop thread gone), Dask still logged a closed connection, with its traceback, at INFO in 4
    runs in 40 of a 1-image `local:2` batch once the level was put back, and in 1 in 30 with a
    `gc.collect()` before it; what emits it late was not found."""
    log = logging.getLogger("distributed")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        if not keep:
            log.setLevel(old)


class ClusterPool:
    """A `batch.Executor` on a Dask cluster (see the module's docstring)."""

    def __init__(self, cluster: str | None = None, scheduler_file: str | None = None) -> None:
        self.kind, self.where = _target(cluster, scheduler_file)
        _dask()  # missing: said before any work

    def run(self, jobs: list[Job], work: Work, emit: Callable[[Record], None],
            progress: Progress | None = None) -> bool:
        distributed = _dask()
        with _quiet_logs(keep=self.kind == "local"), contextlib.ExitStack() as stack:
            try:
                client = self._connect(distributed, stack)
                return _Run(distributed, client, jobs, work, emit, progress).run()
            except KeyboardInterrupt:  # while connecting: nothing was submitted
                return True
            except AciociError:
                raise
            except Exception as exc:  # the scheduler went away, the client closed, ...
                raise ClusterError(f"the Dask cluster failed: {type(exc).__name__}: {exc}; "
                                   "what was converted stays, a rerun does the rest") from None

    def _connect(self, distributed, stack: contextlib.ExitStack):
        if self.kind == "local":
            # The scheduler and the N single-thread workers run in this process, as threads:
            # a task only waits for its converter, which is a process of its own either way
            # (cluster_task.py), so worker processes would add nothing but their start. They
            # cost 0.7 s of a 2-core machine's start for local:2 (2 nannies and 2 workers,
            # each importing Dask; measured 1.5 s against 0.8 s in all) and their share of the
            # cores while converting (bench/cluster.py: 0.80 of --jobs 2; in-process, with the
            # converters on the command's allocator, 0.88).
            # The converters ignore Ctrl-C typed at this terminal (a session of their own):
            # the client alone decides, as a local batch's parent does.
            import dask

            stack.enter_context(dask.config.set(_LOCAL_CONFIG))
            # The scheduler and every worker still start an HTTP server (no dashboard without
            # bokeh, but info pages, one with a "retire worker" action): on a free loopback
            # port each, never 0.0.0.0:8787, which showed the batch to the network, and
            # warned on a quiet batch's stderr when another cluster held the port.
            loopback = f"{_LOCAL_HOST}:0"
            cluster = distributed.LocalCluster(
                n_workers=self.where, threads_per_worker=1, processes=False,
                dashboard_address=None, silence_logs=logging.ERROR,
                worker_dashboard_address=loopback,
                scheduler_kwargs={"dashboard": False, "dashboard_address": loopback})
            stack.callback(_close, cluster)
            client = distributed.Client(cluster, set_as_default=False)
            stack.callback(_close, client)
            return client
        try:
            if self.kind == "file":
                if not os.path.isfile(self.where):
                    raise UsageError(f"scheduler file {self.where}: no such file")
                client = distributed.Client(scheduler_file=self.where, timeout=CONNECT_TIMEOUT,
                                            set_as_default=False)
            else:
                client = distributed.Client(self.where, timeout=CONNECT_TIMEOUT,
                                            set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.where}: "
                               f"{exc or type(exc).__name__}") from None
        stack.callback(_close, client)
        return client


def _close(thing) -> None:
    """Bounded, and silent: the batch's outcome is known by now."""
    with contextlib.suppress(Exception):
        thing.close(timeout=20)


class _Run:
    """One batch on a connected client."""

    def __init__(self, distributed, client, jobs: list[Job], work: Work,
                 emit: Callable[[Record], None], progress: Progress | None = None) -> None:
        self.distributed, self.client, self.work, self.emit = distributed, client, work, emit
        self.jobs, self.progress = jobs, progress
        self.todo = list(enumerate(jobs))
        self.todo.reverse()  # popped from the end: submitted in plan order
        self.token = uuid.uuid4().hex[:12]
        self.stop = distributed.Event(f"acioci-stop-{self.token}", client=client)
        self.cwd = os.getcwd()
        self.index = SharedIndex(work.out) if work.one_layout else None
        self.outstanding: dict[str, tuple] = {}  # key: (future, n, job, attempt, tried)
        self.done: queue.Queue = queue.Queue()  # settled futures, and [n, done, total] counts
        self.topic = f"acioci-progress-{self.token}"
        if progress is not None:  # the tasks' byte counts, as events (cluster_task._publisher)
            client.subscribe_topic(self.topic, lambda event: self.done.put(event[1]))
        self.stopping = False
        self.threads, self.threads_at = 0, 0.0
        self.workerless_since: float | None = None

    def run(self) -> bool:
        interrupted = False
        try:
            while self.todo or self.outstanding:
                self._refill()
                try:
                    item = self.done.get(timeout=1.0)
                except queue.Empty:
                    self._check_workers()
                    continue
                self._take(item)
        except KeyboardInterrupt:
            interrupted = True
            self._wind_down()
        finally:
            self._finish()
        return interrupted

    def _nthreads(self) -> int:
        """The cluster's threads now (asked at most every 2 seconds: workers come and go)."""
        if time.monotonic() - self.threads_at > 2:
            self.threads = sum(self.client.nthreads().values())
            self.threads_at = time.monotonic()
        return self.threads

    def _refill(self) -> None:
        window = max(2, 2 * self._nthreads())
        while self.todo and len(self.outstanding) < window:
            n, job = self.todo.pop()
            self._submit(n, job, 1, frozenset())

    def _submit(self, n: int, job: Job, attempt: int, tried: frozenset) -> None:
        from .cluster_task import run_task

        where = {}
        if tried:  # another worker, if the cluster has one
            others = [w for w in self.client.nthreads() if w not in tried]
            if others:
                where = {"workers": others, "allow_other_workers": True}
        data = payload(job, self.work.to, self.work.options, self.work.out,
                       self.work.one_layout, self.cwd,
                       (self.topic, n) if self.progress is not None else None)
        fut = self.client.submit(run_task, data, self.stop.name,
                                 key=f"acioci-{self.token}-{n}-{attempt}", **where)
        self.outstanding[fut.key] = (fut, n, job, attempt, tried)
        fut.add_done_callback(self.done.put)

    def _check_workers(self) -> None:
        if self._nthreads():
            self.workerless_since = None
            return
        now = time.monotonic()
        self.workerless_since = self.workerless_since or now
        if now - self.workerless_since > NO_WORKERS:
            raise ClusterError(f"the cluster has had no worker for {NO_WORKERS} s; "
                               "start some (dask worker ADDRESS) and run the batch again")

    def _take(self, item) -> None:
        if isinstance(item, (list, tuple)):  # a running task's byte count
            n, done, total = item
            if self.progress is not None and not self.stopping:
                self.progress(self.jobs[n], done, total)
        else:
            self._settle(item)

    def _settle(self, fut) -> None:
        entry = self.outstanding.pop(fut.key, None)
        if entry is None:
            return
        _, n, job, attempt, tried = entry
        try:
            out = fut.result(timeout=30)
        except self.distributed.KilledWorker as exc:
            self.emit(Record(job.source, job.destination, "failed", job.size,
                             error=f"{job.source}: the workers converting it were lost "
                                   f"again and again (out of memory?): {exc}"))
            return
        except Exception as exc:  # the task itself failed (the scheduler lost it, ...)
            out = {"kind": "crashed", "worker": None,
                   "error": f"task failed: {type(exc).__name__}: {exc}"}
        if out["kind"] == "interrupted":
            return  # nothing was written; the batch is stopping
        if out["kind"] == "crashed":
            record = Record(job.source, job.destination, "failed", job.size,
                            error=f"{job.source}: {out['error']}")
            retry = True
        else:
            record, retry = Record(**out["record"]), out["retry"]
        if retry and attempt < ATTEMPTS and not self.stopping:
            self._submit(n, job, attempt + 1, tried | {out["worker"]} - {None})
            return
        if out.get("descriptor") and record.status == "converted":
            self.index.add(job.destination.rsplit(":", 1)[1], out["descriptor"])
        self.emit(record)

    def _wind_down(self) -> None:
        """Stop every task and wait for each to come back; Ctrl-C again changes nothing."""
        self.stopping = True
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with contextlib.suppress(Exception):
                self.stop.set()
            deadline = time.monotonic() + STOP_WAIT
            while self.outstanding and time.monotonic() < deadline:
                try:
                    self._take(self.done.get(timeout=1.0))
                except queue.Empty:
                    pass
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _finish(self) -> None:
        """The shared index written; when every task came back, the leftovers of lost workers
        removed and the replaced images' blobs collected."""
        accounted = not self.outstanding
        if self.outstanding:
            with contextlib.suppress(Exception):
                self.client.cancel([entry[0] for entry in self.outstanding.values()])
        if self.index is not None:
            self.index.flush()
            if accounted:
                self.index.collect()
        if accounted:
            self._clean()

    def _clean(self) -> None:
        """The temporaries lost converters left, by the one rule a local batch follows
        (`batch.clean_stale_temporaries`: only those provably stale). Only a process on the
        host that made one can prove it stale, so every worker looks too, at the same path
        on the shared storage; a worker that cannot answer in time leaves its own for the next
        batch on its host."""
        out = os.path.join(self.cwd, self.work.out)
        clean_stale_temporaries(out)

        def on_workers() -> None:
            with contextlib.suppress(Exception):
                self.client.run(clean_stale_temporaries, out, on_error="ignore")

        asking = threading.Thread(target=on_workers, daemon=True)
        asking.start()
        asking.join(CLEAN_WAIT)
