"""Registry authentication: `WWW-Authenticate` challenges, Basic, and Bearer tokens.

The registry's answer to `GET /v2/` says which scheme it wants. For Bearer, a token is fetched
from the realm *before* the requests that need it, for all the scopes an operation needs at
once, the push scope first (some token servers read only the first `scope`). Asking up front
matters because a streamed upload body cannot be sent twice: a 401 on the PATCH would be fatal.
Tokens are cached by the scopes they grant; one that covers a request's scopes is reused until
shortly before it expires. A 401 on a replayable request (with the registry's own challenge,
e.g. `error="insufficient_scope"`) gets one fresh token and one retry.

Tokens are requested with `GET realm?service=S&scope=...` (Basic credentials when there are
some), or, with an identity token from an auth file, `POST realm` with an OAuth2
`refresh_token` grant, as docker and containers/image do.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from .. import jsonio
from ..errors import AciociError
from . import redact
from .credentials import Credentials
from .errors import AuthenticationError
from .http import header_int, read_whole

TOKEN_MARGIN = 30.0  # seconds: a token this close to expiry (or a quarter of its life, if
                     # shorter) is not used for a new request, which could outlive it
DEFAULT_TOKEN_LIFE = 60.0  # the token spec's default when `expires_in` is absent
MAX_TOKEN_LIFE = 86400.0  # a longer `expires_in` (10**400 is a JSON integer float() refuses)
                          # is taken as this: a token renewed after a day costs nothing
MAX_TOKEN_BYTES = 1 << 20
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750's b64token: what a Bearer header holds
CLIENT_ID = "acioci"

_TCHAR = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict

    def __repr__(self) -> str:
        return f"Challenge({self.scheme!r}, {self.params!r})"


def parse_challenges(header: str | None) -> list[Challenge]:
    """Every challenge in a `WWW-Authenticate` value (RFC 7235): a scheme, then
    `name=token` or `name="quoted, with \\"escapes\\""` parameters separated by commas. Commas
    inside quotes (`scope="repository:a:pull,push"`) belong to the value; a token not followed
    by `=` starts the next challenge. Malformed input yields what could be read, never loops."""
    text = header or ""
    n = len(text)
    i = 0
    out: list[Challenge] = []

    def skip(i: int, chars: str = " \t") -> int:
        while i < n and text[i] in chars:
            i += 1
        return i

    def token(i: int) -> tuple[str, int]:
        start = i
        while i < n and text[i] in _TCHAR:
            i += 1
        return text[start:i], i

    while i < n:
        i = skip(i, " \t,")
        scheme, i = token(i)
        if not scheme:
            i += 1  # a stray character: step over it
            continue
        params: dict[str, str] = {}
        while True:
            j = skip(i, " \t,")
            name, k = token(j)
            k2 = skip(k)
            if not name or k2 >= n or text[k2] != "=":
                i = j  # the next challenge's scheme (or a stray character) starts here
                break
            k = skip(k2 + 1)
            if k < n and text[k] == '"':
                value, k = _quoted(text, k)
            else:
                value, k = token(k)
            params[name.lower()] = value
            i = k
            if i >= n:
                break
        out.append(Challenge(scheme.lower(), params))
    return out


def _quoted(text: str, i: int) -> tuple[str, int]:
    """A quoted-string starting at text[i] == '"'; returns (value, index after it)."""
    out = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i  # unterminated: take the rest


def scope(repository: str, actions: tuple[str, ...]) -> str:
    return f"repository:{repository}:{','.join(actions)}"


def _parse_scope(text: str) -> tuple[str, str, frozenset[str]]:
    kind, _, rest = text.partition(":")
    name, _, actions = rest.rpartition(":")
    return kind, name, frozenset(a for a in actions.split(",") if a)


def covers(have: tuple[str, ...], want: tuple[str, ...]) -> bool:
    """Whether a token granted for `have` scopes serves a request needing `want`."""
    granted = [_parse_scope(s) for s in have]
    for kind, name, actions in map(_parse_scope, want):
        if not any(k == kind and n == name and actions <= a for k, n, a in granted):
            return False
    return True


def basic_header(creds: Credentials) -> str:
    pair = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


class Authorizer:
    """Authorization headers for one registry, from the challenge its `/v2/` ping returned."""

    def __init__(self, http, creds: Credentials | None, *, where: str) -> None:
        self.http = http
        self.creds = creds
        self.where = where  # the registry, for messages
        self.challenge: Challenge | None = None
        self.secure = False  # the challenge came over https
        self._tokens: list[tuple[tuple[str, ...], str, float]] = []  # scopes, token, use until

    def set_challenge(self, header: str | None, url: str) -> None:
        """The challenge in `header`, from the answer to `url` (whose scheme says whether a
        token server on plain HTTP would be a downgrade)."""
        self.secure = urlsplit(url).scheme == "https"
        challenges = parse_challenges(header)
        by_scheme = {c.scheme: c for c in challenges}
        self.challenge = by_scheme.get("bearer") or by_scheme.get("basic")

    def secrets(self) -> tuple[str, ...]:
        tokens = tuple(t for _, t, _ in self._tokens)
        return (self.creds.secrets() if self.creds else ()) + tokens

    def headers(self, scopes: tuple[str, ...], *, fresh: bool = False,
                extra: Challenge | None = None) -> dict:
        """The `Authorization` header (if any) for a request needing `scopes`. `fresh` skips
        the cache (the registry refused the cached token); `extra` is the registry's 401
        challenge, whose scope is asked for too."""
        challenge = self.challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            if self.creds is None or not self.creds.username:
                return {}
            return {"Authorization": basic_header(self.creds)}
        if challenge.scheme != "bearer":
            return {}
        if extra is not None and extra.params.get("scope"):
            for s in extra.params["scope"].split(" "):
                if s and s not in scopes:
                    scopes = scopes + (s,)
        now = time.monotonic()
        if not fresh:
            for have, token, until in self._tokens:
                if now < until and covers(have, scopes):
                    return {"Authorization": f"Bearer {token}"}
        token, life = self._fetch_token(challenge, scopes)
        self._tokens = [t for t in self._tokens if t[0] != scopes and t[2] > now]
        self._tokens.append((scopes, token, now + life - min(TOKEN_MARGIN, life / 4)))
        return {"Authorization": f"Bearer {token}"}

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, float]:
        realm = challenge.params.get("realm", "")
        try:
            parts = urlsplit(realm)
            parts.port  # noqa: B018 (an unclosed IPv6 bracket, a port out of range)
        except ValueError:
            raise AuthenticationError("the registry's Bearer challenge has no usable realm "
                                      "(not a URL)", file=self.where) from None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthenticationError(f"the registry's Bearer challenge has no usable realm "
                                      f"({redact.url(realm) or 'none'})", file=self.where)
        creds = self.creds
        if self.secure and parts.scheme != "https" and creds is not None and (
                creds.identity_token or creds.username):
            raise AuthenticationError(
                f"the https registry's Bearer challenge names a plain HTTP token server "
                f"({redact.url(realm)}): credentials are not sent there in the clear",
                file=self.where)
        service = challenge.params.get("service")
        ordered = sorted(scopes, key=lambda s: "push" not in _parse_scope(s)[2])
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": CLIENT_ID, "scope": " ".join(ordered)}
            if service:
                form["service"] = service
            resp = self.http.send("POST", realm, data=urlencode(form).encode(), headers={
                "Content-Type": "application/x-www-form-urlencoded"})
        else:
            query = ([("service", service)] if service else []) + [("scope", s) for s in ordered]
            headers = {}
            if creds is not None and creds.username:
                query.append(("account", creds.username))
                headers["Authorization"] = basic_header(creds)
            sep = "&" if urlsplit(realm).query else "?"
            url = realm + (sep + urlencode(query) if query else "")
            resp = self.http.send("GET", url, headers=headers)
        try:
            if resp.status_code in (401, 403):
                who = f"credentials from {creds.origin}" if creds else "anonymous access"
                raise AuthenticationError(
                    f"the token server refused {who} (HTTP {resp.status_code}) for "
                    f"{' '.join(ordered)}", file=redact.url(realm), status=resp.status_code)
            if resp.status_code != 200:
                raise AuthenticationError(f"the token server answered HTTP {resp.status_code}",
                                          file=redact.url(realm), status=resp.status_code)
            body = read_whole(resp, MAX_TOKEN_BYTES + 1, realm,
                              header_int(resp.headers.get("Content-Length")))
        finally:
            resp.close()
        try:
            doc = jsonio.loads(body, limit=MAX_TOKEN_BYTES)
        except AciociError:
            doc = None
        token = None
        if isinstance(doc, dict):
            token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthenticationError("the token server's answer has no token",
                                      file=redact.url(realm))
        if not _TOKEN.fullmatch(token):  # it goes into a header: never a CR, LF or space
            raise AuthenticationError("the token server's answer holds a token that is not "
                                      "one (characters outside RFC 6750's token68)",
                                      file=redact.url(realm))
        life = doc.get("expires_in")
        life = (float(min(life, MAX_TOKEN_LIFE)) if isinstance(life, (int, float)) and life > 0
                else DEFAULT_TOKEN_LIFE)
        return token, life
