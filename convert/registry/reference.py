"""`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` references, read as skopeo reads them.

The grammar is distribution's (`distribution/reference`), and so are Docker Hub's conventions,
because users paste the names they give skopeo and docker: a first component without `.` or
`:` that is not `localhost` is part of the repository on `docker.io`; a one-part Docker Hub
name gets `library/`; `index.docker.io` is `docker.io`. A name with neither tag nor digest
means `:latest`. A tag and a digest together are refused, as skopeo refuses them, since they
could disagree and only one can be fetched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

PREFIX = "docker://"
DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
DEFAULT_TAG = "latest"
MAX_NAME = 255  # distribution's NameTotalLengthMax, registry and repository together

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_REGISTRY = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


@dataclass(frozen=True)
class Reference:
    """A parsed reference. `registry` is the name as written (`docker.io` for Docker Hub),
    `endpoint` the host to connect to; exactly one of `tag` and `digest` is set."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def endpoint(self) -> str:
        """`host[:port]` to connect to."""
        return DOCKER_HUB_ENDPOINT if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """`registry/repository`, the full name without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """The tag or digest, as it goes into `/v2/<repo>/manifests/<reference>`."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_reference(self, tag_or_digest: str) -> "Reference":
        if ":" in tag_or_digest:
            return Reference(self.registry, self.repository, None, tag_or_digest)
        return Reference(self.registry, self.repository, tag_or_digest, None)

    def __str__(self) -> str:
        suffix = f"@{self.digest}" if self.digest else f":{self.tag}"
        return f"{PREFIX}{self.name}{suffix}"


def parse(text: str) -> Reference:
    """A reference from `docker://NAME[:TAG|@DIGEST]` (the prefix may be left out)."""
    if not isinstance(text, str) or not text:
        raise UsageError("empty registry reference")
    raw = text
    if text.startswith(PREFIX):
        text = text[len(PREFIX):]
    elif text.startswith("docker:"):
        raise UsageError(f"{raw!r}: a registry reference starts with {PREFIX}")

    def bad(why: str) -> UsageError:
        return UsageError(f"invalid registry reference {raw!r}: {why}")

    name, digest = text, None
    if "@" in text:
        name, _, digest = text.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise bad(f"{digest!r} is not a digest (algorithm:hex)")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise bad(f"{tag!r} is not a valid tag")
    if tag is not None and digest is not None:
        raise bad("a tag and a digest together are not supported; give one")
    if not name:
        raise bad("no repository name")
    registry, repository = _split_registry(name)
    if not _REGISTRY.fullmatch(registry):
        raise bad(f"{registry!r} is not a registry host[:port]")
    if repository != repository.lower() and _REPOSITORY.fullmatch(repository.lower()):
        raise bad("repository names must be lower case")
    if not _REPOSITORY.fullmatch(repository):
        raise bad(f"{repository!r} is not a repository name "
                  "(lower-case letters, digits and separators . _ __ -, parts joined by /)")
    if len(f"{registry}/{repository}") > MAX_NAME:
        raise bad(f"the name is longer than {MAX_NAME} characters")
    if digest is None and tag is None:
        tag = DEFAULT_TAG
    return Reference(registry, repository, tag, digest)


def check_repository(repository: str) -> str:
    """`repository` if it is a valid name; it goes into URL paths, so nothing else may."""
    if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository):
        raise UsageError(f"{repository!r} is not a repository name")
    return repository


def check_tag_or_digest(reference: str) -> str:
    """`reference` if it is a valid tag or digest (it goes into a URL path)."""
    if not isinstance(reference, str) or not (_TAG.fullmatch(reference)
                                              or _DIGEST.fullmatch(reference)):
        raise UsageError(f"{reference!r} is neither a tag nor a digest")
    return reference


def _split_registry(name: str) -> tuple[str, str]:
    """Docker's rule for where the registry ends: the first component is a host when it has a
    `.` or a `:`, is `localhost`, or has upper-case letters (which no repository may have)."""
    first, sep, rest = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository
