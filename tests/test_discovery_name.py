"""appc references, discovery pages and URL templates: parsing and the policy on hostile input.
No network here; test_discovery_fetch.py runs the same rules against real servers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convert.discovery import meta, template
from convert.discovery.discover import prefixes
from convert.discovery.name import AppName, check, parse
from convert.errors import UsageError


def test_name_version_and_labels():
    app = parse("appc:example.com/app:1.0.0,os=linux,arch=aarch64")
    assert app == AppName("example.com/app", (("arch", "aarch64"), ("os", "linux"),
                                              ("version", "1.0.0")))
    assert app.version == "1.0.0"
    assert parse("example.com/app").labels == ()  # the scheme is optional


def test_latest_is_a_template_default_not_an_asked_label():
    app = parse("appc:example.com/app")
    assert app.labels == ()
    assert app.template_vars() == {"name": "example.com/app", "version": "latest"}


def test_platform_sets_appc_os_arch_and_never_the_host():
    assert dict(parse("appc:example.com/app", platform="linux/arm64").labels) == \
        {"os": "linux", "arch": "aarch64"}
    assert dict(parse("appc:example.com/app", platform="linux/arm/v7").labels) == \
        {"os": "linux", "arch": "armv7l"}
    # nothing given: no os/arch at all, whatever machine this runs on
    assert "os" not in parse("appc:example.com/app").template_vars()
    # labels given agree with the platform, or it is an error
    assert parse("appc:a.com/b,arch=amd64", platform="linux/amd64").labels == \
        (("arch", "amd64"), ("os", "linux"))
    with pytest.raises(UsageError, match="contradicts the platform"):
        parse("appc:a.com/b,arch=amd64", platform="linux/arm64")


@pytest.mark.parametrize("text, why", [
    ("appc:Example.com/app", "not an AC Identifier"),
    ("appc:example.com//app", "not an AC Identifier"),
    ("appc:example.com/../etc", "not an AC Identifier"),
    ("appc:https://example.com/app", "a name, not a URL"),
    ("appc:example.com/app:", "nothing after"),
    ("appc:example.com/app:1,version=2", "both as :VERSION and as a label"),
    ("appc:example.com/app,os", "not LABEL=VALUE"),
    ("appc:example.com/app,os=linux,os=linux", "given twice"),
    ("appc:example.com/app,name=x", "reserved"),
    ("appc:example.com/app,ext=x", "reserved"),
    ("appc:example.com/app,Os=linux", "not an AC Identifier"),
    ("appc:example.com/app:../../etc/passwd", "'..'"),
    ("appc:example.com/app,os=../x", "'..'"),
    ("appc:example.com/app,os=a/b", "no '/'"),
    ("appc:example.com/app,os=a%2fb", "no '/'"),
    ("appc:example.com/app,os={name}", "braces"),
    ("appc:example.com/app,os=", "is empty"),
    ("appc:example.com/app,os=a b", "spaces"),
    ("appc:" + "a" * 2000, "longer than"),
])
def test_bad_references_are_usage_errors(text, why):
    with pytest.raises(UsageError, match=why):
        parse(text)


def test_dependency_labels_and_inherited_values_are_checked_too():
    with pytest.raises(UsageError, match="'..'"):
        check("example.com/lib", [("version", "1/../../x")])
    with pytest.raises(UsageError, match="inherited"):
        check("example.com/lib", [], hints=[("os", "../x")])
    assert check("example.com/lib", [("version", "1.0.0+git~2")]).version == "1.0.0+git~2"


def test_walk_is_every_prefix_up_to_the_host():
    assert prefixes("example.com/a/b") == ["example.com/a/b", "example.com/a", "example.com"]
    assert prefixes("example.com") == ["example.com"]


PAGE = b"""<!DOCTYPE html><html><head>
<meta name="ac-discovery" content="example.com https://s.example.com/{os}/{arch}/{name}-{version}.{ext}">
<meta name="AC-Discovery" content="  example.com   https://mirror.example.com/{name}-{version}-{os}-{arch}.{ext}  ">
<meta name="ac-discovery" content="example.com https://s.example.com/{name}-latest.{ext}">
<meta name="ac-discovery" content="other.org https://other.org/{name}.{ext}">
<meta name="ac-discovery-pubkeys" content="example.com https://example.com/pubkeys.gpg">
<meta name="ac-discovery" content="no-uri-here">
<meta name="description" content="example.com https://not-a-discovery-tag/{ext}">
<META NAME="ac-discovery" CONTENT="example.com https://s.example.com/upper/{name}.{ext}"/>
</head><body><p>unclosed <b>tags <meta name="ac-discovery" content="example.com https://body.example.com/{name}.{ext}">
"""


def test_meta_tags_are_read_tolerantly():
    found = meta.parse(PAGE)
    assert [(m.kind, m.prefix) for m in found] == [
        ("ac-discovery", "example.com"), ("ac-discovery", "example.com"),
        ("ac-discovery", "example.com"), ("ac-discovery", "other.org"),
        ("ac-discovery-pubkeys", "example.com"), ("ac-discovery", "example.com"),
        ("ac-discovery", "example.com")]
    assert found[1].value == "https://mirror.example.com/{name}-{version}-{os}-{arch}.{ext}"
    assert meta.parse(b"\xff\xfe<<<>>>&&&;<meta") == []


def test_meta_tags_are_bounded():
    page = b"<meta name='ac-discovery' content='a https://a/{ext}'>" * (meta.MAX_TAGS + 50)
    assert len(meta.parse(page)) == meta.MAX_TAGS


def test_best_matching_templates_win():
    metas = meta.parse(PAGE)
    values = {"name": "example.com/app", "version": "1.0.0", "os": "linux", "arch": "amd64"}
    eps, notes = template.endpoints(metas, "example.com/app", values, insecure_http=False)
    # the two templates substituting version, os and arch; not -latest, upper, body (fewer)
    assert [e.aci for e in eps] == [
        "https://s.example.com/linux/amd64/example.com/app-1.0.0.aci",
        "https://mirror.example.com/example.com/app-1.0.0-linux-amd64.aci"]
    assert eps[0].sig == "https://s.example.com/linux/amd64/example.com/app-1.0.0.aci.asc"
    assert notes == []
    assert template.pubkeys(metas, "example.com/app") == ["https://example.com/pubkeys.gpg"]


def test_templates_needing_unknown_labels_are_skipped_with_a_reason():
    metas = meta.parse(PAGE)
    values = {"name": "example.com/app", "version": "latest"}
    eps, notes = template.endpoints(metas, "example.com/app", values, insecure_http=False)
    # none of the rendered ones substitutes a label: all three are equally good
    assert [e.aci for e in eps] == ["https://s.example.com/example.com/app-latest.aci",
                                    "https://s.example.com/upper/example.com/app.aci",
                                    "https://body.example.com/example.com/app.aci"]
    assert any("nothing to substitute for {arch}, {os}" in n for n in notes)


@pytest.mark.parametrize("tpl, why", [
    ("file:///etc/passwd#{name}.{ext}", "scheme 'file'"),
    ("ftp://example.com/{name}.{ext}", "scheme 'ftp'"),
    ("http://example.com/{name}.{ext}", "plain http"),
    ("//example.com/{name}.{ext}", "scheme 'none'"),
    ("https:///{name}.{ext}", "names no host"),
    ("https://example.com/{name}.aci", "no {ext}"),
    ("https://example.com/{name}{.{ext}", "stray brace"),
])
def test_hostile_or_unusable_templates_are_refused(tpl, why):
    metas = [meta.Meta("ac-discovery", "example.com", tpl)]
    eps, notes = template.endpoints(metas, "example.com/app", {"name": "example.com/app"},
                                    insecure_http=False)
    assert eps == []
    assert len(notes) == 1 and why in notes[0], notes


def test_http_templates_only_when_allowed():
    metas = [meta.Meta("ac-discovery", "example.com", "http://example.com/{name}.{ext}")]
    eps, _ = template.endpoints(metas, "example.com/app", {"name": "example.com/app"},
                                insecure_http=True)
    assert [e.aci for e in eps] == ["http://example.com/example.com/app.aci"]


def test_substitution_is_one_pass():
    # a value can never introduce a variable (values with braces are refused anyway)
    metas = [meta.Meta("ac-discovery", "example.com", "https://h/{a}-{b}.{ext}")]
    eps, _ = template.endpoints(metas, "example.com/app", {"name": "x", "a": "{b}", "b": "B"},
                                insecure_http=False)
    assert eps == []  # "{b}" left over from a's value: not rendered twice


def test_importing_the_package_does_not_import_requests():
    code = ("import sys, convert.discovery, convert.discovery.client, "
            "convert.discovery.discover, convert.discovery.verify, convert.discovery.fetch; "
            "assert 'requests' not in sys.modules, 'requests was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
