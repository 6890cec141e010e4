"""Issue 20, item 7: a docker archive whose manifest.json names a path the path gate refuses
(`Layers` with `../`, an absolute `Config`) was reported without the archive (`FILE::`) or the
place in manifest.json; every error names both."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile

import pytest

from helpers import ROOT

CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


def archive(path, manifest) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), ("c.json", CONFIG)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("item,pointer,said", [
    ({"Config": "c.json", "Layers": ["../x/layer.tar"]}, "Layers/0", "'..'"),
    ({"Config": "c.json", "Layers": ["/layer.tar"]}, "Layers/0", "absolute"),
    ({"Config": "/etc/passwd", "Layers": []}, "Config", "absolute"),
    ({"Config": "../../c.json", "Layers": []}, "Config", "'..'"),
], ids=["layer-climbs", "layer-absolute", "config-absolute", "config-climbs"])
def test_docker_archive_path_errors_name_the_archive_and_pointer(tmp_path, item, pointer, said):
    src = tmp_path / "image.tar"
    archive(src, [item])
    dest = tmp_path / "out.aci"
    proc = subprocess.run([sys.executable, "-m", "convert", "convert", str(src), str(dest),
                           "--name", "example.com/x"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert f"{src}::manifest.json#/0/{pointer}:" in proc.stderr, proc.stderr
    assert said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not dest.exists()
