"""Batch conversion: many inputs, worker processes, a report, and resume.

Invariants:
- Every output is written atomically by the single-image converter, so an output that exists
  is complete; rerunning skips it (unless `force`), which is all resume needs.
- Output names derive only from the inputs (relative path under its SRC, extension replaced),
  and two inputs that would write the same output are refused before any work starts. With
  `one_layout` the name is a tag in one shared layout, and "exists" means the layout has it.
- A failing input fails alone: its error becomes a record; the others go on.
- Ctrl-C or SIGTERM: pending inputs are cancelled at once, running workers get one SIGTERM,
  which their atomic writers turn into a clean removal of the temporary output (batch_pool.py);
  then the batch reports what it did and exits 130. Workers ignore SIGINT so that only the
  parent decides; a second signal to the parent changes nothing.
- Into a registry (`out` is `docker://HOST/NAMESPACE`), `batch_names` names each image and
  refuses collisions; "exists" is known only once an image is converted (its tag already names
  the same manifest), so the worker decides and records it as skipped.
- Memory is bounded by the number of workers: each streams its own image.
- Who converts is an `Executor`: `LocalPool` (worker processes here) or, with `--cluster`,
  `cluster.ClusterPool`; planning, naming, collisions, skipping and the report stay here, so a
  batch means the same whichever runs it.
"""

from __future__ import annotations

import glob
import os
import signal
import tempfile
from dataclasses import asdict, dataclass, replace
from typing import Callable

from pathlib import Path

from . import batch_names, interrupt, transports
from .atomic import provably_stale
from .errors import UsageError
from .batch_job import Executor, Job, Record, Work
from .batch_pool import LocalPool
from .spec import vocabulary
from .writers import oci_add


def _path_of(source: str) -> str:
    """The file or directory an input names (`oci-archive:x.tar:v1` names x.tar)."""
    return transports.source(source).path if transports.names_transport(source) else source


def _size(path: str) -> int:
    path = _path_of(path)
    if not os.path.exists(path):
        return 0  # a remote source (appc:, docker://): its size is known once fetched
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def _expand_lists(sources: list[str]) -> list[str]:
    """`@FILE` stands for the references in FILE, one per line (`#` starts a comment): a list
    of `appc:` names or `docker://` images to migrate, as a store of files is a folder."""
    out: list[str] = []
    for src in sources:
        if not src.startswith("@"):
            out.append(src)
            continue
        try:
            with open(src[1:], encoding="utf-8") as fh:
                lines = fh.read(1 << 24).splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the list of inputs: {exc}", file=src[1:]) from None
        out += [line.strip() for line in lines
                if line.strip() and not line.lstrip().startswith("#")]
    return out


def discover(sources: list[str]) -> list[tuple[str, str]]:
    """(input path, its path relative to the SRC that named it), in a stable order."""
    found: list[tuple[str, str]] = []
    suffixes = transports.file_suffixes()
    for src in _expand_lists(sources):
        if transports.names_transport(src):  # oci-archive:x.tar is one input, as it says
            found.append((src, transports.output_name(transports.source(src))))
            continue
        matches = sorted(glob.glob(src)) if glob.has_magic(src) else [src]
        if not matches:
            raise UsageError(f"{src} matches nothing")
        for m in matches:
            if not os.path.exists(m):
                raise UsageError(f"{m} does not exist")
            if os.path.isdir(m) and not os.path.exists(os.path.join(m, "oci-layout")):
                for root, dirs, files in os.walk(m):
                    dirs.sort()
                    if "oci-layout" in files and root != m:
                        found.append((root, os.path.relpath(root, m)))
                        dirs[:] = []
                        continue
                    for f in sorted(files):
                        if f.endswith(suffixes):
                            full = os.path.join(root, f)
                            found.append((full, os.path.relpath(full, m)))
            else:
                found.append((m, os.path.basename(os.path.normpath(m))))
    return found


def layout_tag(rel: str) -> str:
    """The tag of an input in a shared layout (`one_layout`): its path under SRC without the
    extension, made a valid ref.name (`sub/app-1.2.aci` is `sub/app-1.2`)."""
    return vocabulary.ref_name_from_version(transports.strip_suffix(rel))


def plan(sources: list[str], out: str, to: str, one_layout: bool = False) -> list[Job]:
    jobs: list[Job] = []
    by_dest: dict[str, str] = {}
    for path, rel in discover(sources):
        if one_layout:
            dest = f"oci:{out}:{layout_tag(rel)}"
        else:
            dest = os.path.join(out, transports.strip_suffix(rel) + (".aci" if to == "aci" else ""))
        if dest in by_dest and by_dest[dest] != path:
            raise UsageError(f"{by_dest[dest]} and {path} would both be written to {dest}; "
                             "rename one or convert them in separate batches")
        if dest in by_dest:
            continue
        by_dest[dest] = path
        jobs.append(Job(path, dest, _size(path)))
    return jobs


def plan_registry(sources: list[str], out: str, options) -> tuple[list[Job], list[Record]]:
    """`out` is `docker://HOST/NAMESPACE`: the jobs, named by `batch_names`, and a failed
    record for each input whose name cannot be read."""
    named, unnamed = batch_names.plan(discover(sources), out, options.reading())
    return ([Job(path, dest, _size(path)) for path, dest in named],
            [Record(path, "", "failed", _size(path), error=error) for path, error in unnamed])


def clean_stale_temporaries(out: str) -> None:
    """Remove the temporaries that killed writers left (SIGKILL cannot be cleaned up after):
    under `out`, and beside it those of `out` itself (a shared layout's images are built
    there). The rule, for a local batch and a cluster's alike: a temporary goes only when it is
    provably stale (`atomic.provably_stale`: made on this host in this boot, by a process that
    is gone). One of another host, of a live process, or of a process we may not look at is
    never removed, on shared storage least of all: its writer may be at work."""
    for root, dirs, files in os.walk(out):
        for name in list(dirs) + files:
            _clean_if_stale(root, name)
    parent, own = os.path.split(os.path.abspath(out))
    for name in os.listdir(parent):
        if name.startswith(f".{own}.acioci-tmp-"):
            _clean_if_stale(parent, name)


def _clean_if_stale(root: str, name: str) -> None:
    import shutil

    if ".acioci-tmp-" not in name or not name.startswith(".") or not provably_stale(name):
        return
    full = os.path.join(root, name)
    shutil.rmtree(full, ignore_errors=True) if os.path.isdir(full) else os.remove(full)


@dataclass
class Outcome:
    records: list[Record]
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        out = {"converted": 0, "skipped": 0, "failed": 0}
        for r in self.records:
            out[r.status] += 1
        return out

    def report(self) -> dict:
        return {"summary": {**self.counts(), "interrupted": self.interrupted},
                "records": [asdict(r) for r in self.records]}


class _Credit:
    """Turns workers' byte counts into `on_bytes` calls. A conversion reads more than its
    input's size when it reads dependencies too, so a job's count is scaled to its share of
    the conversion's total, capped at its size, and topped up to its size when its record
    comes: the bar ends exactly at the total it started with. A count that arrives after the
    record (a cluster's events travel apart from its results) changes nothing."""

    def __init__(self, on_bytes: Callable[[int], None] | None) -> None:
        self.on_bytes = on_bytes
        self.given: dict[str, int] = {}  # by destination (unique in a batch)
        self.finished: set[str] = set()

    def progress(self, job: Job, done: int, total: int) -> None:
        if job.destination not in self.finished and total > 0:
            self._give(job.destination, min(job.size, job.size * done // total))

    def finish(self, rec: Record) -> None:
        self._give(rec.destination, rec.bytes)
        self.finished.add(rec.destination)
        self.given.pop(rec.destination, None)

    def _give(self, key: str, want: int) -> None:
        more = want - self.given.get(key, 0)
        if more > 0 and self.on_bytes is not None:
            self.given[key] = want
            self.on_bytes(more)


def run(sources: list[str], out: str, *, to: str, options, jobs: int | None = None,
        force: bool = False, on_done: Callable[[Record, int, int], None] | None = None,
        on_start: Callable[[list[Job]], None] | None = None,
        on_bytes: Callable[[int], None] | None = None,
        one_layout: bool = False, executor: Executor | None = None) -> Outcome:
    """With `one_layout`, every image goes into one OCI layout at `out`, tagged by its input's
    path (`layout_tag`); workers add to it under its lock (writers/oci_add), and a tag it
    already has is skipped, as an existing output is otherwise. `executor` runs the
    conversions (default: a `LocalPool` of `jobs` processes).

    `on_bytes(n)`: n more of the jobs' bytes (`Job.size`, the total `on_start` gets) are
    done, as the workers read their inputs, so that a few large images move a progress bar
    before they finish. Each job adds up to its size exactly, by the time its record comes
    (`_Credit`)."""
    if to not in ("oci", "aci"):
        raise UsageError(f"a batch writes oci or aci, not {to!r}")
    registry = batch_names.is_registry(out)  # docker://HOST/NAMESPACE: pushed, not written
    if registry and (to != "oci" or one_layout):
        raise UsageError("a registry destination takes OCI images, each under a name of its "
                         "own (not ACIs, not one shared layout)")
    if one_layout and to != "oci":
        raise UsageError("the one-layout option is for OCI output")
    if one_layout:
        out = os.path.normpath(out)  # it is part of every destination: oci:OUT:TAG
    if one_layout and ":" in out:
        raise UsageError(f"one layout: {out}: a layout path cannot contain ':' (oci:DIR:TAG)")
    if not one_layout and not registry:
        os.makedirs(out, exist_ok=True)
    todo, records = (plan_registry(sources, out, options) if registry
                     else (plan(sources, out, to, one_layout), []))
    if registry:  # known once converted: the worker leaves a tag naming its manifest alone
        exists = lambda job: False  # noqa: E731
    elif one_layout:
        oci_add.ensure_layout(out)
        present = {oci_add.tag_of(d) for d in oci_add.read_index(Path(out))["manifests"]}
        exists = lambda job: job.destination.rsplit(":", 1)[1] in present  # noqa: E731
    else:
        exists = lambda job: os.path.lexists(job.destination)  # noqa: E731
    if not registry:
        clean_stale_temporaries(out)
    # the batch's own ACIs can satisfy each other's dependencies
    aci_dirs = sorted({os.path.dirname(os.path.abspath(_path_of(j.source))) for j in todo
                       if _path_of(j.source).endswith(".aci")})
    options = replace(options, store=tuple(options.store) + tuple(aci_dirs),
                      overwrite=force or options.overwrite,
                      # each output its own layout: --force replaces it whole; a shared one
                      # is added to, and --force replaces an image's tag only
                      add_to_layout=one_layout)
    pending: list[Job] = []
    for job in todo:
        if exists(job) and not force:
            records.append(Record(job.source, job.destination, "skipped", job.size))
        else:
            pending.append(job)
    if on_start:
        on_start(todo)
    total = len(todo) + sum(r.status == "failed" for r in records)
    credit = _Credit(on_bytes)
    for i, r in enumerate(records, 1):
        credit.finish(r)
        if on_done:
            on_done(r, i, total)
    outcome = Outcome(records)
    if not pending:
        return outcome

    def emit(rec: Record) -> None:
        records.append(rec)
        credit.finish(rec)
        if on_done:
            on_done(rec, len(records), total)

    stopping = []

    def on_signal(signum, frame):
        if not stopping:  # the first stops the batch; the stop then runs its course
            stopping.append(signum)
            interrupt.interrupt(frame)  # not inside a lock or a message to a worker

    ledger = None
    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        if registry:  # which repository has which blob, for the pushes to mount from; in a
            # directory of its own (0700), so that no other user can plant a claim or a line
            # beside it (registry/memo.py)
            ledger_dir = tempfile.mkdtemp(prefix="acioci-mounts-")
            ledger = os.path.join(ledger_dir, "ledger")
            os.close(os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            options = replace(options, mount_ledger=ledger)
        outcome.interrupted = (executor or LocalPool(jobs)).run(
            pending, Work(to, options, out, one_layout), emit,
            credit.progress if on_bytes else None)
    finally:
        interrupt.cancel()  # first: a stop still waiting for a safe moment when the work ended
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        if ledger is not None:  # with the claims of a worker killed while it held one
            import shutil

            shutil.rmtree(os.path.dirname(ledger), ignore_errors=True)
    records.sort(key=lambda r: r.source)
    return outcome
