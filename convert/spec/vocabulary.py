"""Vocabulary tables between appc and OCI, each usable both ways and tested both ways.

Our own tables, not appc's `ToGoOSArch`, whose darwin and freebsd/386 rows are swapped
(aci.md §2.2). Nothing here guesses: an unmappable platform is an error, never the converting
machine's own platform.
"""

from __future__ import annotations

import re

from ..errors import UsageError
from ..graph import Platform

# (appc os, appc arch) <-> (OCI os, architecture, variant)
_OSARCH = [
    ("linux", "amd64", "linux", "amd64", None),
    ("linux", "i386", "linux", "386", None),
    ("linux", "aarch64", "linux", "arm64", None),
    ("linux", "armv6l", "linux", "arm", "v6"),
    ("linux", "armv7l", "linux", "arm", "v7"),
    ("linux", "ppc64", "linux", "ppc64", None),
    ("linux", "ppc64le", "linux", "ppc64le", None),
    ("linux", "s390x", "linux", "s390x", None),
    ("freebsd", "amd64", "freebsd", "amd64", None),
    ("freebsd", "i386", "freebsd", "386", None),
    ("freebsd", "arm", "freebsd", "arm", None),
    ("darwin", "x86_64", "darwin", "amd64", None),
    ("darwin", "i386", "darwin", "386", None),
]
APPC_TO_OCI = {(a, b): (c, d, e) for a, b, c, d, e in _OSARCH}
OCI_TO_APPC = {(c, d, e): (a, b) for a, b, c, d, e in _OSARCH}
# appc arch names with no OCI form at all
APPC_UNMAPPABLE = {("linux", "aarch64_be"), ("linux", "armv7b")}


# The values OCI's config.md asks for (image-spec: "SHOULD use ... the Go Language document
# for GOOS / GOARCH"; golang/go src/internal/syslist/syslist.go). Nothing refuses others, but no
# runtime or registry matches them: validate warns (oci.md §2).
GOOS = frozenset("aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd "
                 "openbsd plan9 solaris wasip1 windows zos".split())
GOARCH = frozenset("386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 "
                   "mips64le mips64p32 mips64p32le ppc ppc64 ppc64le riscv riscv64 s390 s390x "
                   "sparc sparc64 wasm".split())

# Architecture spellings a platform may be given in that are not OCI's: appc's (aci.md §2.2,
# `aarch64`, `armv7l`...) and the kernel's and Debian's that containerd normalises (oci.md §2).
# Each names an OCI architecture and the variant it implies.
ARCH_ALIASES = {
    "aarch64": ("arm64", None), "x86_64": ("amd64", None), "x86-64": ("amd64", None),
    "i386": ("386", None), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "armhf": ("arm", "v7"), "armel": ("arm", "v6"),
}


def _folded(arch: str, variant: str | None) -> str | None:
    """The variant as containerd normalises it: `arm64/v8` is `arm64`, `arm/7` is `arm/v7`."""
    if arch == "arm64" and variant in ("v8", "8"):
        return None
    if arch == "arm" and variant in ("5", "6", "7", "8"):
        return "v" + variant
    return variant


def platform_to_appc(p: Platform) -> tuple[str, str]:
    variant = _folded(p.architecture, p.variant)
    key = (p.os, p.architecture, variant)
    if key not in OCI_TO_APPC and p.architecture == "arm" and variant is None:
        key = (p.os, "arm", "v7") if p.os == "linux" else key  # containerd: bare arm is v7
    try:
        return OCI_TO_APPC[key]
    except KeyError:
        raise UsageError(f"OCI platform {p} has no appc equivalent") from None


def parse_platform(text: str) -> Platform:
    """`os/arch[/variant]` in OCI's vocabulary. appc's and the kernel's architecture names map
    to OCI's (`linux/aarch64` is `linux/arm64`, `linux/armv7l` is `linux/arm/v7`), and the
    variants containerd treats as the same are folded (`arm64/v8` is `arm64`, `arm/7` is
    `arm/v7`), so that a platform matches however it was spelled."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"a platform is os/arch[/variant], not {text!r}")
    os_, arch = parts[0].lower(), parts[1].lower()
    variant = parts[2].lower() if len(parts) == 3 else None
    if arch in ARCH_ALIASES:
        arch, implied = ARCH_ALIASES[arch]
        if implied and variant not in (None, implied, implied[1:]):
            raise UsageError(f"platform {text}: {parts[1]} is {arch}/{implied}, not variant "
                             f"{variant}")
        variant = variant or implied
    return Platform(os=os_, architecture=arch, variant=_folded(arch, variant))


def platform_matches(have: Platform | None, want: Platform) -> bool:
    """Whether an image of platform `have` is one `want` asks for: os and architecture equal,
    and the variant equal when `want` names one. A request without a variant takes any variant
    (`linux/arm` matches `linux/arm/v7` and `linux/arm/v6`; a selection that then matches
    more than one image asks to choose); `linux/arm` never matches `linux/arm64`."""
    if have is None:
        return False
    os_, arch, variant = _as_oci(have)
    if (os_, arch) != (want.os, want.architecture):
        return False
    if want.variant is None:
        return True
    return variant == _folded(want.architecture, want.variant)


def _as_oci(p: Platform) -> tuple[str, str, str | None]:
    """An image's own platform in the request's terms: lower-case, appc's and the kernel's
    architecture names mapped, and a bare `arm` as v7 (as containerd and `platform_to_appc`
    read it)."""
    arch, variant = p.architecture.lower(), p.variant.lower() if p.variant else None
    if arch in ARCH_ALIASES:
        arch, implied = ARCH_ALIASES[arch]
        variant = variant or implied
    if arch == "arm" and variant is None:
        variant = "v7"
    return p.os.lower(), arch, _folded(arch, variant)


def aci_platform(labels: dict[str, str], text: str) -> Platform:
    """The platform of an ACI whose reader was given `text` (`os/arch[/variant]`): what the
    labels say, made precise by `text` where they say nothing. appc's os and arch labels are
    the image's own statement; a platform that contradicts them is refused (a usage error,
    naming both), never written over them. Without labels the platform must still be one an
    ACI can have: appc names linux, freebsd and darwin (aci.md §2.2), never windows."""
    want = parse_platform(text)
    try:
        want_os, want_arch = platform_to_appc(want)
    except UsageError:
        known = ", ".join(str(Platform(*oci)) for oci in APPC_TO_OCI.values())
        raise UsageError(f"platform {text} is not one an ACI can have; appc has {known}"
                         ) from None
    os_, arch = labels.get("os"), labels.get("arch")
    labelled = APPC_TO_OCI.get((os_ or want_os, arch)) if arch is not None else None
    if (os_ is not None and os_ != want_os) or (
            arch is not None and not platform_matches(
                Platform(*labelled) if labelled else None, want)):
        said = f"os {os_}, arch {arch}" if os_ and arch else f"os {os_}" if os_ else f"arch {arch}"
        raise UsageError(f"the image's labels say {said}; platform {text} contradicts them")
    return Platform(*labelled) if labelled else want


# Annotation keys. Everything ACI-only that the OCI side has no home for lives under one prefix.
PREFIX = "io.acioci.aci."
ANN_NAME = PREFIX + "name"
ANN_LABELS = PREFIX + "labels"            # JSON list of {name,value}, as in the manifest
ANN_ANNOTATIONS = PREFIX + "annotations"  # JSON list of {name,value}
ANN_AC_VERSION = PREFIX + "acVersion"
ANN_APP = PREFIX + "app."                 # + field name, JSON value, only fields OCI cannot hold
ANN_DEPENDENCIES = PREFIX + "dependencies"
ANN_PATH_WHITELIST = PREFIX + "pathWhitelist"
ANN_IMAGE_ID = PREFIX + "imageID"         # on a layer: the ACI it came from; on the manifest: the top
ANN_IMAGE_IDS = PREFIX + "imageIDs"       # JSON list, bottom layer first
ANN_HAS_APP = PREFIX + "hasApp"           # "false" when the ACI had no app at all
ANN_SIGNED_BY = PREFIX + "signedBy"       # appc: fingerprint of the key that signed the ACI

# ACI annotations for OCI fields with no ACI home (docker2aci's names where it has them)
ANN_DOCKER_ENTRYPOINT = "appc.io/docker/entrypoint"  # JSON array
ANN_DOCKER_CMD = "appc.io/docker/cmd"                # JSON array
ANN_OCI_USER = "io.acioci.oci/user"                  # User when user/group cannot say it
ANN_OCI_STOP_SIGNAL = "io.acioci.oci/stopsignal"
# Docker-only config fields (Docker image spec v1.2; OCI's config has no such keys). ACI has no
# home for them either, so OCI -> ACI keeps each, as compact JSON, in an ACI annotation.
DOCKER_CONFIG_ANNOTATION = {
    "Healthcheck": "io.acioci.oci/healthcheck",
    "OnBuild": "io.acioci.oci/onbuild",
    "Shell": "io.acioci.oci/shell",
}

# ACI annotation name <-> OCI annotation key, for the well-known ones
ACI_TO_OCI_ANNOTATION = {
    "created": "org.opencontainers.image.created",
    "authors": "org.opencontainers.image.authors",
    "homepage": "org.opencontainers.image.url",
    "documentation": "org.opencontainers.image.documentation",
}

REF_NAME = "org.opencontainers.image.ref.name"
_REF_RE = re.compile(
    r"^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$")


def is_ref_name(text: str) -> bool:
    return bool(_REF_RE.match(text))


def ref_name_from_version(version: str) -> str:
    """A ref.name from an ACI version label: characters the ref grammar refuses become '-',
    separator runs collapse, and edges are trimmed. Empty results fall back to 'latest'."""
    text = re.sub(r"[^A-Za-z0-9._:@+/-]", "-", version)
    text = re.sub(r"[-._:@+]{2,}", lambda m: "--" if set(m.group()) == {"-"} else m.group()[0], text)
    text = "/".join(part.strip("-._:@+") for part in text.split("/") if part.strip("-._:@+"))
    return text if text and is_ref_name(text) else "latest"


def oci_user(user: str | None, group: str | None) -> str | None:
    """ACI user/group -> OCI `User`. Both are required in an ACI app; `0:0` stays explicit so the
    reverse direction need not guess."""
    if user is None:
        return None
    return f"{user}:{group}" if group is not None else user


def oci_port_keys(protocol: str, port: int, count: int) -> list[str]:
    """An ACI port range (port, count) becomes one ExposedPorts key per port."""
    return [f"{p}/{protocol}" for p in range(port, port + max(count, 1))]


# OCI -> ACI vocabulary

_ID_BAD = re.compile(r"[^a-z0-9._~/-]")
_ID_RUNS = re.compile(r"[-._~/]{2,}")
_NAME_BAD = re.compile(r"[^a-z0-9-]")


def sanitize_identifier(text: str) -> str:
    """An AC Identifier from any reference: lower case, disallowed characters (a registry port's
    ':', '@', '+') become '_', separator runs collapse to their first character (so the spec's
    regular expression holds, not only Go's laxer check), edges are trimmed."""
    out = _ID_BAD.sub("_", text.lower())
    out = _ID_RUNS.sub(lambda m: m.group()[0], out).strip("-._~/")
    if not out:
        raise UsageError(f"{text!r} gives no usable ACI name; give one", hint_option="name")
    return out


def sanitize_acname(text: str) -> str:
    """An AC Name (ports, mount points): [a-z0-9-], runs of '-' collapsed."""
    out = re.sub(r"-{2,}", "-", _NAME_BAD.sub("-", text.lower())).strip("-")
    return out or "x"


def aci_user_group(user: str | None, primary: str | None = None) -> tuple[str, str]:
    """OCI `User` -> ACI user and group: empty -> 0/0; `u:g` -> u/g (names or numbers, kept as
    given: the ACE resolves names in the image's /etc/passwd and /etc/group); `u` and `u:` ->
    u and its primary group, as an OCI runtime would use it (`primary`, see `primary_group`),
    or u/u when the image's /etc/passwd does not say (docker2aci's choice for every image,
    which breaks `nobody`: Debian's and busybox's group 65534 is `nogroup`)."""
    if not user:
        return "0", "0"
    u, _, g = user.partition(":")
    u = u or "0"
    return u, g or primary or u


def primary_group(user: str, passwd: bytes | None, group: bytes | None) -> str | None:
    """The primary group of OCI `User` `user` (a name or a uid, no group part) in the image's
    /etc/passwd, as a runtime resolves it (runc: the first entry whose name, or for a number
    whose uid, matches): a uid asks for a gid; a name gets the gid's name in /etc/group, or
    the gid itself when /etc/group has none. None when /etc/passwd lacks the user."""
    u = user.partition(":")[0]
    rows = [line.split(":") for line in _text(passwd).splitlines() if line.count(":") >= 3]
    found = next((r for r in rows if r[0] == u), None)
    if found is None and u.isdigit():
        found = next((r for r in rows if r[2].isdigit() and int(r[2]) == int(u)), None)
    if found is None or not found[3].isdigit():
        return None
    gid = int(found[3])
    if u.isdigit():
        return str(gid)
    for row in (line.split(":") for line in _text(group).splitlines()):
        if len(row) >= 3 and row[0] and row[2].isdigit() and int(row[2]) == gid:
            return row[0]
    return str(gid)


def _text(data: bytes | None) -> str:
    return data.decode("utf-8", "surrogateescape") if data else ""


def volume_names(paths: list[str]) -> list[str]:
    """Mount-point names for Volumes, as docker2aci names them (`volume-var-lib-data`), with
    clashes numbered in path order (deterministic, unlike docker2aci's map order)."""
    names, seen = [], {}
    for p in paths:
        base = sanitize_acname("volume" + p.replace("/", "-"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        names.append(base if n == 0 else f"{base}-{n}")
    return names


_DOCKER_NAME = re.compile(r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                          r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def docker_reference(name: str, tag: str) -> str:
    """`NAME:TAG` in docker's reference grammar (what `docker load` and `podman load` name an
    image), from a name and tag we were given or derived; refused when either cannot be one."""
    from ..errors import UsageError

    if not _DOCKER_NAME.match(name) or len(name) > 255:
        raise UsageError(f"{name!r} is not a docker image name (lower case, [a-z0-9._-] "
                         "components separated by /)")
    if not _DOCKER_TAG.match(tag):
        raise UsageError(f"{tag!r} is not a docker tag ([A-Za-z0-9_.-], at most 128)")
    return f"{name}:{tag}"


def split_reference(ref: str) -> tuple[str | None, str | None]:
    """`registry:5000/repo/name:tag` -> (name, tag); a bare `v1` (skopeo/umoci tag style) ->
    (None, 'v1'); a digest reference keeps no tag."""
    ref = ref.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    if ":" in last:
        name, tag = last.rsplit(":", 1)
        return (f"{head}/{name}" if head else name), tag
    if head:
        return ref, None
    return None, ref or None
