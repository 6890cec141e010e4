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
    from typer._click.types import ParamType as _ParamType
except ImportError:  # older typer runs on click itself
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


_REMOTE = {"trust_dir": (TrustDir, []), "cert_dir": (CertDir, None),
           "insecure": (Insecure, None), "creds": (Creds, None), "authfile": (AuthFile, None),
           "tls_verify": (TlsVerify, True)}


def remote_options(verb):
    """Give a verb the options of remote sources (appc:, docker://), defined once here, and
    hand them to it as one `remote` dict of ReadOptions fields: every verb that reads an image
    takes the same six, spelled and documented the same."""
    sig = inspect.signature(verb, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "remote"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                      annotation=kind, default=default)
             for name, (kind, default) in _REMOTE.items()]

    @functools.wraps(verb)
    def wrapper(**kw):
        got = {name: kw.pop(name) for name in _REMOTE}
        remote = {"trust_dirs": tuple(got["trust_dir"]), "cert_dir": got["cert_dir"],
                  "insecure": tuple(x for x in (got["insecure"] or "").split(",") if x),
                  "creds": got["creds"], "authfile": got["authfile"],
                  "tls_verify": got["tls_verify"]}
        return verb(**kw, remote=remote)

    wrapper.__signature__ = sig.replace(parameters=own + added)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + added}
    return wrapper


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
