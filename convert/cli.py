"""The `acioci` command: parses options, renders errors and progress; nothing else.

Exit codes: 0 success, 1 bad input (the image is wrong), 2 unreadable input, usage error or a
destination that cannot be written, 130 Ctrl-C or SIGTERM.
Every failure is one line on stderr naming the file and the tar entry or JSON pointer; no
traceback. SIGTERM is handled like Ctrl-C so that atomic writers clean up.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
from contextlib import contextmanager
from typing import List, Optional

import typer

try:  # typer 0.2x carries its own copy of click; its errors are that copy's
    from typer._click import exceptions as _click_errors, globals as _click_globals
except ImportError:  # older typer runs on click itself
    from click import exceptions as _click_errors, globals as _click_globals

from . import __version__, allocator, api, interrupt
from .cli_options import (BEHAVIOUR, COMPRESSIONS, INPUT, OUTPUT, VALIDATE_TYPES, WRITES,
                          Grouped, MaxExpand, OneOf, Store, copy_remote_options, hint,
                          remote_options, skopeo_spellings)
from .errors import AciociError

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Convert container images between appc ACI and OCI.")

def _warn(text: str) -> None:
    typer.echo(f"acioci: warning: {text}", err=True)


def _fail(exc: AciociError) -> None:
    """One line: the library's message, and how to give the options it names on this verb's
    command line (`hint_option`: the library never names a flag itself)."""
    extra = hint(exc.hint_option, _click_globals.get_current_context(silent=True))
    typer.echo(f"acioci: error: {exc}{extra}", err=True)
    raise typer.Exit(exc.exit_code)


@contextmanager
def _errors(interrupted: str = "interrupted; nothing was left at the destination"):
    """Render library errors as one line with their exit code; Ctrl-C and SIGTERM exit 130
    with `interrupted` (verbs that write nothing say so without mentioning a destination)."""
    def on_signal(signum, frame):  # as KeyboardInterrupt, but never inside a lock (interrupt.py)
        interrupt.interrupt(frame)

    old_term = signal.signal(signal.SIGTERM, on_signal)
    old_int = signal.signal(signal.SIGINT, on_signal)
    try:
        yield
    except AciociError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo(f"acioci: {interrupted}", err=True)
        raise typer.Exit(130)
    finally:
        interrupt.cancel()
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


@contextmanager
def _progress(quiet: bool):
    """A tqdm byte bar on a terminal, nothing otherwise (CI logs stay clean): yields the
    `progress` callback `api.convert` takes, or None. The bar is closed (its line cleared)
    when the block ends, however it ends, so that what is printed next (the result, an error,
    "interrupted") starts on a line of its own instead of after the bar's last frame. Put it
    inside `_errors`, which prints."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    bars = []

    def start(total: int):
        from tqdm import tqdm

        bars.append(tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
                         desc="converting", leave=False, file=sys.stderr))
        return bars[-1].update

    try:
        yield start
    finally:
        for bar in bars:
            bar.close()


_IMAGE_ID_HELP = ("ACI source: record its appc image ID in the output (the default). "
                  "--no-image-id skips the SHA-512 that a lone ACI costs, about a third of "
                  "an ACI -> OCI conversion's time.")


@app.command(cls=Grouped, help="""Convert one image.

The target format follows from DEST: *.aci is an ACI; a directory or oci:DIR[:TAG] is an OCI
image layout (an existing one gets the image added beside its others); *.tar or
oci-archive:FILE[:TAG] is an oci-archive. --to overrides. Sources are
.aci files, OCI layouts (DIR or oci:DIR[:REF]), oci-archives (oci-archive:FILE[:REF]) and
docker save archives (docker-archive:FILE[:NAME:TAG]), recognised by content.

\b
Examples:
  acioci convert app.aci out/                    # OCI layout, tagged with the version label
  acioci convert app.aci oci:out:v1 --store deps/
  acioci convert app.aci app.tar --squash --compression zstd
  acioci convert oci:layout:v1 app.aci           # OCI -> ACI, squashed
  acioci convert busybox.tar busybox.aci --ref busybox:latest --platform linux/arm64
  acioci convert layout/ out-dir/ --to aci --layered   # one ACI per layer, a --store
  acioci convert layout/ out-dir/ --to aci --all       # every image and platform
""")
@copy_remote_options
def convert(
    src: str = typer.Argument(..., metavar="SRC", help="The image to convert."),
    dest: str = typer.Argument(..., metavar="DEST", help="Where to write it (see above)."),
    store: Store = [],
    ref: Optional[str] = typer.Option(None, "--ref", metavar="REF", rich_help_panel=INPUT,
                                      help="Which image of an OCI layout or docker archive: "
                                      "ref.name, full image name, or @N."),
    platform: Optional[str] = typer.Option(
        None, "--platform", metavar="OS/ARCH[/VARIANT]", rich_help_panel=INPUT,
        help="Which image of a multi-platform source; for an ACI without os/arch labels, the "
        "platform to write."),
    select_all: bool = typer.Option(False, "--all", rich_help_panel=INPUT, help="Every image "
                                    "and platform of the source, each to its own ACI in the "
                                    "DEST directory."),
    to: Optional[str] = typer.Option(None, "--to", "--format",
                                     click_type=OneOf(*WRITES), rich_help_panel=OUTPUT,
                                     help=f"The output's transport: {', '.join(WRITES)} "
                                     "(default: from DEST)."),
    squash: bool = typer.Option(False, "--squash", rich_help_panel=OUTPUT, help="OCI output: "
                                "one layer instead of one per ACI (or per source layer)."),
    layered: bool = typer.Option(False, "--layered", rich_help_panel=OUTPUT, help="ACI output: "
                                 "one ACI per OCI layer, chained by imageID, written into the "
                                 "DEST directory."),
    compression: Optional[str] = typer.Option(
        None, "--compression", click_type=OneOf(*COMPRESSIONS),
        rich_help_panel=OUTPUT, help="OCI layers: gzip (default), zstd, none. "
        "ACI: gzip (default), bzip2, xz, none."),
    name: Optional[str] = typer.Option(None, "--name", metavar="NAME", rich_help_panel=OUTPUT,
                                       help="ACI output: the image name (default: from the "
                                       "reference)."),
    tag: Optional[str] = typer.Option(None, "--tag", metavar="TAG", rich_help_panel=OUTPUT,
                                      help="OCI output: ref.name for the image (default: the "
                                      "version label, else 'latest')."),
    whitelist_mode: str = typer.Option("rkt", "--whitelist-mode",
                                       click_type=OneOf("rkt", "spec"),
                                       rich_help_panel=OUTPUT, help="pathWhitelist reading: "
                                       "rkt (what rkt did) or spec."),
    overwrite: bool = typer.Option(False, "--overwrite", "--force", rich_help_panel=OUTPUT,
                                   help="Replace an existing destination (in an existing OCI "
                                   "layout: only the image with that tag)."),
    image_id: bool = typer.Option(True, "--image-id/--no-image-id", rich_help_panel=OUTPUT,
                                  help=_IMAGE_ID_HELP),
    max_expand: MaxExpand = api.DEFAULT_MAX_EXPAND,
    quiet: bool = typer.Option(False, "--quiet", "-q", rich_help_panel=BEHAVIOUR,
                               help="No progress and no success line; failures are still "
                               "printed."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=BEHAVIOUR,
                                 help="Print the result as JSON."),
    remote: dict = None,
) -> None:
    opts = api.ConvertOptions(store=tuple(store), squash=squash, layered=layered,
                              compression=compression, platform=platform, ref=ref,
                              select_all=select_all, name=name, tag=tag,
                              whitelist_mode=whitelist_mode, overwrite=overwrite,
                              **remote,
                              max_expand=max_expand, image_id=image_id)
    with _errors(), _progress(quiet or as_json) as progress:
        if select_all:
            results = api.convert_all(src, dest, options=opts)
        else:
            results = [api.convert(src, dest, to=to, options=opts, progress=progress,
                                   warn=_warn)]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    elif not quiet:
        for r in results:
            typer.echo(r.to_text())


@app.command(cls=Grouped, help="""Show what an image source holds: the graph the converter works on.

\b
Examples:
  acioci inspect app.aci --store deps/
  acioci inspect app.aci --json | jq .dependencies
  acioci inspect --tags layout/                  # every image of a layout, as umoci ls
  acioci inspect layout/ --all                   # every image, described
""")
@remote_options
def inspect(
    src: str = typer.Argument(..., metavar="SRC", help="The image to inspect."),
    store: Store = [],
    ref: Optional[str] = typer.Option(None, "--ref", metavar="REF", rich_help_panel=INPUT,
                                      help="Which image of a layout or archive."),
    platform: Optional[str] = typer.Option(None, "--platform", metavar="OS/ARCH[/VARIANT]",
                                           rich_help_panel=INPUT,
                                           help="Which image of a multi-platform source."),
    select_all: bool = typer.Option(False, "--all", rich_help_panel=INPUT,
                                    help="Every image (and platform) the source holds."),
    tags: bool = typer.Option(False, "--tags", rich_help_panel=INPUT,
                              help="OCI layout or archive: list its images (tags, platform, "
                              "manifest digest), one a line, as umoci ls does."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=BEHAVIOUR,
                                 help="Machine-readable output (camelCase keys; env as "
                                 "\"K=V\" strings)."),
    max_expand: MaxExpand = api.DEFAULT_MAX_EXPAND,
    remote: dict = None,
) -> None:
    with _errors("interrupted"):
        options = api.ReadOptions(store=tuple(store), ref=ref, platform=platform,
                                  select_all=select_all, max_expand=max_expand, **remote)
        with api.open(src, options) as source:
            from .inspect import describe, manifests, matching, render_tags, render_tree

            found = manifests(source)
            if tags:
                if found is None:
                    raise api.UsageError("--tags lists the images of an OCI layout or "
                                         "oci-archive; this source is neither",
                                         file=source.where)
                listing = [{k: v for k, v in m.items() if k != "layerMediaTypes"}
                           for m in found]
                typer.echo(json.dumps(listing, indent=2) if as_json else render_tags(found))
                return
            images = source.images()
            for text in getattr(source, "warnings", ()):
                _warn(text)
            if not images:
                raise api.UsageError(f"no image matches; there are: "
                                     f"{api.what_there_is(src, options)}", file=source.where)
            if len(images) != 1 and not select_all:
                raise api.UsageError(f"{len(images)} images match; choose one with --ref or "
                                     "--platform, or use --all", file=source.where)
            data = [describe(image, manifest=matching(found, image)) for image in images]
    if as_json:
        typer.echo(json.dumps(data if select_all else data[0], indent=2, ensure_ascii=False))
    else:
        typer.echo("\n\n".join(render_tree(d) for d in data))


@app.command(cls=Grouped, help="""Validate OCI layouts, oci-archives, docker archives, ACIs and bare
manifest/config/index/ACI-manifest JSON files. Every problem is reported, one per line, as
FILE::PLACE: severity [rule] message. Exit 0 valid, 1 invalid, 2 unreadable or usage error.

\b
Examples:
  acioci validate layout/ app.aci
  acioci validate --recursive images/ --json > report.json
  acioci validate --fast --strict layout/      # skip layer hashing; warnings fail too
  acioci validate --type aci-manifest manifest
""")
@remote_options
def validate(
    paths: List[str] = typer.Argument(..., metavar="PATH...",
                                      help="Files or directories to validate."),
    type_: Optional[str] = typer.Option(None, "--type", metavar="TYPE",
                                        click_type=OneOf(*VALIDATE_TYPES),
                                        rich_help_panel=INPUT, help="Skip detection: one of "
                                        f"{', '.join(VALIDATE_TYPES)}."),
    recursive: bool = typer.Option(False, "--recursive", "-r", rich_help_panel=INPUT,
                                   help="Validate every image found below directories."),
    fast: bool = typer.Option(False, "--fast", rich_help_panel=BEHAVIOUR,
                              help="Do not read layers (no diff_id check)."),
    strict: bool = typer.Option(False, "--strict", rich_help_panel=BEHAVIOUR,
                                help="Warnings make a file invalid."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=BEHAVIOUR,
                                 help="Print a JSON report (see README)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", rich_help_panel=BEHAVIOUR,
                               help="Print only problems: no verdicts of valid files, no "
                               "summary."),
    max_expand: MaxExpand = api.DEFAULT_MAX_EXPAND,
    store: Store = [],
    remote: dict = None,
) -> None:
    from .validation import report as rep
    from .validation.run import expand, validate_path

    with _errors("interrupted"):
        options = api.ReadOptions(**remote, max_expand=max_expand, store=tuple(store))
        reports = [validate_path(p, type_=type_, fast=fast, options=options)
                   for p in expand(paths, recursive)]
    if as_json:
        typer.echo(rep.render_json(reports, strict))
    elif quiet:
        # only problems: findings, and the verdict of a file that has none to say why it failed
        lines = rep.render_text(reports, strict, verbose=False).splitlines()[:-1]  # no summary
        verdicts = {line for r in reports if r.findings
                    for line in (f"{r.file}: INVALID {r.type}", f"{r.file}: unreadable")}
        lines = [line for line in lines if line not in verdicts]
        if lines:
            typer.echo("\n".join(lines))
    else:
        typer.echo(rep.render_text(reports, strict, verbose=True))
    if any(r.unreadable for r in reports):
        raise typer.Exit(2)
    if not all(r.valid(strict) for r in reports):
        raise typer.Exit(1)


@app.command(cls=Grouped, help="""Convert many images: archives, layout directories, folders
searched recursively, or globs, in parallel worker processes. Outputs go under --out, named after
the inputs; existing outputs are skipped (resume), unless --force (or --overwrite). A bad input
fails alone.
Exit 0 when every input converted or was skipped, 1 when any failed, 130 when interrupted.

\b
Examples:
  acioci batch /srv/acis --to oci --out /srv/oci --jobs 4 --report report.json
  acioci batch 'exports/*.tar' --to aci --out acis/ --compression xz
  acioci batch store/ --to oci --out layouts/ --squash --json > report.json
  acioci batch store/ --to oci --out migrated/ --one-layout   # one layout, a tag per image
  acioci batch /shared/acis --to oci --out /shared/oci --cluster tcp://sched:8786
""")
@copy_remote_options
def batch(
    sources: List[str] = typer.Argument(..., metavar="SRC...",
                                        help="Inputs: archives, layouts, folders, globs."),
    store: Store = [],
    platform: Optional[str] = typer.Option(None, "--platform", metavar="OS/ARCH[/VARIANT]",
                                           rich_help_panel=INPUT, help="As for convert."),
    to: Optional[str] = typer.Option(None, "--to", click_type=OneOf("oci", "aci"),
                                     rich_help_panel=OUTPUT,
                                     help="oci or aci (oci for a registry --out)."),
    out: str = typer.Option(..., "--out", metavar="DIR", rich_help_panel=OUTPUT,
                            help="Output directory, or docker://HOST[:PORT]/NAMESPACE "
                            "(README: Batch conversion)."),
    one_layout: bool = typer.Option(False, "--one-layout", rich_help_panel=OUTPUT,
                                    help="OCI output: every image into one layout at --out, "
                                    "tagged by its path under its SRC (shared blobs stored "
                                    "once)."),
    squash: bool = typer.Option(False, "--squash", rich_help_panel=OUTPUT,
                                help="OCI output: one layer per image."),
    layered: bool = typer.Option(False, "--layered", rich_help_panel=OUTPUT,
                                 help="ACI output: one ACI per layer."),
    compression: Optional[str] = typer.Option(None, "--compression",
                                              click_type=OneOf(*COMPRESSIONS),
                                              rich_help_panel=OUTPUT, help="As for convert."),
    whitelist_mode: str = typer.Option("rkt", "--whitelist-mode",
                                       click_type=OneOf("rkt", "spec"),
                                       rich_help_panel=OUTPUT, help="rkt or spec."),
    image_id: bool = typer.Option(True, "--image-id/--no-image-id", rich_help_panel=OUTPUT,
                                  help=_IMAGE_ID_HELP),
    force: bool = typer.Option(False, "--force", "--overwrite", rich_help_panel=OUTPUT,
                               help="Convert again even if the output exists."),
    report: Optional[str] = typer.Option(None, "--report", metavar="FILE",
                                         rich_help_panel=OUTPUT,
                                         help="Write a JSON record per input."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", metavar="N",
                                       rich_help_panel=BEHAVIOUR,
                                       help="Worker processes (default: the CPU count)."),
    max_expand: MaxExpand = api.DEFAULT_MAX_EXPAND,
    quiet: bool = typer.Option(False, "--quiet", "-q", rich_help_panel=BEHAVIOUR,
                               help="No progress, no success lines, no summary; failures are "
                               "still printed."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=BEHAVIOUR,
                                 help="Print the report as JSON on stdout."),
    cluster: Optional[str] = typer.Option(
        None, "--cluster", metavar="ADDRESS", rich_help_panel=BEHAVIOUR,
        help="Convert on a Dask cluster: its scheduler (tcp://HOST:PORT), or "
        "local:N for a cluster of N workers inside this process. Every path must be one the workers see at the "
        "same place (README: Batch on a cluster)."),
    scheduler_file: Optional[str] = typer.Option(
        None, "--scheduler-file", metavar="FILE", rich_help_panel=BEHAVIOUR,
        help="Like --cluster, with the file `dask scheduler "
        "--scheduler-file` wrote."),
    remote: dict = None,
) -> None:
    from . import batch as batch_mod
    from .batch_names import is_registry

    if to is None and not is_registry(out):
        typer.echo("acioci: error: missing option '--to' (oci or aci)", err=True)
        raise typer.Exit(2)
    to = to or "oci"
    opts = api.ConvertOptions(store=tuple(store), squash=squash, layered=layered,
                              compression=compression, platform=platform,
                              whitelist_mode=whitelist_mode, max_expand=max_expand,
                              image_id=image_id, **remote)
    executor = None
    if cluster is not None or scheduler_file is not None:
        if jobs is not None:
            typer.echo("acioci: error: --jobs is for a batch on this machine; on a cluster, "
                       "its workers' threads are the parallelism", err=True)
            raise typer.Exit(2)
        with _errors():
            from .cluster import ClusterPool  # imports Dask only when it converts

            executor = ClusterPool(cluster, scheduler_file)
    bar = {}
    tty = sys.stderr.isatty()

    def on_start(all_jobs):
        if tty and not quiet:
            from tqdm import tqdm

            bar["bar"] = tqdm(total=sum(j.size for j in all_jobs), unit="B", unit_scale=True,
                              unit_divisor=1024, file=sys.stderr, desc="batch")

    def on_done(rec, done, total):
        if quiet:  # quiet means no progress and no successes; a failure still gets its line
            if rec.status == "failed":
                typer.echo(f"acioci: error: {rec.source}: {rec.error}", err=True)
            return
        if "bar" in bar:  # its bytes moved as the workers read them (on_bytes)
            bar["bar"].set_postfix_str(f"{done}/{total} images")
        else:
            why = f": {rec.error}" if rec.error else ""
            typer.echo(f"[{done}/{total}] {rec.status} {rec.source} -> {rec.destination}{why}",
                       err=True)

    try:
        with _errors():
            outcome = batch_mod.run(sources, out, to=to, options=opts, jobs=jobs, force=force,
                                    on_done=on_done, on_start=on_start, one_layout=one_layout,
                                    executor=executor,
                                    on_bytes=(lambda n: bar["bar"].update(n))
                                    if tty and not quiet else None)
    finally:
        if "bar" in bar:
            bar["bar"].close()
    data = outcome.report()
    if report:
        with open(report, "w") as fh:
            json.dump(data, fh, indent=2)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    elif not quiet:
        c = outcome.counts()
        typer.echo(f"converted {c['converted']}, skipped {c['skipped']}, failed {c['failed']}"
                   + (" (interrupted)" if outcome.interrupted else ""))
        for r in outcome.records:
            if r.status == "failed":
                typer.echo(f"  FAILED {r.source}: {r.error}")
    if outcome.interrupted:
        raise typer.Exit(130)
    if outcome.counts()["failed"]:
        raise typer.Exit(1)


@app.command(help="""Print the version.

\b
Examples:
  acioci version
""")
def version() -> None:
    typer.echo(f"acioci {__version__}")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"acioci {__version__}")
        raise typer.Exit(0)


@app.callback()
def _top(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit (as the `version` verb)."),
) -> None:
    """Convert container images between appc ACI and OCI."""


def main() -> None:
    # What the imports made (modules, classes, typer's app: ~20,000 objects) lives until the
    # process ends: set apart from the cyclic collector, no collection walks it again, the
    # one at exit included (measured: ~8 ms of CPU less per command, most of it at exit)
    gc.freeze()
    allocator.tune_for_streaming()  # buffers reused, not faulted in again (allocator.py)
    sys.argv[1:] = skopeo_spellings(sys.argv[1:])
    try:
        # not standalone: click would print a usage block and its own "Error:" for a usage
        # error; every error of acioci is one `acioci: error:` line instead
        code = app(prog_name="acioci", standalone_mode=False)
    except _click_errors.NoArgsIsHelpError as exc:  # `acioci` or `acioci convert` alone
        exc.show()
        code = exc.exit_code
    except _click_errors.ClickException as exc:
        message = exc.format_message().rstrip(".")
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        typer.echo(f"acioci: error: {message}", err=True)
        code = 2
    except typer.Abort:
        typer.echo("acioci: interrupted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
