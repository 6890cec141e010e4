"""One job of a batch: what it converts, its record in the report, and who runs the jobs.

Shared by the local pool (batch_pool.py), the cluster's converter process (cluster_child.py)
and the batch itself (batch.py), which alone plans, names and reports: a job means the same
whichever process converts it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from . import transports
from .errors import AciociError
from .options import ConvertOptions


@dataclass(frozen=True)
class Job:
    source: str
    destination: str
    size: int


@dataclass
class Record:
    source: str
    destination: str
    status: str  # converted, skipped, failed
    bytes: int
    seconds: float = 0.0
    error: str | None = None
    result: dict | None = None


def convert_job(job: Job, to: str, options, progress=None) -> Record:
    """Convert one input; raises what the conversion raises (a pool worker makes it a record,
    batch_pool.py; the cluster's converter also decides from it whether another worker may
    retry). `progress` is `api.convert`'s."""
    from . import api

    start = time.perf_counter()
    # a shared layout (oci:OUT:TAG) or a registry (docker://) names its transport; a bare
    # path is a file or directory of its own under the batch's output directory
    named = transports.names_transport(job.destination)
    if not named:
        os.makedirs(os.path.dirname(job.destination) or ".", exist_ok=True)
    result = api.convert(job.source, job.destination, to=None if named else to,
                         options=options, progress=progress)
    # a registry tag that named this very manifest already was left alone: a resumed batch
    status = "skipped" if result.unchanged else "converted"
    return Record(job.source, job.destination, status, job.size,
                  time.perf_counter() - start, result=result.to_dict())


def failed_record(job: Job, exc: Exception, seconds: float) -> Record:
    """The record of an input whose conversion raised `exc` (an AciociError or OSError)."""
    error = str(exc) if isinstance(exc, AciociError) else f"{job.source}: {exc}"
    return Record(job.source, job.destination, "failed", job.size, seconds, error=error)


@dataclass(frozen=True)
class Work:
    """What every job of one batch is converted with."""
    to: str
    options: ConvertOptions  # the batch's: its own ACI folders in the store, overwrite, ...
    out: str
    one_layout: bool = False  # every job adds to the layout at `out`


PROGRESS_EVERY = 0.25  # seconds between two byte counts a converting process sends


class ByteReport:
    """`api.convert`'s progress callback in a process converting for a batch (a pool worker, a
    cluster's converter): `send(done, total)` with the source bytes read so far, at most every
    `PROGRESS_EVERY` seconds (a clock read per block read: cheap). The first block is sent at
    once: an image that converts in less than the interval still moves the bar before its
    record comes."""

    def __init__(self, send: Callable[[int, int], None]) -> None:
        self.send = send
        self.done = self.total = 0
        self.sent = float("-inf")

    def __call__(self, total: int) -> Callable[[int], None]:
        self.total = total
        return self.add

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.sent >= PROGRESS_EVERY:
            self.sent = now
            self.send(self.done, self.total)


Progress = Callable[[Job, int, int], None]  # (job, source bytes read so far, of how many)


class Executor(Protocol):
    """Who runs a batch's conversions."""

    def run(self, jobs: list[Job], work: Work, emit: Callable[[Record], None],
            progress: Progress | None = None) -> bool:
        """Convert every job, calling `emit` in the calling thread with each record as it is
        done, and `progress` (if given and if it can) as a running job reads its input. A
        KeyboardInterrupt (Ctrl-C, or SIGTERM as `run` maps it) stops the work, leaves no
        partial output, and makes this return True: interrupted."""
        ...
