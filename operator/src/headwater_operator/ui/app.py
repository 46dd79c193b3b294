"""The web UI's application: options, routes, templates, startup and shutdown.

:func:`create_app` builds the ``aiohttp`` application from :class:`UiOptions`. Each page
module (:data:`PAGE_MODULES`) has ``setup(app)``, which adds its routes; every page is
rendered through :func:`render` (Jinja2, autoescaping on), which gives the templates the
navigation, the CSRF token and whether write actions are offered. The state
(:class:`~headwater_operator.ui.state.UiState`) is ``app[STATE]`` (:func:`state_of`), the
access mode (:class:`~headwater_operator.ui.auth.Access`) ``app[ACCESS]``
(:func:`access_of`).

What it must respect: pages read the watch-backed stores, never the API server; every
``POST`` passes the CSRF middleware; every asset is served from ``/static`` (air-gapped
clusters); a write is made with the identity :class:`~headwater_operator.ui.auth.Access`
gives, never the UI's service account in the cluster.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
from aiohttp import web

from headwater_operator import kube
from headwater_operator.ui import auth
from headwater_operator.ui.auth import Mode
from headwater_operator.ui.state import UiState

HERE = Path(__file__).parent
PAGE_MODULES: tuple[str, ...] = ("runs", "subflows", "deployments", "schedules", "flows",
                                 "assets", "automations")
"""Modules of ``headwater_operator.ui`` whose ``setup(app)`` adds routes, in order."""
NAVIGATION: tuple[tuple[str, str], ...] = (
    ("/runs", "Runs"), ("/deployments", "Deployments"), ("/schedules", "Schedules"),
    ("/flows", "Flows"), ("/assets", "Assets"), ("/automations", "Automations"))
"""The header's links: (URL, label)."""
SSE_KEEPALIVE_SECONDS = 15.0



@dataclass
class UiOptions:
    """How ``headwater ui`` runs (docs/ui.md, "Command")."""

    address: str = "127.0.0.1"
    port: int = 8090
    namespaces: Sequence[str] | None = None
    """Namespaces served; None: all namespaces."""
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    auth: Literal["server", "client"] = "server"
    """In the cluster: ``server`` serves no writes; ``client`` writes with the browser's
    token. Ignored locally (the kubeconfig's identity reads and writes)."""
    url: str | None = None
    """The UI's public address, for links (``<url>/runs/<ns>/<name>``)."""
    image_origins: tuple[str, ...] = ()
    """Origins (``https://host[:port]``) image artifacts are loaded from, added to the
    CSP's ``img-src``; from any other origin an image artifact is a link. None by
    default: a page never makes the viewer's browser contact a host an artifact names
    (air-gapped clusters, tracking pixels) unless the operator of the UI allows it."""

    @property
    def mode(self) -> Mode:
        return self.auth if self.in_cluster else "local"


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


STATE = web.AppKey("state", UiState)
"""``app[STATE]``: the watch-backed stores and the change hub."""
ACCESS = web.AppKey("access", auth.Access)
"""``app[ACCESS]``: who the server acts as (reads, writes)."""
OPTIONS = web.AppKey("options", UiOptions)
JINJA = web.AppKey("jinja", jinja2.Environment)
NOW: web.AppKey[Clock] = web.AppKey("now")


def state_of(request: web.Request) -> UiState:
    """The request's application's :class:`UiState`."""
    return request.app[STATE]


def access_of(request: web.Request) -> auth.Access:
    """The request's application's :class:`~headwater_operator.ui.auth.Access`."""
    return request.app[ACCESS]


def now_of(request: web.Request) -> datetime:
    """What time the application says it is (tests fix it)."""
    moment: datetime = request.app[NOW]()
    return moment


def make_environment() -> jinja2.Environment:
    """The templates' environment: autoescaping on for every template."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined)  # objects have optional fields
    environment.filters["tojson_compact"] = lambda value: json.dumps(value, sort_keys=True)
    return environment


def render(request: web.Request, template: str, *, status: int = 200,
           **context: Any) -> web.Response:
    """``template`` rendered with ``context`` plus what every page needs: ``request``,
    ``options``, ``nav``, ``csrf_token``, ``writes_allowed``, ``mode``, ``now``."""
    app = request.app
    access = app[ACCESS]
    page = app[JINJA].get_template(template).render(
        request=request, options=app[OPTIONS], nav=NAVIGATION,
        csrf_token=auth.csrf_token(request), writes_allowed=access.writes_allowed(request),
        mode=access.mode, now=app[NOW](), **context)
    return web.Response(text=page, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/runs")


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"ok": True, "synced": state.synced,
                              "flowruns": len(state.flowruns)})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``change`` event per watched change (JSON
    ``{kind, namespace, name}``), comments as keep-alives."""
    state = request.app[STATE]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    subscription = state.hub.subscribe()
    try:
        await response.write(b": connected\n\n")
        while not subscription.closed or not subscription.queue.empty():
            try:
                change = await asyncio.wait_for(subscription.queue.get(),
                                                SSE_KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if change is None:
                break
            await response.write(b"event: change\ndata: " + json.dumps(change).encode()
                                 + b"\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        state.hub.unsubscribe(subscription)
    return response


async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", error=None)


async def login(request: web.Request) -> web.StreamResponse:
    """Client mode: keep the bearer token the user pasted, then go to ``next``."""
    access = request.app[ACCESS]
    if access.mode != "client":
        raise web.HTTPNotFound(text="sign-in is only used with --in-cluster --auth client")
    form = await request.post()
    token = str(form.get("token") or "").strip()
    if not token or any(c.isspace() for c in token):
        return render(request, "login.html", status=400,
                      error="Paste one bearer token (no spaces), e.g. the output of "
                            "`kubectl create token <service account>`.")
    target = str(form.get("next") or "/runs")
    response = web.HTTPSeeOther(target if target.startswith("/") and
                                not target.startswith("//") else "/runs")
    auth.set_token_cookie(request, response, token)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/runs")
    response.del_cookie(auth.TOKEN_COOKIE, path="/")
    raise response


@web.middleware
async def security_headers(request: web.Request,
                           handler: auth.Handler) -> web.StreamResponse:
    """No framing, no foreign scripts or styles (everything is served here); images only
    from here and from the origins ``--image-origin`` allows (docs/decisions.md)."""
    response = await handler(request)
    origins = "".join(f" {origin}" for origin in request.app[OPTIONS].image_origins)
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; img-src 'self' data:{origins}; style-src 'self'; "
        "script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _access(options: UiOptions) -> auth.Access:
    """Configure the client (kubeconfig, or the service account in the cluster)."""
    if options.in_cluster:
        kube.configure()  # the in-cluster service account first
    elif options.kubeconfig or options.context:
        kube.configure(options.kubeconfig, options.context)
    reader = kube.get_client()
    return auth.Access(options.mode, reader, kube.api_client().configuration)


def create_app(options: UiOptions, *, state: UiState | None = None,
               access: auth.Access | None = None,
               now: Clock = _now) -> web.Application:
    """The UI application. Without ``state`` it watches the cluster the options name
    (started with the application, stopped with it); tests pass a filled
    :class:`UiState` and an :class:`~headwater_operator.ui.auth.Access`."""
    app = web.Application(middlewares=[security_headers, auth.csrf_middleware])
    if access is None:
        access = _access(options)
    if state is None:
        assert access.reader is not None
        state = UiState.watching(access.reader, options.namespaces)
    app[OPTIONS] = options
    app[ACCESS] = access
    app[STATE] = state
    app[NOW] = now
    app[JINJA] = make_environment()
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/events", events)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static", HERE / "static", append_version=False)
    for name in PAGE_MODULES:
        importlib.import_module(f"headwater_operator.ui.{name}").setup(app)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_end_streams)
    return app


async def _end_streams(app: web.Application) -> None:
    """End the browsers' event streams first, so stopping does not wait for them."""
    app[STATE].hub.close()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.start()
    yield
    await state.stop()


async def serve(options: UiOptions, *, ready: Any = None) -> None:
    """Run the UI until cancelled; ``ready(url)`` is called once it listens."""
    app = create_app(options)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.address, options.port)
    await site.start()
    try:
        if ready is not None:
            ready(f"http://{options.address}:{options.port}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
