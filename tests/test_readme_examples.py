"""The README's examples, run: every command of its Usage block and of its Registries block,
and its Python API snippet, on generated inputs named as the README names them.

The commands are read from README.md itself, so an example that stops working (a renamed
option, a changed default, a transport that refuses its documented grammar) fails here. The
only adaptations are the ones a reader makes on their own machine, listed in `_adapt`:
absolute paths become paths under the test's directory, `example.com` (appc discovery) and
`registry.example` / `localhost:5000` (registries) become the test's own servers, and the
options that point at those servers' keys and certificates are added.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import build as fx
from helpers import ROOT, need

README = ROOT / "README.md"
ACIOCI = str(Path(sys.executable).with_name("acioci"))


def _blocks(heading: str, lang: str) -> list[str]:
    """The fenced `lang` blocks in the README section under `heading` (a `## ` title)."""
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else None]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def _commands(block: str) -> list[list[str]]:
    """Each `acioci ...` line of a shell block, as argv (comments dropped, quotes honoured)."""
    out = []
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == "acioci":
            out.append(argv)
    return out


USAGE = _commands(_blocks("Usage", "sh")[0])
REGISTRY = _commands(_blocks("Registries (`docker://`)", "sh")[0])
PYTHON = _blocks("Python API", "python")[0]

PATHS = {"/var/lib/acis": "var-lib-acis", "/srv/acis": "srv/acis", "/srv/oci": "srv/oci",
         "/srv/migrated": "srv/migrated"}


def _adapt(argv: list[str], *, appc: tuple[str, str] | None = None,
           registry: str | None = None) -> list[str]:
    out = [ACIOCI]
    for arg in argv[1:]:
        for old, new in PATHS.items():
            if arg == old or arg.startswith(old + "/"):
                arg = new + arg[len(old):]
        if registry:
            arg = arg.replace("registry.example", registry).replace("localhost:5000", registry)
        arg = arg.replace("appc:example.com/", "appc:localhost/")
        out.append(arg)
    if appc and any(a.startswith(("appc:", "@")) for a in out):
        keys, certs = appc
        if "--trust-dir" in out:  # the README's keys/ is the test's key store
            out[out.index("--trust-dir") + 1] = keys
        else:
            out += ["--trust-dir", keys]
        out += ["--cert-dir", certs]
    if registry and any(a.startswith("docker://") for a in out) and "--tls-verify=false" not in out:
        out.append("--tls-verify=false")  # the test's registry speaks plain HTTP
    return out


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (f"README example failed (exit {proc.returncode}): "
                                  f"{shlex.join(argv[1:])}\n{proc.stdout}\n{proc.stderr}")
    assert "Traceback" not in proc.stderr
    return proc


def _acioci(cwd: Path, *args: str) -> None:
    _run([ACIOCI, *map(str, args)], cwd)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Every file and directory the Usage block reads, under the names it uses."""
    d = tmp_path_factory.mktemp("readme-inputs")
    fx.sample(d / "sample")
    app = d / "sample" / "hello-1.0.0-linux-amd64.aci"
    shutil.copy(app, d / "app.aci")
    for store in ("deps", "var-lib-acis", "srv/acis"):
        shutil.copytree(d / "sample" / "store", d / store)
    shutil.copy(app, d / "srv" / "acis")
    root_sh = {"exec": ["/bin/sh"], "user": "0", "group": "0"}
    fx.write_aci(d / "any.aci", fx.manifest("example.com/any", version="1.0", os_=None,
                                            arch=None, app=root_sh),
                 [fx.entry("bin", "dir"), fx.entry("bin/sh", data=b"#!fake\n", mode=0o755)])
    _acioci(d, "convert", "app.aci", "oci:layout:v1", "--store", "deps")
    _acioci(d, "convert", "any.aci", "docker-archive:busybox.tar:busybox:latest",
            "--platform", "linux/arm/v7")
    _acioci(d, "convert", "app.aci", "docker-archive:img.tar", "--store", "deps")
    _acioci(d, "convert", "app.aci", "image.tar", "--store", "deps")
    (d / "images").mkdir()
    shutil.copy(app, d / "images")
    shutil.copytree(d / "layout", d / "images" / "layout")
    (d / "exports").mkdir()
    shutil.copy(d / "image.tar", d / "exports" / "one.tar")
    shutil.copy(d / "img.tar", d / "exports" / "two.tar")
    (d / "names.txt").write_text("# appc names, one a line\n"
                                 "appc:localhost/app:1.0.0,os=linux,arch=amd64\n")
    return d


def _fresh(inputs: Path, tmp: Path) -> Path:
    cwd = tmp / "cwd"
    shutil.copytree(inputs, cwd, symlinks=True)
    return cwd


def test_the_usage_block_is_read_from_the_readme():
    """The examples below come from the README: a parse that finds nothing would pass them all."""
    verbs = [argv[1] for argv in USAGE]
    assert len(USAGE) >= 20 and set(verbs) == {"convert", "validate", "batch", "inspect"}
    assert len(REGISTRY) >= 4 and "api.convert(" in PYTHON


APPC = [argv for argv in USAGE if any(a.startswith(("appc:", "@")) for a in argv)]
DOCKER = [argv for argv in USAGE if any("docker://" in a for a in argv)]
LOCAL = [argv for argv in USAGE if argv not in APPC and argv not in DOCKER]


@pytest.mark.parametrize("argv", LOCAL, ids=[shlex.join(a[1:])[:60] for a in LOCAL])
def test_usage_example_runs(argv, inputs, tmp_path):
    cwd = _fresh(inputs, tmp_path)
    before = {p for p in cwd.rglob("*")}
    proc = _run(_adapt(argv), cwd)
    verb = argv[1]
    if verb in ("convert", "batch"):  # it wrote something new
        assert {p for p in cwd.rglob("*")} - before, proc.stderr
    else:  # inspect and validate print what they found
        assert proc.stdout.strip()


def test_python_api_example_runs(inputs, tmp_path):
    cwd = _fresh(inputs, tmp_path)
    proc = subprocess.run([sys.executable, "-c", PYTHON], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "example.com/hello 1.0.0 linux/amd64 ['example.com/base']" in proc.stdout
    assert (cwd / "out" / "index.json").is_file()


@pytest.mark.interop
def test_registry_examples_run(inputs, tmp_path):
    from registry_servers import start_registry

    reg = start_registry(tmp_path / "registry")
    try:
        cwd = _fresh(inputs, tmp_path)
        _acioci(cwd, "convert", "app.aci", f"docker://{reg.host}/app:1", "--store", "deps",
                "--tls-verify=false")
        for argv in REGISTRY + DOCKER:
            proc = _run(_adapt(argv, registry=reg.host), cwd)
            if argv[1] in ("validate", "inspect"):
                assert proc.stdout.strip()
        assert (cwd / "pulled.aci").stat().st_size > 0
    finally:
        reg.stop()


@pytest.mark.interop
def test_appc_examples_run(inputs, tmp_path):
    """The appc lines, against the discovery tests' HTTPS server on 127.0.0.1:443 (root only):
    `example.com/app` becomes `localhost/app`, published for linux/amd64 and linux/aarch64."""
    need("gpg")
    from appc_server import Port443, Site, gpg_with_keys, make_tls, need_root_for_443
    import ssl

    need_root_for_443()
    ca, cert, key = make_tls(tmp_path / "tls")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    gpg = gpg_with_keys(tmp_path / "gnupg")
    site = Site()
    server = Port443(site, ctx)
    try:
        keys = tmp_path / "keys"
        gpg.trust(keys, gpg.good, "localhost")
        site.page("/?ac-discovery=1", ("ac-discovery", "localhost",
                                       "https://localhost/{name}-{version}-{os}-{arch}.{ext}"))
        for arch in ("amd64", "aarch64"):  # appc spells arm64 aarch64
            aci = tmp_path / f"app-{arch}.aci"
            fx.write_aci(aci, fx.manifest("localhost/app", version="1.0.0", arch=arch,
                                          app={"exec": ["/bin/app"], "user": "0", "group": "0"}),
                         [fx.entry("bin", "dir"), fx.entry("bin/app", data=b"#!x\n", mode=0o755)])
            data = aci.read_bytes()
            site.put(f"/localhost/app-1.0.0-linux-{arch}.aci", data)
            site.put(f"/localhost/app-1.0.0-linux-{arch}.aci.asc", gpg.sign(gpg.good, data))
        assert len(APPC) == 4
        for n, argv in enumerate(APPC):
            cwd = _fresh(inputs, tmp_path / f"run{n}")
            proc = _run(_adapt(argv, appc=(str(keys), str(certs))), cwd)
            if argv[1] == "validate":
                assert proc.stdout.strip()
    finally:
        site.release.set()
        server.close()
        gpg.close()
