"""The library's front door: open, read, convert. The CLI calls only these.

    from convert import api
    image = api.read("app.aci", store=["store/"])
    result = api.convert("app.aci", "oci:out:v1", store=["store/"], squash=True)
    result = api.convert("app.aci", "oci:out:v1", options=api.ConvertOptions(store=("store/",)))
    with api.open("oci-archive:img.tar.gz") as source:   # owns the archive's temporaries
        for image in source.images(): ...

Every function takes its options the same two ways: as keywords (`store=[...]`), which are the
fields of its options dataclass (`ReadOptions` for open/read/read_all, `ConvertOptions` for
convert/convert_all) and are listed in its signature, or as `options=` that dataclass, built
once and reused. Not both in one call.

References are resolved by `transports` (skopeo's `TRANSPORT:REST`, or a bare path); the
transport opens the source, the graph passes through `prepare` (render, squash, layered) inside
the destination transport's `write`, and nothing here knows a format by name.

Only the names in `__all__` are the API; the modules this one uses are imported under
underscore names so that `dir(api)` and completion in a REPL show just those.
"""

from __future__ import annotations

import dataclasses as _dataclasses
import inspect as _inspect
import os as _os
from dataclasses import replace as _replace
from typing import Callable as _Callable

from . import prepare as _prepare
from . import transports as _transports
from .errors import AciociError, UsageError
from .graph import Image
from .meter import metering as _metering
from .options import DEFAULT_MAX_EXPAND, ConvertOptions, ReadOptions
from .spec.vocabulary import (platform_to_appc as _platform_to_appc,
                              sanitize_acname as _sanitize_acname,
                              sanitize_identifier as _sanitize_identifier)
from .transports.base import Reference, Source

__all__ = ["ConvertOptions", "ReadOptions", "AciociError", "UsageError", "DEFAULT_MAX_EXPAND",
           "Image", "Reference", "Source", "open", "read", "read_all", "render", "convert",
           "convert_all", "convert_image", "total_bytes", "what_there_is"]


def __dir__():
    return sorted(__all__)


def _fields(kind, skip=()) -> list:
    return [f for f in _dataclasses.fields(kind) if f.name not in skip]


def _takes_options(kind, skip=()):
    """The decorated function takes `options=kind(...)` or kind's fields (less `skip`) as
    keywords: its signature lists them, with their defaults, for help(), inspect and a REPL's
    completion, though the code receives them as `**keywords`."""
    def wrap(fn):
        sig = _inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        for f in _fields(kind, skip):
            default = (f.default if f.default is not _dataclasses.MISSING
                       else f.default_factory())
            params.append(_inspect.Parameter(f.name, _inspect.Parameter.KEYWORD_ONLY,
                                             default=default, annotation=f.type))
        fn.__signature__ = sig.replace(parameters=params)
        return fn
    return wrap


def _options(kind, options, given: dict, skip=()):
    """`options`, or `kind` built from keywords (`store=[...]`, `squash=True`); sequences
    given as lists become the tuples the frozen dataclass holds."""
    names = {f.name: f for f in _fields(kind, skip)}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; {kind.__name__} has "
                        f"{', '.join(sorted(names))}")
    if options is not None and given:
        raise TypeError(f"give either options={kind.__name__}(...) or option keywords, "
                        "not both")
    if options is not None:
        return options
    given = {k: tuple(v) if isinstance(names[k].default, tuple) and v is not None else v
             for k, v in given.items()}
    return kind(**given)


def _source_ref(src: str | Reference) -> Reference:
    return src if isinstance(src, Reference) else _transports.source(src)


@_takes_options(ReadOptions, skip=("once",))
def open(src: str | Reference, options: ReadOptions | None = None, **keywords) -> Source:
    """Open a source for reading, as `with api.open(src) as source:`. Its images are valid
    inside the `with`, and every temporary the source made (a decompressed archive) is gone
    when it ends, however it ends."""
    ref = _source_ref(src)
    opts = _options(ReadOptions, options, keywords, skip=("once",))
    return _transports.module(ref.transport).open(ref, opts)


@_takes_options(ReadOptions, skip=("once",))
def read_all(src: str | Reference, *, options: ReadOptions | None = None,
             **keywords) -> list[Image]:
    """The graphs of the images a source holds (selected by ref/platform; all with
    `select_all`); ACI dependencies resolved, nothing rendered. The images keep their source
    open until they are garbage: to decide when temporaries go, use `open`."""
    return open(src, _options(ReadOptions, options, keywords, skip=("once",))).images()


@_takes_options(ReadOptions, skip=("once", "select_all"))
def read(src: str | Reference, *, options: ReadOptions | None = None, **keywords) -> Image:
    """The one image a source holds, or the one `ref`/`platform` select."""
    opts = _options(ReadOptions, options, keywords, skip=("once", "select_all"))
    ref = _source_ref(src)
    return _one(read_all(ref, options=opts), str(src), ref, opts)


def render(image: Image, *, squash: bool = False, whitelist_mode: str = "rkt") -> Image:
    """ACI semantics: dependencies and path whitelists into an ordered layer stack."""
    if whitelist_mode not in ("rkt", "spec"):
        raise UsageError(f"the whitelist mode must be rkt or spec, not {whitelist_mode!r}")
    return _prepare.rendered(image, squash_layers=squash, whitelist_mode=whitelist_mode)


def _one(images: list[Image], where: str, src: Reference | None = None,
         options: ReadOptions | None = None) -> Image:
    if not images and src is not None and options is not None:
        raise UsageError("no image matches" + _wanted(options) + "; there are: "
                         + _what_there_is(src, options), file=where,
                         hint_option=("ref", "platform"))
    if len(images) != 1:
        raise UsageError(f"{len(images)} images match; choose one by ref or platform: "
                         + "; ".join(_label(i) for i in images), file=where,
                         hint_option=("ref", "platform"))
    return images[0]


def _wanted(options: ReadOptions) -> str:
    asked = [f"ref {options.ref}" if options.ref else "",
             f"platform {options.platform}" if options.platform else ""]
    return " " + " and ".join(a for a in asked if a) if any(asked) else ""


def _label(image: Image) -> str:
    plat = str(image.platform) if image.platform else "no platform"
    return f"{image.name or '(no name)'}:{image.version or 'latest'} ({plat})"


def what_there_is(src: str | Reference, options: ReadOptions | None = None) -> str:
    """What a source holds, as `name:version (platform)` items, for an error saying that a
    selection matched nothing: a second read without the platform, on the error path only."""
    return _what_there_is(_source_ref(src), options or ReadOptions())


def _what_there_is(src: Reference, options: ReadOptions) -> str:
    try:
        with open(src, _replace(options, platform=None, select_all=True, once=False)) as source:
            return "; ".join(_label(i) for i in source.images()) or "no images"
    except AciociError:
        return "(cannot list them)"


def convert_image(image: Image, target: Reference, opts: ConvertOptions):
    """Write one already-read image to `target`."""
    out = opts.for_target(_transports.module(target.transport).FORMAT)
    return _transports.write(image, target, out)


@_takes_options(ConvertOptions)
def convert(src: str | Reference, dest: str | Reference, *, to: str | None = None,
            options: ConvertOptions | None = None,
            progress: _Callable[[int], _Callable[[int], None]] | None = None,
            warn: _Callable[[str], None] | None = None, **option_keywords):
    """Convert one image. Options are `options=ConvertOptions(...)` or its fields as keywords
    (`store=["deps/"], squash=True`). `progress`, if given, is called once with the total
    number of source bytes the conversion reads (files and blobs as they lie on disk, see
    `meter.py`) and returns the callback that is then fed byte counts as they are read. `warn`
    receives what the source wants said (a signature check skipped on request)."""
    opts = _options(ConvertOptions, options, option_keywords)
    target = dest if isinstance(dest, Reference) else _transports.destination(dest, to)
    target = _replace(target, path=_os.path.normpath(target.path))  # `out/` and `out` print alike
    out_format = _transports.module(target.transport).FORMAT
    if out_format == "aci" and opts.layered and target.path.endswith(".aci"):
        raise UsageError("a layered conversion writes a directory of ACIs (a store), one per "
                         "layer; give a directory, not a name ending in .aci", file=target.path)
    opts.for_target(out_format)  # refuse options of the other direction before any work
    source_ref = _source_ref(src)
    _refuse_overwriting_the_source(source_ref, target, opts)
    with open(source_ref, opts.reading(once=True)) as source:
        image = _one(source.images(), source.where, source_ref, opts.reading())
        for text in getattr(source, "warnings", ()):
            if warn is not None:
                warn(text)
        report = progress(total_bytes(image)) if progress else None
        if out_format == "aci":
            image = _named(image, source_ref, opts)
        with _metering(report):
            return convert_image(image, target, opts)


def _named(image: Image, source_ref: Reference, opts: ConvertOptions) -> Image:
    """An ACI needs a name: an OCI image tagged only `v1` names no repository, so without a
    given name it is named after the source file, in a single conversion and in `convert_all`
    alike."""
    if opts.name or image.name:
        return image
    stem = _transports.strip_suffix(_os.path.basename(_os.path.normpath(source_ref.path)))
    return _replace(image, name=_sanitize_identifier(stem))


def _refuse_overwriting_the_source(source: Reference, target: Reference,
                                   opts: ConvertOptions) -> None:
    """When overwriting, a destination that is the source, or a directory holding it, would be
    removed before (or while) the source is read."""
    if not (opts.overwrite and _os.path.exists(source.path) and _os.path.exists(target.path)):
        return
    src, dest = _os.path.realpath(source.path), _os.path.realpath(target.path)
    if src == dest or src.startswith(dest.rstrip("/") + "/"):
        raise UsageError("the destination is the source, or holds it; overwriting it would "
                         "destroy the source", file=target.path)


@_takes_options(ConvertOptions, skip=("select_all",))
def convert_all(src: str | Reference, dest_dir: str, *,
                options: ConvertOptions | None = None, **option_keywords) -> list:
    """Every image (and platform) of an OCI or docker source, each to its own ACI in
    `dest_dir`, named `<name>-<tag>-<os>-<arch>.aci` like docker2aci's files (with `layered`,
    a directory of that name holding the image's chain). Options as for `convert`.

    All or nothing: every image's name and platform are checked, and every output path found
    free, before the first is written; if a write fails, the outputs already written are
    removed again (and `dest_dir`, when this call created it). `dest_dir` is created when it
    does not exist, as a layered conversion creates its directory."""
    opts = _replace(_options(ConvertOptions, options, option_keywords, skip=("select_all",)),
                    select_all=True)
    opts.for_target("aci")
    dest_dir = _os.path.normpath(dest_dir)
    source_ref = _source_ref(src)
    with open(source_ref, opts.reading()) as source:
        images = source.images()
        if _os.path.exists(dest_dir) and not _os.path.isdir(dest_dir):
            raise UsageError("every image is written into a directory; this is not one",
                             file=dest_dir)
        planned, seen = [], set()
        for image in images:
            image = _named(image, source_ref, opts)
            parts = [opts.name or image.name, image.version or "latest"]
            if image.platform is not None:
                try:
                    parts += list(_platform_to_appc(image.platform))
                except UsageError as exc:
                    raise UsageError(f"{exc.message}; nothing was written",
                                     file=source.where) from None
            stem = _sanitize_acname("-".join(p.replace("/", "-") for p in parts))
            name = stem if opts.layered else stem + ".aci"
            if name in seen:
                raise UsageError(f"two images would both be written to {name}",
                                 file=source.where)
            seen.add(name)
            path = _os.path.join(dest_dir, name)
            if _os.path.lexists(path) and not opts.overwrite:
                raise UsageError("destination exists, and replacing it was not asked for; "
                                 "nothing was written", file=path, hint_option="overwrite")
            planned.append((image, Reference("aci", path)))
        created = not _os.path.exists(dest_dir)
        if created:
            try:
                _os.mkdir(dest_dir)
            except OSError as exc:
                from .errors import DestinationError

                raise DestinationError(f"cannot create: {exc.strerror or exc}",
                                       file=dest_dir) from None
        results = []
        try:
            for image, target in planned:
                results.append(convert_image(image, target, opts))
        except BaseException:
            for _image, target in planned[:len(results)]:
                _remove_output(target.path)
            if created:
                _remove_output(dest_dir)
            raise
        return results


def _remove_output(path: str) -> None:
    import shutil

    if _os.path.isdir(path) and not _os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            _os.remove(path)
        except OSError:
            pass


def total_bytes(image: Image) -> int:
    """Source bytes the writing pass reads, for progress bars."""
    return sum(layer.size or 0 for img in image.walk() for layer in img.layers)
