"""A client for one registry (distribution spec v2): manifests and blobs, in and out.

    client = connect(reference.parse("docker://127.0.0.1:5000/app:1.0"), tls_verify=False)
    manifest = client.get_manifest("app", "1.0")         # bytes, media type, verified digest
    with client.open_blob("app", digest, size) as fh:   # streamed, verified at EOF
        ...
    client.upload_blob("app", fh, digest=d, size=n)     # HEAD, mount, or streamed upload
    client.put_manifest("app", "1.0", data, media_type) # last: the caller pushes blobs first

Connection: `GET /v2/` on https first; only with `tls_verify=False` is plain http tried next,
as skopeo does (no special case for localhost). The ping's challenge sets up authentication
(`auth.py`). Everything read is verified: a manifest against the digest asked for, or else
the registry's `Docker-Content-Digest`; a blob against its digest and size while it streams.
Manifests are refused over `MAX_MANIFEST` bytes while reading, and Docker schema 1 manifests
are refused outright (unsigned content addressing does not hold for them).

Pushing: the caller pushes every blob (config and layers) and then the manifest; a registry
may refuse a manifest whose blobs it lacks, and pushing the manifest first would publish a tag
that cannot be pulled. `upload_blob` takes a readable stream or an iterable of chunks, so a
writer can hand over its output without a file in between; the digest is computed while
streaming when not known in advance (then HEAD and mount are skipped).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import quote, urlsplit

from ..errors import DigestMismatchError, LimitError
from ..graph import Digest
from . import credentials as credentials_mod, redact, tls as tls_mod
from .auth import Authorizer, parse_challenges, scope
from .errors import AuthenticationError, NotFoundError, RegistryError
from .http import Http, follow, header_int, read_whole
from .manifests import ACCEPT, MAX_MANIFEST, Manifest, media_type_of, verify_bytes
from .reference import Reference, check_repository, check_tag_or_digest
from .streams import BlobStream, SizedUploadBody, UploadBody

_ERROR_BODY = 4096


@dataclass(frozen=True)
class BlobResult:
    digest: str
    size: int  # -1 when nobody said (a mount, or a HEAD without Content-Length, of no `size`)
    how: str  # "exists" (HEAD found it), "mounted" (from another repository), "uploaded"


def _known(size: int | None) -> int:
    return size if size is not None else -1


def connect(ref: Reference, **options) -> "RegistryClient":
    """A client for the registry of `ref`, with credentials looked up for its repository."""
    return RegistryClient(ref.registry, repository=ref.repository, endpoint=ref.endpoint,
                          **options)


class RegistryClient:
    """One registry. Options: `creds` ("USER[:PASS]"), `authfile`, `tls_verify`, `cert_dir`,
    `certs_roots` (per-registry certificate roots; tests), `timeout` (connect, read) seconds,
    `retries`, `backoff`, `max_redirects`, `progress` (called with each count of blob bytes
    sent or received), `prompt` (asks for a password when `creds` has none), `env`/`home`
    (where auth files are looked up; tests). One thread at a time: the token cache and the
    ping state are not locked; parallel transfers take a client each."""

    def __init__(self, registry: str, *, repository: str = "", endpoint: str | None = None,
                 creds: str | None = None, authfile: str | None = None,
                 tls_verify: bool = True, cert_dir: str | None = None,
                 certs_roots: tuple[str, ...] | None = None,
                 timeout: tuple[float, float] = (15.0, 60.0), retries: int = 4,
                 backoff: float = 0.5, max_redirects: int = 10,
                 progress: Callable[[int], None] | None = None,
                 prompt: Callable[[str], str] | None = None,
                 env=None, home: str | None = None) -> None:
        self.registry = registry
        self.endpoint = endpoint or registry
        self.progress = progress
        self._cred_lookup = dict(authfile=authfile, env=env, home=home)
        found = credentials_mod.find(registry, repository, creds=creds, prompt=prompt,
                                     **self._cred_lookup)
        # certs.d directories are named as the user writes the registry (docker.io, not
        # registry-1.docker.io), as containers/image names them
        self.tls = tls_mod.settings(registry, verify=tls_verify, cert_dir=cert_dir,
                                    roots=certs_roots)
        self.http = Http(self.tls, timeout=timeout, retries=retries, backoff=backoff,
                         max_redirects=max_redirects, secrets=lambda: self.auth.secrets())
        self.auth = Authorizer(self.http, found, where=self.endpoint)
        self._base: str | None = None

    def __repr__(self) -> str:
        return f"RegistryClient({self.endpoint!r}, base={self._base!r})"

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- plumbing ------------------------------------------------------------------------

    def base(self) -> str:
        """`scheme://host[:port]`, found by pinging `/v2/` (https, then http if allowed)."""
        if self._base is not None:
            return self._base
        schemes = ("https", "http") if not self.tls.verify else ("https",)
        failure: RegistryError | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.endpoint}/v2/"
            try:
                resp = self.http.send("GET", url)
            except RegistryError as exc:
                failure = failure or exc
                continue
            with resp:
                if resp.status_code == 401:
                    self.auth.set_challenge(resp.headers.get("WWW-Authenticate"), url)
            self._base = f"{scheme}://{self.endpoint}"
            return self._base
        assert failure is not None
        if self.tls.verify and failure.tls:
            failure.message += " (for a plain-HTTP or self-signed registry, set " \
                               "tls_verify=False, or trust its CA with a cert_dir)"
            failure.hint_option = ("tls_verify", "cert_dir")
        raise failure

    def _url(self, repo: str, path: str) -> str:
        repo = check_repository(repo)  # before any connection is tried
        return f"{self.base()}/v2/{repo}/{path}"

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base())
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _request(self, method: str, url: str, scopes: tuple[str, ...], *,
                 headers: dict | None = None, data=None, redirects: bool = False,
                 replayable: bool = True):
        """Send with authorization for `scopes`; one fresh-token retry on a 401 when the
        request can be replayed. 401/403 become AuthenticationError; other statuses are the
        caller's to judge."""
        hdrs = dict(headers or {})
        if self._same_origin(url):  # never hand our credentials to another host
            hdrs.update(self.auth.headers(scopes))
        resp = self.http.send(method, url, headers=hdrs, data=data,
                              redirects=redirects, retry=replayable)
        # a 401 from the host a redirect led to (a CDN) is that host's: its challenge never
        # sets up, nor adds scopes to, the authentication the registry's credentials go to
        if resp.status_code == 401 and replayable and self._same_origin(resp.url):
            header = resp.headers.get("WWW-Authenticate")
            bearer = next((c for c in parse_challenges(header) if c.scheme == "bearer"), None)
            first_challenge = self.auth.challenge is None
            if first_challenge:  # the ping was let through, this resource is not
                self.auth.set_challenge(header, url)
            if (first_challenge and self.auth.challenge is not None) or (
                    bearer is not None and self.auth.challenge.scheme == "bearer"):
                resp.close()
                hdrs.update(self.auth.headers(scopes, fresh=True, extra=bearer))
                resp = self.http.send(method, url, headers=hdrs, data=data,
                                      redirects=redirects, retry=replayable)
        if resp.status_code in (401, 403):
            raise self._auth_error(resp, method, url, scopes, replayable)
        return resp

    def _auth_error(self, resp, method: str, url: str, scopes, replayable: bool):
        detail = self._detail(resp)
        creds = self.auth.creds
        if not self._same_origin(resp.url):  # sent there without our credentials
            text = f"{method}: refused by the host a redirect led to (HTTP {resp.status_code})"
            url = resp.url
        elif resp.status_code == 403:
            text = f"{method}: access denied for {' '.join(scopes)}"
        elif creds is None:
            searched = credentials_mod.searched(**self._cred_lookup)
            text = (f"{method}: the registry requires authentication and no credentials were "
                    f"found (looked in {searched})")
        else:
            text = f"{method}: the registry rejected the credentials from {creds.origin}"
        if resp.status_code == 401 and not replayable:
            text += " (an upload stream cannot be sent twice)"
        return AuthenticationError(redact.scrub(text + detail, self.auth.secrets()),
                                   file=redact.url(url), status=resp.status_code)

    def _detail(self, resp) -> str:
        """`: CODE message` from a distribution error body, short and scrubbed."""
        try:
            body = resp.in_time().read(_ERROR_BODY)
            doc = json.loads(body)
            first = doc["errors"][0]
            text = f"{first.get('code', '')} {first.get('message', '')}".strip()
        except Exception:  # any body at all: this is only decoration for an error message
            return ""
        finally:
            resp.close()
        return f": {redact.scrub(text[:200], self.auth.secrets())}" if text else ""

    def _status_error(self, resp, method: str, url: str, what: str) -> RegistryError:
        status = resp.status_code
        detail = self._detail(resp)
        cls = NotFoundError if status == 404 else RegistryError
        return cls(f"{method} {what}: HTTP {status}{detail}", file=redact.url(url),
                   status=status)

    # -- manifests -----------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str, *,
                     max_size: int = MAX_MANIFEST) -> Manifest:
        """The manifest or index `reference` (a tag or a digest) names, verified."""
        url = self._url(repo, f"manifests/{check_tag_or_digest(reference)}")
        resp = self._request("GET", url, (scope(repo, ("pull",)),),
                             headers={"Accept": ", ".join(ACCEPT)},
                             redirects=True)
        try:
            if resp.status_code != 200:
                raise self._status_error(resp, "GET", url, "manifest")
            length = header_int(resp.headers.get("Content-Length"))
            if length is not None and length > max_size:
                raise LimitError(f"manifest is {length} bytes, over the limit of {max_size}",
                                 file=redact.url(url), expected=f"<= {max_size}", actual=length)
            data = read_whole(resp, max_size + 1, url, length)
            header_digest = resp.headers.get("Docker-Content-Digest")
            content_type = redact.shown(
                (resp.headers.get("Content-Type") or "").split(";")[0].strip())
        finally:
            resp.close()
        if len(data) > max_size:
            raise LimitError(f"manifest is over the limit of {max_size} bytes",
                             file=redact.url(url), expected=f"<= {max_size}",
                             actual=f"> {max_size}")
        media_type = media_type_of(data, content_type, redact.url(url))
        want = reference if ":" in reference else header_digest
        digest = verify_bytes(data, want, redact.url(url), "manifest")
        return Manifest(data, media_type, digest)

    def head_manifest(self, repo: str, reference: str) -> dict | None:
        """The descriptor (mediaType, digest, size) of a manifest, or None if unknown. Not
        every registry sends the digest on HEAD; then `digest` is missing."""
        url = self._url(repo, f"manifests/{check_tag_or_digest(reference)}")
        resp = self._request("HEAD", url, (scope(repo, ("pull",)),),
                             headers={"Accept": ", ".join(ACCEPT)}, redirects=True)
        with resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._status_error(resp, "HEAD", url, "manifest")
            desc = {"mediaType": (resp.headers.get("Content-Type") or "").split(";")[0].strip(),
                    "size": header_int(resp.headers.get("Content-Length"))}
            if resp.headers.get("Docker-Content-Digest"):
                desc["digest"] = resp.headers["Docker-Content-Digest"]
            return desc

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        """Publish a manifest under a tag or its digest; returns its digest. Push every blob
        it refers to first."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ":" in reference:
            verify_bytes(data, reference, f"manifest for {repo}@{reference}", "manifest")
            digest = reference
        if len(data) > MAX_MANIFEST:
            raise LimitError(f"manifest is {len(data)} bytes, over the limit of {MAX_MANIFEST}",
                             expected=f"<= {MAX_MANIFEST}", actual=len(data))
        url = self._url(repo, f"manifests/{check_tag_or_digest(reference)}")
        resp = self._request("PUT", url, (scope(repo, ("pull", "push")),), data=data,
                             headers={"Content-Type": media_type})
        with resp:
            if resp.status_code not in (200, 201, 202):
                raise self._status_error(resp, "PUT", url, "manifest")
            answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered.startswith("sha256:") and answered != digest:
            raise RegistryError("the registry stored the manifest under another digest",
                                file=redact.url(url), expected=digest,
                                actual=redact.shown(answered))
        return digest

    # -- blobs: reading ------------------------------------------------------------------

    def blob_size(self, repo: str, digest: str, *, scopes: tuple[str, ...] = ()) -> int | None:
        """The blob's size if the repository has it (HEAD), else None."""
        url = self._url(repo, f"blobs/{digest}")
        resp = self._request("HEAD", url, scopes or (scope(repo, ("pull",)),), redirects=True)
        with resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._status_error(resp, "HEAD", url, "blob")
            size = header_int(resp.headers.get("Content-Length"))
            return size if size is not None else -1

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.blob_size(repo, digest) is not None

    def open_blob(self, repo: str, digest: str, size: int | None = None, *,
                  threaded: bool = False) -> "BlobStream":
        """A readable stream of the blob, checked against `digest` (and `size`, if given)
        as it is read; a mismatch raises DigestMismatchError at the latest at EOF. Redirects
        (to a CDN) are followed without our credentials."""
        Digest.parse(digest)
        url = self._url(repo, f"blobs/{digest}")
        resp = self._request("GET", url, (scope(repo, ("pull",)),),
                             redirects=True)
        if resp.status_code != 200:
            raise self._status_error(resp, "GET", url, "blob")
        length = header_int(resp.headers.get("Content-Length"))
        if size is not None and length is not None and length != size:
            resp.close()
            raise DigestMismatchError(f"the registry serves blob {digest} with another size",
                                      file=redact.url(url), entry=digest, expected=size,
                                      actual=length)
        return BlobStream(resp, url, digest, size if size is not None else length,
                          progress=self.progress, threaded=threaded)

    # -- blobs: writing ------------------------------------------------------------------

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount (no bytes move); False if the registry declined."""
        return self.try_mount(repo, digest, (from_repo,), (scope(repo, ("pull", "push")),
                                                          scope(from_repo, ("pull",))))

    def _mount(self, repo, digest, from_repo, scopes) -> tuple[bool, str | None]:
        url = (self._url(repo, "blobs/uploads/") + f"?mount={quote(digest, safe=':')}"
               f"&from={quote(from_repo, safe='/')}")
        try:
            resp = self._request("POST", url, scopes)
        except AuthenticationError:
            return False, None  # no pull access to the source: upload instead
        with resp:
            if resp.status_code == 201:
                return True, None
            if resp.status_code == 202 and resp.headers.get("Location"):
                return False, follow(resp.url, resp.headers["Location"], "POST")
            return False, None

    def upload_blob(self, repo: str, source, *, digest: str | None = None,
                    size: int | None = None, mount_from: Iterable[str] = ()) -> BlobResult:
        """Put a blob into `repo` unless it is there. `source` is a binary stream (`read`) or
        an iterable of bytes chunks; it is read once, never held whole. With `digest`: a HEAD
        first (present: nothing is read), then a mount from each of `mount_from`, then the
        upload. Without it, the digest is computed while streaming. `size` is sent as the
        PATCH's Content-Length (else the body is chunked, which distribution 2.8 accepts).
        The content is checked against `digest` and `size` before the upload is committed.
        `source` may also be a function returning the stream or iterable: it is called only
        if the bytes are needed (not when HEAD or a mount made the upload unnecessary), and
        what it returns is closed here."""
        if digest is not None:
            Digest.parse(digest)
        mount_from = tuple(r for r in mount_from if r != repo)
        scopes = (scope(repo, ("pull", "push")),) + tuple(scope(r, ("pull",)) for r in mount_from)
        location = None
        if digest is not None:
            have = self.blob_size(repo, digest, scopes=scopes)
            if have is not None:
                return BlobResult(digest, have if have >= 0 else _known(size), "exists")
            for src in mount_from:
                mounted, location = self._mount(repo, digest, src, scopes)
                if mounted:
                    return BlobResult(digest, _known(size), "mounted")
                if location is not None:
                    break  # the 202 opened an ordinary upload session: use it
        if location is None:
            location = self.start_upload(repo, scopes)
        opened = None
        try:
            if callable(source) and not hasattr(source, "read"):
                source = opened = source()
            return self._stream_upload(repo, location, source, digest, size, scopes)
        except BaseException:
            self.cancel_upload(location, scopes)
            raise
        finally:
            if opened is not None and hasattr(opened, "close"):
                opened.close()

    def _stream_upload(self, repo, location, source, digest, size, scopes) -> BlobResult:
        algorithm = Digest.parse(digest).algorithm if digest else "sha256"
        body = (UploadBody if size is None else SizedUploadBody)(
            source, algorithm, size, self.progress, what=digest or "blob")
        if size == 0:
            body.drain()
        location = self.patch_upload(location, b"" if size == 0 else body, scopes,
                                     lambda: body.count)
        got = body.digest()
        if digest is not None and got != digest:
            raise DigestMismatchError("the uploaded content does not match its digest",
                                      entry=digest, expected=digest, actual=got)
        self.commit_upload(location, got, scopes)
        return BlobResult(got, body.count, "uploaded")

    # an upload session, step by step (`upload.StreamedUpload` drives it while a layer is
    # being compressed): POST, one PATCH, then PUT ?digest= or DELETE

    def start_upload(self, repo: str, scopes: tuple[str, ...]) -> str:
        """Open an upload session; returns its location."""
        url = self._url(repo, "blobs/uploads/")
        resp = self._request("POST", url, scopes, headers={"Content-Length": "0"})
        with resp:
            if resp.status_code != 202 or not resp.headers.get("Location"):
                raise self._status_error(resp, "POST", url, "blob upload")
            return follow(resp.url, resp.headers["Location"], "POST")

    def patch_upload(self, location: str, body, scopes: tuple[str, ...],
                     count: Callable[[], int]) -> str:
        """Send `body` into the session as one PATCH: bytes, a sized body, or an iterable of
        chunks (then with chunked transfer encoding: a streamed upload, which needs no size
        up front). Not retried: the stream is consumed. `count()`, asked afterwards, is how
        many bytes the session should hold (checked against the registry's `Range`).
        Returns the session's next location."""
        resp = self._request("PATCH", location, scopes, data=body, replayable=False,
                             headers={"Content-Type": "application/octet-stream"})
        with resp:
            if resp.status_code != 202 or not resp.headers.get("Location"):
                raise self._status_error(resp, "PATCH", location, "blob upload")
            end = header_int(resp.headers.get("Range", "").rpartition("-")[2])
            nxt = follow(resp.url, resp.headers["Location"], "PATCH")
        sent = count()
        if end is not None and end != sent - 1 and sent:
            raise RegistryError(f"the registry received {end + 1} of {sent} bytes",
                                file=redact.url(location))
        return nxt

    def commit_upload(self, location: str, digest: str, scopes: tuple[str, ...]) -> None:
        """Close the session under `digest` (the registry checks the bytes against it)."""
        url = _with_query(location, "digest", digest)
        resp = self._request("PUT", url, scopes, headers={"Content-Length": "0"})
        with resp:
            if resp.status_code not in (201, 204):
                raise self._status_error(resp, "PUT", url, "blob upload")
            answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError("the registry stored the blob under another digest",
                                file=redact.url(url), expected=digest,
                                actual=redact.shown(answered))

    def try_mount(self, repo: str, digest: str, mount_from: Iterable[str],
                  scopes: tuple[str, ...]) -> bool:
        """Mount `digest` into `repo` from the first of `mount_from` that lends it; a session
        a refused mount opens is cancelled."""
        for src in mount_from:
            if src == repo:
                continue
            mounted, location = self._mount(repo, digest, src, scopes)
            if location is not None:
                self.cancel_upload(location, scopes)
            if mounted:
                return True
        return False

    def cancel_upload(self, location: str, scopes) -> None:
        """Best effort: an abandoned upload session is purged by the registry anyway."""
        try:
            self._request("DELETE", location, scopes, replayable=False).close()
        except Exception:  # the original failure is the one to report
            pass


def _with_query(url: str, key: str, value: str) -> str:
    """`url` with `key=value` added, whether it already has a query (an upload's `_state`)
    or not; the existing query is kept byte for byte."""
    base, _, fragment = url.partition("#")
    sep = "&" if urlsplit(base).query else ("" if base.endswith("?") else "?")
    return f"{base}{sep}{key}={quote(value, safe=':')}"


