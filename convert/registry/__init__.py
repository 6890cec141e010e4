"""Registries (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`): the client layer of issue 15.

Importing this package, or any module in it, costs nothing: the HTTP stack (the standard
library's http.client, `connections.py`) is imported with a client's first request, so only
`docker://` references pay for it.

    reference.parse(text) -> Reference                 # skopeo's reading, Docker Hub included
    client.connect(ref, **options) -> RegistryClient   # TLS, credentials, retries
    blobs.open_source(text, **options) -> RegistryBlobs  # a registry image as an OCI layout
    push.push_layout(layout_or_blobs, "docker://...", **options) -> PushResult

`RegistryClient` is the narrow API the rest builds on: `get_manifest`, `head_manifest`,
`open_blob`, `blob_size`, `mount_blob`, `upload_blob`, `put_manifest`. Beneath it: `http`
(retries, redirects, error texts) over `connections` (kept-alive connections, proxies, TLS),
`auth` (challenges, tokens), `credentials` (auth files, helpers), `tls` (certificate
directories), `manifests` and `streams` (what is checked).

Errors are `convert.errors` classes: `RegistryError`, `AuthenticationError`, `NotFoundError`
(exit 2: the registry, not the image) and `DigestMismatchError`, `LimitError`, `FormatError`
for bad content (exit 1). Credentials never appear in errors or reprs; nothing here logs.
"""
