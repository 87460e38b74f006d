"""Helpers of the dashboard tests: the sample ledger, a dashboard on it without a broker, and
the Grafana dashboards' panels and the metric names their queries use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
from sqlalchemy import insert

from clearing.dashboard import DashboardConfig
from clearing.dashboard.lag import PartitionLag
from clearing.dashboard.service import Dashboard
from clearing.ledger.store import Ledger
from clearing.store.db import make_engine
from clearing.store.schema import stream_results
from clearing.topics import Topics
from support.paths import CASES, ROOT

PREFIX = "dash"
GROUP = f"{PREFIX}-stream"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
# Words in PromQL that are not metric names.
PROMQL = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate",
    "histogram_quantile", "topk", "bottomk", "le", "and", "or", "unless", "on", "ignoring",
}  # fmt: skip


def sample_results() -> list[dict]:
    return [orjson.loads(line) for line in (CASES / "priced.jsonl").read_bytes().splitlines()]


def cleared(results: list[dict], period: str | None = None) -> list[dict]:
    return [
        r
        for r in results
        if r["status"] in ("priced", "reversed") and (period is None or r["period"] == period)
    ]


def make_sample_db(folder: Path) -> str:
    """The sample's results in a ledger: 2026-01 issued, 2026-02 closed, the rest open; a
    prepayment for Henan (410000); the rejected results in the stream's table."""
    url = f"sqlite:///{folder / 'ledger.sqlite'}"
    results = sample_results()
    with Ledger(url) as ledger:
        ledger.record_results(cleared(results))
        from clearing.ledger import prepayment

        with ledger.transaction() as conn:
            prepayment.deposit(conn, "410000", 500_000_00)
        ledger.close_period("2026-01", force=True)
        ledger.issue_period("2026-01")
        ledger.close_period("2026-02", force=True)
    engine = make_engine(url)
    rejected = [r for r in results if r["status"] == "rejected"]
    with engine.begin() as conn:
        conn.execute(
            insert(stream_results),
            [
                {"source": f"t:0:{r['line']}", "status": "rejected", "message": orjson.dumps(r)}
                for r in rejected
            ],
        )
    engine.dispose()
    return url


class StandInLag:
    """Offsets as the broker would report them, without a broker."""

    def read(self) -> list[PartitionLag]:
        events = Topics(PREFIX).events
        return [PartitionLag(events, 0, 120, 100), PartitionLag(events, 1, 80, None)]

    def close(self) -> None:
        pass


def dashboard_for(url: str, **kwargs) -> Dashboard:
    config = DashboardConfig("127.0.0.1:1", Topics(PREFIX), GROUP, url, ttl=60, sample_every=60)
    return Dashboard(config, lag_reader=StandInLag(), **kwargs)  # type: ignore[arg-type]


def panels() -> list[dict]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        document = json.loads(path.read_text())
        stack = list(document["panels"])
        while stack:
            panel = stack.pop(0)
            stack.extend(panel.get("panels", []))
            if panel.get("type") != "row":
                found.append(panel)
    return found


def metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_groups = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_ranges)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groups))
    return {w for w in words if w not in PROMQL and not w.startswith("__")}
