"""Coverage-guided fuzzing of every reader with atheris (see README.md beside this file).

Each input is written to a temporary file and read as a source would be: the graph, then every
layer streamed. Only convert.errors.AciociError may escape; atheris reports anything else,
with the input that caused it.
"""

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for test_properties
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
with atheris.instrument_imports():
    from test_properties import read_bytes  # the same reading the property tests do


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris' name)
    read_bytes(data, "input")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
