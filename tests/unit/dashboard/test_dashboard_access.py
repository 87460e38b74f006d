"""Who may reach the dashboard's data: every route the dashboard registers is enumerated from
the app itself, so a route added later is checked without anyone remembering to.

Anonymous callers and unknown tokens get 401, a hospital's token 403 (the API serves the same
port), a viewer reads but may not act (403), an operator does both; only the page shell, which
holds no figure, is public.
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
from clearing.dashboard.web import API_PREFIX, OPERATORS, PAGE_PATHS, ROUTES, create_app, page_html
from clearing.store.db import open_engine
from clearing.topics import Topics

# A value for each path parameter of the dashboard's routes; a route with a new parameter
# fails here until it gets one.
SAMPLES = {"period": "2026-03", "flag_id": "DUPLICATE_BILLING:S1:S2"}


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
        assert path.startswith(API_PREFIX), f"{method} {path}: a dashboard route outside its API"
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
    # overview, live, whoami, flags (each GET and HEAD), close, issue, review
    assert checked == 11
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
        assert check_every_route(client, added, made) == 11
        # The page is still answered, and an unknown path is a JSON 404 quoting nothing.
        missing = client.request("GET", "/dashboard/api/nothing-here?token=planted")
        json_error(missing, 404)
        assert b"planted" not in missing.body and b"nothing-here" not in missing.body
    finally:
        client.close()
