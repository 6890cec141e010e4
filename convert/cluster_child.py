"""The converter process of a cluster batch's worker thread: `python -m convert.cluster_child`.

A Dask task cannot be stopped once it runs (`Future.cancel()` only forgets it), and a worker's
threads share its memory. So each task (cluster_task.py) hands its conversion to a process of
its own, where it can be killed and where its memory is one conversion's: SIGTERM unwinds it
like Ctrl-C (the atomic writers remove their temporaries), and it dies with the worker thread
that started it (Linux's PR_SET_PDEATHSIG, else a watchdog thread), so a lost worker leaves no
converter behind. As a local batch's pool processes do, it converts one job after another, so
that a store of small images does not pay a Python start per image; it exits by itself when no
job came for `IDLE` seconds.

Standard input: one job per line, as JSON (`payload`). Standard output: for a job that asks
for it, `{"progress": [done, total]}` lines as it reads its input; then one JSON line, its
outcome: `record` (the report record), `retry` (whether another worker may do better: an
I/O error, an unreadable path, not a bad input) and, into a shared layout, `descriptor` (what
index.json gets; only the client writes index.json, see layout_index.py).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from . import allocator, interrupt, jsonio
from .atomic import scratch_sibling
from .batch_job import ByteReport, Job, Record, convert_job, failed_record
from .errors import AciociError, DestinationError, SourceUnreadableError
from .options import ConvertOptions
from .transports.base import Reference

PARENT_ENV = "ACIOCI_CLUSTER_PARENT"
IDLE = 60  # seconds without a job before the converter exits (cluster_task.py replaces it)
_PR_SET_PDEATHSIG = 1
# not the image's fault: another worker (another mount, another disk) may succeed
RETRYABLE = (OSError, DestinationError, SourceUnreadableError)


def payload(job: Job, to: str, options: ConvertOptions, out: str, one_layout: bool,
            cwd: str, progress: tuple[str, int] | None = None) -> bytes:
    """What a task hands its converter: references only (paths every worker sees, relative ones
    from `cwd`, the client's working directory), never image bytes. One line. `progress`:
    the event topic and job number the task reports byte counts under (cluster_task.py)."""
    return json.dumps({"job": asdict(job), "to": to, "options": asdict(options), "out": out,
                       "one_layout": one_layout, "cwd": cwd, "progress": progress}).encode()


def _die_with_parent() -> None:
    """SIGTERM when the task's thread (so its worker) goes; checked once by hand for a parent
    that died before the request was made."""
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()
    if parent and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _into_shared_layout(job: Job, options: ConvertOptions, out: str,
                        progress=None) -> tuple[Record, dict]:
    """Build the image as a layout of its own beside the shared one, rename its blobs into the
    shared `blobs/sha256` (content-addressed: a blob already there is the same bytes, and a
    rename over it by another worker changes nothing), and return the manifest descriptor for
    the client to add. No lock: index.json is not touched here."""
    start = time.perf_counter()
    layout = Path(os.path.realpath(out))
    tag = job.destination.rsplit(":", 1)[1]
    with scratch_sibling(layout) as tmp:
        built = tmp / "image"
        from . import api

        result = api.convert(job.source, Reference("oci", str(built), tag), to="oci",
                             options=replace(options, overwrite=False, add_to_layout=False),
                             progress=progress)
        desc = jsonio.loads((built / "index.json").read_bytes())["manifests"][0]
        dst = layout / "blobs" / "sha256"
        dst.mkdir(parents=True, exist_ok=True)
        for blob in sorted((built / "blobs" / "sha256").iterdir()):
            if not (dst / blob.name).exists():
                os.rename(blob, dst / blob.name)
    # as a local batch reports it: the layout as the destination named it
    record = Record(job.source, job.destination, "converted", job.size,
                    time.perf_counter() - start, result={**result.to_dict(), "destination": out})
    return record, desc


def convert(data: dict, progress=None) -> dict:
    """The outcome of one job (see the module's docstring); `progress` as `api.convert`'s."""
    os.chdir(data["cwd"])
    job = Job(**data["job"])
    # JSON has no tuples: the options' tuple fields come back as lists
    options = ConvertOptions(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in data["options"].items()})
    start = time.perf_counter()
    descriptor = None
    try:
        if data["one_layout"]:
            record, descriptor = _into_shared_layout(job, options, data["out"], progress)
        else:
            if os.path.lexists(job.destination) and not options.overwrite:
                # the client planned it as missing: an earlier try of this job wrote it, on a
                # worker lost before it could say so; the same bytes are written again
                options = replace(options, overwrite=True)
            record = convert_job(job, data["to"], options, progress)
        retry = False
    except (AciociError, OSError) as exc:
        record = failed_record(job, exc, time.perf_counter() - start)
        retry = isinstance(exc, RETRYABLE)
    return {"record": asdict(record), "retry": retry, "descriptor": descriptor}


def _progress_line(done: int, total: int) -> None:
    sys.stdout.write(json.dumps({"progress": [done, total]}) + "\n")
    sys.stdout.flush()


def main() -> int:
    # the allocator of the acioci command, which a local batch's forked workers inherit: a
    # converter started afresh had glibc's defaults and paid each buffer again in page faults
    # (48 ACIs of 100 MB: 3 s more CPU than --jobs 2, see allocator.py)
    allocator.tune_for_streaming()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the task decides when to stop
    # the first SIGTERM unwinds the conversion where that is safe, later ones are ignored
    interrupt.once_on(signal.SIGTERM)
    _die_with_parent()
    jobs = sys.stdin.buffer
    try:
        while select.select([jobs], [], [], IDLE)[0]:
            line = jobs.readline()
            if not line:  # its task's end of the pipe closed
                return 0
            data = json.loads(line)
            outcome = convert(data, ByteReport(_progress_line) if data.get("progress") else None)
            sys.stdout.write(json.dumps(outcome) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:  # the temporaries went while unwinding
        return 130
    finally:
        interrupt.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
