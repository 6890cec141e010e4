"""`--platform` says which image, never what an image is against its own labels: an ACI's os
and arch labels win over a contradicting platform (refused, exit 2, naming both); appc's and
the kernel's spellings (`aarch64`, `armv7l`) mean OCI's (`arm64`, `arm/v7`); a platform no
ACI can have (windows) is refused; on docker archives a platform selects exactly as on OCI
layouts (`linux/arm` is never `linux/arm64`; without a variant, any variant, if only one);
`validate` warns on an os or architecture outside Go's lists (issue 19, point 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import build as fx
from helpers import acioci
from test_aci_to_oci import read_layout
from test_oci_to_aci import Layout, _tar_tree, aci_manifest

E = fx.entry
APPC_HAS = ("linux/amd64, linux/386, linux/arm64, linux/arm/v6, linux/arm/v7, linux/ppc64, "
            "linux/ppc64le, linux/s390x, freebsd/amd64, freebsd/386, freebsd/arm, "
            "darwin/amd64, darwin/386")


def _aci(tmp_path: Path, name="a.aci", **labels) -> Path:
    path = tmp_path / name
    fx.write_aci(path, fx.manifest("example.com/app", version="1.0", **labels),
                 [E("f", data=b"1")])
    return path


def _error(proc, code=2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


# ACI sources

@pytest.mark.parametrize("platform", ["linux/arm64", "linux/aarch64", "linux/arm/v7",
                                      "freebsd/amd64"])
def test_a_platform_against_the_labels_is_refused_naming_both(tmp_path, platform):
    src = _aci(tmp_path)
    out = tmp_path / "o.tar"
    text = _error(acioci("convert", src, out, "--platform", platform))
    assert text == (f"acioci: error: {src}: the image's labels say os linux, arch amd64; "
                    f"platform {platform} contradicts them\n")
    assert not out.exists()


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/x86_64", "LINUX/AMD64"])
def test_a_platform_that_agrees_with_the_labels_is_fine(tmp_path, platform):
    src = _aci(tmp_path)
    acioci("convert", src, tmp_path / "o", "--platform", platform, check=0)
    index, _, config, _ = read_layout(tmp_path / "o")
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}


def test_a_platform_without_a_variant_keeps_the_labels_variant(tmp_path):
    src = _aci(tmp_path, arch="armv6l")
    acioci("convert", src, tmp_path / "o", "--platform", "linux/arm", check=0)
    _, _, config, _ = read_layout(tmp_path / "o")
    assert (config["architecture"], config.get("variant")) == ("arm", "v6")
    text = _error(acioci("convert", src, tmp_path / "p", "--platform", "linux/arm/v7"))
    assert "labels say os linux, arch armv6l; platform linux/arm/v7 contradicts" in text


@pytest.mark.parametrize("given,arch,variant", [
    ("linux/aarch64", "arm64", None), ("linux/armv7l", "arm", "v7"),
    ("linux/armv6l", "arm", "v6"), ("linux/i386", "386", None),
    ("linux/arm64/v8", "arm64", None), ("linux/arm/7", "arm", "v7")])
def test_appc_spellings_become_oci_names(tmp_path, given, arch, variant):
    src = _aci(tmp_path, os_=None, arch=None)
    acioci("convert", src, tmp_path / "o", "--platform", given, check=0)
    index, _, config, _ = read_layout(tmp_path / "o")
    assert (config["architecture"], config.get("variant")) == (arch, variant)
    assert index["manifests"][0]["platform"]["architecture"] == arch
    acioci("validate", "--strict", tmp_path / "o", check=0)


@pytest.mark.parametrize("labels", [{}, {"arch": None}], ids=["labelled", "os-only"])
def test_windows_is_no_platform_for_an_aci(tmp_path, labels):
    src = _aci(tmp_path, **labels)
    text = _error(acioci("convert", src, tmp_path / "o.tar", "--platform", "windows/amd64"))
    assert text == (f"acioci: error: {src}: platform windows/amd64 is not one an ACI can "
                    f"have; appc has {APPC_HAS}\n")


def test_an_aci_without_labels_takes_only_appc_platforms(tmp_path):
    src = _aci(tmp_path, os_=None, arch=None)
    for bad in ("windows/amd64", "linux/riscv64", "linux/arm/v5"):
        text = _error(acioci("convert", src, tmp_path / "o.tar", "--platform", bad))
        assert f"platform {bad} is not one an ACI can have" in text
    acioci("convert", src, tmp_path / "o", "--platform", "darwin/x86_64", check=0)
    _, _, config, _ = read_layout(tmp_path / "o")
    assert (config["os"], config["architecture"]) == ("darwin", "amd64")


def test_an_os_label_alone_takes_an_arch_of_that_os(tmp_path):
    src = _aci(tmp_path, arch=None)
    acioci("convert", src, tmp_path / "o", "--platform", "linux/aarch64", check=0)
    _, _, config, _ = read_layout(tmp_path / "o")
    assert config["architecture"] == "arm64"
    text = _error(acioci("convert", src, tmp_path / "p", "--platform", "freebsd/amd64"))
    assert text.endswith("the image's labels say os linux; platform freebsd/amd64 "
                         "contradicts them\n")


def test_a_variant_against_the_appc_spelling_is_a_usage_error(tmp_path):
    src = _aci(tmp_path, os_=None, arch=None)
    text = _error(acioci("convert", src, tmp_path / "o", "--platform", "linux/armv7l/v6"))
    assert text.endswith("platform linux/armv7l/v6: armv7l is arm/v7, not variant v6\n")


# docker archives and OCI layouts

def _docker(tmp_path: Path, images) -> Path:
    """A docker-save archive (Docker 25's shape) holding one image per (tag, platform)."""
    lay = Layout(tmp_path / "docker-tree")
    blob = lambda desc: "blobs/sha256/" + desc["digest"].split(":")[1]  # noqa: E731
    items = []
    for tag, platform in images:
        d = lay.image([fx.layer_tar([E("which", data=f"{tag} {platform}".encode())])],
                      platform=platform, compress=False)
        items.append({"Config": blob(d["config"]), "RepoTags": [tag] if tag else [],
                      "Layers": [blob(d["layers"][0])]})
    out = tmp_path / "image.tar"
    _tar_tree(lay.root, out, {"manifest.json": json.dumps(items).encode()})
    return out


ARM64 = ("linux", "arm64", None)
AMD64 = ("linux", "amd64", None)
ARMV7 = ("linux", "arm", "v7")
ARMV6 = ("linux", "arm", "v6")


def _which(aci: Path) -> str:
    import gzip
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(aci.read_bytes()))) as tf:
        return tf.extractfile("rootfs/which").read().decode()


def test_docker_archive_linux_arm_is_not_arm64(tmp_path):
    archive = _docker(tmp_path, [("app:a", ARM64), ("app:b", AMD64)])
    out = tmp_path / "o.aci"
    text = _error(acioci("convert", f"docker-archive:{archive}", out, "--platform", "linux/arm"))
    assert text == (f"acioci: error: {archive}: no image for platform linux/arm; the archive "
                    "holds app:a (linux/arm64); app:b (linux/amd64)\n")
    assert not out.exists()


@pytest.mark.parametrize("platform,tag", [("linux/arm64", "app:a"), ("linux/aarch64", "app:a"),
                                          ("linux/amd64", "app:b"), ("linux/arm/v6", "app:d"),
                                          ("linux/armv7l", "app:c")])
def test_docker_archive_platform_selects_among_images(tmp_path, platform, tag):
    archive = _docker(tmp_path, [("app:a", ARM64), ("app:b", AMD64), ("app:c", ARMV7),
                                 ("app:d", ARMV6)])
    out = tmp_path / "o.aci"
    acioci("convert", f"docker-archive:{archive}", out, "--platform", platform, check=0)
    assert _which(out).startswith(tag + " ")
    assert aci_manifest(out)["name"] == "app"


def test_docker_archive_platform_without_variant_takes_any_variant_if_only_one(tmp_path):
    one = _docker(tmp_path, [("app:a", ARM64), ("app:c", ARMV7)])
    out = tmp_path / "o.aci"
    acioci("convert", f"docker-archive:{one}", out, "--platform", "linux/arm", check=0)
    assert _which(out).startswith("app:c ")
    (tmp_path / "two").mkdir()
    two = _docker(tmp_path / "two", [("app:a", ARM64), ("app:c", ARMV7), ("app:d", ARMV6)])
    text = _error(acioci("convert", f"docker-archive:{two}", tmp_path / "p.aci",
                         "--platform", "linux/arm"))
    assert text == (f"acioci: error: {two}: 2 images match; choose one by tag or platform, or "
                    "take them all: app:c (linux/arm/v7); app:d (linux/arm/v6) "
                    "(use --ref REF or --platform OS/ARCH[/VARIANT] or --all)\n")


def test_docker_archive_ref_that_selects_nothing_lists_tags_and_platforms(tmp_path):
    archive = _docker(tmp_path, [("app:a", ARM64), (None, AMD64)])
    text = _error(acioci("convert", f"docker-archive:{archive}:app:nope", tmp_path / "o.aci"))
    assert text == (f"acioci: error: {archive}: no image tagged app:nope; the archive holds "
                    "app:a (linux/arm64); @1 (linux/amd64)\n")
    text = _error(acioci("inspect", f"docker-archive:{archive}:app:a", "--platform",
                         "linux/amd64"))
    assert text == (f"acioci: error: {archive}: no image tagged app:a for platform linux/amd64; "
                    "the archive holds app:a (linux/arm64); @1 (linux/amd64)\n")


def test_docker_archive_same_tag_on_two_platforms_is_chosen_by_platform(tmp_path):
    archive = _docker(tmp_path, [("app:1", ARM64), ("app:1", AMD64)])
    out = tmp_path / "o.aci"
    acioci("convert", f"docker-archive:{archive}:app:1", out, "--platform", "linux/amd64",
           check=0)
    assert _which(out).startswith("app:1 ('linux', 'amd64'")
    text = _error(acioci("convert", f"docker-archive:{archive}:app:1", tmp_path / "p.aci"))
    assert "2 images match" in text and "app:1 (linux/arm64); app:1 (linux/amd64)" in text


def test_oci_layout_takes_the_appc_spelling_too(tmp_path):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("which", data=b"arm64")])], ref="v1", platform=ARM64)
    lay.image([fx.layer_tar([E("which", data=b"amd64")])], ref="v1", platform=AMD64)
    out = tmp_path / "o.aci"
    acioci("convert", lay.root, out, "--platform", "linux/aarch64", check=0)
    assert _which(out) == "arm64"
    assert {"name": "arch", "value": "aarch64"} in aci_manifest(out)["labels"]


# validate

def test_validate_warns_on_names_outside_gos_lists(tmp_path):
    lay = Layout(tmp_path / "lay")
    d = lay.image([fx.layer_tar([E("f", data=b"1")])], ref="v1",
                  platform=("linux", "aarch64", None))
    cfg = "blobs/sha256/" + d["config"]["digest"].split(":")[1]
    proc = acioci("validate", lay.root, check=0)
    assert (f"{lay.root}::{cfg}#/architecture: warning [oci.platform.unknown-arch] architecture "
            "'aarch64' is not one of Go's GOARCH values, so runtimes will not match it to a "
            "machine; OCI's name for it is arm64\n") in proc.stdout + proc.stderr
    acioci("validate", "--strict", lay.root, check=1)

    (tmp_path / "w").mkdir()
    other = Layout(tmp_path / "w" / "lay")
    other.image([fx.layer_tar([E("f", data=b"1")])], ref="v1", platform=("plan10", "amd64", None))
    proc = acioci("validate", other.root, check=0)
    assert "[oci.platform.unknown-os] os 'plan10' is not one of Go's GOOS values" in proc.stdout
    assert "unknown-arch" not in proc.stdout


def test_validate_warns_on_a_docker_archive_config_too(tmp_path):
    archive = _docker(tmp_path, [("app:a", ("linux", "x86_64", None))])
    proc = acioci("validate", "--strict", f"docker-archive:{archive}", check=1)
    assert "[oci.platform.unknown-arch] architecture 'x86_64'" in proc.stdout
    assert "OCI's name for it is amd64" in proc.stdout


def test_go_platforms_validate_without_a_warning(tmp_path):
    lay = Layout(tmp_path / "lay")
    for i, plat in enumerate([AMD64, ARM64, ARMV7, ("windows", "amd64", None),
                              ("linux", "riscv64", None), ("linux", "loong64", None)]):
        lay.image([fx.layer_tar([E("f", data=str(i).encode())])], ref=f"v{i}", platform=plat)
    proc = acioci("validate", "--strict", lay.root, check=0)
    assert "[oci.platform" not in proc.stdout and "0 warnings" in proc.stdout


# the vocabulary, both ways

def test_parse_platform_maps_every_appc_arch_to_what_appc_maps_it_back_from():
    from convert.spec import vocabulary as v

    for (os_, arch), (oci_os, oci_arch, variant) in v.APPC_TO_OCI.items():
        p = v.parse_platform(f"{os_}/{arch}")
        assert (p.os, p.architecture, p.variant) == (oci_os, oci_arch, variant)
        assert v.platform_to_appc(p) == (os_, arch)
        assert p.architecture in v.GOARCH and p.os in v.GOOS


def test_platform_matching_is_exact_on_architecture():
    from convert.graph import Platform
    from convert.spec.vocabulary import parse_platform, platform_matches

    arm = parse_platform("linux/arm")
    assert not platform_matches(Platform("linux", "arm64"), arm)
    assert platform_matches(Platform("linux", "arm", "v7"), arm)
    assert platform_matches(Platform("linux", "arm", "7"), parse_platform("linux/arm/v7"))
    assert platform_matches(Platform("linux", "arm64", "v8"), parse_platform("linux/arm64/v8"))
    assert not platform_matches(Platform("linux", "arm", "v6"), parse_platform("linux/arm/v7"))
    assert not platform_matches(None, arm)


def test_oci_layout_variant_spellings_match_as_containerd_folds_them(tmp_path):
    lay = Layout(tmp_path / "lay")
    lay.image([fx.layer_tar([E("which", data=b"arm7")])], ref="v1", platform=("linux", "arm", "7"))
    lay.image([fx.layer_tar([E("which", data=b"arm64")])], ref="v1", platform=ARM64)
    out = tmp_path / "o.aci"
    acioci("convert", lay.root, out, "--platform", "linux/arm/v7", check=0)
    assert _which(out) == "arm7"


def test_an_images_own_platform_is_read_as_the_request_is():
    """A config saying bare `arm` is arm/v7 (as containerd and the ACI writer read it); one
    saying `aarch64` or `X86_64` is arm64 or amd64: a request matches however the image
    spelled its platform."""
    from convert.graph import Platform
    from convert.spec.vocabulary import parse_platform, platform_matches

    assert platform_matches(Platform("linux", "arm", None), parse_platform("linux/arm/v7"))
    assert not platform_matches(Platform("linux", "arm", None), parse_platform("linux/arm/v6"))
    assert platform_matches(Platform("linux", "aarch64", None), parse_platform("linux/arm64"))
    assert platform_matches(Platform("Linux", "X86_64", None), parse_platform("linux/amd64"))
    assert not platform_matches(Platform("linux", "arm64", None), parse_platform("linux/arm"))
