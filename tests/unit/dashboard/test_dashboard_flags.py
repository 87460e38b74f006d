"""The dashboard's review queue of fund-safety flags: listing (operator or viewer), filters,
counts, and reviews (operator only, kept with who and when)."""

from __future__ import annotations

from pathlib import Path

import orjson
from fixtures.api import SyncApiClient
from sqlalchemy import select
from support.dashboard import dashboard_for
from support.flag_bundle import flag_lines, flag_refdata

from clearing import auth
from clearing.dashboard.web import create_app
from clearing.store.db import open_engine
from clearing.store.monitor import raise_period_flags
from clearing.store.schema import flag_reviews
from clearing.stream.batch import BatchProcessor, Record


def flagged_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = open_engine(url)
    proc = BatchProcessor(engine, flag_refdata, monitor=True)
    recs = [Record("t.events", 0, n, None, raw) for n, raw in enumerate(flag_lines())]
    proc.process(recs)
    with engine.begin() as conn:
        raise_period_flags(conn, "2026-01")
    engine.dispose()
    return url


def test_the_review_queue(tmp_path: Path) -> None:
    url = flagged_db(tmp_path)
    dashboard = dashboard_for(url)
    engine = open_engine(url)
    operator = auth.add(engine, "operator", "ops")
    viewer = auth.add(engine, "viewer", "vera")
    client = SyncApiClient(create_app(dashboard.config, dashboard))
    try:
        assert client.request("GET", "/dashboard/api/flags").status == 401
        queue = client.request("GET", "/dashboard/api/flags", token=viewer).json()
        assert len(queue["flags"]) == 6
        assert queue["counts"]["by_rule"] == {
            "OVERLAPPING_STAYS": 2,
            "OUTPATIENT_DURING_STAY": 1,
            "QUICK_READMISSION": 1,
            "DUPLICATE_BILLING": 1,
            "HIGH_REVERSAL_RATE": 1,
        }
        assert queue["counts"]["by_province"]["440000"] == 1
        raised = [f["raised_at"] for f in queue["flags"]]
        assert raised == sorted(raised, reverse=True)  # newest first
        pair = next(f["flag"] for f in queue["flags"] if f["flag"]["rule"] == "DUPLICATE_BILLING")
        assert pair["evidence"]["earlier"]["total_fen"] == pair["evidence"]["later"]["total_fen"]
        only = client.request(
            "GET", "/dashboard/api/flags?rule=OVERLAPPING_STAYS&province=230000", token=operator
        ).json()
        assert {f["flag"]["flag_id"] for f in only["flags"]} == {
            "OVERLAPPING_STAYS:S1a:S1b",
            "OVERLAPPING_STAYS:S1a:S1c",
        }
        shanghai = client.request("GET", "/dashboard/api/flags?province=310000", token=viewer)
        assert [f["flag"]["rule"] for f in shanghai.json()["flags"]] == ["DUPLICATE_BILLING"]

        path = "/dashboard/api/flags/DUPLICATE_BILLING:S4a:S4b/review"
        body = {"status": "confirmed", "note": "same bill twice"}
        assert client.request("POST", path, body).status == 401
        assert client.request("POST", path, body, token=viewer).status == 403
        bad = client.request("POST", path, {"status": "maybe"}, token=operator)
        assert bad.status == 400
        missing = "/dashboard/api/flags/DUPLICATE_BILLING:X:Y/review"
        assert client.request("POST", missing, body, token=operator).status == 404
        done = client.request("POST", path, body, token=operator)
        assert done.status == 200 and done.json()["operator"] == "ops"
        again = client.request("POST", path, {"status": "dismissed", "note": ""}, token=operator)
        assert again.status == 200
        queue = client.request("GET", "/dashboard/api/flags?province=310000", token=viewer).json()
        assert queue["flags"][0]["review"]["status"] == "dismissed"
        with engine.connect() as conn:
            kept = conn.execute(select(flag_reviews.c.status, flag_reviews.c.operator)).all()
        assert [tuple(r) for r in kept] == [("confirmed", "ops"), ("dismissed", "ops")]
        assert orjson.loads(client.request("GET", "/dashboard/api/flags", token=viewer).body)
    finally:
        client.close()
        engine.dispose()
