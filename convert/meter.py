"""Progress of a conversion, counted in the source bytes that the writing pass reads.

Counting on the source side gives every conversion a total before any work starts: file and
blob sizes are known, where a compressed ACI's or an OCI layer's uncompressed size is not.
Readers wrap the files of their writing pass in `metered` and give each layer its `size`;
whoever wants progress sets a callback with `metering` around the conversion. A context
variable, because nothing passes between readers and writers but the graph, and a progress
callback is not part of an image. Passes that write nothing (an ACI scan, squash's header
pass) read their files unmetered; an index pass through a layer's `open` (`render.with_index`)
runs under `metering(None)`. A conversion that starts over (a lone ACI that turns out to need
an index, `one_pass.py`) calls `rereading()`: the bytes the first go reported are not reported
again.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator

Report = Callable[[int], object]


class _Count:
    """The callback of one conversion, with what it has been told so far."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.done = 0
        self.skip = 0

    def __call__(self, n: int) -> None:
        if self.skip:
            passed = min(n, self.skip)
            self.skip -= passed
            n -= passed
        if n:
            self.done += n
            self.report(n)


_report: ContextVar[_Count | None] = ContextVar("acioci_progress", default=None)


@contextlib.contextmanager
def metering(report: Report | None) -> Iterator[None]:
    """Within the block, reads through `metered` streams are reported to `report` (None
    stops the count, as an index pass does)."""
    token = _report.set(_Count(report) if report is not None else None)
    try:
        yield
    finally:
        _report.reset(token)


def rereading() -> None:
    """The conversion starts over from its first byte: as many bytes as were reported are
    read again before anything new is."""
    count = _report.get()
    if count is not None:
        count.skip = count.done


class _Metered:
    def __init__(self, raw, report: _Count) -> None:
        self.raw = raw
        self.report = report

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.report(len(data))
        return data

    def close(self) -> None:
        self.raw.close()


def metered(raw):
    """`raw` itself when nothing is counting, else a reader that reports what it reads."""
    report = _report.get()
    return raw if report is None else _Metered(raw, report)


def skipped(n: int) -> None:
    """`n` source bytes that the writing pass will not read after all (a layer a registry
    already has, known by its memo): counted as done, so progress still ends at its total."""
    count = _report.get()
    if count is not None and n > 0:
        count(n)
