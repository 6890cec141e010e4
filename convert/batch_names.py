"""Names in a registry for the images of a batch (`batch SRC... --out docker://HOST/NAMESPACE`).

Each input goes to `NAMESPACE/<repository>:<tag>`:
- the repository is the input's path under its SRC without the archive suffix (`sub/App+1.aci`
  is `sub/app_1`); for an input given as a reference, `docker://host/apps/app:1.0` is
  `apps/app` and `appc:example.com/app:1.0` is `example.com/app`. Each path component is made
  one of the distribution grammar, `[a-z0-9]+([._-][a-z0-9]+)*`: lower case, every run of other
  characters `_`, a run of separators its first one, separators at the edges dropped (and a
  component left empty with them).
- the tag is the image's version: an ACI's `version` label; for an OCI layout, oci-archive or
  docker archive, the tag of its ref name (or of the reference's `:REF`); for `docker://` its
  tag; for `appc:` its version. Made a tag (`[\\w][\\w.-]{0,127}`): every other character `_`
  (`1.0+git` is `1.0_git`), a first `.` or `-` too, cut at 128 characters; no version:
  `latest`.

Two inputs that get the same name are a usage error before anything is uploaded, as two files
of a batch written to one path are. An input whose version cannot be read (a broken archive)
gets no name: it is a failed record at once, and nothing is pushed for it.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace

from . import transports
from .errors import AciociError, UsageError
from .options import ReadOptions

PREFIX = "docker://"
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_COMPONENT_BAD = re.compile(r"[^a-z0-9._-]+")
_SEPARATORS = re.compile(r"[._-]{2,}")


def is_registry(out: str) -> bool:
    return out.startswith(PREFIX)


def namespace(out: str) -> str:
    """`docker://HOST[:PORT]/NAMESPACE` without a trailing slash; refuses a tag or digest."""
    rest = out[len(PREFIX):].rstrip("/")
    host, _, space = rest.partition("/")
    if not host or "@" in rest or ":" in space.rsplit("/", 1)[-1]:
        raise UsageError(f"{out}: a batch's registry destination is "
                         "docker://HOST[:PORT]/NAMESPACE, without a tag or digest (each image "
                         "gets its own)")
    return PREFIX + rest


def component(text: str) -> str:
    """One repository path component in the distribution grammar ('' if nothing is left)."""
    text = _COMPONENT_BAD.sub("_", text.lower())
    text = _SEPARATORS.sub(lambda m: m.group()[0], text)
    return text.strip("._-")


def repository(rel: str) -> str:
    """`sub/App+1.aci` -> `sub/app_1`: the repository path an input's path names."""
    stem = transports.strip_suffix(rel.replace(os.sep, "/"))
    return "/".join(c for c in (component(p) for p in stem.split("/")) if c)


def tag(version: str | None) -> str:
    """A version as a registry tag: `1.0+git` -> `1.0_git`; none -> `latest`."""
    if not version:
        return "latest"
    text = _TAG_BAD.sub("_", version)
    if text[0] in ".-":
        text = "_" + text[1:]
    return text[:128]


def _aci_version(path: str, options: ReadOptions) -> str | None:
    """The ACI's version label, read as the ACI reader reads its manifest (so a bad one is
    refused with the reader's words and JSON pointer)."""
    from .readers import aci_manifest
    from .readers.aci import AciFiles

    doc, _ = aci_manifest.parse(AciFiles.from_options(options).find_manifest(path), file=path)
    return next((label["value"] for label in doc.get("labels") or ()
                 if label["name"] == "version"), None)


def _image_version(source: str, options: ReadOptions) -> str | None:
    """The version the reader gives the one image a source holds (its ref name's tag, or
    the ACI version label it carries); layers are not read."""
    from . import api

    with api.open(source, replace(options, select_all=False, image_id=False)) as src:
        images = src.images()
        if len(images) != 1:
            raise UsageError(f"{len(images)} images; a registry tag names one (give the "
                             "reference's image, TRANSPORT:PATH:REF)", file=src.where)
        return images[0].version


def name_of(path: str, rel: str, options: ReadOptions) -> tuple[str, str]:
    """(repository path, tag) of one input of a batch (see the module's docstring)."""
    from .spec.vocabulary import split_reference

    ref = transports.source(path)
    if ref.transport == "docker":
        from .registry.reference import parse

        parsed = parse(ref.text)
        return repository(parsed.repository), tag(parsed.tag)
    if ref.transport == "appc":
        name, _, version = ref.path.split(",", 1)[0].partition(":")
        return repository(name), tag(version or None)
    if not transports.names_transport(path):
        rel_path = rel
    else:
        rel_path = transports.output_name(ref)
    if ref.transport == "aci":
        return repository(rel_path), tag(_aci_version(ref.path, options))
    if ref.ref and not ref.ref.startswith("@"):
        return repository(rel_path), tag(split_reference(ref.ref)[1])
    return repository(rel_path), tag(_image_version(path, options))


def plan(found: list[tuple[str, str]], out: str, options: ReadOptions
         ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(input, destination reference) for each input that has a name, and (input, error) for
    each that has none. Refuses, before any work, names that collide and names the
    registry's grammar cannot take (over its length limit)."""
    from .registry.reference import parse

    space = namespace(out)
    failed: list[tuple[str, str]] = []
    by_dest: dict[str, list[str]] = {}  # in the order the inputs came
    for path, rel in found:
        try:
            repo, version = name_of(path, rel, options)
        except (AciociError, OSError) as exc:
            failed.append((path, str(exc) if isinstance(exc, AciociError) else f"{path}: {exc}"))
            continue
        if not repo and space.count("/") < 3:
            raise UsageError(f"{path}: its path gives no repository name, and the destination "
                             "has no namespace to take its place")
        dest = f"{space}/{repo}:{version}" if repo else f"{space}:{version}"
        parse(dest)  # the registry's own limits (length) say no before any work
        if path not in by_dest.setdefault(dest, []):
            by_dest[dest].append(path)
    clashes = {d: paths for d, paths in by_dest.items() if len(paths) > 1}
    if clashes:
        raise UsageError("inputs that would be pushed to the same name: " + "; ".join(
            f"{', '.join(paths)} -> {d}" for d, paths in sorted(clashes.items()))
            + "; rename them or push them in separate batches")
    return [(paths[0], d) for d, paths in by_dest.items()], failed
