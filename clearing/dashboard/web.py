"""The operator page and its JSON, on the worker's web server (aiohttp, port 6066).

    GET  /, /dashboard                          the page (one HTML file, no data in it)
    GET  /dashboard/api/overview[?period=P]     figures of the ledger, Kafka and this worker
    GET  /dashboard/api/live                    the live charts' recent points
    GET  /dashboard/api/whoami                  the operator (or viewer) of a bearer token
    POST /dashboard/api/periods/{P}/close       {"force": bool}; operator token required
    POST /dashboard/api/periods/{P}/issue       operator token required
    GET  /dashboard/api/flags[?rule=R&province=P]  the flags' review queue
    POST /dashboard/api/flags/{flag_id}/review  {"status": "confirmed"|"dismissed", "note": "..."};
                                                operator token required
    GET  /metrics                               Prometheus text (per-pair obligations among it)

Only the page is open to whoever reaches the port (it is the same file for everyone and holds
no figure). Every other route is declared in `ROUTES` with the kinds of token it admits, and
`guarded` checks them before its handler runs: no token or an unknown one is 401, a hospital's
token (the API shares the port) 403, a viewer's on an action 403. Tokens come from
`clearing credentials add --kind operator|viewer NAME`; Prometheus scrapes with a viewer's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, cast

import orjson
from aiohttp import web

from clearing.api.http import harden, json_errors, read_body
from clearing.auth import Principal
from clearing.core.jsonish import JSONMapping
from clearing.core.periods import PERIOD_PATTERN
from clearing.dashboard import collectors
from clearing.dashboard.config import DashboardConfig
from clearing.dashboard.flags import UnknownFlag
from clearing.dashboard.service import ActionError, Dashboard
from clearing.metrics import render

if TYPE_CHECKING:
    import faust
    from aiohttp.typedefs import Handler
    from faust.web.drivers.aiohttp import Web

DASHBOARD = web.AppKey("clearing_dashboard", Dashboard)
PERIOD = PERIOD_PATTERN
PAGE_PATHS = ("/", "/dashboard", "/dashboard/")
API_PREFIX = "/dashboard/api/"
METRICS_PATH = "/metrics"
READERS = ("operator", "viewer")
OPERATORS = ("operator",)
MAX_BODY_BYTES = 64 * 1024  # a close, issue or review body is a few bytes
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clearing-dashboard"'}

Guarded = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


def page_html() -> bytes:
    return files("clearing.dashboard").joinpath("static/dashboard.html").read_bytes()


def _json(status: int, body: JSONMapping, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: str  # the name of a `Handlers` method taking (request, principal)
    kinds: tuple[str, ...]  # the token kinds it admits


ROUTES = (
    Route("GET", f"{API_PREFIX}overview", "overview", READERS),
    Route("GET", f"{API_PREFIX}live", "live", READERS),
    Route("GET", f"{API_PREFIX}whoami", "whoami", READERS),
    Route("POST", f"{API_PREFIX}periods/{{period:{PERIOD}}}/close", "close", OPERATORS),
    Route("POST", f"{API_PREFIX}periods/{{period:{PERIOD}}}/issue", "issue", OPERATORS),
    Route("GET", f"{API_PREFIX}flags", "flags", READERS),
    Route("POST", f"{API_PREFIX}flags/{{flag_id}}/review", "review", OPERATORS),
    Route("GET", METRICS_PATH, "metrics", READERS),
)


def guarded(dashboard: Dashboard, kinds: tuple[str, ...], handler: Guarded) -> Handler:
    """`handler`, run only for a token of one of `kinds`; everyone else gets 401 or 403."""

    async def check(request: web.Request) -> web.StreamResponse:
        principal = await dashboard.authenticate(_bearer(request))
        if principal is None:
            return _json(
                401, {"error": "an operator's or a viewer's bearer token is required"}, CHALLENGE
            )
        if principal.kind not in READERS:
            return _json(403, {"error": "only operators and viewers may read this"})
        if principal.kind not in kinds:
            return _json(403, {"error": f"a {principal.kind} may only look, not act"})
        return await handler(request, principal)

    return check


class Handlers:
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.html = page_html()

    async def page(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self.html,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def overview(self, request: web.Request, _who: Principal) -> web.Response:
        period = request.query.get("period") or None
        return _json(200, await self.dashboard.overview(period))

    async def live(self, _request: web.Request, _who: Principal) -> web.Response:
        return _json(200, self.dashboard.live())

    async def metrics(self, _request: web.Request, _who: Principal) -> web.Response:
        """The registry's exposition text, the ledger and Kafka figures refreshed first (only
        for a caller who may read them: an anonymous request costs no query)."""
        await self.dashboard.refresh_for_scrape()
        body, content_type = render()
        return web.Response(
            body=body, content_type=content_type, headers={"Cache-Control": "no-store"}
        )

    async def whoami(self, _request: web.Request, who: Principal) -> web.Response:
        return _json(200, {who.kind: who.id})

    async def close(self, request: web.Request, who: Principal) -> web.Response:
        return await self._act(request, who, "close")

    async def issue(self, request: web.Request, who: Principal) -> web.Response:
        return await self._act(request, who, "issue")

    async def _body(self, request: web.Request) -> object:
        """The request's JSON (None without a body); 400, 408 or 413 raised as `ApiError`."""
        if not request.can_read_body:
            return None
        raw = await read_body(request, MAX_BODY_BYTES, self.dashboard.config.read_timeout)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _NOT_JSON

    async def _act(self, request: web.Request, who: Principal, action: str) -> web.Response:
        body = await self._body(request)
        if body is _NOT_JSON:
            return _json(400, {"error": "the body is not JSON"})
        force = isinstance(body, dict) and body.get("force") is True
        period = request.match_info["period"]
        try:
            outcome = await self.dashboard.act(who.id, action, period, force)
        except ActionError as exc:
            return _json(exc.status, {"error": str(exc)})
        return _json(200, {"operator": who.id, **outcome})

    async def flags(self, request: web.Request, _who: Principal) -> web.Response:
        rule = request.query.get("rule") or None
        province = request.query.get("province") or None
        return _json(200, await self.dashboard.flags(rule, province))

    async def review(self, request: web.Request, who: Principal) -> web.Response:
        body = await self._body(request)
        if body is _NOT_JSON or body is None:
            return _json(400, {"error": "the body is not JSON"})
        if not isinstance(body, dict):
            return _json(400, {"error": "the body must be an object"})
        status, note = body.get("status"), body.get("note", "")
        if not isinstance(status, str) or not isinstance(note, str):
            return _json(400, {"error": "status and note must be strings"})
        try:
            done = await self.dashboard.review(who.id, request.match_info["flag_id"], status, note)
        except UnknownFlag:
            return _json(404, {"error": "no such flag"})
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, done)


_NOT_JSON = object()


def add_routes(app: web.Application, dashboard: Dashboard) -> None:
    h = Handlers(dashboard)
    router = app.router
    for path in PAGE_PATHS:
        router.add_get(path, h.page)
    for route in ROUTES:
        handler = guarded(dashboard, route.kinds, getattr(h, route.handler))
        router.add_route(route.method, route.path, handler)
        if route.method == "GET":
            router.add_route("HEAD", route.path, handler)


def create_app(config: DashboardConfig, dashboard: Dashboard | None = None) -> web.Application:
    """The page and its JSON on an aiohttp app of their own (tests, or serving it apart)."""
    dashboard = dashboard or Dashboard(config)
    app = web.Application(middlewares=[json_errors])
    app[DASHBOARD] = dashboard
    add_routes(app, dashboard)
    app.on_startup.append(dashboard.start)
    app.on_cleanup.append(dashboard.stop)
    return app


def install(
    app: faust.App, config: DashboardConfig | None = None, *, metrics: bool = True
) -> Dashboard | None:
    """Mounts the page, its JSON and `/metrics` on a faust app's web server and registers the
    collectors.

    Call before the worker starts (the page must be routed before faust's own index at `/`).
    The web server is hardened as the API's is (`clearing.api.http.harden`). Nothing (None)
    when the web server is off or the page is already mounted.
    """
    if not app.conf.web_enabled:
        return None
    config = config or DashboardConfig.from_env()
    harden(app, config.read_timeout)
    root = cast("Web", app.web).web_app  # faust types `app.web` as the driver-agnostic base
    if any(r.canonical == "/dashboard/api/overview" for r in root.router.resources()):
        return None

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        await app.producer.send_and_wait(topic, key, value, None, None, None)

    dashboard = Dashboard(config, publish)
    add_routes(root, dashboard)
    root.on_startup.append(dashboard.start)
    root.on_cleanup.append(dashboard.stop)
    if metrics:
        collectors.register(dashboard)
    return dashboard
