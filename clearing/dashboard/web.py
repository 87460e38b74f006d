"""The operator page and its JSON, on the worker's web server (aiohttp, port 6066).

    GET  /, /dashboard                          the page (one HTML file, no external assets)
    GET  /dashboard/api/overview[?period=P]     figures of the ledger, Kafka and this worker
    GET  /dashboard/api/live                    the live charts' recent points
    GET  /dashboard/api/whoami                  the operator (or viewer) of a bearer token
    POST /dashboard/api/periods/{P}/close       {"force": bool}; operator token required
    POST /dashboard/api/periods/{P}/issue       operator token required
    GET  /dashboard/api/flags[?rule=R&province=P]  the flags' review queue; operator or viewer
    POST /dashboard/api/flags/{flag_id}/review  {"status": "confirmed"|"dismissed", "note": "..."};
                                                operator token required

Reads are open to whoever reaches the port (like /metrics), except the flags (they name
persons), which need an operator's or a viewer's token; the actions and reviews need an operator's
bearer token (`clearing credentials add --kind operator NAME`); a viewer's token (`--kind
viewer`) is known to `whoami` but may not act.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, cast

import orjson
from aiohttp import web

from clearing.core.jsonish import JSONMapping
from clearing.core.periods import PERIOD_PATTERN
from clearing.dashboard import collectors
from clearing.dashboard.config import DashboardConfig
from clearing.dashboard.flags import UnknownFlag
from clearing.dashboard.service import ActionError, Dashboard

if TYPE_CHECKING:
    import faust
    from aiohttp.typedefs import Handler, Middleware
    from faust.web.drivers.aiohttp import Web

DASHBOARD = web.AppKey("clearing_dashboard", Dashboard)
PERIOD = PERIOD_PATTERN
PAGE_PATHS = ("/", "/dashboard", "/dashboard/")


def page_html() -> bytes:
    return files("clearing.dashboard").joinpath("static/dashboard.html").read_bytes()


def _json(status: int, body: JSONMapping) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


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

    async def overview(self, request: web.Request) -> web.Response:
        period = request.query.get("period") or None
        return _json(200, await self.dashboard.overview(period))

    async def live(self, _request: web.Request) -> web.Response:
        return _json(200, self.dashboard.live())

    async def whoami(self, request: web.Request) -> web.Response:
        principal = await self.dashboard.authenticate(_bearer(request))
        if principal is None:
            return _json(401, {"error": "not an operator's or a viewer's token"})
        return _json(200, {principal.kind: principal.id})

    async def close(self, request: web.Request) -> web.Response:
        return await self._act(request, "close")

    async def issue(self, request: web.Request) -> web.Response:
        return await self._act(request, "issue")

    async def _act(self, request: web.Request, action: str) -> web.Response:
        principal = await self.dashboard.authenticate(_bearer(request))
        if principal is None:
            return _json(401, {"error": "an operator's bearer token is required"})
        if principal.kind != "operator":
            return _json(403, {"error": "a viewer may not close or issue periods"})
        operator = principal.id
        force = False
        if request.can_read_body:
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                return _json(400, {"error": "the body is not JSON"})
            force = isinstance(body, dict) and body.get("force") is True
        period = request.match_info["period"]
        try:
            outcome = await self.dashboard.act(operator, action, period, force)
        except ActionError as exc:
            return _json(exc.status, {"error": str(exc)})
        return _json(200, {"operator": operator, **outcome})


    async def flags(self, request: web.Request) -> web.Response:
        principal = await self.dashboard.authenticate(_bearer(request))
        if principal is None:
            return _json(401, {"error": "an operator's or a viewer's bearer token is required"})
        rule = request.query.get("rule") or None
        province = request.query.get("province") or None
        return _json(200, await self.dashboard.flags(rule, province))

    async def review(self, request: web.Request) -> web.Response:
        principal = await self.dashboard.authenticate(_bearer(request))
        if principal is None:
            return _json(401, {"error": "an operator's bearer token is required"})
        if principal.kind != "operator":
            return _json(403, {"error": "a viewer may not review flags"})
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json(400, {"error": "the body is not JSON"})
        if not isinstance(body, dict):
            return _json(400, {"error": "the body must be an object"})
        status, note = body.get("status"), body.get("note", "")
        if not isinstance(status, str) or not isinstance(note, str):
            return _json(400, {"error": "status and note must be strings"})
        try:
            done = await self.dashboard.review(
                principal.id, request.match_info["flag_id"], status, note
            )
        except UnknownFlag:
            return _json(404, {"error": "no such flag"})
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, done)


def add_routes(app: web.Application, dashboard: Dashboard) -> None:
    h = Handlers(dashboard)
    router = app.router
    for path in PAGE_PATHS:
        router.add_get(path, h.page)
    router.add_get("/dashboard/api/overview", h.overview)
    router.add_get("/dashboard/api/live", h.live)
    router.add_get("/dashboard/api/whoami", h.whoami)
    router.add_post(f"/dashboard/api/periods/{{period:{PERIOD}}}/close", h.close)
    router.add_post(f"/dashboard/api/periods/{{period:{PERIOD}}}/issue", h.issue)
    router.add_get("/dashboard/api/flags", h.flags)
    router.add_post("/dashboard/api/flags/{flag_id}/review", h.review)


def metrics_refresh(dashboard: Dashboard) -> Middleware:
    """A middleware that refreshes the collectors' figures (off the loop) before `/metrics`."""

    @web.middleware
    async def refresh(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/metrics":
            await dashboard.refresh_for_scrape()
        return await handler(request)

    return refresh


def create_app(config: DashboardConfig, dashboard: Dashboard | None = None) -> web.Application:
    """The page and its JSON on an aiohttp app of their own (tests, or serving it apart)."""
    dashboard = dashboard or Dashboard(config)
    app = web.Application(middlewares=[metrics_refresh(dashboard)])
    app[DASHBOARD] = dashboard
    add_routes(app, dashboard)
    app.on_startup.append(dashboard.start)
    app.on_cleanup.append(dashboard.stop)
    return app


def install(
    app: faust.App, config: DashboardConfig | None = None, *, metrics: bool = True
) -> Dashboard | None:
    """Mounts the page on a faust app's web server and registers the collectors.

    Call before the worker starts (the page must be routed before faust's own index at `/`).
    Nothing (None) when the web server is off or the page is already mounted.
    """
    if not app.conf.web_enabled:
        return None
    root = cast("Web", app.web).web_app  # faust types `app.web` as the driver-agnostic base
    if any(r.canonical == "/dashboard/api/overview" for r in root.router.resources()):
        return None

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        await app.producer.send_and_wait(topic, key, value, None, None, None)

    dashboard = Dashboard(config or DashboardConfig.from_env(), publish)
    add_routes(root, dashboard)
    root.middlewares.append(metrics_refresh(dashboard))
    root.on_startup.append(dashboard.start)
    root.on_cleanup.append(dashboard.stop)
    if metrics:
        collectors.register(dashboard)
    return dashboard
