"""`appc:NAME[:VERSION][,LABEL=VALUE...]`: what the user asks discovery for.

Why the checks are strict: every part of the query ends up substituted into a URL template
that a remote server wrote (`https://host/{name}-{version}-{os}-{arch}.{ext}`). NAME must be
an AC Identifier (appc's Go rule, so no `..`, no `:`, no `@`, no scheme); label names too;
label values, which the spec leaves free, are held to a conservative alphabet without `/`,
`%`, braces or `..` so that no value can move a rendered URL to another path or inject a
template variable.

os/arch come from an explicit platform or from the labels given, never from the host: rkt
filled them in from the machine it ran on, which silently fetched a different image on
another machine. Without them, a template that needs `{os}` is simply not rendered.

The version label: `NAME:VERSION` asks for `version=VERSION`; without one, discovery renders
`{version}` as `latest` (rkt's default) but does not require the fetched manifest to say
`latest`, since "latest" names a URL, not a label value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import UsageError
from ..spec.vocabulary import parse_platform, platform_to_appc

SCHEME = "appc:"
DEFAULT_VERSION = "latest"

# appc schema/types/acidentifier.go: lower-case alphanumerics separated by single -._~/
AC_IDENTIFIER = re.compile(r"^[a-z0-9]+(?:[-._~/][a-z0-9]+)*$")
# label values as discovery will substitute them into a URL
LABEL_VALUE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._~+-]*[A-Za-z0-9_~+])?$")
# template variables that are not labels: a label of that name would shadow them
RESERVED = frozenset({"name", "ext"})
MAX_TEXT = 1024


def label_value_problem(value: str) -> str | None:
    """Why `value` may not be substituted into a discovery URL, or None if it may."""
    if not value:
        return "is empty"
    if len(value) > 255:
        return "is longer than 255 characters"
    if ".." in value:
        return "contains '..'"
    if not LABEL_VALUE.match(value):
        return ("may hold only letters, digits and . _ ~ + - (no '/', '%', braces or "
                "spaces), starting and ending with a letter or digit")
    return None


def identifier_problem(text: str) -> str | None:
    """Why `text` is not an AC Identifier, or None."""
    if not text:
        return "is empty"
    if len(text) > 512:
        return "is longer than 512 characters"
    if not AC_IDENTIFIER.match(text):
        return ("is not an AC Identifier (lower-case letters, digits, and single - . _ ~ / "
                "between them)")
    return None


@dataclass(frozen=True)
class AppName:
    """An image to discover: a name and the labels it must carry.

    `labels` are the ones asked for, which the fetched manifest must carry with the same
    values; `hints` only fill template variables (`version=latest`, os/arch inherited from the
    image that depends on this one) and are not required of the manifest."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()
    hints: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def version(self) -> str | None:
        return dict(self.labels).get("version")

    def template_vars(self) -> dict[str, str]:
        """Every variable a discovery template may use, `{ext}` aside."""
        out = dict(self.hints)
        out.setdefault("version", DEFAULT_VERSION)
        out.update(self.labels)
        out["name"] = self.name
        return out

    def __str__(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.labels)
        return self.name + extra


def check(name: str, labels, *, hints=(), what: str = "image") -> AppName:
    """An `AppName` from parts that came from anywhere (the user, a dependency in a
    manifest); raises UsageError naming the bad part."""
    problem = identifier_problem(name)
    if problem:
        raise UsageError(f"{what} name {name!r} {problem}")
    seen: dict[str, str] = {}
    for key, value in labels:
        problem = identifier_problem(key)
        if problem:
            raise UsageError(f"label name {key!r} of {name} {problem}")
        if key in RESERVED:
            raise UsageError(f"label name {key!r} of {name} is reserved for discovery templates")
        if key in seen:
            raise UsageError(f"label {key!r} of {name} is given twice")
        if not isinstance(value, str) or (problem := label_value_problem(value)):
            raise UsageError(f"label {key}={value!r} of {name}: the value {problem}")
        seen[key] = value
    for key, value in hints:
        if problem := label_value_problem(value):
            raise UsageError(f"label {key}={value!r} (inherited by {name}): the value {problem}")
    return AppName(name=name, labels=tuple(sorted(seen.items())), hints=tuple(hints))


def parse(text: str, *, platform: str | None = None) -> AppName:
    """`[appc:]NAME[:VERSION][,LABEL=VALUE...]` -> AppName.

    `platform` (OCI form, `linux/arm64`, as `--platform` takes it) sets the appc os and arch
    labels (`linux`, `aarch64`); labels given in the text must then agree with it."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"appc reference is longer than {MAX_TEXT} characters")
    body = text[len(SCHEME):] if text.startswith(SCHEME) else text
    if "://" in body:
        raise UsageError(f"{text!r}: an appc reference takes a name, not a URL")
    head, *pairs = body.split(",")
    name, sep, version = head.partition(":")
    labels: list[tuple[str, str]] = []
    if sep:
        if not version:
            raise UsageError(f"{text!r}: nothing after ':' (give a version or leave ':' out)")
        labels.append(("version", version))
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise UsageError(f"{text!r}: {pair!r} is not LABEL=VALUE")
        if key == "version" and sep:
            raise UsageError(f"{text!r}: the version is given both as :VERSION and as a label")
        labels.append((key, value))
    if platform is not None:
        os_, arch = platform_to_appc(parse_platform(platform))
        given = dict(labels)
        for key, value in (("os", os_), ("arch", arch)):
            if key in given and given[key] != value:
                raise UsageError(f"{text!r}: label {key}={given[key]} contradicts the platform "
                                 f"{platform} ({key} {value})", hint_option="platform")
            if key not in given:
                labels.append((key, value))
    return check(name, labels)
