"""Coverage-guided fuzzing of every reader with atheris (see README.md beside this file).

Each input is written to a temporary file and read as a source would be: the graph, then every
layer streamed. Only convert.errors.AciociError may escape; atheris reports anything else,
with the input that caused it.
"""

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for test_properties
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
with atheris.instrument_imports():
    from convert.errors import AciociError
    from test_properties import read_everything  # the same reading the property tests do


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris' name)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "input"
        path.write_bytes(data)
        try:
            read_everything(str(path))
        except AciociError:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
