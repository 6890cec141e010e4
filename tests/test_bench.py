"""The benchmarks' own measuring tools measure what they say (bench/)."""

from __future__ import annotations

import gzip
import random
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_floor_python_ms_spends_that_much_main_thread_cpu_on_a_compressed_input(tmp_path):
    """`floor.py --python-ms N` adds N ms of main-thread CPU however the input is compressed.
    It spent N ms per MiB of the file spread over the MiB reads of the decompressed stream:
    on a gzip input 3x smaller, and read in pieces smaller than 1 MiB, about 4N."""
    sys.path.insert(0, str(BENCH))
    try:
        import minbase
    finally:
        sys.path.remove(str(BENCH))
    rng = random.Random(3)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(2, 9)))
             for _ in range(2000)]
    src, out = tmp_path / "in.tar.gz", tmp_path / "out"
    with gzip.open(src, "wb") as gz:
        for _ in range(12):
            gz.write(b" ".join(rng.choice(words) for _ in range(190_000))[:1 << 20])
    assert src.stat().st_size < 5 << 20
    floor = str(BENCH / "floor.py")
    bare = minbase.main_thread_cpu(floor, ["gzip", str(src), str(out)], out)
    spent = minbase.main_thread_cpu(floor, ["--python-ms", "300", "gzip", str(src), str(out)],
                                    out)
    assert 0.25 < spent - bare < 0.4, (bare, spent)
