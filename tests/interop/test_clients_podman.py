"""Issue 18, podman and buildah: what acioci writes must load and run in podman, and what
podman and buildah write must convert to ACIs whose rootfs is the one podman itself mounts.

Images are built once per module with buildah FROM scratch with a static busybox in them
(`images` below says what each holds and why), saved with `podman save` in each of its
formats, converted with the installed `acioci` console script, rendered with acirender
(appc's own renderer, as rkt renders) and compared, file for file, with `podman image mount`:
names, types, modes, owners, mtimes, content, symlink targets, hardlink groups.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from clients import (HELLO_OUTPUT, acioci, busybox_aci_chain, podman,  # noqa: F401 (fixture)
                     static_busybox)
from helpers import diff_trees, need, run, snapshot

pytestmark = pytest.mark.interop

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
# the base: busybox and its applets (symlinks), the user database (nobody's group is
# nogroup, as on Debian and in busybox images), and the file kinds a rootfs has
BASE_SCRIPT = """
/bin/busybox --install -s /bin
mkdir -p /opt/d/sub /srv /var/data /home/user /tmp
chmod 1777 /tmp
echo a > /opt/d/a; echo b > /opt/d/sub/b; echo motd > /etc/motd
chown 1000:1000 /home/user; chmod 0750 /home/user
echo suid > /srv/suid; chmod 4755 /srv/suid; ln /srv/suid /srv/suid-hard
mkfifo /srv/fifo; ln -s ../opt/d /srv/d-link
"""
# the app's own commit deletes (whiteouts: a file, a directory then made again, a fifo) and
# changes a hardlinked file, on top of the base
APP_SCRIPT = """
rm /bin/vi /etc/motd /srv/fifo
rm -rf /opt/d; mkdir /opt/d; echo new > /opt/d/new
echo changed > /srv/suid
"""
APP_CONFIG = ["--env", "A=1", "--env", "B=two=2", "--entrypoint", '["/bin/echo", "entry"]',
              "--cmd", "cmd", "--workingdir", "/srv", "--user", "nobody",
              "--port", "8080/tcp", "--port", "53/udp", "--label", "tier=web",
              "--label", "org.example.k=v", "--volume", "/var/data",
              # Docker-only fields: kept only by the docker format (and docker-archive)
              "--healthcheck", "CMD /bin/true", "--healthcheck-interval", "45s",
              "--shell", "/bin/sh -c", "--onbuild", "RUN /bin/true"]
FORMATS = ("oci-archive", "docker-archive", "oci-dir")
SOURCE = {"oci-archive": "oci-archive:{}", "docker-archive": "docker-archive:{}",
          "oci-dir": "oci:{}"}


def shell(podman, container: str, script: str) -> None:
    podman.bud("run", "--isolation=chroot", container, "/bin/busybox", "sh", "-ec", script)


@pytest.fixture(scope="module")
def images(podman, tmp_path_factory):
    """Builds, once: `localhost/base` (busybox, /etc/passwd and /etc/group, file kinds),
    `localhost/app` (on base: deletes forcing whiteouts, every config field, docker format),
    `localhost/empty` (base and an empty commit), `localhost/arm` (an arm64 image) and the
    list `localhost/multi` of app and arm."""
    work = tmp_path_factory.mktemp("build")
    (work / "passwd").write_text(PASSWD)
    (work / "group").write_text(GROUP)
    c = podman.bud("from", "scratch")
    podman.bud("copy", c, static_busybox(), "/bin/busybox")
    podman.bud("copy", c, work / "passwd", work / "group", "/etc/")
    shell(podman, c, BASE_SCRIPT)
    podman.bud("commit", "-q", "--rm", c, "localhost/base")
    c = podman.bud("from", "localhost/base")
    shell(podman, c, APP_SCRIPT)
    podman.bud("config", *APP_CONFIG, c)
    podman.bud("commit", "-q", "--rm", "--format", "docker", c, "localhost/app")
    c = podman.bud("from", "localhost/base")
    podman.bud("commit", "-q", "--rm", c, "localhost/empty")
    c = podman.bud("from", "--arch", "arm64", "scratch")
    podman.bud("copy", c, static_busybox(), "/bin/busybox")
    (work / "arch").write_text("arm64\n")
    podman.bud("copy", "--chmod", "0600", c, work / "arch", "/arch")
    podman.bud("config", "--arch", "arm64", "--os", "linux", "--cmd", "/bin/busybox", c)
    podman.bud("commit", "-q", "--rm", c, "localhost/arm")
    podman.bud("manifest", "create", "localhost/multi")
    podman.bud("manifest", "add", "localhost/multi", "localhost/app")
    podman.bud("manifest", "add", "localhost/multi", "localhost/arm")
    return work


@pytest.fixture(scope="module")
def mounted(podman, images):
    """`podman image mount` of an image, once per image: the reference rootfs."""
    cache: dict[str, dict] = {}

    def get(image: str) -> dict:
        if image not in cache:
            cache[image] = snapshot(podman.mount(image))
        return cache[image]

    return get


@pytest.fixture(scope="module")
def converted(podman, images, tmp_path_factory):
    """`podman save --format FMT IMAGE` converted to an ACI, once per (image, format):
    (ACI path, its manifest, the rootfs acirender renders from it)."""
    work = tmp_path_factory.mktemp("converted")
    cache: dict[tuple[str, str], tuple] = {}

    def get(image: str, fmt: str, check: int | None = 0):
        key = (image, fmt)
        if key not in cache:
            saved = work / (f"{image}-{fmt}" + (".tar" if fmt != "oci-dir" else ""))
            podman("save", "-q", "--format", fmt, "-o", saved, f"localhost/{image}")
            aci = work / f"{image}-{fmt}.aci"
            proc = acioci("convert", SOURCE[fmt].format(saved), aci, check=check)
            assert proc.returncode == 0, proc.stderr
            rendered = work / f"{image}-{fmt}-rendered"
            run(need("acirender"), aci, rendered)
            cache[key] = (aci, manifest_of(aci), snapshot(rendered / "rootfs"), saved)
        return cache[key]

    return get


def manifest_of(aci: Path) -> dict:
    with tarfile.open(aci) as tf:
        return json.loads(tf.extractfile("manifest").read())


@pytest.mark.parametrize("fmt", FORMATS)
def test_buildah_image_converts_file_for_file(converted, mounted, fmt):
    """A two-layer image (whiteouts of a file, a fifo and a directory made again; a changed
    hardlinked file) saved in each podman format: the ACI's rootfs is podman's own."""
    _, _, ours, _ = converted("app", fmt)
    assert diff_trees(ours, mounted("app")) == []
    # what the comparison rests on: the whiteouts and the changed link really are there
    assert "bin/vi" not in ours and "etc/motd" not in ours and "srv/fifo" not in ours
    assert "opt/d/a" not in ours and "opt/d/sub" not in ours and "opt/d/new" in ours
    assert ours["home/user"]["uid"] == 1000 and ours["srv/suid"]["mode"] == 0o4755


@pytest.mark.parametrize("fmt", FORMATS)
def test_app_fields_match_podman_inspect(podman, converted, fmt):
    """Env, Entrypoint + Cmd, WorkingDir, User, ExposedPorts, Labels and Volumes as podman
    reads them become the ACI app; `User: nobody` gets the group nobody really has in the
    image (nogroup), not docker2aci's `nobody`, which busybox and Debian lack."""
    _, m, ours, _ = converted("app", fmt)
    cfg = podman.inspect("localhost/app")["Config"]
    app = m["app"]
    assert (m["name"], {d["name"]: d["value"] for d in m["labels"]}) == (
        "localhost/app", {"version": "latest", "os": "linux", "arch": "amd64"})
    assert app["exec"] == cfg["Entrypoint"] + cfg["Cmd"] == ["/bin/echo", "entry", "cmd"]
    assert [f"{e['name']}={e['value']}" for e in app["environment"]] == cfg["Env"]
    assert app["workingDirectory"] == cfg["WorkingDir"] == "/srv"
    assert cfg["User"] == "nobody"
    assert (app["user"], app["group"]) == ("nobody", "nogroup")
    assert {f"{p['port']}/{p['protocol']}" for p in app["ports"]} == set(cfg["ExposedPorts"])
    assert app["userLabels"] == cfg["Labels"]
    assert [mp["path"] for mp in app["mountPoints"]] == sorted(cfg["Volumes"])
    ann = {a["name"]: a["value"] for a in m["annotations"]}
    assert json.loads(ann["appc.io/docker/entrypoint"]) == cfg["Entrypoint"]
    assert json.loads(ann["appc.io/docker/cmd"]) == cfg["Cmd"]
    assert ann["io.acioci.oci/user"] == "nobody"


def test_docker_only_config_fields_survive_as_annotations(converted):
    """Healthcheck, OnBuild and Shell exist only in a Docker config (docker-archive here):
    they are kept as ACI annotations holding the config's own JSON, not dropped."""
    _, m, _, saved = converted("app", "docker-archive")
    with tarfile.open(saved) as tf:
        entry = json.loads(tf.extractfile("manifest.json").read())[0]
        config = json.loads(tf.extractfile(entry["Config"]).read())["config"]
    assert config["Healthcheck"]["Interval"] == 45_000_000_000  # what buildah wrote
    ann = {a["name"]: a["value"] for a in m["annotations"]}
    assert json.loads(ann["io.acioci.oci/healthcheck"]) == config["Healthcheck"]
    assert json.loads(ann["io.acioci.oci/onbuild"]) == config["OnBuild"] == ["RUN /bin/true"]
    assert json.loads(ann["io.acioci.oci/shell"]) == config["Shell"]


@pytest.mark.parametrize("fmt", ["oci-archive", "oci-dir", "docker-archive"])
def test_empty_commit_converts(converted, mounted, fmt):
    """`buildah commit` with no change writes a layer of 1024 zero bytes, uncompressed in a
    docker-archive (an end-of-archive marker and nothing else): a tar with no entries."""
    _, _, ours, _ = converted("empty", fmt, check=None)
    assert diff_trees(ours, mounted("empty")) == []
    assert diff_trees(ours, mounted("base")) == []


def test_multi_arch_list_converts_each_platform(podman, images, mounted, tmp_path):
    """`buildah manifest push --all` writes a layout whose index.json points at an image
    index: each platform, chosen with --platform, converts to its own image."""
    layout = tmp_path / "multi"
    podman.bud("manifest", "push", "-q", "--all", "localhost/multi", f"oci:{layout}")
    index = json.loads((layout / "index.json").read_text())
    assert [d["mediaType"] for d in index["manifests"]] == [
        "application/vnd.oci.image.index.v1+json"]
    for platform, image, arch in (("linux/amd64", "app", "amd64"),
                                  ("linux/arm64", "arm", "aarch64")):
        aci = tmp_path / f"{image}.aci"
        acioci("convert", f"oci:{layout}", aci, "--platform", platform, "--name",
               "example.com/multi")
        labels = {d["name"]: d["value"] for d in manifest_of(aci)["labels"]}
        assert labels["arch"] == arch
        run(need("acirender"), aci, tmp_path / image)
        assert diff_trees(snapshot(tmp_path / image / "rootfs"), mounted(image)) == []
    proc = acioci("convert", f"oci:{layout}", tmp_path / "any.aci", check=2)
    assert "2 images match" in proc.stderr


@pytest.fixture(scope="module")
def hello(podman, tmp_path_factory):
    """The busybox ACI chain converted to an oci-archive and `podman load`ed."""
    work = tmp_path_factory.mktemp("hello")
    top, store, top_manifest = busybox_aci_chain(work / "acis")
    archive = work / "hello.tar"
    acioci("convert", top, f"oci-archive:{archive}:example.com/hello:1.0.0", "--store", store)
    loaded = podman("load", "-q", "-i", archive)
    assert "example.com/hello:1.0.0" in loaded
    return top, store, top_manifest, work


def test_aci_chain_loads_and_runs_in_podman(podman, hello):
    """The app of an ACI chain (its exec in the top ACI, the shell in the base it depends
    on) runs under podman as rkt ran it: exec, environment, user, group, working dir."""
    proc = podman.run("example.com/hello:1.0.0")
    assert (proc.returncode, proc.stdout) == (0, HELLO_OUTPUT), proc.stderr


def test_aci_to_podman_and_back_gives_the_manifest_and_rootfs(podman, hello, tmp_path):
    """ACI -> oci-archive -> podman load -> podman save -> ACI: podman keeps the manifest
    annotations acioci stashes the ACI in, so the manifest comes back, adding no field the
    ACI left out (ports stay without `count` and `socketActivated`). The one documented
    difference: a chain comes back as one squashed ACI (no `dependencies`)."""
    top, store, original, _ = hello
    saved = tmp_path / "saved.tar"
    podman("save", "-q", "--format", "oci-archive", "-o", saved, "example.com/hello:1.0.0")
    back = tmp_path / "back.aci"
    acioci("convert", saved, back)
    expected = {k: v for k, v in original.items() if k != "dependencies"}
    assert manifest_of(back) == expected
    acirender = need("acirender")
    run(acirender, "--store", store, top, tmp_path / "r1")
    run(acirender, back, tmp_path / "r2")
    assert diff_trees(snapshot(tmp_path / "r2" / "rootfs"),
                      snapshot(tmp_path / "r1" / "rootfs")) == []


def test_docker_archive_output_loads_and_runs_under_its_name(podman, hello, tmp_path):
    """`docker-archive:FILE` is Docker 25's shape: `podman load` takes its manifest.json and
    names the image after the ACI (name and version label) with no NAME:TAG given; skopeo
    reads the same file as a docker archive; and acioci validates and reads it back."""
    top, store, _, _ = hello
    archive = tmp_path / "hello-docker.tar"
    acioci("convert", top, f"docker-archive:{archive}", "--store", store)
    loaded = podman("load", "-q", "-i", archive)
    assert "example.com/hello:1.0.0" in loaded, loaded
    proc = podman.run("example.com/hello:1.0.0")
    assert (proc.returncode, proc.stdout) == (0, HELLO_OUTPUT), proc.stderr
    raw = json.loads(run(need("skopeo"), "inspect", f"docker-archive:{archive}"))
    assert raw["Os"] == "linux" and len(raw["Layers"]) == 2  # the chain's two ACIs
    acioci("validate", archive)
    named = tmp_path / "named.tar"
    acioci("convert", top, f"docker-archive:{named}:registry.example/team/hello:v2", "--store",
           store)
    assert "registry.example/team/hello:v2" in podman("load", "-q", "-i", named)
    again = tmp_path / "again.tar"
    acioci("convert", top, f"docker-archive:{again}", "--store", store)
    assert again.read_bytes() == archive.read_bytes()  # deterministic like every output
