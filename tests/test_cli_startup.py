"""What the command imports before it converts: only what the conversion uses."""

from __future__ import annotations

from helpers import ROOT, modules_after_convert


def test_a_conversion_imports_only_what_it_uses(tmp_path):
    """A plain ACI -> OCI conversion makes no temporary directory and no pipe: tempfile (with
    random and its seeding) and multiprocessing stay unimported (~1.7 and ~10 ms of start-up)."""
    aci = ROOT / "fixtures" / "sample" / "store" / "base-1.0.0-linux-amd64.aci"
    assert modules_after_convert(aci, tmp_path / "out",
                                 "m in ('tempfile', 'random', 'multiprocessing')") == []
