"""The command line's shared vocabulary: options that several verbs take (defined once, so that
they read and behave the same in each), the help panels they are listed under, and the small
parameter types typer's own copy of click lacks. `cli.py` holds the verbs; this holds what they
have in common.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, List, Optional

import typer
from typer.core import TyperCommand

try:  # typer 0.2x carries its own copy of click; its parameters are that copy's
    from typer._click import exceptions as _click_errors
    from typer._click.types import ParamType as _ParamType
except ImportError:  # older typer runs on click itself
    from click import exceptions as _click_errors
    from click.types import ParamType as _ParamType

from . import transports

# Help panels. Typer draws `rich_help_panel` only with rich installed (and rich_markup_mode
# set); acioci does without rich, so Grouped below draws the same panels with click's plain
# formatter.
INPUT = "Input selection"
OUTPUT = "Output"
BEHAVIOUR = "Behaviour"
REMOTE = "Remote sources (appc:, docker://)"


class Grouped(TyperCommand):
    """A command whose --help lists options under their panel's heading (in the order the
    panels first appear) instead of one long list; options without a panel come last."""

    def format_options(self, ctx, formatter) -> None:
        args, panels = [], {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append(record)
            else:
                panel = getattr(param, "rich_help_panel", None) or "Other options"
                panels.setdefault(panel, []).append(record)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if "Other options" in panels:
            panels["Other options"] = panels.pop("Other options")
        for title, records in panels.items():
            with formatter.section(title):
                formatter.write_dl(records)


class OneOf(_ParamType):
    """One of a few words, listed in --help (as the metavar) and checked when parsed: the
    click.Choice that typer's own click copy does not have."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.name = "|".join(choices)

    def get_metavar(self, param, ctx=None) -> str:
        return self.name

    def convert(self, value, param, ctx):
        if value is None or value in self.choices:
            return value
        self.fail(f"{value!r} is not one of {', '.join(self.choices)}", param, ctx)


class Bytes(_ParamType):
    """A size in bytes, or with a binary suffix K, M, G or T (64G is 64 GiB), as dd and
    ulimit users write them."""

    name = "size"
    _SUFFIX = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in self._SUFFIX else ""
        number = text[:-1] if unit else text
        if not number.isdigit():
            self.fail(f"{value!r} is not a size: bytes, or a number with K, M, G or T", param,
                      ctx)
        return int(number) << self._SUFFIX[unit]


WRITES = [n for n in transports.NAMES if transports.writes(n)]
COMPRESSIONS = ["gzip", "zstd", "bzip2", "xz", "none"]
# validate --type's choices; validation.run.TYPES is the truth (checked when validate runs), kept
# here so that --help does not import the validator
VALIDATE_TYPES = ("oci-layout", "oci-archive", "docker-archive", "aci", "aci-manifest",
                   "oci-index", "oci-manifest", "oci-config", "oci-layout-file",
                   "oci-descriptor")


# Options that several verbs take, defined once so that they read and behave the same in each
Store = Annotated[List[str], typer.Option(
    "--store", metavar="DIR", rich_help_panel=INPUT,
    help="Directory of .aci files for dependencies (searched recursively; repeatable).")]
MaxExpand = Annotated[int, typer.Option(
    "--max-expand", metavar="SIZE", click_type=Bytes(), show_default=False,
    rich_help_panel=BEHAVIOUR, help="Refuse archives that decompress to more than this: "
    "bytes, or K, M, G, T (binary)  [default: 64G].")]
TrustDir = Annotated[List[str], typer.Option(
    "--trust-dir", metavar="DIR", rich_help_panel=REMOTE,
    help="appc: rkt keystore of trusted keys, prefix.d/ and root.d/ (repeatable; default "
    "/etc/rkt/trustedkeys, then /usr/lib/rkt/trustedkeys).")]
CertDir = Annotated[Optional[str], typer.Option(
    "--cert-dir", metavar="DIR", rich_help_panel=REMOTE,
    help="appc: and docker://: *.crt certificate authorities to trust besides the system's "
    "(registries: also client.cert and client.key).")]
Insecure = Annotated[Optional[str], typer.Option(
    "--insecure-options", metavar="LIST", rich_help_panel=REMOTE,
    help="appc: what may be skipped, comma-separated: http (plain HTTP), tls (unverified "
    "TLS), image (no signature check; said on stderr).")]
Creds = Annotated[Optional[str], typer.Option(
    "--creds", metavar="USER[:PASS]", rich_help_panel=REMOTE,
    help="docker://: registry credentials (never printed).")]
AuthFile = Annotated[Optional[str], typer.Option(
    "--authfile", metavar="FILE", rich_help_panel=REMOTE,
    help="docker://: an auth.json; default: REGISTRY_AUTH_FILE, then the "
    "containers-auth.json(5) search order, then ~/.docker/config.json.")]
TlsVerify = Annotated[bool, typer.Option(
    "--tls-verify/--no-tls-verify", show_default=False, rich_help_panel=REMOTE,
    help="docker://: verify TLS (the default); --no-tls-verify also allows plain HTTP, "
    "as skopeo's --tls-verify=false.")]


# skopeo's --src-* and --dest-* forms, for a copy whose both sides are registries
SIDES = {"src": "the source", "dest": "the destination"}
_SIDE_OPTIONS = ("creds", "authfile", "tls_verify", "cert_dir")


def _side_option(side: str, name: str):
    whose = SIDES[side]
    if name == "tls_verify":
        return Annotated[Optional[bool], typer.Option(
            f"--{side}-tls-verify/--no-{side}-tls-verify", show_default=False,
            rich_help_panel=REMOTE, help=f"As --tls-verify, for {whose} registry only.")]
    flag = "--" + side + "-" + name.replace("_", "-")
    metavar = {"creds": "USER[:PASS]", "authfile": "FILE", "cert_dir": "DIR"}[name]
    return Annotated[Optional[str], typer.Option(
        flag, metavar=metavar, rich_help_panel=REMOTE,
        help=f"As --{name.replace('_', '-')}, for {whose} registry only"
        + (" (never printed)." if name == "creds" else "."))]


_REMOTE = {"trust_dir": (TrustDir, []), "cert_dir": (CertDir, None),
           "insecure": (Insecure, None), "creds": (Creds, None), "authfile": (AuthFile, None),
           "tls_verify": (TlsVerify, True)}
# convert and batch: --tls-verify is None when not given, so that a side form can be told
# apart from a plain one that agrees with the default
_COPY_REMOTE = {**_REMOTE, "tls_verify": (Annotated[Optional[bool], TlsVerify.__metadata__[0]],
                                          None)}
_COPY_REMOTE.update({f"{side}_{name}": (_side_option(side, name), None)
                     for side in SIDES for name in _SIDE_OPTIONS})


def _remote(got: dict) -> dict:
    return {"trust_dirs": tuple(got["trust_dir"]), "cert_dir": got["cert_dir"],
            "insecure": tuple(x for x in (got["insecure"] or "").split(",") if x),
            "creds": got["creds"], "authfile": got["authfile"],
            "tls_verify": True if got["tls_verify"] is None else got["tls_verify"]}


def _adding(verb, options: dict, make_remote):
    """`verb` with `options` (name -> (annotation, default)) added to its signature, handed to
    it as one `remote` dict made by `make_remote` from their values."""
    sig = inspect.signature(verb, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "remote"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                               annotation=kind, default=default)
             for name, (kind, default) in options.items()]

    @functools.wraps(verb)
    def wrapper(**kw):
        remote = make_remote({name: kw.pop(name) for name in options})
        return verb(**kw, remote=remote)

    wrapper.__signature__ = sig.replace(parameters=own + added)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + added}
    return wrapper


def remote_options(verb):
    """Give a verb the options of remote sources (appc:, docker://), defined once here, and
    hand them to it as one `remote` dict of ReadOptions fields: every verb that reads an image
    takes the same six, spelled and documented the same."""
    return _adding(verb, _REMOTE, _remote)


def copy_remote_options(verb):
    """`remote_options` for verbs with a source and a destination (convert, batch): besides
    the plain forms, `--src-*` and `--dest-*` ones for each registry option, as skopeo copy
    has them. A plain form means both sides (whichever is a registry); a side form, that side
    only. The `remote` dict holds ConvertOptions fields. A side form that disagrees with the
    plain form given beside it is a usage error: one of the two would be ignored."""
    def make(got: dict) -> dict:
        remote = _remote(got)
        for side in SIDES:
            for name in _SIDE_OPTIONS:
                value, plain = got[f"{side}_{name}"], got[name]
                if value is not None and plain is not None and value != plain:
                    shown = "" if name == "creds" else f" ({_shown(plain)} and {_shown(value)})"
                    raise _click_errors.UsageError(
                        f"{_flag(name)} and {_flag(name, side)} disagree{shown}: give the "
                        "side forms alone, or one plain form for both sides")
                remote[f"{side}_{name}"] = value
        return remote

    return _adding(verb, _COPY_REMOTE, make)


def _flag(name: str, side: str | None = None) -> str:
    if name == "tls_verify":
        return f"--{side + '-' if side else ''}tls-verify"
    return f"--{side + '-' if side else ''}{name.replace('_', '-')}"


# skopeo spells a boolean --tls-verify=false; click takes no value on a flag
_SPELLED = {f"--{s}tls-verify={v}": f"--{'' if v == 'true' else 'no-'}{s}tls-verify"
            for s in ("", "src-", "dest-") for v in ("true", "false")}


def skopeo_spellings(argv: list[str]) -> list[str]:
    """`--tls-verify=false` (and its --src-/--dest- forms) as click's `--no-tls-verify`."""
    return [_SPELLED.get(a, a) for a in argv]


def _shown(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# Library errors speak the library's terms and name the options that bear on them by their
# library names (`AciociError.hint_option`); the CLI says how to give each on the command line.
FLAGS = {  # option -> (the flag as the verb declares it, how a hint shows it)
    "store": ("--store", "--store DIR"), "ref": ("--ref", "--ref REF"),
    "platform": ("--platform", "--platform OS/ARCH[/VARIANT]"), "select_all": ("--all",) * 2,
    "name": ("--name", "--name NAME"), "tag": ("--tag", "--tag TAG"),
    "overwrite": ("--overwrite",) * 2, "layered": ("--layered",) * 2,
    "compression": ("--compression",) * 2, "to": ("--to",) * 2,
    "max_expand": ("--max-expand", "--max-expand SIZE"), "type": ("--type", "--type TYPE"),
    "insecure": ("--insecure-options", "--insecure-options http,tls,image"),
    "cert_dir": ("--cert-dir", "--cert-dir DIR"),
    "tls_verify": ("--no-tls-verify", "--tls-verify=false"),
    "cluster": ("--cluster", "--cluster ADDRESS"),
    "scheduler_file": ("--scheduler-file", "--scheduler-file FILE"),
    "one_layout": ("--one-layout",) * 2,
}


def hint(options: tuple[str, ...], ctx=None) -> str:
    """` (use --store DIR)` for an error whose `hint_option` is ("store",), naming only the
    flags the running verb has (batch has no --ref); "" when none applies."""
    have = None
    if ctx is not None:
        have = {opt for p in ctx.command.params for opt in (*p.opts, *p.secondary_opts)}
    flags = [FLAGS[o][1] for o in options
             if o in FLAGS and (have is None or FLAGS[o][0] in have)]
    return f" (use {' or '.join(flags)})" if flags else ""
