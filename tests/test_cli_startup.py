"""What the command imports before it converts: only what the conversion uses."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT


def test_a_conversion_imports_only_what_it_uses(tmp_path):
    """A plain ACI -> OCI conversion makes no temporary directory and no pipe: tempfile (with
    random and its seeding) and multiprocessing stay unimported (~1.7 and ~10 ms of start-up)."""
    aci = ROOT / "fixtures" / "sample" / "store" / "base-1.0.0-linux-amd64.aci"
    code = ("import sys, runpy; sys.argv = ['acioci', 'convert', sys.argv[1], sys.argv[2], '-q']\n"
            "try:\n    runpy.run_module('convert', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('tempfile', 'random', 'multiprocessing') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(aci), str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "index.json").exists()
    assert out.stdout.strip().splitlines()[-1] == "[]"
