"""`acioci validate` agrees with the real validators (actool for ACIs and ACI manifests,
oci-image-tool for layout directories) on every fixture both cover, except where acioci is
deliberately stricter; each such difference is listed here with its reason. oci-image-tool
does not cover archives (it walks a tar raw, without the layout logic), so tar inputs are left
out of the comparison."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import acioci, need

pytestmark = pytest.mark.interop

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CASES = sorted(p for folder in ("invalid", "valid") for p in (FIXTURES / folder).iterdir()
               if p.is_dir())

STRICTER = {
    # actool does not look at hardlink targets, '..' after cleaning, or entries below symlinks
    "aci-below-symlink": "actool: entries below a symlink are not checked (CVE-2016-7569 class)",
    "aci-hardlink-dangling": "actool: hardlink targets are not checked",
    "aci-hardlink-outside": "actool: hardlink targets are not checked",
    "aci-manifest-duplicate-key": "Go's JSON keeps the last duplicate key silently",
    "aci-relative-whitelist": "Go does not validate pathWhitelist at all",
    # oci-image-tool (image-spec v1.0.0 schemas) skips configs, diff_ids and layer contents
    "oci-bare-whiteout": "oci-image-tool does not read layer contents",
    "oci-layer-escapes": "oci-image-tool does not read layer contents",
    "oci-created-not-rfc3339": "oci-image-tool does not schema-check the config",
    "oci-env-without-equals": "oci-image-tool does not schema-check the config",
    "oci-env-null": "a warning, failing only with --strict, which this comparison uses",
    "oci-diffid-mismatch": "oci-image-tool does not check diff_ids",
    "oci-diffids-count": "oci-image-tool does not check diff_ids",
    "oci-platform-mismatch": "oci-image-tool does not compare config and index platform",
    "oci-ref-name-grammar": "the official schema does not check the ref.name grammar",
    "oci-unreferenced-blob": "a warning, failing only with --strict, which this comparison uses",
}


def tool_verdict(inp: Path) -> bool | None:
    if inp.name in ("image.aci", "manifest.json"):
        return subprocess.run([need("actool"), "validate", str(inp)],
                              capture_output=True).returncode == 0
    if inp.is_dir():
        return subprocess.run([need("oci-image-tool"), "validate", "--type", "image", str(inp)],
                              capture_output=True).returncode == 0
    return None


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_agrees_with_the_reference_validator(case):
    inp = case / json.loads((case / "expected.json").read_text())["input"]
    theirs = tool_verdict(inp)
    if theirs is None:
        pytest.skip("no reference validator covers archives")
    ours = acioci("validate", "--strict", inp).returncode == 0
    if case.name in STRICTER:
        assert (ours, theirs) == (False, True), "no longer a difference: update STRICTER"
    else:
        assert ours == theirs
