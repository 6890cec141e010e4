"""appc discovery end to end: a real HTTPS server on 127.0.0.1:443 (discovery of `localhost/…`
names always asks port 443), real gpg keys, real signatures, real ACIs; then the existing
converter and appc's own renderer on what was fetched.

The server serves a dict (`site`) that each test fills in. Every test runs with TMPDIR (and
Python's tempfile) pointed at an empty directory, which must be empty again afterwards,
whether the fetch succeeded (and was closed) or failed.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import build as fx
from appc_server import (Gpg, Port443, Site, gpg_with_keys, make_tls, need_root_for_443, serve,
                         stall_after)
from convert import api
from convert.discovery import FetchOptions, fetch
from convert.errors import (DigestMismatchError, LimitError, ResolutionError,
                            SignatureError, SourceUnreadableError, UsageError)
from convert.readers import aci_chain
from helpers import ROOT, diff_trees, interrupt_when, need, run, snapshot

ROOT_PAGE = "/?ac-discovery=1"
TEMPLATE = "https://localhost/images/{name}-{version}-{os}-{arch}.{ext}"
LINUX = "linux/amd64"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    need("openssl")
    d = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_tls(d)
    certs = d / "certs"
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx, str(certs)


@pytest.fixture(scope="module")
def site(tls):
    need_root_for_443()
    s = Site()
    server = Port443(s, tls[0])
    yield s
    s.release.set()
    server.close()


@pytest.fixture(scope="module")
def gpg(tmp_path_factory):
    g = gpg_with_keys(tmp_path_factory.mktemp("gnupg") / "home")
    yield g
    g.close()


@pytest.fixture()
def keystore(gpg, tmp_path):
    """The good key trusted for every `localhost/...` name."""
    ks = tmp_path / "trustedkeys"
    gpg.trust(ks, gpg.good, "localhost")
    return ks


@pytest.fixture()
def empty_tmp(tmp_path, monkeypatch):
    """TMPDIR (and tempfile's cached copy) pointed at an empty directory, checked afterwards."""
    d = tmp_path / "TMPDIR"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    yield d
    assert os.listdir(d) == [], "temporaries left behind"


@pytest.fixture()
def world(site, gpg, keystore, tls, empty_tmp, tmp_path):
    site.reset()
    site.page(ROOT_PAGE, ("ac-discovery", "localhost", TEMPLATE))
    return World(site, gpg, keystore, tls[1], tmp_path)


class World:
    """A test's server content, keys and options."""

    def __init__(self, site: Site, gpg: Gpg, keystore: Path, cert_dir: str, tmp: Path):
        self.site, self.gpg, self.keystore, self.cert_dir, self.tmp = \
            site, gpg, keystore, cert_dir, tmp
        self.local = tmp / "local"  # the same ACIs as files, for acirender

    def options(self, **kw) -> FetchOptions:
        kw.setdefault("trust_dirs", (str(self.keystore),))
        kw.setdefault("cert_dir", self.cert_dir)
        return FetchOptions(**kw)

    def build(self, name: str, version: str, entries, **kw) -> tuple[bytes, str]:
        """(ACI bytes, image ID); the file also goes to the local store."""
        path = self.local / f"{name.replace('/', '_')}-{version}.aci"
        image_id = fx.write_aci(path, fx.manifest(name, version=version, **kw), entries)
        return path.read_bytes(), image_id

    def publish(self, name: str, version: str, data: bytes, *, signer: str | None = None,
                sig: bytes | None = None, os_: str = "linux", arch: str = "amd64") -> str:
        """Serve `data` (and its signature) where TEMPLATE renders for these values."""
        path = f"/images/{name}-{version}-{os_}-{arch}.aci"
        self.site.put(path, data)
        if sig is None:
            sig = self.gpg.sign(signer or self.gpg.good, data)
        self.site.put(path + ".asc", sig)
        return path


def chain(w: World) -> dict[str, str]:
    """localhost/app:1.0.0 -> localhost/base (by name + version) -> localhost/lib (by imageID
    alone; discovered as version `latest`, os/arch inherited from base). Returns image IDs."""
    lib, lib_id = w.build("localhost/lib", "2.0.0", [
        fx.entry("lib", "dir"), fx.entry("lib/libc.so", data=b"libc 2.0\n", mode=0o755),
        fx.entry("etc", "dir"), fx.entry("etc/os-release", data=b"lib\n")])
    base, base_id = w.build("localhost/base", "1.0.0", [
        fx.entry("etc", "dir", mode=0o750), fx.entry("etc/os-release", data=b"base wins\n"),
        fx.entry("bin", "dir"), fx.entry("bin/sh", data=b"#!fake\n", mode=0o755),
        fx.entry("tmp", "dir", mode=0o1777)],
        dependencies=[{"imageName": "localhost/lib", "imageID": lib_id}])
    app, app_id = w.build("localhost/app", "1.0.0", [
        fx.entry("usr", "dir"), fx.entry("usr/bin", "dir"),
        fx.entry("usr/bin/app", data=b"#!/bin/sh\necho app\n", mode=0o4755,
                 xattrs={"user.origin": "acioci"}),
        fx.entry("usr/bin/app-link", "hardlink", target="usr/bin/app", mode=0o4755),
        fx.entry("bin/app", "symlink", target="/usr/bin/app")],
        app={"exec": ["/usr/bin/app"], "user": "0", "group": "0"},
        dependencies=[{"imageName": "localhost/base",
                       "labels": [{"name": "version", "value": "1.0.0"}]}])
    w.publish("localhost/app", "1.0.0", app)
    w.publish("localhost/base", "1.0.0", base)
    w.publish("localhost/lib", "latest", lib)
    return {"app": app_id, "base": base_id, "lib": lib_id}


# --- what works ---

@pytest.mark.interop
def test_chain_fetched_converted_and_rendered_like_acirender(world):
    umoci, acirender = need("umoci"), need("acirender")
    ids = chain(world)
    out = world.tmp / "layout"
    with fetch("appc:localhost/app:1.0.0", platform=LINUX, options=world.options()) as got:
        assert [(i.name, i.image_id, i.signed_by) for i in got.images] == [
            ("localhost/app", ids["app"], world.gpg.good),
            ("localhost/base", ids["base"], world.gpg.good),
            ("localhost/lib", ids["lib"], world.gpg.good)]
        assert got.top.url == "https://localhost/images/localhost/app-1.0.0-linux-amd64.aci"
        assert got.top.trusted_as == str(world.keystore / "prefix.d" / "localhost" /
                                         world.gpg.good)
        assert got.warnings == []
        assert got.stores == (got.store_dir,)
        result = api.convert(got.top_path, f"oci:{out}:test",
                             options=api.ConvertOptions(store=got.stores))
    assert len(result.layers) == 3
    bundle = world.tmp / "bundle"
    run(umoci, "unpack", "--image", f"{out}:test", bundle)
    rendered = world.tmp / "rendered"
    run(acirender, "--store", world.local, world.local / "localhost_app-1.0.0.aci", rendered)
    ours, theirs = snapshot(bundle / "rootfs"), snapshot(rendered / "rootfs")
    assert ours["usr/bin/app"]["mode"] == 0o4755
    assert ours["etc/os-release"]["sha256"] == theirs["etc/os-release"]["sha256"]
    zero_dirs = {p for p, i in ours.items() if i["type"] == stat.S_IFDIR and i["mtime"] == 0}
    assert diff_trees(ours, theirs, ignore_mtime=zero_dirs) == []


def test_discovery_walks_up_from_a_deeper_name(world):
    data, _ = world.build("localhost/deep/er/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/deep/er/app", "1.0.0", data)
    world.site.page("/deep/er?ac-discovery=1",  # a page, but for another name
                    ("ac-discovery", "localhost/other", "https://localhost/x/{name}.{ext}"))
    with fetch("appc:localhost/deep/er/app:1.0.0", platform=LINUX,
               options=world.options()) as got:
        assert got.top.name == "localhost/deep/er/app"
    assert world.site.log[:4] == ["/deep/er/app?ac-discovery=1", "/deep/er?ac-discovery=1",
                                  "/deep?ac-discovery=1", "/?ac-discovery=1"]
    assert world.site.log[4:] == ["/images/localhost/deep/er/app-1.0.0-linux-amd64.aci.asc",
                                  "/images/localhost/deep/er/app-1.0.0-linux-amd64.aci"]


def test_redirects_are_followed(world):
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    path = world.publish("localhost/app", "1.0.0", data)
    world.site.redirect("/app?ac-discovery=1", "/pages/app")
    world.site.page("/pages/app", ("ac-discovery", "localhost/app",
                                   "https://localhost/moved/{name}-{version}.{ext}"))
    world.site.redirect("/moved/localhost/app-1.0.0.aci", path, status=301)
    world.site.redirect("/moved/localhost/app-1.0.0.aci.asc", path + ".asc", status=307)
    with fetch("appc:localhost/app:1.0.0", options=world.options()) as got:
        assert got.top.url == "https://localhost/moved/localhost/app-1.0.0.aci"


def test_dependencies_found_in_a_local_store_are_not_fetched(world):
    ids = chain(world)
    store = world.tmp / "store"
    store.mkdir()
    for n in ("localhost_base-1.0.0.aci", "localhost_lib-2.0.0.aci"):
        shutil.copy(world.local / n, store / n)
    world.site.log.clear()
    with fetch("appc:localhost/app:1.0.0", platform=LINUX,
               options=world.options(store=(str(store),))) as got:
        assert [i.name for i in got.images] == ["localhost/app"]
        assert got.stores == (got.store_dir, str(store))
        image = aci_chain.read(got.top_path, store=got.stores)
    assert image.dependencies[0].image.image_id == ids["base"]
    assert not any("base" in p or "lib" in p for p in world.site.log)


def test_a_dependency_cycle_is_fetched_once_and_left_to_the_reader(world):
    dep_on = lambda n: [{"imageName": n, "labels": [{"name": "version", "value": "1"}]}]  # noqa
    a, _ = world.build("localhost/a", "1", [fx.entry("a", data=b"a")],
                       dependencies=dep_on("localhost/b"))
    b, _ = world.build("localhost/b", "1", [fx.entry("b", data=b"b")],
                       dependencies=dep_on("localhost/a"))
    world.publish("localhost/a", "1", a)
    world.publish("localhost/b", "1", b)
    with fetch("appc:localhost/a:1", platform=LINUX, options=world.options()) as got:
        assert [i.name for i in got.images] == ["localhost/a", "localhost/b"]
        with pytest.raises(ResolutionError, match="dependency cycle"):
            aci_chain.read(got.top_path, store=got.stores)


def test_insecure_skip_image_says_so(world):
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.site.put("/images/localhost/app-1.0.0-linux-amd64.aci", data)  # no .asc at all
    with fetch("appc:localhost/app:1.0.0", platform=LINUX,
               options=world.options(insecure_skip_image=True, trust_dirs=())) as got:
        assert got.top.signed_by is None
        assert got.warnings == ["localhost/app,arch=amd64,os=linux,version=1.0.0: signature "
                                "not checked (insecure options: image)"]


# --- signatures ---

def _fails(world, exc_type, match, ref="appc:localhost/app:1.0.0", **kw):
    with pytest.raises(exc_type, match=match) as err:
        fetch(ref, platform=LINUX, options=world.options(**kw))
    return err.value


def test_tampered_dependency_is_a_bad_signature(world):
    chain(world)
    path = "/images/localhost/base-1.0.0-linux-amd64.aci"
    status, headers, data = world.site.routes[path]
    world.site.put(path, data[:-1] + bytes([data[-1] ^ 1]))
    err = _fails(world, SignatureError, f"bad signature by key {world.gpg.good}: ")
    assert str(err).startswith("localhost/base,version=1.0.0: ")
    assert err.exit_code == 1


def test_untrusted_key(world):
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/app", "1.0.0", data, signer=world.gpg.other)
    world.site.page(ROOT_PAGE, ("ac-discovery", "localhost", TEMPLATE),
                    ("ac-discovery-pubkeys", "localhost", "https://localhost/pubkeys.gpg"))
    err = _fails(world, SignatureError, f"signed by key {world.gpg.other}, which is not "
                 "trusted for localhost/app; the discovery page offers keys at "
                 "https://localhost/pubkeys.gpg")
    assert "pubkeys.gpg" not in " ".join(world.site.log)  # offered keys are never fetched


def test_key_trusted_only_for_another_prefix(world, gpg, tmp_path):
    ks = tmp_path / "other-keys"
    gpg.trust(ks, gpg.other, "localhost/other")
    gpg.trust(ks, gpg.good, "localhost/application")  # a string prefix of localhost/app
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/app", "1.0.0", data, signer=gpg.other)
    _fails(world, SignatureError, rf"signed by key {gpg.other}, which is not trusted for "
           r"localhost/app \(it is trusted for localhost/other only\)", trust_dirs=(str(ks),))
    world.publish("localhost/app", "1.0.0", data, signer=gpg.good)
    _fails(world, SignatureError, rf"key {gpg.good}, which is not trusted for localhost/app "
           r"\(it is trusted for localhost/application only\)", trust_dirs=(str(ks),))


def test_expired_key(world, gpg, tmp_path):
    ks = tmp_path / "old-keys"
    gpg.trust(ks, gpg.old, "localhost/app")
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/app", "1.0.0", data,
                  sig=gpg.sign(gpg.old, data, faked_time="20200101T120000"))
    _fails(world, SignatureError, f"signed by key {gpg.old}, which has expired",
           trust_dirs=(str(ks),))


def test_missing_signature(world):
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.site.put("/images/localhost/app-1.0.0-linux-amd64.aci", data)
    _fails(world, SourceUnreadableError, r"no endpoint served the image \(the signature is "
           r"fetched first\): https://localhost/images/localhost/app-1.0.0-linux-amd64.aci.asc"
           ": HTTP 404")


# --- the image must be what was asked for ---

def test_name_mismatch(world):
    data, _ = world.build("localhost/impostor", "1.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/app", "1.0.0", data)
    err = _fails(world, ResolutionError, "the image served for localhost/app is named "
                 "localhost/impostor")
    assert err.file == "https://localhost/images/localhost/app-1.0.0-linux-amd64.aci"


def test_label_mismatch(world):
    data, _ = world.build("localhost/app", "2.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/app", "1.0.0", data)
    _fails(world, ResolutionError, "has label version=2.0.0")


def test_pinned_image_id_mismatch(world):
    chain(world)
    other, _ = world.build("localhost/lib", "2.0.0", [fx.entry("lib", "dir")])
    world.publish("localhost/lib", "latest", other)  # validly signed, but not the pinned one
    _fails(world, DigestMismatchError, "not the imageID its dependent pins")


def test_bounded_number_of_images(world):
    chain(world)
    _fails(world, LimitError, "more than 2 images to fetch", max_images=2)


def test_oversized_download(world):
    chain(world)
    _fails(world, LimitError, "exceed the download limit of 100", max_download=100)


# --- transport security ---

def test_self_signed_server_without_cert_dir(world):
    chain(world)
    err = _fails(world, SourceUnreadableError, "TLS with localhost failed .*certificate "
                 "verify failed", cert_dir=None)
    assert err.exit_code == 2


def test_insecure_tls_is_allowed_when_asked_and_said(world):
    chain(world)
    with fetch("appc:localhost/app:1.0.0", platform=LINUX,
               options=world.options(cert_dir=None, insecure_tls=True)) as got:
        assert len(got.images) == 3
        assert got.warnings == ["TLS certificates are not verified (insecure options: tls)"]


@pytest.fixture()
def plain_http(world):
    server = serve(world.site, "127.0.0.1", 0)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_only_with_the_insecure_option(world, plain_http):
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/app", "1.0.0", data)
    world.site.page(ROOT_PAGE, ("ac-discovery", "localhost",
                                f"http://127.0.0.1:{plain_http}/images/{{name}}-{{version}}-"
                                "{os}-{arch}.{ext}"))
    _fails(world, SourceUnreadableError, r"refused: http://127.0.0.1:\d+/images/localhost/"
           r"app-1.0.0-linux-amd64.aci is plain http \(allowed only with insecure options: "
           "http")
    with fetch("appc:localhost/app:1.0.0", platform=LINUX,
               options=world.options(insecure_http=True)) as got:
        assert got.top.url.startswith("http://127.0.0.1:")
        assert [w.endswith("fetched over plain http") for w in got.warnings] == [True, True]


def test_https_redirecting_to_http_is_refused(world):
    chain(world)
    world.site.redirect("/images/localhost/app-1.0.0-linux-amd64.aci.asc",
                        "http://127.0.0.1:1/x.asc")
    _fails(world, SourceUnreadableError, r"http://127.0.0.1:1/x.asc \(redirected from "
           r"https://localhost/images/.*\) is plain http")


def test_discovery_over_http_falls_back_only_when_allowed(world, tmp_path):
    try:
        server = serve(world.site, "127.0.0.2", 80)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2:80: {exc}")
    try:
        ks = tmp_path / "ip-keys"
        world.gpg.trust(ks, world.gpg.good, "127.0.0.2")
        data, _ = world.build("127.0.0.2/app", "1", [fx.entry("f", data=b"f")])
        world.site.page("/app?ac-discovery=1", (
            "ac-discovery", "127.0.0.2", "http://127.0.0.2/ip/{name}-{version}.{ext}"))
        world.site.put("/ip/127.0.0.2/app-1.aci", data)
        world.site.put("/ip/127.0.0.2/app-1.aci.asc", world.gpg.sign(world.gpg.good, data))
        _fails(world, SourceUnreadableError, "cannot reach 127.0.0.2: Connection refused",
               ref="appc:127.0.0.2/app:1", trust_dirs=(str(ks),))
        with fetch("appc:127.0.0.2/app:1", options=world.options(
                trust_dirs=(str(ks),), insecure_http=True)) as got:
            assert got.top.signed_by == world.gpg.good
    finally:
        server.shutdown()
        server.server_close()


# --- hostile pages and input ---

def test_hostile_templates_are_refused_with_a_reason(world):
    world.site.page(ROOT_PAGE,
                    ("ac-discovery", "localhost", "file:///etc/passwd#{name}.{ext}"),
                    ("ac-discovery", "localhost", "ftp://localhost/{name}.{ext}"))
    err = _fails(world, SourceUnreadableError, "discovery found no image")
    assert "file:///etc/passwd#localhost/app.aci has scheme 'file'; only https is fetched" \
        in str(err)
    assert "scheme 'ftp'" in str(err)
    # beside a usable one: used, and the refusal is reported
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")])
    world.publish("localhost/app", "1.0.0", data)
    world.site.page(ROOT_PAGE,
                    ("ac-discovery", "localhost", "file:///etc/passwd#{name}-{version}-{os}-"
                     "{arch}.{ext}"),
                    ("ac-discovery", "localhost", TEMPLATE))
    with fetch("appc:localhost/app:1.0.0", platform=LINUX, options=world.options()) as got:
        assert len(got.warnings) == 1 and "scheme 'file'" in got.warnings[0]


def test_a_redirect_to_a_file_url_is_refused(world):
    world.site.redirect(ROOT_PAGE, "file:///etc/passwd")
    _fails(world, SourceUnreadableError, r"file:///etc/passwd \(redirected from "
           r"https://localhost\?ac-discovery=1\) has scheme 'file'")


def test_label_values_with_dot_dot_never_reach_the_network(world):
    with pytest.raises(UsageError, match="'..'"):
        fetch("appc:localhost/app:1.0.0,os=../../etc", options=world.options())
    with pytest.raises(UsageError, match="no '/'"):
        fetch("appc:localhost/app,arch=x/y", options=world.options())
    assert world.site.log == []


def test_a_dependency_with_a_hostile_label_value(world):
    data, _ = world.build("localhost/app", "1.0.0", [fx.entry("f", data=b"f")], dependencies=[
        {"imageName": "localhost/base",
         "labels": [{"name": "version", "value": "../../../etc/passwd"}]}])
    world.publish("localhost/app", "1.0.0", data)
    err = _fails(world, ResolutionError, "cannot discover this dependency: label version=")
    assert err.entry == "manifest#/dependencies/0"
    assert not any("passwd" in p for p in world.site.log)


def test_a_huge_discovery_page_is_not_read_whole(world):
    world.site.put(ROOT_PAGE, b"<html>" + b" " * (2 << 20))
    _fails(world, SourceUnreadableError, "discovery page is larger than 1048576 bytes")


# --- interruption ---

CHILD = """
import json, sys
from convert.discovery import FetchOptions, fetch
o = json.loads(sys.argv[2])
with fetch(sys.argv[1], platform="linux/amd64",
           options=FetchOptions(trust_dirs=tuple(o["trust"]), cert_dir=o["certs"])) as got:
    print("fetched", got.top_path)
"""


def test_ctrl_c_during_a_download_leaves_nothing(world, empty_tmp):
    chain(world)
    world.site.release.clear()
    world.site.routes["/images/localhost/app-1.0.0-linux-amd64.aci"] = \
        stall_after(b"\x1f\x8b" + b"\0" * (3 << 20), 50_000_000)  # > the client's 1 MiB reads
    arg = json.dumps({"trust": [str(world.keystore)], "certs": world.cert_dir})
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "appc:localhost/app:1.0.0", arg],
                            cwd=ROOT, env={**os.environ, "TMPDIR": str(empty_tmp)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        err = interrupt_when(proc, lambda: any(
            p.stat().st_size for p in empty_tmp.glob("acioci-appc-*/store/*.aci")),
            "the download", poll=0.05)
    finally:
        world.site.release.set()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert os.listdir(empty_tmp) == []


# --- the appc: transport, through the CLI ---

def _cli(world, *args):
    env = {**os.environ, "TMPDIR": str(world.tmp / "TMPDIR")}
    return subprocess.run([sys.executable, "-m", "convert", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=env)


def test_appc_transport_converts_and_records_the_signer(world):
    ids = chain(world)
    out = world.tmp / "out"
    proc = _cli(world, "convert", "appc:localhost/app:1.0.0", f"oci:{out}:1.0.0", "--platform",
                LINUX, "--trust-dir", world.keystore, "--cert-dir", world.cert_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)[0]
    fingerprint = world.gpg.good
    assert result["signedBy"] == fingerprint and result["sourceImageID"] == ids["app"]
    index = json.loads((out / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs/sha256" / digest).read_text())
    assert manifest["annotations"]["io.acioci.aci.signedBy"] == fingerprint
    assert len(manifest["layers"]) == 3  # app, base and lib, each fetched and verified
    flat = world.tmp / "flat.aci"  # to a plain ACI: the fetched chain flattened, as rkt ran it
    proc = _cli(world, "convert", "appc:localhost/app:1.0.0", flat, "--platform", LINUX,
                "--trust-dir", world.keystore, "--cert-dir", world.cert_dir)
    assert proc.returncode == 0, proc.stderr
    run(need("actool"), "validate", flat)
    proc = _cli(world, "inspect", "appc:localhost/app:1.0.0", "--platform", LINUX,
                "--trust-dir", world.keystore, "--cert-dir", world.cert_dir, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["name"] == "localhost/app"
    proc = _cli(world, "validate", "appc:localhost/app:1.0.0,os=linux,arch=amd64",
                "--trust-dir", world.keystore,
                "--cert-dir", world.cert_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_appc_transport_refuses_an_untrusted_image_and_writes_nothing(world):
    chain(world)
    out = world.tmp / "out"
    other = world.tmp / "other-keys"
    world.gpg.trust(other, world.gpg.other, "localhost")
    proc = _cli(world, "convert", "appc:localhost/app:1.0.0", f"oci:{out}:1", "--platform",
                LINUX, "--trust-dir", other, "--cert-dir", world.cert_dir)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "localhost/app" in proc.stderr
    assert not out.exists()
    proc = _cli(world, "convert", "appc:localhost/app:1.0.0", f"oci:{out}:1", "--platform",
                LINUX, "--trust-dir", other, "--cert-dir", world.cert_dir,
                "--insecure-options", "image")
    assert proc.returncode == 0, proc.stderr
    assert "acioci: warning:" in proc.stderr and "signature not checked" in proc.stderr


def test_batch_takes_a_file_of_appc_names(world):
    """A migration from a discovery-served store: `batch @names.txt`, one name per line; each
    output named after the image, each report record naming the key that signed it."""
    chain(world)
    names = world.tmp / "names.txt"
    names.write_text("# the store to migrate\nappc:localhost/app:1.0.0,os=linux,arch=amd64\n\n"
                     "appc:localhost/base:1.0.0,os=linux,arch=amd64\n")
    out = world.tmp / "out"
    proc = _cli(world, "batch", f"@{names}", "--to", "oci", "--out", out, "--trust-dir",
                world.keystore, "--cert-dir", world.cert_dir, "--json", "--jobs", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["converted"] == 2
    assert sorted(p.name for p in (out / "localhost").iterdir()) == ["app-1.0.0", "base-1.0.0"]
    assert {r["result"]["signedBy"] for r in report["records"]} == {world.gpg.good}
