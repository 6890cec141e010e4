"""docker:// references read as skopeo reads them, and refused with a usage error (exit 2)."""

from __future__ import annotations

import pytest

from convert.errors import UsageError
from convert.registry.reference import parse

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest, endpoint", [
    ("docker://busybox", "docker.io", "library/busybox", "latest", None, "registry-1.docker.io"),
    ("docker://busybox:1.36", "docker.io", "library/busybox", "1.36", None,
     "registry-1.docker.io"),
    ("docker://docker.io/busybox", "docker.io", "library/busybox", "latest", None,
     "registry-1.docker.io"),
    ("docker://index.docker.io/user/app:v1", "docker.io", "user/app", "v1", None,
     "registry-1.docker.io"),
    ("docker://user/app", "docker.io", "user/app", "latest", None, "registry-1.docker.io"),
    ("docker://127.0.0.1:5000/a/b/c:1.0", "127.0.0.1:5000", "a/b/c", "1.0", None,
     "127.0.0.1:5000"),
    ("docker://localhost/app", "localhost", "app", "latest", None, "localhost"),
    ("docker://localhost:5000/app@" + D, "localhost:5000", "app", None, D, "localhost:5000"),
    ("docker://quay.io/org/app_x.y-z:TAG_1.2-3", "quay.io", "org/app_x.y-z", "TAG_1.2-3",
     None, "quay.io"),
    ("docker://Registry/app", "Registry", "app", "latest", None, "Registry"),
    ("docker://[::1]:5000/app:v", "[::1]:5000", "app", "v", None, "[::1]:5000"),
    ("127.0.0.1:5000/app:v", "127.0.0.1:5000", "app", "v", None, "127.0.0.1:5000"),
])
def test_parse(text, registry, repository, tag, digest, endpoint):
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag,
                                                                   digest)
    assert ref.endpoint == endpoint
    assert parse(str(ref)) == ref


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("docker:busybox", "starts with docker://"),
    ("docker://", "no repository name"),
    ("docker://host.io/app:v1@" + D, "a tag and a digest"),
    ("docker://host.io/App", "lower case"),
    ("docker://host.io/app:bad/tag", "not a repository name"),
    ("docker://host.io/app:-x", "not a valid tag"),
    ("docker://host.io/app@sha256:xyz", "not a digest"),
    ("docker://host.io/a//b", "not a repository name"),
    ("docker://host.io/app:" + "t" * 129, "not a valid tag"),
    ("docker://host.io/" + "a" * 300, "longer than 255"),
    ("docker://ho_st.io/app", "not a registry"),
    ("docker://host.io:port/app", "not a registry"),
])
def test_bad_references_are_usage_errors(text, why):
    with pytest.raises(UsageError) as info:
        parse(text)
    assert why in str(info.value)
    assert info.value.exit_code == 2


def test_with_reference_switches_between_tag_and_digest():
    ref = parse("docker://r.io/app:v1")
    assert ref.with_reference(D).reference == D and ref.with_reference(D).tag is None
    assert ref.with_reference("v2").reference == "v2"


@pytest.mark.parametrize("repo, ref", [("../x", "v1"), ("a", "../../v2/_catalog"),
                                       ("a?b", "v1"), ("a", "v1?x=1"), ("A", "v1")])
def test_client_refuses_names_that_would_bend_the_url(repo, ref, tmp_path):
    from convert.registry.client import RegistryClient

    with RegistryClient("127.0.0.1:1", env={"HOME": str(tmp_path)}) as c:
        with pytest.raises(UsageError):
            c.get_manifest(repo, ref)
