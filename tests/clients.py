"""Real container clients for the interop tests (issue 18): podman and buildah on a private vfs
storage, containerd as a plain process with its own root, state and socket.

Why these settings (measured in this sandbox, see ../shared/reference/registry.md): overlay
needs a kernel and mount privileges a CI container may not have, vfs needs neither; crun fails
on hybrid cgroups, runc works; the default or higher ulimits are refused; the CRI plugin of
containerd wants a CNI setup and is not needed. Nothing touches the host's own storage or
daemon: every client gets its configuration, storage and sockets in a temp directory, and the
fixtures' teardown unmounts and stops what they started.

Images are built FROM scratch with a static busybox copied in, so no network pull is ever
needed. Without a client (or on a machine where it cannot run containers) a test skips
locally and fails under CI=true, as `helpers.need` does for missing tools.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import build as fx
from helpers import need

RUN_FLAGS = ("--runtime", "runc", "run", "--rm", "--network=none",
             "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


def unavailable(reason: str):
    """Skip locally, fail under CI=true: CI must run every client test."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def acioci_bin() -> str:
    """The installed console script beside the interpreter (`.venv/bin/acioci` under
    `make test`): the entry point a user runs, not `python -m convert`."""
    path = Path(sys.executable).parent / "acioci"
    if not path.exists():
        unavailable(f"{path} is not installed (make .venv/.installed-stamp)")
    return str(path)


def acioci(*args, check: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([acioci_bin(), *map(str, args)], capture_output=True, text=True)
    if check is not None:
        assert proc.returncode == check, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def static_busybox() -> Path:
    """A statically linked busybox (Debian's busybox-static: /bin/busybox), the only program
    in every test image: it runs in a FROM-scratch rootfs because it needs no loader."""
    for cand in (os.environ.get("ACIOCI_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"):
        if cand and os.path.isfile(cand) and _is_static_elf(Path(cand)):
            return Path(cand)
    unavailable("no static busybox (apt-get install busybox-static)")


def _is_static_elf(path: Path) -> bool:
    """An ELF file without a PT_INTERP program header needs no dynamic loader."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only: the hosts we run on
            return False
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def _run(cmd, env=None, check=True, timeout=300, input=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                          timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


class Podman:
    """podman and buildah sharing one private vfs storage below `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.podman, self.buildah = need("podman"), need("buildah")
        need("runc")
        if os.geteuid() != 0:
            unavailable("podman/buildah tests need root (vfs storage, image mount)")
        storage, conf = root / "storage.conf", root / "containers.conf"
        storage.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{root}/run"\n'
                           f'graphroot = "{root}/graph"\n')
        # tmp_dir: podman's locks and pause state, else shared in /run/libpod
        conf.write_text('[containers]\nnetns = "none"\n[engine]\ncgroup_manager = "cgroupfs"\n'
                        f'events_logger = "file"\nruntime = "runc"\ntmp_dir = "{root}/libpod"\n')
        (root / "tmp").mkdir()
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage),
                    "CONTAINERS_CONF": str(conf), "TMPDIR": str(root / "tmp")}
        self._run_problem: str | None = None
        self._probed = False

    def __call__(self, *args, check=True) -> str:
        return _run([self.podman, *args], env=self.env, check=check).stdout

    def bud(self, *args, check=True) -> str:
        """buildah with the same storage."""
        return _run([self.buildah, *args], env=self.env, check=check).stdout.strip()

    def run(self, image: str, *cmd: str) -> subprocess.CompletedProcess:
        """`podman run` the one way that works here; skips (fails in CI) where containers
        cannot run at all, as probed once on `image`."""
        if not self._probed:
            self._probed = True
            probe = _run([self.podman, *RUN_FLAGS, "--entrypoint", "/bin/busybox", image,
                          "true"], env=self.env, check=False)
            if probe.returncode != 0:
                self._run_problem = f"podman cannot run containers here: {probe.stderr[-400:]}"
        if self._run_problem:
            unavailable(self._run_problem)
        return _run([self.podman, *RUN_FLAGS, image, *cmd], env=self.env, check=False)

    def mount(self, image: str) -> Path:
        return Path(self("image", "mount", image).strip())

    def inspect(self, image: str) -> dict:
        return json.loads(self("image", "inspect", image))[0]

    def close(self) -> None:
        self("image", "unmount", "--all", check=False)
        self.bud("rm", "--all", check=False)
        self("rm", "--all", "--force", check=False)
        shutil.rmtree(self.root / "graph", ignore_errors=True)
        shutil.rmtree(self.root / "run", ignore_errors=True)
        shutil.rmtree(self.root / "libpod", ignore_errors=True)


class Containerd:
    """A containerd of our own: a plain process (no systemd), root, state and sockets below
    `root`, the CRI plugin disabled; `ctr` talks to its socket. Stopped by its PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.containerd, self.ctr_path = need("containerd"), need("ctr")
        need("runc")
        if os.geteuid() != 0:
            unavailable("containerd tests need root")
        self.sock = root / "containerd.sock"
        config = root / "config.toml"
        config.write_text(
            f'version = 2\nroot = "{root}/root"\nstate = "{root}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.sock}"\n'
            f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
            f'[debug]\n  address = "{root}/debug.sock"\n')
        self.log = open(root / "containerd.log", "wb")
        self.proc = subprocess.Popen([self.containerd, "--config", config], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.mounts: list[Path] = []
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                self.close()
                unavailable(f"containerd exited at start: {self._log_tail()}")
            if self.sock.exists() and self.ctr("version", check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.close()
                unavailable(f"containerd did not answer on {self.sock}: {self._log_tail()}")
            time.sleep(0.1)
        self._run_problem: str | None = None

    def _log_tail(self) -> str:
        return (self.root / "containerd.log").read_text(errors="replace")[-600:]

    def ctr(self, *args, check=True) -> subprocess.CompletedProcess:
        return _run([self.ctr_path, "--address", self.sock, *args], check=check)

    def run(self, image: str, name: str, *cmd: str) -> subprocess.CompletedProcess:
        proc = self.ctr("run", "--rm", "--snapshotter", "native", image, name, *cmd,
                        check=False)
        if proc.returncode != 0 and ("cgroup" in proc.stderr or "rlimit" in proc.stderr):
            unavailable(f"containerd cannot run containers here: {proc.stderr[-400:]}")
        return proc

    def mount(self, image: str, target: Path) -> Path:
        target.mkdir(parents=True)
        self.ctr("images", "mount", "--snapshotter", "native", image, target)
        self.mounts.append(target)
        return target

    def close(self) -> None:
        for target in self.mounts:
            # --rm: else the next mount of the image silently reuses this snapshot
            self.ctr("images", "unmount", "--rm", target, check=False)
        self.mounts.clear()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root / "root", ignore_errors=True)


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """One podman/buildah storage per test module; unmounted and removed at the end."""
    client = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    """One containerd process per test module, killed by its PID at the end."""
    daemon = Containerd(tmp_path_factory.mktemp("containerd"))
    try:
        yield daemon
    finally:
        daemon.close()


# An ACI chain that really runs: a busybox base, and an app on it that prints what rkt would
# have given it (its environment, user, group, working directory).
PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = b"root:x:0:\nnogroup:x:65534:\n"
HELLO_SCRIPT = (b"#!/bin/sh\necho \"hello, $GREETING\"\n/bin/busybox id -un\n"
                b"/bin/busybox id -gn\n/bin/busybox pwd\n")
HELLO_OUTPUT = "hello, world\nnobody\nnogroup\n/tmp\n"
HELLO_APP = {
    "exec": ["/usr/bin/hello"], "user": "nobody", "group": "nogroup",
    "environment": [{"name": "PATH", "value": "/bin:/usr/bin"},
                    {"name": "GREETING", "value": "world"}],
    "workingDirectory": "/tmp",
    "ports": [{"name": "http", "protocol": "tcp", "port": 8080}],
    "mountPoints": [{"name": "data", "path": "/var/data", "readOnly": False}],
    "isolators": [{"name": "resource/memory", "value": {"limit": "64Mi"}}],
}


def busybox_aci_chain(out: Path) -> tuple[Path, Path, dict]:
    """Writes `out/store/busybox.aci` and `out/hello.aci` (depending on the first by name and
    version label) with fixtures/build.py; returns (top ACI, store, top manifest)."""
    busybox = static_busybox().read_bytes()
    E = fx.entry
    base = fx.manifest("example.com/busybox", version="1.35.0",
                       annotations=[("created", "2022-01-01T00:00:00Z")])
    fx.write_aci(out / "store" / "busybox.aci", base, [
        E("bin", "dir"), E("bin/busybox", data=busybox, mode=0o755),
        E("bin/sh", "symlink", target="busybox"),
        E("etc", "dir"), E("etc/passwd", data=PASSWD), E("etc/group", data=GROUP),
        E("tmp", "dir", mode=0o1777), E("var", "dir"), E("var/data", "dir"),
    ])
    top = fx.manifest(
        "example.com/hello", version="1.0.0", app=HELLO_APP,
        annotations=[("created", "2022-01-02T00:00:00Z"), ("authors", "acioci tests")],
        dependencies=[{"imageName": "example.com/busybox",
                       "labels": [{"name": "version", "value": "1.35.0"}]}])
    fx.write_aci(out / "hello.aci", top, [
        E("usr", "dir"), E("usr/bin", "dir"),
        E("usr/bin/hello", data=HELLO_SCRIPT, mode=0o755),
        E("usr/bin/hello-again", "hardlink", target="usr/bin/hello", mode=0o755),
    ])
    return out / "hello.aci", out / "store", top
