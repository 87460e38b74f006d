"""Who may reach the dashboard's data: every route the dashboard registers is enumerated from
the app itself, so a route added later is checked without anyone remembering to.

Anonymous callers and unknown tokens get 401, a hospital's token 403 (the API serves the same
port), a viewer reads but may not act (403), an operator does both; only the page shell, which
holds no figure, is public. `/metrics` (per province pair obligations among its figures) is
guarded the same way, and the worker's own app serves no page of faust's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fixtures.api import ApiReply, SyncApiClient
from support.dashboard import GROUP, PREFIX, StandInLag, dashboard_for

from clearing import auth
from clearing.dashboard import DashboardConfig, install
from clearing.dashboard.web import (
    API_PREFIX,
    METRICS_PATH,
    OPERATORS,
    PAGE_PATHS,
    ROUTES,
    create_app,
    page_html,
)
from clearing.store.db import open_engine
from clearing.topics import Topics

# A value for each path parameter of the dashboard's routes; a route with a new parameter
# fails here until it gets one.
SAMPLES = {
    "period": "2026-03",
    "flag_id": "DUPLICATE_BILLING:S1:S2",
    "settlement_id": "S1",
    "reversal_id": "R1",
}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: SAMPLES[m.group(1)], path)


def routes_of(app) -> list[tuple[str, str]]:
    """(method, path) of every route of an aiohttp app."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        found.append((route.method, path))
    return found


@pytest.fixture
def tokens(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = open_engine(url)
    made = {
        "operator": auth.add(engine, "operator", "olga"),
        "viewer": auth.add(engine, "viewer", "vera"),
        "hospital": auth.add(engine, "hospital", "H1"),
    }
    engine.dispose()
    yield url, made


def json_error(reply: ApiReply, status: int) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"].startswith("application/json")
    if reply.body or reply.headers.get("Content-Length") == "0":  # a HEAD answer has none
        assert isinstance(orjson.loads(reply.body)["error"], str)


def check_every_route(client: SyncApiClient, routes: list[tuple[str, str]], tokens) -> int:
    """Each route's answers to no token, a bad one, a hospital's, a viewer's, an operator's;
    returns how many data routes were checked."""
    checked = 0
    for method, path in routes:
        if path in PAGE_PATHS:
            page = client.request(method, path)
            assert page.status == 200 and (method == "HEAD" or page.body == page_html())
            continue
        assert path.startswith(API_PREFIX) or path == METRICS_PATH, (
            f"{method} {path}: a dashboard route outside its API"
        )
        url = concrete(path)
        json_error(client.request(method, url), 401)
        json_error(client.request(method, url, token="not-a-token"), 401)
        json_error(client.request(method, url, headers={"Authorization": "Basic b3A6cHc="}), 401)
        json_error(client.request(method, url, token=tokens["hospital"]), 403)
        viewer = client.request(method, url, token=tokens["viewer"])
        template = next(r for r in ROUTES if r.path.split("{")[0] == path.split("{")[0])
        if template.kinds == OPERATORS:
            json_error(viewer, 403)
        else:
            assert viewer.status not in (401, 403), (method, path, viewer.body)
        operator = client.request(method, url, token=tokens["operator"])
        assert operator.status not in (401, 403), (method, path, operator.body)
        checked += 1
    return checked


def test_every_data_route_needs_an_operator_or_a_viewer(tokens) -> None:
    url, made = tokens
    dashboard = dashboard_for(url)
    app = create_app(dashboard.config, dashboard)
    routes = routes_of(app)
    client = SyncApiClient(app)
    try:
        checked = check_every_route(client, routes, made)
    finally:
        client.close()
    # overview, live, whoami, flags, metrics (each GET and HEAD), close, issue, review
    assert checked == 13
    whoami = [r for r in routes if r[1].endswith("/whoami")]
    assert whoami and all(m in ("GET", "HEAD") for m, _ in whoami)


def test_the_routes_installed_on_the_worker_are_guarded_the_same(tokens, tmp_path: Path) -> None:
    import faust

    url, made = tokens
    app = faust.App(
        "dash-access-test",
        broker="kafka://127.0.0.1:1",
        web_enabled=True,
        datadir=str(tmp_path / "faust"),
    )
    root = app.web.web_app
    before = set(routes_of(root))
    config = DashboardConfig("127.0.0.1:1", Topics(PREFIX), GROUP, url, ttl=60, sample_every=60)
    dashboard = install(app, config, metrics=False)
    assert dashboard is not None
    dashboard.lag_reader = StandInLag()  # type: ignore[assignment]
    dashboard.lag.load = dashboard.lag_reader.read
    added = [r for r in routes_of(root) if r not in before]
    client = SyncApiClient(root)
    try:
        assert check_every_route(client, added, made) == 13
        # The page is still answered, and an unknown path is a JSON 404 quoting nothing.
        missing = client.request("GET", "/dashboard/api/nothing-here?token=planted")
        json_error(missing, 404)
        assert b"planted" not in missing.body and b"nothing-here" not in missing.body
    finally:
        client.close()


def test_metrics_are_prometheus_text_for_operators_and_viewers_only(tokens) -> None:
    url, made = tokens
    dashboard = dashboard_for(url)
    client = SyncApiClient(create_app(dashboard.config, dashboard))
    try:
        for reply in (
            client.request("GET", METRICS_PATH),
            client.request("GET", f"{METRICS_PATH}?token={made['viewer']}"),
            client.request("GET", METRICS_PATH, headers={"X-Token": made["viewer"]}),
        ):
            json_error(reply, 401)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        json_error(client.request("GET", METRICS_PATH, token=made["hospital"]), 403)
        for kind in ("viewer", "operator"):
            reply = client.request("GET", METRICS_PATH, token=made[kind])
            assert reply.status == 200, (kind, reply.body)
            assert reply.headers["Content-Type"].startswith("text/plain")
            assert b"# TYPE clearing_events_in_total counter" in reply.body
    finally:
        client.close()


# Paths of the worker's web server anyone may read: the dashboard's page shell and the API's
# description. Everything else needs a credential.
PUBLIC = {*PAGE_PATHS, "/v1/openapi.json"}
# Where faust mounts its own pages (router, tables, statistics, assignment, graph, performance).
FAUST_PAGES = ("/router", "/table", "/stats", "/assignment", "/graph", "/performance")


@pytest.fixture
def worker_module(tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`clearing.worker` imported afresh on the test's ledger (no broker is reached), with
    faust's variables that switch its own pages on all set."""
    import importlib
    import os
    import sys

    url, _made = tokens
    for name, value in {
        "CLEARING_HOME": str(tmp_path / "home"),
        "CLEARING_DB_URL": url,
        "KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "CLEARING_TOPIC_PREFIX": PREFIX,
        "CLEARING_WEB_PORT": "6066",
    }.items():
        monkeypatch.setenv(name, value)
    for page in ("ROUTER", "TABLES", "STATS", "GRAPH", "METRICS"):  # faust's own switches
        monkeypatch.setenv(f"APP_WEB_{page}_ENABLED", "1")
    monkeypatch.delenv("CLEARING_WORKER_ID", raising=False)
    monkeypatch.delenv("CLEARING_PARENT_PID", raising=False)
    umask = os.umask(0o022)
    os.umask(umask)
    sys.modules.pop("clearing.worker", None)
    try:
        yield importlib.import_module("clearing.worker")
    finally:
        sys.modules.pop("clearing.worker", None)
        os.umask(umask)  # the worker makes its state private (umask 077)


def test_the_worker_serves_no_faust_page_and_nothing_open_but_the_page(
    tokens, worker_module
) -> None:
    url, made = tokens
    app = worker_module.app
    app.web.init_server()  # what the worker does on start: faust's blueprints, its pages
    root = app.web.web_app
    routes = routes_of(root)
    paths = {path for _method, path in routes}
    assert not [p for p in paths if p.startswith(FAUST_PAGES)], sorted(paths)
    assert METRICS_PATH in paths and "/dashboard/api/overview" in paths
    dashboard = dashboard_for(url)
    known = PUBLIC | {path for _method, path in routes_of(create_app(dashboard.config, dashboard))}
    assert all(p in known or p.startswith("/v1/") for p in paths), sorted(paths - known)
    client = SyncApiClient(root)
    try:
        page = client.request("GET", "/")  # the dashboard's page, not faust's index
        assert page.status == 200 and page.body == page_html()
        guarded = 0
        for method, path in routes:
            if path in PUBLIC:
                continue
            url = concrete(path)
            json_error(client.request(method, url), 401)
            hospital = client.request(method, url, token=made["hospital"])
            if path.startswith("/v1/"):
                assert hospital.status != 401, (method, path, hospital.body)
            else:
                json_error(hospital, 403)
            guarded += 1
        assert guarded >= 13 + 5  # the dashboard's and `/metrics`, and the API's
    finally:
        client.close()
