"""How `batch --out docker://HOST/NAMESPACE` names images (convert/batch_names.py), and the
`--src-*`/`--dest-*` registry options: each side resolved on its own, a plain form that
disagrees with a side form refused. None of these touch a network."""

from __future__ import annotations

import pytest

import build as fx
from convert import batch_names
from convert.errors import UsageError
from convert.options import ConvertOptions, ReadOptions, RemoteOptions
from helpers import acioci

E = fx.entry


@pytest.mark.parametrize("rel, repo", [
    ("app.aci", "app"),
    ("sub/App+1.2.aci", "sub/app_1.2"),
    ("Sub Dir/x--y__z.aci.gz", "sub_dir/x-y_z"),
    ("a/_lead.aci", "a/lead"),
    ("a/+++/b.tar", "a/b"),
    ("layout", "layout"),
    ("ÜBER/ä.aci", "ber"),
])
def test_repository_paths(rel, repo):
    assert batch_names.repository(rel) == repo


@pytest.mark.parametrize("version, tag", [
    (None, "latest"), ("", "latest"), ("1.0.0", "1.0.0"), ("1.0+git.3", "1.0_git.3"),
    ("-rc1", "_rc1"), (".hidden", "_hidden"), ("v1/2:3", "v1_2_3"), ("A" * 200, "A" * 128),
])
def test_tags(version, tag):
    assert batch_names.tag(version) == tag


@pytest.mark.parametrize("out", ["docker://h:5000/ns:v1", "docker://h/ns@sha256:" + "0" * 64,
                                 "docker://"])
def test_a_namespace_has_no_tag(out):
    with pytest.raises(UsageError):
        batch_names.namespace(out)


def test_plan_names_fails_unreadable_and_refuses_collisions(tmp_path):
    fx.write_aci(tmp_path / "s/one.aci", fx.manifest("example.com/one", version="1+x"), [])
    fx.write_aci(tmp_path / "s/Two.aci", fx.manifest("example.com/two"), [])
    (tmp_path / "s/junk.aci").write_bytes(b"no tar")
    found = [(str(tmp_path / "s" / n), n) for n in ("Two.aci", "junk.aci", "one.aci")]
    named, failed = batch_names.plan(found, "docker://reg.example:5000/mig/", ReadOptions())
    assert [d for _, d in named] == ["docker://reg.example:5000/mig/two:latest",
                                     "docker://reg.example:5000/mig/one:1_x"]
    assert [p for p, _ in failed] == [str(tmp_path / "s/junk.aci")]
    fx.write_aci(tmp_path / "s/two.aci", fx.manifest("example.com/two"), [])
    with pytest.raises(UsageError) as info:
        batch_names.plan(found + [(str(tmp_path / "s/two.aci"), "two.aci")],
                         "docker://reg.example:5000/mig", ReadOptions())
    assert "Two.aci" in str(info.value) and "s/two.aci" in str(info.value)
    assert "mig/two:latest" in str(info.value)


def test_reference_inputs_are_named_by_their_repository_and_tag():
    options = ReadOptions()
    assert batch_names.name_of("docker://reg.example/apps/app:1.0", "", options) == \
        ("apps/app", "1.0")
    assert batch_names.name_of("appc:example.com/app:1.0.0,os=linux", "", options) == \
        ("example.com/app", "1.0.0")


def test_each_side_resolves_on_its_own():
    both = ConvertOptions(creds="u:p", tls_verify=False, cert_dir="/c")
    assert both.side("src") == both.side("dest") == RemoteOptions("u:p", None, False, "/c")
    split = ConvertOptions(creds="u:p", src_creds="s:1", dest_tls_verify=True,
                           dest_cert_dir="/d", tls_verify=False)
    reading = split.reading()
    assert (reading.creds, reading.tls_verify, reading.cert_dir) == ("s:1", False, None)
    dest = split.for_target("oci").registry
    assert (dest.creds, dest.tls_verify, dest.cert_dir) == ("u:p", True, "/d")
    assert "u:p" not in repr(split) and "s:1" not in repr(split) and "u:p" not in repr(dest)


@pytest.mark.parametrize("args", [
    ["--creds", "alice:s3cret-one", "--src-creds", "bob:s3cret-two"],
    ["--tls-verify=false", "--dest-tls-verify=true"],
    ["--cert-dir", "/a", "--dest-cert-dir", "/b"],
    ["--authfile", "/a.json", "--src-authfile", "/b.json"],
])
def test_a_plain_form_and_a_side_form_that_disagree_are_a_usage_error(tmp_path, args):
    proc = acioci("convert", "docker://127.0.0.1:9/a/b:1", "docker://127.0.0.1:9/c/d:1", *args)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "disagree" in proc.stderr and "s3cret" not in proc.stderr + proc.stdout


def test_forms_that_agree_are_no_usage_error(tmp_path):
    proc = acioci("convert", "docker://127.0.0.1:9/a/b:1", tmp_path / "x.aci",
                  "--tls-verify=false", "--src-tls-verify=false", "--creds", "a:b",
                  "--src-creds", "a:b")
    assert "disagree" not in proc.stderr and "127.0.0.1:9" in proc.stderr  # it tried to connect


def test_batch_to_a_registry_refuses_aci_output_and_a_tagged_namespace(tmp_path):
    fx.write_aci(tmp_path / "s/one.aci", fx.manifest("example.com/one", version="1"), [])
    proc = acioci("batch", tmp_path / "s", "--out", "docker://127.0.0.1:9/ns", "--to", "aci")
    assert proc.returncode == 2 and "OCI images" in proc.stderr
    proc = acioci("batch", tmp_path / "s", "--out", "docker://127.0.0.1:9/ns:v1")
    assert proc.returncode == 2 and "NAMESPACE" in proc.stderr
    proc = acioci("batch", tmp_path / "s", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "--to" in proc.stderr
