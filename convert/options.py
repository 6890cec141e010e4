"""What a conversion was asked to do, split by the side that acts on it.

`ReadOptions` is what every source needs (which image, where dependencies live, how far an
archive may expand); `OciOutput` and `AciOutput` are what each writer needs. `ConvertOptions`
is the flat bag the CLI and `api.convert` fill, because a user names options, not directions;
`for_target` splits it and refuses an option that means nothing for the chosen output (`--name`
with OCI output, `--tag` with ACI output), so that nothing given is silently ignored.

Registries can be on both sides of one conversion (`docker://` to `docker://`), each with its
own credentials and trust, as skopeo's `--src-*` and `--dest-*` options say. `RemoteOptions` is
one side's; `ConvertOptions` holds the plain form (both sides) and each side's overrides, and
`reading` and `for_target` resolve them: a side's own value wins, else the plain one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UsageError

DEFAULT_MAX_EXPAND = 64 << 30  # decompressed bytes per archive; the max_expand option
WHITELIST_MODES = ("rkt", "spec")


@dataclass(frozen=True)
class RemoteOptions:
    """How to reach one registry: credentials (never in repr), an auth file, TLS trust."""

    creds: str | None = field(default=None, repr=False)  # USER[:PASS]
    authfile: str | None = None
    tls_verify: bool = True
    cert_dir: str | None = None

    def client(self) -> dict:
        """The keyword arguments of a registry client (convert/registry)."""
        return {"creds": self.creds, "authfile": self.authfile, "tls_verify": self.tls_verify,
                "cert_dir": self.cert_dir}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source: which of its images, and the limits that keep hostile archives in
    check."""

    store: tuple[str, ...] = ()   # ACI: directories searched for dependencies
    ref: str | None = None        # OCI/docker: which image (ref.name, full name, RepoTag, @N)
    platform: str | None = None   # OCI/docker: which platform; ACI: the platform to write
    select_all: bool = False      # OCI/docker: every image, each to its own output
    max_expand: int | None = DEFAULT_MAX_EXPAND
    image_id: bool = True         # ACI: record its image ID (costs a SHA-512 pass)
    once: bool = False            # ACI: a lone ACI may be read in one pass by the writer
    # remote sources (appc:): whose keys to trust, which CAs, what may be skipped
    trust_dirs: tuple[str, ...] = ()
    cert_dir: str | None = None
    insecure: tuple[str, ...] = ()  # --insecure-options: http, tls, image
    # registries (docker://): as skopeo's --creds, --authfile, --tls-verify, --cert-dir
    creds: str | None = field(default=None, repr=False)
    authfile: str | None = None
    tls_verify: bool = True

    def registry(self) -> dict:
        """The keyword arguments of a registry client (convert/registry) for the source."""
        return RemoteOptions(self.creds, self.authfile, self.tls_verify, self.cert_dir).client()


@dataclass(frozen=True)
class OciOutput:
    """How an OCI output is written (a layout, an oci-archive, a docker archive, a push)."""

    squash: bool = False          # one layer instead of one per ACI (or per source layer)
    compression: str = "gzip"
    tag: str | None = None        # ref.name; None: the version label, else 'latest'
    whitelist_mode: str = "rkt"   # how an ACI chain is rendered into layers
    overwrite: bool = False
    add_to_layout: bool = True    # an existing layout gets the image beside its others
    registry: RemoteOptions = RemoteOptions()  # docker://: the destination registry's side
    # docker:// in a batch: a file the batch's pushes share, saying which repository of the
    # registry has which blob, so that a later push mounts it instead of uploading it again
    mount_ledger: str | None = None


@dataclass(frozen=True)
class AciOutput:
    """How an ACI output is written (one ACI, or a --layered chain of them)."""

    layered: bool = False         # one ACI per OCI layer instead of one squashed ACI
    compression: str = "gzip"
    name: str | None = None       # the image name; None: from the source
    whitelist_mode: str = "rkt"   # ACI -> ACI: how the chain is flattened
    overwrite: bool = False


@dataclass(frozen=True)
class ConvertOptions:
    """Everything `convert` and `batch` take, as the user gives it."""

    store: tuple[str, ...] = ()
    squash: bool = False
    layered: bool = False
    compression: str | None = None  # None: the target format's default (gzip)
    platform: str | None = None
    ref: str | None = None
    select_all: bool = False
    name: str | None = None
    tag: str | None = None
    whitelist_mode: str = "rkt"
    overwrite: bool = False
    add_to_layout: bool = True
    max_expand: int | None = DEFAULT_MAX_EXPAND
    image_id: bool = True
    trust_dirs: tuple[str, ...] = ()
    cert_dir: str | None = None
    insecure: tuple[str, ...] = ()
    creds: str | None = field(default=None, repr=False)
    authfile: str | None = None
    tls_verify: bool = True
    # one side's own registry options, where both sides are registries; None: the plain one
    src_creds: str | None = field(default=None, repr=False)
    src_authfile: str | None = None
    src_tls_verify: bool | None = None
    src_cert_dir: str | None = None
    dest_creds: str | None = field(default=None, repr=False)
    dest_authfile: str | None = None
    dest_tls_verify: bool | None = None
    dest_cert_dir: str | None = None
    mount_ledger: str | None = None  # see OciOutput

    def __post_init__(self) -> None:
        if self.whitelist_mode not in WHITELIST_MODES:
            raise UsageError(f"the whitelist mode must be rkt or spec, not "
                             f"{self.whitelist_mode!r}")
        object.__setattr__(self, "store", tuple(self.store))

    def side(self, which: str) -> RemoteOptions:
        """The registry options of side `which` ("src" or "dest"): its own where given, else
        the plain ones."""
        def pick(name: str):
            own = getattr(self, f"{which}_{name}")
            return own if own is not None else getattr(self, name)

        return RemoteOptions(creds=pick("creds"), authfile=pick("authfile"),
                             tls_verify=pick("tls_verify"), cert_dir=pick("cert_dir"))

    def reading(self, *, once: bool = False) -> ReadOptions:
        src = self.side("src")
        return ReadOptions(store=self.store, ref=self.ref, platform=self.platform,
                           select_all=self.select_all, max_expand=self.max_expand,
                           image_id=self.image_id, once=once, trust_dirs=tuple(self.trust_dirs),
                           cert_dir=src.cert_dir, insecure=tuple(self.insecure),
                           creds=src.creds, authfile=src.authfile, tls_verify=src.tls_verify)

    def for_target(self, format_: str) -> OciOutput | AciOutput:
        """The writer's options for output format `format_` ("oci" or "aci")."""
        if format_ == "aci":
            self._refuse("OCI output", squash=self.squash, tag=self.tag)
            return AciOutput(layered=self.layered, compression=self.compression or "gzip",
                             name=self.name, whitelist_mode=self.whitelist_mode,
                             overwrite=self.overwrite)
        self._refuse("ACI output", layered=self.layered, name=self.name)
        return OciOutput(squash=self.squash, compression=self.compression or "gzip",
                         tag=self.tag, whitelist_mode=self.whitelist_mode,
                         overwrite=self.overwrite, add_to_layout=self.add_to_layout,
                         registry=self.side("dest"), mount_ledger=self.mount_ledger)

    @staticmethod
    def _refuse(other: str, **given) -> None:
        wrong = [k for k, v in given.items() if v]
        if wrong:
            names = " and ".join(k.replace("_", "-") for k in wrong)
            raise UsageError(f"the {names} option{' is' if len(wrong) == 1 else 's are'} for "
                             f"{other} only")
