"""Coverage-guided fuzzing of every reader with atheris (see README.md beside this file).

Each input is written to a temporary file and read as a source would be: the graph, then every
layer streamed. Only convert.errors.AciociError may escape; atheris reports anything else,
with the input that caused it. An input whose first byte is odd is an archive; an even one
is a JSON document (the rest of the input) put in the place its second byte selects in an
otherwise valid image (an ACI manifest, a layout's config, manifest or index.json, a docker
archive's config or manifest.json): JSON readers are reached without a valid tar around them.
"""

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for test_properties
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
with atheris.instrument_imports():
    # the same reading the property tests do
    from test_properties import read_bytes, read_json_document


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris' name)
    if len(data) < 2 or data[0] & 1:
        read_bytes(data[1:], "input")
    else:
        read_json_document(data[1], data[2:])


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
