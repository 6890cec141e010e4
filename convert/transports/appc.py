"""`appc:NAME[:VERSION][,LABEL=VALUE...]`: an ACI fetched by appc discovery, as rkt fetched
it, with every dependency, each checked against a detached OpenPGP signature by a key trusted
for its name (rkt's keystore) before anything is read. A source only: converting changes the
bytes, so this is the last moment the publisher's signature can be checked, and the OCI output
records who vouched for it (`io.acioci.aci.signedBy`). The fetched files live in a temporary
store that closing the source removes. See `convert/discovery/`.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import UsageError
from ..graph import Image
from ..options import ReadOptions
from .base import Reference

NAME = "appc"
FORMAT = "aci"
HELP = "an ACI by name, via appc discovery, signature checked: appc:NAME[:VERSION][,L=V...]"
INSECURE = ("http", "tls", "image")


def parse(rest: str, text: str) -> Reference:
    from ..discovery import parse_name

    parse_name(rest)  # refuse a bad name before any work
    return Reference(NAME, rest, None, text)


def output_name(ref: Reference) -> str:
    """`example.com/app:1.0.0,os=linux` -> `example.com/app-1.0.0` (batch output names)."""
    name = ref.path.split(",", 1)[0]
    base, _, version = name.partition(":")
    return f"{base}-{version or 'latest'}"


def fetch_options(options: ReadOptions):
    from ..discovery import DEFAULT_TRUST_DIRS, FetchOptions
    from ..readers.aci import AciFiles

    unknown = set(options.insecure) - set(INSECURE)
    if unknown:
        raise UsageError(f"the insecure options are {', '.join(INSECURE)}, not "
                         f"{', '.join(sorted(unknown))}")
    return FetchOptions(trust_dirs=options.trust_dirs or DEFAULT_TRUST_DIRS,
                        cert_dir=options.cert_dir, insecure_http="http" in options.insecure,
                        insecure_tls="tls" in options.insecure,
                        insecure_skip_image="image" in options.insecure, store=options.store,
                        acis=AciFiles.from_options(options))


class AppcSource:
    """Fetches on first use; `close` (the end of the `with`) removes what was fetched."""

    def __init__(self, ref: Reference, options: ReadOptions) -> None:
        self.ref = ref
        self.options = options
        self.where = ref.text or ref.path
        self.fetched = None
        self.warnings: list[str] = []

    def fetch(self):
        if self.fetched is None:
            from ..discovery import fetch

            self.fetched = fetch(self.ref.path, platform=self.options.platform,
                                 options=fetch_options(self.options))
            self.warnings = list(self.fetched.warnings)
        return self.fetched

    def images(self) -> list[Image]:
        from ..readers import aci_chain
        from ..readers.aci import AciFiles

        got = self.fetch()
        o = self.options
        image = aci_chain.read(got.top_path, store=tuple(got.stores),
                               acis=AciFiles.from_options(o), record_id=o.image_id)
        if image.origin is not None and got.top.signed_by:
            image = replace(image, origin=replace(image.origin, signed_by=got.top.signed_by))
        return [image]

    def __enter__(self) -> "AppcSource":
        return self

    def __exit__(self, *exc) -> None:
        if self.fetched is not None:
            self.fetched.close()
            self.fetched = None


def open(ref: Reference, options: ReadOptions) -> AppcSource:
    return AppcSource(ref, options)


def validate(ref: Reference, report, *, fast: bool, options: ReadOptions) -> None:
    from ..readers.aci import AciFiles
    from ..validation.aci import validate_aci

    with AppcSource(ref, options) as source:
        got = source.fetch()
        for w in source.warnings:
            report.warn("appc.insecure", "", w)
        validate_aci(got.top_path, report, acis=AciFiles.from_options(options),
                     store=tuple(got.stores))
