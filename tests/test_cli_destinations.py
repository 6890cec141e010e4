"""Destinations and options that agree with each other: --all creates its directory as
--layered does and names its images as a single conversion would; --layered refuses a .aci
name; --all --layered gives each image a directory; --all is all or nothing; batch names
outputs without a compression suffix; printed paths are normalised."""

from __future__ import annotations

import build as fx
from helpers import ROOT, acioci
from test_oci_to_aci import Layout

E = fx.entry
SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = SAMPLE.parent / "store"


def two_platforms(root, *, third=None, ref="v1"):
    lay = Layout(root)
    lay.image([fx.layer_tar([E("amd", data=b"1")])], ref=ref)
    lay.image([fx.layer_tar([E("arm", data=b"2"), E("more", data=b"3")])], ref=ref,
              platform=("linux", "arm64", None))
    if third:
        lay.image([fx.layer_tar([E("odd", data=b"4")])], ref=ref, platform=third)
    return lay.root


def test_all_creates_its_directory_and_names_images_from_the_source(tmp_path):
    src = two_platforms(tmp_path / "webapp")  # tags name no repository: named after the file
    out = tmp_path / "new"
    acioci("convert", src, out, "--to", "aci", "--all", "-q", check=0)
    assert sorted(p.name for p in out.iterdir()) == ["webapp-v1-linux-aarch64.aci",
                                                      "webapp-v1-linux-amd64.aci"]


def test_all_layered_gives_each_image_a_directory(tmp_path):
    src = two_platforms(tmp_path / "webapp")
    out = tmp_path / "chains"
    acioci("convert", src, out, "--to", "aci", "--all", "--layered", "-q", check=0)
    dirs = sorted(p.name for p in out.iterdir())
    assert dirs == ["webapp-v1-linux-aarch64", "webapp-v1-linux-amd64"]
    assert all((out / d).is_dir() and list((out / d).glob("*.aci")) for d in dirs)


def test_all_is_all_or_nothing(tmp_path):
    src = two_platforms(tmp_path / "webapp", third=("linux", "riscv64", None))
    out = tmp_path / "out"
    proc = acioci("convert", src, out, "--to", "aci", "--all", check=2)
    assert proc.stderr.startswith(f"acioci: error: {src}: ") and "riscv64" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not out.exists()
    out.mkdir()
    acioci("convert", src, out, "--to", "aci", "--all", check=2)
    assert list(out.iterdir()) == []


def test_layered_refuses_an_aci_name(tmp_path):
    src = two_platforms(tmp_path / "webapp")
    proc = acioci("convert", f"oci:{src}:v1", tmp_path / "out.aci", "--platform", "linux/amd64",
                  "--layered", check=2)
    assert "directory" in proc.stderr and "out.aci" in proc.stderr
    assert not (tmp_path / "out.aci").exists()


def test_printed_paths_have_no_double_slash(tmp_path):
    src = two_platforms(tmp_path / "webapp")
    proc = acioci("convert", f"oci:{src}:v1", f"{tmp_path}/chain/", "--to", "aci",
                  "--platform", "linux/arm64", "--layered", check=0)
    assert "//" not in proc.stdout and f"{tmp_path}/chain/" in proc.stdout


def test_batch_names_drop_compression_suffixes(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "base.aci.gz").write_bytes((STORE / "base-1.0.0-linux-amd64.aci").read_bytes())
    out = tmp_path / "out"
    acioci("batch", inputs / "base.aci.gz", "--to", "aci", "--out", out, "-q", check=0)
    assert [p.name for p in out.iterdir()] == ["base.aci"]
