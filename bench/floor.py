"""The cost floor of a conversion: one pass over the input with the libraries and threads
acioci uses, and no tar work: decompress (by magic bytes), SHA-512 (the ACI image ID, in its
own thread), SHA-256 of the uncompressed bytes (diff_id, in its own thread), compress and
SHA-256 of the output (blob digest) in a third thread, and the output written to a file, as a
conversion must, with the allocator settings of the acioci command (convert/allocator.py).
Without compression the blob is the input, so it is hashed once. With
--no-image-id, no SHA-512: the floor of `acioci convert --no-image-id`.

    python bench/floor.py [--no-image-id] [--python-ms N] gzip|zstd|none FILE OUT
    python bench/floor.py --layers gzip|zstd|none OUT BLOB...

With --python-ms N, the main thread also runs N ms (thread CPU time) of pure Python, spread
evenly over the input's MiB as a conversion's tar work is: holding the GIL, as that work does.
It is not a floor but a measure: what a given amount of main-thread Python costs the wall time
of this pipeline on this machine (bench/minbase.py uses it to show where the conversion's
time beyond the floor goes).

With --layers, the floor of OCI -> ACI: each layer blob is read once with its SHA-256 (blob
digest) in a thread, decompressed, its SHA-256 taken again (diff_id) in a thread, and all of
it compressed into OUT with the SHA-512 of the uncompressed stream (the ACI image ID) in a
thread. It compresses every layer whole, so for a squashed image it does more than the
conversion must (whited-out and replaced files are compressed too).
"""

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convert.allocator import tune_for_streaming  # noqa: E402
from convert.background import BackgroundWriter  # noqa: E402
from convert.compression import (Compressor, HashingReader, HashingWriter,  # noqa: E402
                                 ThreadedHash, open_decompressed)


def layers(kind: str, out: str, blobs: list[str]) -> None:
    with open(out, "wb") as dest:
        ident = HashingWriter(dest if kind == "none" else Compressor(kind, dest), "sha512",
                              threaded=True)
        bg = BackgroundWriter(ident)
        for path in blobs:
            with open(path, "rb") as fh:
                blob = HashingReader(fh, "sha256", threaded=True)
                _, stream = open_decompressed(blob, allowed=("tar", "gzip", "zstd"))
                diff = ThreadedHash(hashlib.sha256(), depth=16)
                while chunk := stream.read(1 << 20):
                    diff.update(chunk)
                    bg.write(chunk)
                while blob.read(1 << 20):
                    pass
                diff.hexdigest()
                blob.hash.hexdigest()
        bg.close()
        if kind != "none":
            ident.sink.close()
        ident.hash.hexdigest()


def python(total: float, spent: float) -> float:
    """Pure Python on this thread (holding the GIL) until `total` s of its CPU time have gone
    to it, `spent` of them already: returns the new amount spent."""
    import time

    clock = time.thread_time
    start = now = clock()
    end = start + total - spent
    while now < end:
        now = clock()
    return spent + now - start


def main() -> None:
    tune_for_streaming()  # as the acioci command does: the same allocator under the same work
    if sys.argv[1] == "--layers":
        return layers(sys.argv[2], sys.argv[3], sys.argv[4:])
    args = [a for a in sys.argv[1:] if a != "--no-image-id"]
    image_id = len(args) == len(sys.argv) - 1
    python_ms = 0.0
    if args[0] == "--python-ms":
        python_ms, args = float(args[1]), args[2:]
    kind, path, out = args
    import os

    budget = python_ms / 1000
    size = max(1, os.path.getsize(path))
    spent = 0.0
    with open(path, "rb") as fh, open(out, "wb") as dest:
        _, stream = open_decompressed(fh, allowed=("tar", "gzip", "bzip2", "xz", "zstd"))
        blob = HashingWriter(dest)
        diff = None if kind == "none" else HashingWriter(Compressor(kind, blob), threaded=True)
        bg = BackgroundWriter(diff or blob)
        ident = ThreadedHash(hashlib.sha512(), depth=16) if image_id else None
        while chunk := stream.read(1 << 20):
            if ident is not None:
                ident.update(chunk)
            if budget:  # by the share of the file read: a decompressor's pieces vary in size
                spent = python(budget * min(1.0, fh.tell() / size), spent)
            bg.write(chunk)
        if budget:
            python(budget, spent)
        bg.close()
        if diff is not None:
            diff.sink.close()
            diff.hash.hexdigest()
        if ident is not None:
            ident.hexdigest()
        blob.hash.hexdigest()


if __name__ == "__main__":
    main()
