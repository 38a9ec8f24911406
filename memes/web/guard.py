"""What stands between the gallery and every page the user's browser opens.

A server on 127.0.0.1 is reachable from any web page, so listening on loopback is no defence by
itself. `Guard` wraps the whole app and, before any route runs:

- answers only requests whose Host is the server's own (127.0.0.1, localhost or [::1] at its
  port, and the names given with `--host` / `--allowed-host`): a page on another site that
  rebinds its DNS name to 127.0.0.1 gets 421;
- accepts a write (POST, PUT, PATCH, DELETE) only from the gallery's own pages or a program:
  `Origin` and `Sec-Fetch-Site` must not name another site, and the request must carry the
  header `X-Memes-Request` (which a cross-site form cannot send and a cross-site script
  cannot send without a preflight the server never grants) or, for the gallery's own forms,
  the page's CSRF token (checked by `form_token`);
- counts a request's body as it arrives and stops it at the cap (413), whatever the headers say;
- with a token, lets in only requests that carry it (header, or the cookie set by `?token=`,
  which holds a value bound to the exact host and port, never the token itself);
- adds security headers to every response (a CSP the gallery's pages meet with no inline
  script, nosniff, no framing, no referrer, same-origin resources).
"""
from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import secrets
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.datastructures import Headers, QueryParams

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024  # the upload and its form fields
TOO_BIG = f"uploads are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
CSRF_HEADER = "X-Memes-Request"
CSRF_FIELD = "csrf"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::", "[::]")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # not no-referrer: a form sent under it says `Origin: null`
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
CROSS_SITE = "a page on another site cannot change this archive"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def from_this_machine(request: Request) -> bool:
    """Whether the request comes from a browser on the machine the gallery runs on."""
    return request.client is not None and is_loopback(request.client.host)


def _bracketed(name: str) -> str:
    """A host name as a Host header writes it: an IPv6 address in brackets."""
    name = name.strip().lower()
    try:
        return f"[{ipaddress.IPv6Address(name)}]"
    except ValueError:
        return name


def _split_host(host: str, default_port: int) -> tuple[str, int | None]:
    """`name:port` (or `[v6]:port`, or a bare name) as (name, port); port None when unreadable."""
    host = host.strip().lower()
    name, sep, port = host.rpartition(":")
    if not sep or name.endswith(":") or (host.startswith("[") and not name.endswith("]")):
        return host, default_port  # no port given (or a bare v6 address)
    return (name, int(port)) if port.isdigit() and len(port) <= 5 else (name, None)


@dataclass(frozen=True)
class Site:
    """The names and port the gallery answers to."""

    port: int
    names: frozenset[str]  # at this port only
    extra: frozenset[str] = frozenset()  # `--allowed-host` names: at any port (a proxy in front)

    @classmethod
    def serving(cls, host: str, port: int, allowed: Iterable[str] = ()) -> "Site":
        names = set(LOOPBACK_NAMES)
        if host.strip().lower() not in WILDCARDS:
            names.add(_bracketed(host))
        extra = set()
        for entry in allowed:
            name, given = _split_host(_bracketed(entry), 0)  # NAME, NAME:PORT, an address, [v6]:PORT
            if given == port:
                names.add(name)
            else:
                extra.add(f"{name}:{given}" if given else name)
        return cls(port, frozenset(names), frozenset(extra))

    def allows_host(self, host: str, scheme: str = "http") -> bool:
        name, port = _split_host(host, 443 if scheme == "https" else 80)
        if port is None:
            return False
        return (name in self.names and port == self.port) or name in self.extra or f"{name}:{port}" in self.extra

    def is_own_origin(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and self.allows_host(parts.netloc,
                                                                                               parts.scheme)

    def __str__(self) -> str:
        return ", ".join(sorted(f"{n}:{self.port}" for n in self.names) + sorted(self.extra))


class BodyTooLarge(HTTPException):
    def __init__(self):
        super().__init__(413, TOO_BIG)


class Guard:
    """The ASGI middleware described above; outermost, so nothing runs before it."""

    def __init__(self, app, site: Site, token: str | None, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.site = site
        self.token = token or None
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        query = QueryParams(scope.get("query_string", b""))
        path = scope.get("path", "")
        api = path.startswith("/api/")

        async def send_secured(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                if self.token and query.get("token") and self._offered(headers, query) == "valid":
                    extra.append((b"set-cookie", self._cookie(headers).encode()))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        refusal = self._refusal(scope, headers, query, path)
        if refusal is not None:
            status, text = refusal
            return await _answer(send_secured, status, text, api)

        received = 0

        async def capped_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        await self.app(scope, capped_receive, send_secured)

    def _refusal(self, scope, headers: Headers, query: QueryParams, path: str) -> tuple[int, str] | None:
        if not self.site.allows_host(headers.get("host", ""), scope.get("scheme", "http")):
            return 421, f"this gallery answers only to {self.site} (see `memes serve --allowed-host`)"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return 413, TOO_BIG
        if scope["method"] in UNSAFE_METHODS:
            fetch_site = headers.get("sec-fetch-site")
            origin = headers.get("origin")
            if (fetch_site and fetch_site not in ("same-origin", "none")) or \
                    (origin is not None and not self.site.is_own_origin(origin)):
                return 403, CROSS_SITE
            if path.startswith("/api/") and not headers.get(CSRF_HEADER):
                return 403, (f"a write through the API needs the header `{CSRF_HEADER}: 1` (a page on another "
                             "site cannot send it)")
        if self.token and not path.startswith("/static/") and self._offered(headers, query) != "valid":
            return 401, "a valid token is needed: open this page with ?token=..."
        return None

    def _offered(self, headers: Headers, query: QueryParams) -> str:
        bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
        offered = bearer or query.get("token") or ""
        if offered:
            return "valid" if hmac.compare_digest(offered.encode(), self.token.encode()) else "wrong"
        cookie = _cookies(headers).get(self._cookie_name, "")
        return "valid" if hmac.compare_digest(cookie.encode(), self._bound(headers).encode()) else "none"

    @property
    def _cookie_name(self) -> str:
        return f"memes_token_{self.site.port}"

    def _bound(self, headers: Headers) -> str:
        """The cookie's value: the token bound to the host and port the browser asked for."""
        where = headers.get("host", "").lower()
        return hmac.new(self.token.encode(), f"memes-cookie {where}".encode(), hashlib.sha256).hexdigest()

    def _cookie(self, headers: Headers) -> str:
        return f"{self._cookie_name}={self._bound(headers)}; Path=/; HttpOnly; SameSite=Strict"


def _cookies(headers: Headers) -> dict[str, str]:
    found = {}
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        found.setdefault(name, value)
    return found


async def _answer(send, status: int, text: str, api: bool) -> None:
    if api:
        body, kind = json.dumps({"error": text}).encode(), b"application/json"
    else:
        body = (f"<!doctype html><meta charset=utf-8><title>memes</title><p>{html.escape(text)}</p>").encode()
        kind = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def new_csrf_token() -> str:
    """The token the gallery's forms carry, new each time the server starts."""
    return secrets.token_urlsafe(24)


async def form_token(request: Request) -> None:
    """For the gallery's own forms (a route dependency): the page's CSRF token must come with
    the form, unless the request carries `X-Memes-Request` (a script of the gallery's pages)."""
    if request.headers.get(CSRF_HEADER):
        return
    form = await request.form()
    offered = str(form.get(CSRF_FIELD, ""))
    if not hmac.compare_digest(offered.encode(), request.app.state.csrf.encode()):
        raise HTTPException(403, "this form is out of date or came from another site: reload the page and try again")
