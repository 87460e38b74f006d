"""What the page and the collectors read from the ledger: a few aggregate queries, no writes.

Written against the tables of `clearing.store.schema`, with the ledger's own helpers where they
exist (`prepayment.usage`, `prepayment.recent_alerts`); the rest (per-pair aggregates of a
period, today's totals, rejection reasons) are queries of this package. Every function takes a
connection and returns plain JSON-ready values with money in integer fen.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import ColumnElement, Connection, case, func, select

from clearing.core.jsonish import JSONObject
from clearing.core.models.types import CHINA_TZ
from clearing.core.netting import net_positions
from clearing.ledger import prepayment
from clearing.store.schema import periods, results, stream_results

# The home-side split (tiers.md): what each payer kind pays, and the due they make together.
# A result without tiers has zero tier shares and due = fund share, so the sums hold for both.
SPLIT = ("fund_pay_fen", "critical_pay_fen", "assistance_pay_fen", "due_fen")
AMOUNTS = ("total_fen", "personal_pay_fen", *SPLIT)


def _totals(conn: Connection, *where: ColumnElement[bool]) -> dict[str, int]:
    priced = func.sum(case((results.c.status == "priced", 1), else_=0))
    reversed_ = func.sum(case((results.c.status == "reversed", 1), else_=0))
    query = select(
        priced, reversed_, *(func.sum(getattr(results.c, name)) for name in AMOUNTS)
    ).where(*where)
    row = conn.execute(query).one()
    values = [int(v or 0) for v in row]
    return dict(zip(("settlements", "reversals", *AMOUNTS), values, strict=True))


def period_rows(conn: Connection) -> list[JSONObject]:
    """Every period with its state and timestamps, oldest first (the periods table is tiny)."""
    query = select(
        periods.c.period,
        periods.c.state,
        periods.c.opened_at,
        periods.c.closed_at,
        periods.c.issued_at,
        periods.c.statement_sha256,
    ).order_by(periods.c.period)
    return [
        {
            "period": row.period,
            "state": row.state,
            "opened_at": _iso(row.opened_at),
            "closed_at": _iso(row.closed_at),
            "issued_at": _iso(row.issued_at),
            "statement_sha256": row.statement_sha256,
        }
        for row in conn.execute(query)
    ]


def obligations(conn: Connection, period: str) -> list[JSONObject]:
    """Per (payer, payee) pair of `period`: counts and amounts, as the statement's obligations
    (without digests), sorted by (payer, payee)."""
    query = (
        select(
            results.c.payer,
            results.c.payee,
            func.sum(case((results.c.status == "priced", 1), else_=0)),
            func.sum(case((results.c.status == "reversed", 1), else_=0)),
            *(func.sum(getattr(results.c, name)) for name in AMOUNTS),
        )
        .where(results.c.clearing_period == period)
        .group_by(results.c.payer, results.c.payee)
        .order_by(results.c.payer, results.c.payee)
    )
    keys = ("payer", "payee", "settlements", "reversals", *AMOUNTS)
    return [
        dict(zip(keys, (row[0], row[1], *(int(v or 0) for v in row[2:])), strict=True))
        for row in conn.execute(query)
    ]


def period_view(conn: Connection, period: str) -> JSONObject:
    """A period's obligations, net positions (on the due), totals and the split by home-side
    payer per province, computed from its cleared results."""
    obs = obligations(conn, period)
    totals = {key: sum(ob[key] for ob in obs) for key in ("settlements", "reversals", *AMOUNTS)}
    return {
        "period": period,
        "obligations": obs,
        "net_positions": net_positions(obs),
        "totals": totals,
        "payers": payer_split(obs),
    }


def payer_split(obs: list[JSONObject]) -> list[JSONObject]:
    """Per home province (as payer), sorted: its settlements and what its basic fund, its
    serious-illness insurer and its medical-assistance fund owe, with the due they make."""
    split: dict[str, dict[str, int]] = {}
    for ob in obs:
        row = split.setdefault(ob["payer"], dict.fromkeys(("settlements", *SPLIT), 0))
        for key in ("settlements", *SPLIT):
            row[key] += ob[key]
    return [{"province": province, **split[province]} for province in sorted(split)]


def china_day_start(now: datetime) -> datetime:
    """00:00 UTC+08:00 of the day `now` falls in, as a UTC instant."""
    local = now.astimezone(CHINA_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def today_totals(conn: Connection, now: datetime) -> JSONObject:
    """Results the ledger recorded since 00:00 China time (the stream does not carry
    `settled_at` into the ledger, so the recording time stands for the settlement's)."""
    start = china_day_start(now)
    # SQLite keeps timestamps as naive UTC text; PostgreSQL compares instants.
    bound = start.replace(tzinfo=None) if conn.dialect.name == "sqlite" else start
    totals = _totals(conn, results.c.recorded_at >= bound)
    day = (start + timedelta(hours=8)).date().isoformat()
    return {"day": day, **totals}


def prepayments(conn: Connection) -> JSONObject:
    """The ledger's prepayment usage over the open periods (each province's prepayment, derived
    from its issued statements when no deposit is recorded, and the top-up back under the
    share), and the alert share in force."""
    rows = prepayment.usage(conn)
    return {"alert_share_bp": prepayment.alert_share(conn), "provinces": rows}


def alerts(conn: Connection, limit: int = 20) -> list[JSONObject]:
    """The latest alerts, with their time in China time, their usage (as the ledger's) and the
    top-up that would bring the usage back under the share."""
    rows = prepayment.recent_alerts(conn, limit)
    for row in rows:
        prepaid = row["prepayment_fen"]
        row["usage_bp"] = row["net_debit_fen"] * 10_000 // prepaid if prepaid else None
        if row.get("raised_at"):
            row["raised_at"] = _iso(datetime.fromisoformat(row["raised_at"]))
    return rows


def notices(conn: Connection, limit: int = 20) -> list[JSONObject]:
    """The latest "no prepayment on record" notices (one per province and period)."""
    rows = prepayment.recent_notices(conn, limit)
    for row in rows:
        if row.get("raised_at"):
            row["raised_at"] = _iso(datetime.fromisoformat(row["raised_at"]))
    return rows


def rejection_reasons(conn: Connection) -> dict[str, int]:
    """Reason -> rejected results, over every result the stream has stored."""
    counts: Counter[str] = Counter()
    query = select(stream_results.c.message).where(stream_results.c.status == "rejected")
    for (message,) in conn.execute(query.execution_options(yield_per=1000)):
        try:
            reasons = orjson.loads(message).get("reasons") or ["UNKNOWN"]
        except (orjson.JSONDecodeError, AttributeError):
            reasons = ["UNREADABLE"]
        counts.update(str(r) for r in reasons)
    return dict(counts.most_common())


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite: stored as UTC without an offset
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CHINA_TZ).isoformat(timespec="seconds")
