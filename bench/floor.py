"""The cost floor of a conversion: one pass over the input with the libraries and threads
acioci uses, and no tar work: decompress (by magic bytes), SHA-512 (the ACI image ID, in its
own thread), SHA-256 of the uncompressed bytes (diff_id, in its own thread), compress and
SHA-256 of the output (blob digest) in a third thread, and the output written to a file, as a
conversion must. Without compression the blob is the input, so it is hashed once.

    python bench/floor.py gzip|zstd|none FILE OUT
"""

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convert.compression import (BackgroundWriter, Compressor, HashingWriter,  # noqa: E402
                                 ThreadedHash, open_decompressed)


def main() -> None:
    kind, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path, "rb") as fh, open(out, "wb") as dest:
        _, stream = open_decompressed(fh, allowed=("tar", "gzip", "bzip2", "xz", "zstd"))
        blob = HashingWriter(dest)
        diff = None if kind == "none" else HashingWriter(Compressor(kind, blob), threaded=True)
        bg = BackgroundWriter(diff or blob)
        ident = ThreadedHash(hashlib.sha512(), depth=16)
        while chunk := stream.read(1 << 20):
            ident.update(chunk)
            bg.write(chunk)
        bg.close()
        if diff is not None:
            diff.sink.close()
            diff.hash.hexdigest()
        ident.hexdigest()
        blob.hash.hexdigest()


if __name__ == "__main__":
    main()
