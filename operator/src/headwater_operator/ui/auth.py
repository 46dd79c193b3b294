"""Who the web UI acts as, and the CSRF protection of every write.

Three modes (docs/ui.md, "Who the server acts as"):

* ``local`` — ``headwater ui`` on a workstation: reads and writes with the kubeconfig's
  identity, so the user's own RBAC decides;
* ``server`` — in the cluster, ``--auth server``: reads with the UI's service account,
  and no write is served at all;
* ``client`` — in the cluster, ``--auth client``: reads with the service account; a
  write is made with the bearer token the browser presented on ``/login`` (kept in an
  ``HttpOnly``, ``SameSite=Strict`` cookie), never with the service account, so the
  token holder's RBAC decides.

CSRF: every ``POST`` must carry the token of the ``hw_csrf`` cookie again, as the
``csrf_token`` form field or the ``X-CSRF-Token`` header (double submit), and an
``Origin`` (or, without one, a ``Referer``) of this server; otherwise 403 before any
handler runs (:func:`csrf_middleware`).

What it must respect: the browser's token is never rendered, logged, or put anywhere
but its cookie and the ``Authorization`` header of the write it makes.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web

from headwater_operator import kube

Mode = Literal["local", "server", "client"]
CSRF_COOKIE = "hw_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_COOKIE = "hw_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access:
    """The mode, the client reads use, and how a write gets its client."""

    def __init__(self, mode: Mode, reader: kube.Kube | None,
                 base: kube.Configuration | None = None) -> None:
        self.mode = mode
        self.reader = reader
        self.base = base
        """Server and TLS settings a browser's token is used with (client mode)."""

    def writes_allowed(self, request: web.Request) -> bool:
        """Whether this request may be offered write actions (buttons and forms)."""
        if self.mode == "local":
            return True
        if self.mode == "client":
            return bool(request.cookies.get(TOKEN_COOKIE))
        return False

    @asynccontextmanager
    async def writer(self, request: web.Request) -> AsyncIterator[kube.Kube]:
        """The client a write made for ``request`` uses: the kubeconfig's (local) or one
        with the browser's token (client); 403 in server mode or without a token."""
        if self.mode == "local" and self.reader is not None:
            yield self.reader
            return
        token = request.cookies.get(TOKEN_COOKIE) if self.mode == "client" else None
        if not token:
            raise web.HTTPForbidden(text=(
                "this UI serves no write actions (--auth server)" if self.mode == "server"
                else "sign in with a Kubernetes bearer token on /login to make changes"))
        try:
            api_client = kube.client_for_token(token, self.base)
        except ValueError:
            raise web.HTTPForbidden(text="the stored token is malformed; sign in again "
                                         "on /login") from None
        try:
            yield kube.Kube(api_client)
        finally:
            await kube.aclose_transports_of(api_client)


_CSRF: ContextVar[str] = ContextVar("headwater_ui_csrf")
"""The token of the request being handled (set by :func:`csrf_middleware`)."""


def csrf_token(request: web.Request) -> str:
    """This browser's CSRF token: its cookie's, or the new one the response sets."""
    return _CSRF.get(None) or request.cookies.get(CSRF_COOKIE) or ""


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        referer = request.headers.get("Referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin == f"{request.scheme}://{request.host}"


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (403) a write whose CSRF token or origin is wrong; set the cookie on pages."""
    if request.method not in SAFE_METHODS:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            sent = str((await request.post()).get(CSRF_FIELD) or "")
        if not cookie or not sent or not hmac.compare_digest(cookie, sent):
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page and "
                                         "try again")
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin request refused")
    token = request.cookies.get(CSRF_COOKIE) or ""
    new = not token
    if new:
        token = secrets.token_urlsafe(32)
    reset = _CSRF.set(token)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        if not new:
            raise
    finally:
        _CSRF.reset(reset)
    if new:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict",
                            secure=request.secure, path="/")
    if isinstance(response, web.HTTPException):
        raise response
    return response


def set_token_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Keep the browser's bearer token (client mode) for the writes it makes."""
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.secure, path="/")
