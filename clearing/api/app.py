"""The aiohttp sub-application of the API, and how it is mounted on the worker's web server."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from aiohttp import web

from clearing.api.config import ApiConfig
from clearing.api.errors import json_errors, json_response
from clearing.api.handlers import SubmissionApi
from clearing.api.http import harden
from clearing.api.openapi import generate

if TYPE_CHECKING:
    import faust
    from faust.web.drivers.aiohttp import Web

PREFIX = "/v1"
ID = "[A-Za-z0-9_-]{1,64}"
API = web.AppKey("clearing_api", SubmissionApi)


def create_app(config: ApiConfig) -> web.Application:
    """The API's routes, relative to `/v1`; mount with `add_subapp(PREFIX, ...)`."""
    api = SubmissionApi(config)
    app = web.Application(middlewares=[json_errors])
    app[API] = api
    app.on_startup.append(api.start)
    app.on_cleanup.append(api.stop)
    document = generate()

    async def openapi(_request: web.Request) -> web.Response:
        return json_response(200, document)

    app.router.add_post("/settlements", api.post_settlement)
    app.router.add_post("/settlements/trial", api.post_trial)
    app.router.add_post("/reversals", api.post_reversal)
    app.router.add_get(f"/settlements/{{settlement_id:{ID}}}", api.get_settlement)
    app.router.add_get(f"/reversals/{{reversal_id:{ID}}}", api.get_reversal)
    app.router.add_get("/openapi.json", openapi)
    return app


def standalone(config: ApiConfig) -> web.Application:
    """The API alone under `/v1` (tests, or serving it apart from the worker)."""
    root = web.Application()
    root.add_subapp(PREFIX, create_app(config))
    return root


def install(app: faust.App, config: ApiConfig | None = None) -> web.Application | None:
    """Mounts the API on a faust app's web server (aiohttp), before the worker starts it.

    The web server itself is hardened too (`clearing.api.http.harden`: JSON errors, read
    timeouts). Nothing (None) when the app's web server is off or the API is already mounted.
    """
    if not app.conf.web_enabled:
        return None
    root = cast("Web", app.web).web_app  # faust types `app.web` as the driver-agnostic base
    if any(resource.canonical == PREFIX for resource in root.router.resources()):
        return None
    config = config or ApiConfig.from_env()
    harden(app, config.read_timeout)
    api = create_app(config)
    root.add_subapp(PREFIX, api)
    return api
