"""appc image discovery and signature verification: the `appc:` source.

    from convert.discovery import fetch, FetchOptions
    with fetch("appc:example.com/app:1.0.0", platform="linux/amd64",
               options=FetchOptions(store=("deps/",))) as got:
        image = convert.readers.aci_chain.read(got.top_path, store=got.stores)
        got.top.signed_by, got.top.image_id, got.warnings

Modules, each with one job: `name` parses and checks what is asked for; `meta` reads discovery
pages; `template` renders URL templates and decides which URLs may be fetched; `client` is the
HTTP(S) layer; `discover` walks the name's prefixes; `openpgp` and `trust` read rkt's keystore;
`verify` runs gpgv; `fetch` ties them together, dependencies included.

Importing this package does not import `requests` (an optional extra, `acioci[discovery]`, and
~150 ms): only making an HTTP client does.
"""

from .fetch import Fetched, FetchedImage, FetchOptions, fetch
from .name import AppName, parse as parse_name
from .trust import DEFAULT_TRUST_DIRS

__all__ = ["AppName", "DEFAULT_TRUST_DIRS", "FetchOptions", "Fetched", "FetchedImage", "fetch",
           "parse_name"]
