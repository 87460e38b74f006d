"""The operators' dashboard without a broker or a browser: its JSON against the sample's
statement, the Close/Issue actions, operator tokens, the collectors and the page's mounting.

One SQLite ledger per module holds the sample bundle's priced and reversed results (as the
stream records them) and its rejected results (as the stream stores them); Kafka offsets come
from a stand-in reader.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fixtures.api import SyncApiClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from support.dashboard import (
    GROUP,
    PREFIX,
    StandInLag,
    cleared,
    dashboard_for,
    make_sample_db,
    sample_results,
)
from support.ledger import priced
from support.paths import CASES

from clearing import auth
from clearing.core import provinces
from clearing.core.netting import build_statement
from clearing.dashboard import DashboardConfig, collectors
from clearing.dashboard.history import quantile
from clearing.dashboard.money import percent, yuan
from clearing.dashboard.web import create_app
from clearing.ledger.store import Ledger
from clearing.ops import credentials_cli
from clearing.store.db import make_engine
from clearing.store.schema import credentials
from clearing.topics import PROVINCES, Topics


def as_shown(ob: dict) -> dict:
    """A statement's obligation as the dashboard shows it: no digest, and the split by payer
    (a statement without tiers leaves it out: zero tier shares, due = fund share)."""
    shown = {k: v for k, v in ob.items() if k != "digest"}
    return {"critical_pay_fen": 0, "assistance_pay_fen": 0, "due_fen": ob["fund_pay_fen"], **shown}


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_sample_db(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def viewer_token(sample_db: str) -> str:
    engine = make_engine(sample_db)
    try:
        return auth.add(engine, "viewer", "sample-viewer")
    finally:
        engine.dispose()


@pytest.fixture
def client(sample_db: str, viewer_token: str) -> Iterator[SyncApiClient]:
    """The dashboard on the sample, every request signed with a viewer's token."""
    dashboard = dashboard_for(sample_db)
    running = SyncApiClient(create_app(dashboard.config, dashboard), viewer_token)
    yield running
    running.close()


# ------------------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (0, "¥0.00"),
        (5, "¥0.05"),
        (-5, "-¥0.05"),
        (123456789, "¥1,234,567.89"),
        (-100, "-¥1.00"),
        (9_007_199_254_740_991, "¥90,071,992,547,409.91"),
        (10**20 + 1, "¥1,000,000,000,000,000,000.01"),
    ],
)
def test_yuan_is_formatted_from_integer_fen(fen: int, shown: str) -> None:
    assert yuan(fen) == shown


def test_money_refuses_floats_and_percent_uses_basis_points() -> None:
    with pytest.raises(TypeError):
        yuan(1.5)  # type: ignore[arg-type]
    assert percent(7000) == "70.00 %"
    assert percent(12345) == "123.45 %"
    assert percent(None) == "—"


def test_every_province_has_its_names() -> None:
    assert [p["code"] for p in provinces.as_json()] == list(PROVINCES)
    assert provinces.label("110000") == "北京 Beijing 110000"
    assert provinces.label("650000") == "新疆 Xinjiang 650000"
    assert provinces.label("999999") == "999999"


def test_latency_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 0.0), (0.5, 50.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.5)
    assert quantile(0.25, buckets) == pytest.approx(0.3)
    assert quantile(0.99, buckets) == pytest.approx(0.99)
    assert quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(1.0, 0.0), (float("inf"), 4.0)]) == 1.0


# ------------------------------------------------------------------------------ the JSON


def test_an_issued_period_shows_its_statement(client: SyncApiClient) -> None:
    reply = client.request("GET", "/dashboard/api/overview?period=2026-01")
    assert reply.status == 200
    body = reply.json()
    expected = orjson.loads((CASES / "statement-2026-01.json").read_bytes())
    view = body["period"]
    assert body["selected"] == "2026-01" and view["state"] == "issued"
    assert view["obligations"] == [as_shown(ob) for ob in expected["obligations"]]
    assert view["net_positions"] == expected["net_positions"]
    assert view["transfers"] == expected["transfers"]
    for key in ("settlements", "reversals", "total_fen", "fund_pay_fen", "personal_pay_fen"):
        assert view["totals"][key] == sum(ob[key] for ob in expected["obligations"])
    # A bundle without tiers: the due is the fund share, the tier shares are zero.
    fund = view["totals"]["fund_pay_fen"]
    assert fund > 0
    assert split(view["totals"]) == (fund, 0, 0, fund)
    assert split(body["today"]) == (body["today"]["fund_pay_fen"], 0, 0, body["today"]["due_fen"])
    assert body["today"]["due_fen"] == body["today"]["fund_pay_fen"]
    for row in view["payers"]:
        assert split(row) == (row["fund_pay_fen"], 0, 0, row["fund_pay_fen"])
    assert sum(row["due_fen"] for row in view["payers"]) == fund


def test_an_open_period_is_netted_from_its_results(client: SyncApiClient) -> None:
    body = client.request("GET", "/dashboard/api/overview").json()
    states = {p["period"]: p["state"] for p in body["periods"]}
    assert states["2026-01"] == "issued" and states["2026-02"] == "closed"
    latest_open = max(p for p, s in states.items() if s == "open")
    assert body["selected"] == latest_open
    expected = build_statement(latest_open, cleared(sample_results(), latest_open))
    assert body["period"]["net_positions"] == expected["net_positions"]
    assert [ob["fund_pay_fen"] for ob in body["period"]["obligations"]] == [
        ob["fund_pay_fen"] for ob in expected["obligations"]
    ]
    # An unknown period falls back to the default rather than failing.
    assert client.request("GET", "/dashboard/api/overview?period=1999-01").json()["selected"] == (
        latest_open
    )


def test_today_rejections_prepayments_and_lag(client: SyncApiClient) -> None:
    body = client.request("GET", "/dashboard/api/overview").json()
    results = sample_results()
    everything = cleared(results)
    # Every result was recorded by the ledger a moment ago, i.e. today in China.
    assert body["today"]["settlements"] == sum(r["status"] == "priced" for r in everything)
    assert body["today"]["reversals"] == sum(r["status"] == "reversed" for r in everything)
    assert body["today"]["fund_pay_fen"] == sum(r["fund_pay_fen"] for r in everything)

    reasons = Counter(x for r in results if r["status"] == "rejected" for x in r["reasons"])
    assert body["rejections"] == dict(reasons)

    usage = {row["province"]: row for row in body["prepayments"]["provinces"]}
    assert body["prepayments"]["alert_share_bp"] == 7000
    henan = usage["410000"]
    assert henan["prepayment_fen"] == 500_000_00
    assert henan["usage_bp"] == henan["net_debit_fen"] * 10_000 // henan["prepayment_fen"]
    assert henan["prepayment_derived"] is False and henan["prepayment_on_record"]
    # The other debtors have no deposit and no issued period: one notice per province and
    # period instead of alerts, listed with the alerts.
    notices = body["notices"]
    assert notices and all(n["raised_at"].endswith("+08:00") for n in notices)
    assert all(n["message"] == "no prepayment on record" for n in notices)
    assert len({(n["province"], n["period"]) for n in notices}) == len(notices)
    # Since 2026-01 was issued, a province without a deposit holds twice its average monthly
    # due over the issued periods (one here): twice what it owed in 2026-01.
    january = client.request("GET", "/dashboard/api/overview?period=2026-01").json()["period"]
    owed: Counter[str] = Counter()
    for ob in january["obligations"]:
        owed[ob["payer"]] += ob.get("due_fen", ob["fund_pay_fen"])
    derived = {p: row for p, row in usage.items() if row["prepayment_derived"]}
    assert derived and {p: row["prepayment_fen"] for p, row in derived.items()} == {
        p: 2 * fen for p, fen in owed.items() if fen > 0 and p != "410000"
    }
    assert all(a["raised_at"].endswith("+08:00") for a in body["alerts"])
    assert all(a["top_up_fen"] >= 0 for a in body["alerts"])

    assert body["lag"][0] == {
        "topic": "dash.events",
        "partition": 0,
        "end": 120,
        "committed": 100,
        "lag": 20,
    }
    assert body["lag"][1]["committed"] is None and body["lag"][1]["lag"] == 80
    assert all(source["up"] for source in body["sources"])


def test_the_page_is_served_at_the_root_and_at_dashboard(client: SyncApiClient) -> None:
    for path in ("/", "/dashboard", "/dashboard/"):
        reply = client.request("GET", path)
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/html")
        assert b'const API = "/dashboard/api"' in reply.body
    page = client.request("GET", "/").body.decode()
    # One file, nothing fetched from elsewhere (the operators' machines may be offline).
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page


# ------------------------------------------------------------------------------ actions


def test_close_and_issue_need_an_operator_token(sample_db: str) -> None:
    published: list[tuple[str, bytes, bytes]] = []

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        published.append((topic, key, value))

    dashboard = dashboard_for(sample_db, publish=publish)
    engine = make_engine(sample_db)
    token = auth.add(engine, "operator", "ops-test")
    viewer = auth.add(engine, "viewer", "vera")
    client = SyncApiClient(create_app(dashboard.config, dashboard))
    try:
        path = "/dashboard/api/periods/2026-03"
        assert client.request("POST", f"{path}/close").status == 401
        assert client.request("POST", f"{path}/close", token="nope").status == 401
        assert client.request("GET", "/dashboard/api/whoami", token=token).json() == {
            "operator": "ops-test"
        }
        assert client.request("GET", "/dashboard/api/whoami", token=viewer).json() == {
            "viewer": "vera"
        }
        watching = client.request("POST", f"{path}/close", {"force": True}, token=viewer)
        assert watching.status == 403 and "viewer" in watching.json()["error"]

        refused = client.request("POST", f"{path}/issue", token=token)
        assert refused.status == 409 and "close it" in refused.json()["error"]

        closed = client.request("POST", f"{path}/close", {"force": False}, token=token)
        assert closed.status == 200, closed.body
        assert closed.json()["state"] == "closed" and closed.json()["changed"] is True
        issued = client.request("POST", f"{path}/issue", token=token)
        assert issued.status == 200 and issued.json()["state"] == "issued"
        again = client.request("POST", f"{path}/issue", token=token).json()
        assert again["changed"] is False and again["sha256"] == issued.json()["sha256"]

        statement = build_statement("2026-03", cleared(sample_results(), "2026-03"))
        topics = [topic for topic, _, _ in published]
        assert topics[0] == "dash.clearing"
        assert sorted(topics[1:]) == sorted(f"dash.feed.{p}" for p in statement["net_positions"])
        assert orjson.loads(published[0][2])["net_positions"] == statement["net_positions"]

        view = client.request("GET", "/dashboard/api/overview?period=2026-03", token=viewer)
        view = view.json()
        assert view["period"]["state"] == "issued"
        assert view["period"]["transfers"] == statement["transfers"]
        assert [a["action"] for a in view["actions"][:3]] == ["issue", "issue", "close"]
        assert {a["operator"] for a in view["actions"]} == {"ops-test"}
    finally:
        client.close()
        engine.dispose()


def test_operator_add_prints_the_token_once_and_keeps_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    parser = argparse.ArgumentParser()
    credentials_cli.register(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> int:
        args = parser.parse_args(["credentials", *argv, "--db", url])
        return args.func(args)

    assert run("add", "--kind", "operator", "alice") == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40
    assert run("add", "--kind", "operator", "alice") == 1  # one token each unless --replace
    assert run("add", "--kind", "operator", "not a name") == 1
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(credentials)).all()
        assert [(row.kind, row.id, row.token_hash) for row in stored] == [
            ("operator", "alice", hashlib.sha256(token.encode()).hexdigest())
        ]
        assert auth.authenticate(engine, token) == auth.Principal("operator", "alice")
        assert auth.authenticate(engine, token, ("hospital",)) is None
        assert auth.authenticate(engine, token + "x") is None
    finally:
        engine.dispose()
    capsys.readouterr()
    assert run("list", "--kind", "operator") == 0
    assert capsys.readouterr().out.startswith("operator\talice\t")
    assert run("revoke", "--kind", "operator", "alice") == 0
    assert run("revoke", "--kind", "operator", "alice") == 1


# ------------------------------------------------------------------------------ metrics


def scrape(registry: CollectorRegistry) -> dict[str, list]:
    text = generate_latest(registry).decode()
    return {
        family.name: family.samples
        for family in text_string_to_metric_families(text)
        if family.name.startswith("clearing_")
    }


def test_collectors_report_the_ledger_and_the_lag(sample_db: str) -> None:
    registry = CollectorRegistry()
    dashboard = dashboard_for(sample_db)
    collectors.register(dashboard, registry)
    app = create_app(dashboard.config, dashboard)
    engine = make_engine(sample_db)
    try:
        viewer = auth.add(engine, "viewer", "prometheus")
    finally:
        engine.dispose()
    client = SyncApiClient(app)
    try:
        # A viewer's scrape refreshes the figures first.
        assert client.request("GET", "/metrics", token=viewer).status == 200
        families = scrape(registry)
    finally:
        client.close()
        collectors.unregister(registry)

    assert set(collectors.NAMES) <= set(families)

    def value(name: str, **labels: str) -> float:
        found = [s.value for s in families[name] if s.labels.items() >= labels.items()]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    assert value("clearing_consumer_lag", partition="0", topic="dash.events") == 20
    assert value("clearing_consumer_lag", partition="1", group=GROUP) == 80
    assert value("clearing_period_state", period="2026-01", state="issued") == 1
    assert value("clearing_period_state", period="2026-01", state="open") == 0
    assert value("clearing_period_state", period="2026-02", state="closed") == 1

    expected = build_statement("2026-05", cleared(sample_results(), "2026-05"))
    for ob in expected["obligations"]:
        pair = {"period": "2026-05", "payer": ob["payer"], "payee": ob["payee"]}
        assert value("clearing_obligation_fund_pay_fen", **pair) == ob["fund_pay_fen"]
        assert value("clearing_obligation_settlements", **pair) == ob["settlements"]
    assert not [
        s for s in families["clearing_obligation_fund_pay_fen"] if s.labels["period"] < "2026-03"
    ]

    # Without tiers the due is the fund share and the tier shares are zero.
    for ob in expected["obligations"]:
        pair = {"period": "2026-05", "payer": ob["payer"], "payee": ob["payee"]}
        assert value("clearing_obligation_due_fen", **pair) == ob["fund_pay_fen"]
        assert value("clearing_obligation_critical_pay_fen", **pair) == 0
        assert value("clearing_obligation_assistance_pay_fen", **pair) == 0
    fund_total = sum(ob["fund_pay_fen"] for ob in expected["obligations"])
    assert value("clearing_period_payer_fen", period="2026-05", payer_kind="fund") == fund_total
    for kind in ("critical", "assistance"):
        assert value("clearing_period_payer_fen", period="2026-05", payer_kind=kind) == 0

    ratio = value("clearing_prepayment_usage_ratio", province="410000")
    debit = value("clearing_prepayment_net_debit_fen", province="410000")
    assert ratio == pytest.approx(debit / 500_000_00)
    assert value("clearing_prepayment_alert_share_ratio") == 0.7
    assert value("clearing_dashboard_source_up", source="ledger") == 1


# ------------------------------------------------------------------------------ mounting


def test_install_routes_the_page_before_faust_index(tmp_path: Path, sample_db: str) -> None:
    import faust

    from clearing.dashboard import install

    app = faust.App(
        "dash-install-test",
        broker="kafka://127.0.0.1:1",
        web_enabled=True,
        datadir=str(tmp_path / "faust"),
    )
    config = DashboardConfig("127.0.0.1:1", Topics(PREFIX), GROUP, sample_db, ttl=60)
    dashboard = install(app, config, metrics=False)
    assert dashboard is not None
    assert install(app, config, metrics=False) is None  # mounted once
    dashboard.lag_reader = StandInLag()  # type: ignore[assignment]
    dashboard.lag.load = dashboard.lag_reader.read
    app.web.init_server()  # faust adds its own index at "/" here
    engine = make_engine(sample_db)
    viewer = auth.add(engine, "viewer", "install-viewer", replace=True)
    engine.dispose()
    client = SyncApiClient(app.web.web_app)
    try:
        reply = client.request("GET", "/")
        assert reply.status == 200 and b'const API = "/dashboard/api"' in reply.body
        assert client.request("GET", "/dashboard/api/overview").status == 401
        overview = client.request("GET", "/dashboard/api/overview", token=viewer)
        assert overview.json()["group"] == GROUP
    finally:
        client.close()


# ------------------------------------------------------------------------------ both databases


def test_the_queries_run_on_sqlite_and_postgresql(ledger, db_url: str) -> None:
    from datetime import UTC, datetime

    from clearing.dashboard import queries

    january = cleared(sample_results(), "2026-01")
    ledger.record_results(january)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            view = queries.period_view(conn, "2026-01")
            today = queries.today_totals(conn, datetime.now(UTC))
            rows = queries.period_rows(conn)
            usage = queries.prepayments(conn)
            assert queries.rejection_reasons(conn) == {}
    finally:
        engine.dispose()
    expected = build_statement("2026-01", january)
    assert view["obligations"] == [as_shown(ob) for ob in expected["obligations"]]
    assert view["net_positions"] == expected["net_positions"]
    assert today["settlements"] == len(january)
    assert today["fund_pay_fen"] == sum(r["fund_pay_fen"] for r in january)
    assert [(r["period"], r["state"]) for r in rows] == [("2026-01", "open")]
    assert rows[0]["opened_at"].endswith("+08:00")
    # The ledger's running positions leave out provinces whose settlements moved no fund share.
    assert {r["province"]: r["net_position_fen"] for r in usage["provinces"]} == {
        p: v for p, v in expected["net_positions"].items() if v
    }


# ------------------------------------------------------------------------------ split by payer
#
# Hand-checked numbers (fen), period 2026-01, all recorded today:
#
#   S1  410000 -> 110000  fund 5000  critical 1500  assistance 600 (A)  due 7100
#   S2  410000 -> 110000  fund 2000  critical    0  assistance 300 (B)  due 2300, reversed by R1
#   S3  320000 -> 110000  fund 1000  (no tier fields: due = fund)        due 1000
#   S4  410000 -> 310000  fund 3000  critical  400  assistance 200 (A)  due 3600
#
# National: fund 9000, critical 1900, assistance 800, due 11700.
# As payer: 410000 fund 8000, critical 1900, assistance 800, due 10700; 320000 due 1000.

SPLIT = ("fund_pay_fen", "critical_pay_fen", "assistance_pay_fen", "due_fen")


def tiered(
    settlement_id: str,
    payee: str,
    *,
    fund: int,
    critical: int,
    assistance: int,
    class_: str,
) -> dict:
    due = fund + critical + assistance
    eligible = due + 1_000
    total = eligible + 500
    return {
        "status": "priced",
        "settlement_id": settlement_id,
        "period": "2026-01",
        "payer": "410000",
        "payee": payee,
        "hospital_id": "H1",
        "filed": True,
        "total_fen": total,
        "self_pay_fen": 300,
        "pre_self_pay_fen": 200,
        "eligible_fen": eligible,
        "deductible_fen": 500,
        "fund_pay_fen": fund,
        "critical_pay_fen": critical,
        "assistance_pay_fen": assistance,
        "due_fen": due,
        "personal_pay_fen": total - due,
        "cap_reached": False,
        "assistance_class": class_,
    }


def reversal_of(original: dict, reversal_id: str) -> dict:
    keep = ("settlement_id", "period", "payer", "payee", "hospital_id")
    return {
        "status": "reversed",
        "reversal_id": reversal_id,
        **{k: original[k] for k in keep},
        **{k: -v for k, v in original.items() if k.endswith("_fen")},
    }


@pytest.fixture
def tiers_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tiers.sqlite'}"
    s2 = tiered("S2", "110000", fund=2_000, critical=0, assistance=300, class_="B")
    with Ledger(url) as ledger:
        outcomes = ledger.record_results(
            [
                tiered("S1", "110000", fund=5_000, critical=1_500, assistance=600, class_="A"),
                s2,
                reversal_of(s2, "R1"),
                priced("S3", payer="320000", payee="110000", fund=1_000, hospital_id="H1"),
                tiered("S4", "310000", fund=3_000, critical=400, assistance=200, class_="A"),
            ]
        )
        assert [o.action for o in outcomes] == ["recorded"] * 5
    return url


def split(row: dict) -> tuple[int, ...]:
    return tuple(row[key] for key in SPLIT)


def test_the_overview_splits_the_due_by_home_side_payer(tiers_db: str) -> None:
    dashboard = dashboard_for(tiers_db)
    engine = make_engine(tiers_db)
    viewer = auth.add(engine, "viewer", "vera")
    engine.dispose()
    client = SyncApiClient(create_app(dashboard.config, dashboard), viewer)
    try:
        body = client.request("GET", "/dashboard/api/overview").json()
    finally:
        client.close()
    view = body["period"]
    assert body["selected"] == "2026-01" and view["state"] == "open"
    assert {(ob["payer"], ob["payee"]): split(ob) for ob in view["obligations"]} == {
        ("320000", "110000"): (1_000, 0, 0, 1_000),
        ("410000", "110000"): (5_000, 1_500, 600, 7_100),
        ("410000", "310000"): (3_000, 400, 200, 3_600),
    }
    assert split(view["totals"]) == (9_000, 1_900, 800, 11_700)
    assert (body["today"]["settlements"], body["today"]["reversals"]) == (4, 1)
    assert split(body["today"]) == (9_000, 1_900, 800, 11_700)
    assert [(r["province"], r["settlements"], *split(r)) for r in view["payers"]] == [
        ("320000", 1, 1_000, 0, 0, 1_000),
        ("410000", 3, 8_000, 1_900, 800, 10_700),
    ]
    # Net positions are on the due, as the statement's.
    assert view["net_positions"] == {
        "110000": 8_100,
        "310000": 3_600,
        "320000": -1_000,
        "410000": -10_700,
    }
    assert yuan(view["totals"]["due_fen"]) == "¥117.00"


def test_the_collectors_report_the_split_by_payer_kind(tiers_db: str) -> None:
    registry = CollectorRegistry()
    dashboard = dashboard_for(tiers_db)
    collectors.register(dashboard, registry)
    try:
        asyncio.run(dashboard.ledger.get(timeout=10))
        families = scrape(registry)
    finally:
        collectors.unregister(registry)
        dashboard.executor.shutdown(wait=True)

    def value(name: str, **labels: str) -> float:
        found = [s.value for s in families[name] if s.labels.items() >= labels.items()]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    kinds = {"fund": 9_000, "critical": 1_900, "assistance": 800}
    for kind, fen in kinds.items():
        assert value("clearing_period_payer_fen", period="2026-01", payer_kind=kind) == fen
    pair = {"period": "2026-01", "payer": "410000", "payee": "110000"}
    assert value("clearing_obligation_due_fen", **pair) == 7_100
    assert value("clearing_obligation_critical_pay_fen", **pair) == 1_500
    assert value("clearing_obligation_assistance_pay_fen", **pair) == 600
    assert value("clearing_obligation_fund_pay_fen", **pair) == 5_000
    other = {"period": "2026-01", "payer": "320000", "payee": "110000"}
    assert value("clearing_obligation_due_fen", **other) == 1_000
