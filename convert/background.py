"""A sink's writes in a second thread (`BackgroundWriter`): the compressing, hashing and
writing of a layer's bytes overlap the tar work of the main thread. Every writer of layers
puts one between its `TarWriter` and the compression chain (`writers/oci.encode_layer`, the
ACI writer).
"""

from __future__ import annotations

from .compression import writev


class BackgroundWriter:
    """Runs a sink's writes in a second thread, so that compressing, hashing and writing the
    output overlap the tar work of the main thread (both cores of a conversion busy).

    Writes go through a bounded queue of `depth` items, in order, so output bytes do not
    depend on timing; `TarWriter` already gathers them into ~1 MiB, which keeps memory at a few
    MiB. An exception in the thread is raised in the caller at its next write or at close().

    `abort()` must not wait for the queue to drain: with xz, eight queued MiB are about ten
    seconds of compression, which a Ctrl-C would sit through with the progress bar frozen. It
    drops what is queued and cancels the sink chain (each sink that wraps another keeps it as
    `.sink`; one with `cancel()`, a `Compressor`, stops within a slice)."""

    def __init__(self, sink, depth: int = 8) -> None:
        import queue
        import threading

        self.sink = sink
        self.error: BaseException | None = None
        self.cancelled = False
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is None and not self.cancelled:
                try:
                    if type(item) is list:
                        writev(self.sink, item)
                    else:
                        self.sink.write(item)
                except BaseException as exc:  # handed to the caller
                    self.error = exc

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def write(self, data: bytes) -> None:
        self._check()
        self.q.put(data)

    def writev(self, pieces: list) -> None:
        """The pieces go to the thread as one item (the list must not change after)."""
        self._check()
        self.q.put(pieces)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        self._check()

    def abort(self) -> None:
        """Stop the thread without writing what is queued (an error, or Ctrl-C, is already on
        its way up and the output will be removed): returns within one slice of work."""
        import queue

        self.cancelled = True
        sink = self.sink
        while sink is not None:
            cancel = getattr(sink, "cancel", None)
            if cancel is not None:
                cancel()
            sink = getattr(sink, "sink", None)
        while True:  # this thread is the only producer: once drained, put(None) has room
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        self.q.put(None)
        self.thread.join()
