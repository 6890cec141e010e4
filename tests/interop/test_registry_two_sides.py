"""Registries on both sides of one `convert`, each with its own credentials and TLS trust
(skopeo's `--src-*` and `--dest-*` forms), against two real distribution 2.8 instances: both
HTTPS with a self-signed certificate of their own and htpasswd users of their own. The copy
succeeds with the side forms, fails with one clear error when the credentials are swapped
(nothing tagged), and no password is ever printed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, need, run
from registry_servers import htpasswd_file, self_signed, start_registry

pytestmark = pytest.mark.interop

SAMPLE = ROOT / "fixtures/sample/hello-1.0.0-linux-amd64.aci"
STORE = ROOT / "fixtures/sample/store"
SRC_PASSWORD = "src-Pa55-word-q1"
DEST_PASSWORD = "dest-Pa55-word-z9"


def secure_registry(tmp: Path, user: str, password: str):
    cert, key = self_signed(tmp)
    reg = start_registry(tmp / "reg", tls=(cert, key), auth={"htpasswd": {
        "realm": "test", "path": str(htpasswd_file(tmp, {user: password}))}})
    reg.cert_dir = tmp / "certs"
    reg.cert_dir.mkdir()
    shutil.copy(cert, reg.cert_dir / "ca.crt")
    return reg


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    src = secure_registry(tmp_path_factory.mktemp("src"), "alice", SRC_PASSWORD)
    dest = secure_registry(tmp_path_factory.mktemp("dest"), "bob", DEST_PASSWORD)
    yield src, dest
    src.stop()
    dest.stop()


def acioci(home: Path, *args):
    """The CLI with a HOME of its own: no auth file of the machine is found."""
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE",
                                                            "XDG_RUNTIME_DIR")}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "convert", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env)


def no_secret(proc) -> None:
    text = proc.stdout + proc.stderr
    for password in (SRC_PASSWORD, DEST_PASSWORD):
        assert password not in text
    for creds in (f"alice:{SRC_PASSWORD}", f"bob:{DEST_PASSWORD}"):
        assert base64.b64encode(creds.encode()).decode() not in text


def test_copy_between_registries_with_side_options(two, tmp_path):
    src, dest = two
    skopeo = need("skopeo")
    # the source image: an ACI pushed with the destination side's options alone
    proc = acioci(tmp_path, "convert", SAMPLE, src.ref("apps/hello:1.0.0"), "--store", STORE,
                  "--dest-creds", f"alice:{SRC_PASSWORD}", "--dest-cert-dir", src.cert_dir,
                  "-q")
    assert proc.returncode == 0, proc.stderr
    # the source through an auth file, the destination by --dest-creds; each its own CA
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {src.host: {"auth": base64.b64encode(
        f"alice:{SRC_PASSWORD}".encode()).decode()}}}))
    proc = acioci(tmp_path, "convert", src.ref("apps/hello:1.0.0"), dest.ref("copy/hello:1"),
                  "--src-authfile", authfile, "--src-cert-dir", src.cert_dir,
                  "--dest-creds", f"bob:{DEST_PASSWORD}", "--dest-cert-dir", dest.cert_dir,
                  "--json")
    assert proc.returncode == 0, proc.stderr
    no_secret(proc)
    pushed = json.loads(proc.stdout)[0]
    assert pushed["format"] == "docker" and pushed["pushed"].startswith(
        f"docker://{dest.host}/copy/hello@")
    # skopeo reads both with their own trust and users: the same files, layer for layer
    def config(reg, ref, user, password):
        return json.loads(run(skopeo, "inspect", "--config", "--cert-dir", reg.cert_dir,
                              "--creds", f"{user}:{password}", reg.ref(ref)))

    there = config(dest, "copy/hello:1", "bob", DEST_PASSWORD)
    here = config(src, "apps/hello:1.0.0", "alice", SRC_PASSWORD)
    assert there["rootfs"]["diff_ids"] == here["rootfs"]["diff_ids"]

    # swapped: the source refuses bob, before anything is pushed to the destination
    proc = acioci(tmp_path, "convert", src.ref("apps/hello:1.0.0"), dest.ref("copy/hello:2"),
                  "--src-creds", f"bob:{DEST_PASSWORD}", "--src-cert-dir", src.cert_dir,
                  "--dest-creds", f"alice:{SRC_PASSWORD}", "--dest-cert-dir", dest.cert_dir)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert src.host in proc.stderr and "credentials" in proc.stderr
    no_secret(proc)
    # the right source, the wrong destination user: refused by the destination, nothing tagged
    proc = acioci(tmp_path, "convert", src.ref("apps/hello:1.0.0"), dest.ref("copy/hello:2"),
                  "--src-creds", f"alice:{SRC_PASSWORD}", "--src-cert-dir", src.cert_dir,
                  "--dest-creds", f"alice:{SRC_PASSWORD}", "--dest-cert-dir", dest.cert_dir)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert dest.host in proc.stderr and "credentials" in proc.stderr
    no_secret(proc)
    tags = json.loads(run(skopeo, "list-tags", "--cert-dir", dest.cert_dir, "--creds",
                          f"bob:{DEST_PASSWORD}", f"docker://{dest.host}/copy/hello"))["Tags"]
    assert tags == ["1"]
    # one CA for both sides cannot work: each registry has its own certificate
    proc = acioci(tmp_path, "convert", src.ref("apps/hello:1.0.0"), dest.ref("copy/hello:3"),
                  "--src-creds", f"alice:{SRC_PASSWORD}", "--dest-creds",
                  f"bob:{DEST_PASSWORD}", "--cert-dir", src.cert_dir)
    assert proc.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in proc.stderr
    assert dest.host in proc.stderr
    no_secret(proc)


def test_tls_verify_per_side(two, tmp_path):
    """A verified HTTPS source to a plain-HTTP destination: --dest-tls-verify=false allows
    plain HTTP there alone; without it the destination is refused, and the source keeps being
    verified (a wrong CA for it still fails)."""
    src, _ = two
    plain = start_registry(tmp_path / "plain")
    try:
        proc = acioci(tmp_path, "convert", SAMPLE, src.ref("apps/tls:1"), "--store", STORE,
                      "--dest-creds", f"alice:{SRC_PASSWORD}", "--dest-cert-dir",
                      src.cert_dir, "-q")
        assert proc.returncode == 0, proc.stderr
        common = ("--src-creds", f"alice:{SRC_PASSWORD}", "--src-cert-dir", src.cert_dir)
        proc = acioci(tmp_path, "convert", src.ref("apps/tls:1"), plain.ref("copy/tls:1"),
                      *common)
        assert proc.returncode != 0 and plain.host in proc.stderr
        proc = acioci(tmp_path, "convert", src.ref("apps/tls:1"), plain.ref("copy/tls:1"),
                      *common, "--dest-tls-verify=false", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)[0]["pushed"].startswith(plain.ref("copy/tls@"))
        proc = acioci(tmp_path, "convert", src.ref("apps/tls:1"), plain.ref("copy/tls:2"),
                      "--src-creds", f"alice:{SRC_PASSWORD}", "--src-cert-dir", tmp_path,
                      "--dest-tls-verify=false")
        assert proc.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in proc.stderr
        no_secret(proc)
    finally:
        plain.stop()
