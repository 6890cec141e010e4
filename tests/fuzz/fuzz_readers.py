"""Coverage-guided fuzzing of every reader with atheris (see README.md beside this file).

Each input is written to a temporary file and read as a source would be: the graph, then every
layer streamed. Only convert.errors.AciociError may escape; atheris reports anything else,
with the input that caused it.
"""

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from convert import api
    from convert.errors import AciociError
    from convert.squash import build_tree


def read_everything(path: str) -> None:
    for image in api.read_all(path, select_all=True, max_expand=1 << 24):
        if dict(image.extra).get("format") == "oci":
            build_tree(image.layers)
        else:
            for layer in api.render(image).layers:
                with layer.open() as stream:
                    for _ in stream:
                        pass


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
