"""The cost floor of a conversion: one pass over the input with the libraries acioci uses,
and no tar work: decompress (by magic bytes), SHA-512 (the ACI image ID), SHA-256 of the
uncompressed bytes (diff_id), compress, SHA-256 of the output (blob digest); the compressor
runs in a second thread as acioci's does.

    python bench/floor.py gzip|zstd|none FILE
"""

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convert.compression import (BackgroundWriter, Compressor, HashingWriter,  # noqa: E402
                                 open_decompressed)


class Null:
    def write(self, data):
        pass


def main() -> None:
    kind, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as fh:
        _, stream = open_decompressed(fh, allowed=("tar", "gzip", "bzip2", "xz", "zstd"))
        comp = Compressor(kind, HashingWriter(Null()))
        bg = BackgroundWriter(comp)
        diff = HashingWriter(bg)
        ident = hashlib.sha512()
        while chunk := stream.read(1 << 20):
            ident.update(chunk)
            diff.write(chunk)
        bg.close()
        comp.close()


if __name__ == "__main__":
    main()
