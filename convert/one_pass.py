"""The one-pass conversion's second go, in one place.

A lone ACI (no dependencies, no whitelist) is read once: the reader takes no index, and
`render` writes its entries in archive order, synthesising a parent directory it has not seen
yet. If the archive brings that directory later after all, rendering raises
`render.OutOfOrder` from inside the writer's stream; only then is the index worth a pass. So a
write is tried once, and on `OutOfOrder` the image is indexed and written again, which the
progress meter is told (`meter.rereading`) so that it counts the repeated bytes once. Nothing
above the transports knows of this: `transports.write` goes through `write_with_retry`.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from . import render
from .graph import Image
from .meter import metering, rereading

T = TypeVar("T")


def write_with_retry(image: Image, write: Callable[[Image], T]) -> T:
    """`write(image)`, and if rendering in archive order turns out wrong (`OutOfOrder`),
    `write` again with the image indexed (nothing the first go wrote is kept, see
    `render.OutOfOrder`)."""
    try:
        return write(image)
    except render.OutOfOrder:  # an ACI read once needs its index after all: a second go
        with metering(None):  # the index pass is not progress
            image = render.with_index(image)
        rereading()
        return write(image)
