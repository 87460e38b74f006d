"""Prepayments (预付金) and the alerts on their usage.

Each province keeps a prepayment with the national platform: deposits are append-only, the
balance is their sum. When no deposit is recorded for a province, its prepayment is taken as the
bureaus set it: twice its average monthly `due_fen` as payer over the issued periods of the last
12 months (`derived`): the obligations of each issued statement where it is payer, `due_fen`
(`fund_pay_fen` for obligations without it), summed and divided by the number of issued periods
in the window (the 12 months before the latest open period), i.e. `2 * owed // periods`.

Usage is the province's running net debit (its negative net position over every open period)
divided by its prepayment. When a recorded result takes a province's usage past the configured
share (`alert_share_bp`, default 7000 = 70 %), an alert is raised: one per crossing from below
to above, attributed to the result that crossed, stored, and returned by `record_results` so the
stream can publish it. An alert carries the top-up that would bring the usage back under the
share: `top_up_fen = ceil(net_debit * 10000 / share_bp) - prepayment`, in exact integers.

A province with no prepayment on record (no deposit, and nothing to derive one from: no period
issued in the window, or nothing owed in them) raises no alert: a result that leaves it in net
debit raises one notice, "no prepayment on record", per (province, clearing period), kept
unique by the key of `ledger_notices`, however many batches follow. Settlements are never
refused for any of it: patients are not turned away over an inter-fund matter.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from clearing.core.netting import due_of
from clearing.core.periods import next_period, parse_period
from clearing.ledger import balances
from clearing.ledger.errors import LedgerInputError
from clearing.store.db import dialect_insert
from clearing.store.schema import alerts, config, notices, periods, prepayments

NO_PREPAYMENT = "no prepayment on record"
WINDOW_MONTHS = 12
# How many times the average monthly due the bureaus hold as prepayment.
DERIVED_MONTHS = 2


@dataclass(frozen=True)
class Prepayment:
    """A province's prepayment: its deposits, else derived from issued statements."""

    fen: int
    derived: bool

    @property
    def on_record(self) -> bool:
        return self.fen > 0


def top_up(net_debit_fen: int, prepayment_fen: int, share_bp: int) -> int:
    """What brings the usage back to the share (not past it): ceil(debit * 10000 / share) -
    prepayment, in exact integers; 0 when the usage is not past the share."""
    needed = -(-net_debit_fen * 10_000 // share_bp)
    return max(0, needed - prepayment_fen)


@dataclass(frozen=True)
class Alert:
    province: str
    result_key: str
    net_debit_fen: int
    prepayment_fen: int
    alert_share_bp: int
    open_periods: tuple[str, ...]
    prepayment_derived: bool = False

    @property
    def usage_bp(self) -> int | None:
        if not self.prepayment_fen:
            return None
        return self.net_debit_fen * 10_000 // self.prepayment_fen

    @property
    def top_up_fen(self) -> int:
        return top_up(self.net_debit_fen, self.prepayment_fen, self.alert_share_bp)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "open_periods": list(self.open_periods),
            "usage_bp": self.usage_bp,
            "top_up_fen": self.top_up_fen,
        }


@dataclass(frozen=True)
class Notice:
    """The notice "no prepayment on record" of a province in a clearing period, raised once."""

    province: str
    period: str
    result_key: str
    net_debit_fen: int

    def as_dict(self) -> dict[str, Any]:
        return {"type": "prepayment_notice", **asdict(self), "message": NO_PREPAYMENT}


def passes(net_position_fen: int, prepayment_fen: int, share_bp: int) -> bool:
    """True when the net debit is above `share_bp` of the prepayment (the alerts' CHECK too)."""
    return max(0, -net_position_fen) * 10_000 > share_bp * prepayment_fen


def _check_province(province: str) -> str:
    if not (
        len(province) == 6
        and province.isdigit()
        and province[0] != "0"
        and province.endswith("0000")
    ):
        raise LedgerInputError(f"a province code is six digits ending in 0000, not {province!r}")
    return province


def deposit(conn: Connection, province: str, amount_fen: int, note: str | None = None) -> int:
    """Records a deposit; returns the province's new prepayment balance."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise LedgerInputError(f"a deposit is a positive whole number of fen, not {amount_fen!r}")
    conn.execute(
        insert(prepayments).values(
            province=_check_province(province), amount_fen=amount_fen, note=note
        )
    )
    return prepaid(conn, [province])[province]


def prepaid(conn: Connection, provinces: Iterable[str] | None = None) -> dict[str, int]:
    """Prepayment balance per province (every province given appears, 0 when none)."""
    query = select(prepayments.c.province, func.sum(prepayments.c.amount_fen)).group_by(
        prepayments.c.province
    )
    wanted = None if provinces is None else sorted(set(provinces))
    if wanted is not None:
        query = query.where(prepayments.c.province.in_(wanted))
    found = {province: int(total) for province, total in conn.execute(query)}
    return {p: found.get(p, 0) for p in wanted} if wanted is not None else found


def _months_before(period: str, months: int) -> str:
    year, month = parse_period(period)
    index = year * 12 + month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def reference_period(conn: Connection) -> str | None:
    """The period the window of issued periods ends before: the latest open period, else the
    one after the latest period; None when the ledger has no period at all."""
    open_now = balances.open_periods(conn)
    if open_now:
        return max(open_now)
    latest = conn.scalar(select(func.max(periods.c.period)))
    return next_period(latest) if latest is not None else None


def derived(conn: Connection, before: str | None = None) -> dict[str, int]:
    """Twice the average monthly due as payer over the issued periods of the 12 months before
    `before` (default `reference_period`), per province that owed anything in them."""
    before = before or reference_period(conn)
    if before is None:
        return {}
    query = select(periods.c.statement_sha256).where(
        periods.c.state == "issued",
        periods.c.period >= _months_before(before, WINDOW_MONTHS),
        periods.c.period < before,
    )
    digests = list(conn.scalars(query))
    if not digests:
        return {}
    owed: dict[str, int] = defaultdict(int)
    for digest in digests:
        for province, due in _owed_in(conn, digest).items():
            owed[province] += due
    return {
        province: DERIVED_MONTHS * total // len(digests)
        for province, total in owed.items()
        if total > 0
    }


# What each payer owes in an issued statement, by the statement's SHA-256: an issued statement
# never changes, so it is read once per process, not once per batch.
_OWED: dict[str, dict[str, int]] = {}


def _owed_in(conn: Connection, digest: str) -> dict[str, int]:
    known = _OWED.get(digest)
    if known is not None:
        return known
    query = select(periods.c.statement).where(periods.c.statement_sha256 == digest).limit(1)
    text: str = conn.execute(query).scalar_one()
    owed: dict[str, int] = defaultdict(int)
    for obligation in json.loads(text)["obligations"]:
        owed[obligation["payer"]] += due_of(obligation)
    _OWED[digest] = dict(owed)
    return _OWED[digest]


def prepayments_of(
    conn: Connection, provinces: Iterable[str] | None = None
) -> dict[str, Prepayment]:
    """Each province's prepayment: its deposits, else derived (every province given appears;
    with neither, 0 and not derived: no prepayment on record)."""
    deposits = prepaid(conn, provinces)
    from_statements = derived(conn)
    wanted = set(deposits) | set(from_statements) if provinces is None else set(provinces)
    out = {}
    for province in sorted(wanted):
        if deposits.get(province, 0) > 0:
            out[province] = Prepayment(deposits[province], False)
        else:
            fen = from_statements.get(province, 0)
            out[province] = Prepayment(fen, fen > 0)
    return out


def alert_share(conn: Connection) -> int:
    share = conn.scalar(select(config.c.alert_share_bp).where(config.c.id == 1))
    if share is None:
        raise LedgerInputError("the ledger's config row (id 1) is missing: migrate the database")
    return int(share)


def set_alert_share(conn: Connection, share_bp: int) -> None:
    if isinstance(share_bp, bool) or not isinstance(share_bp, int) or not 1 <= share_bp <= 10_000:
        raise LedgerInputError(f"the alert share is 1..10000 basis points, not {share_bp!r}")
    conn.execute(update(config).where(config.c.id == 1).values(alert_share_bp=share_bp))


def usage(conn: Connection) -> list[dict[str, Any]]:
    """Per province with a prepayment or an open position: balance, position, usage, alert."""
    positions = balances.positions(conn)
    known = prepayments_of(conn)
    share = alert_share(conn)
    rows = []
    for province in sorted(set(positions) | set(known)):
        net = positions.get(province, 0)
        held = known.get(province, Prepayment(0, False))
        balance = held.fen
        debit = max(0, -net)
        rows.append(
            {
                "province": province,
                "prepayment_fen": balance,
                "prepayment_derived": held.derived,
                "prepayment_on_record": held.on_record,
                "net_position_fen": net,
                "net_debit_fen": debit,
                "usage_bp": debit * 10_000 // balance if balance else None,
                "alert_share_bp": share,
                "over": passes(net, balance, share),
                "top_up_fen": top_up(debit, balance, share) if balance else None,
            }
        )
    return rows


def raise_alerts(
    conn: Connection, moves: Sequence[tuple[str, str, int, str]]
) -> tuple[list[Alert], list[Notice]]:
    """Alerts and notices for a batch just posted; `moves` are (result key, province, change of
    its net position, clearing period) in recording order. Stored, and returned in that order:
    an alert per crossing of the share by a province with a prepayment on record, a notice per
    (province, period) not noticed before for one without."""
    if not moves:
        return [], []
    change: dict[str, int] = defaultdict(int)
    for _, province, delta, _ in moves:
        change[province] += delta
    now = balances.positions(conn, provinces=change)
    running = {p: now.get(p, 0) - change[p] for p in change}
    held = prepayments_of(conn, change)
    share = alert_share(conn)
    window = tuple(balances.open_periods(conn))
    raised = []
    noticed: dict[tuple[str, str], Notice] = {}
    for key, province, delta, period in moves:
        before = running[province]
        running[province] = after = before + delta
        prepayment = held[province]
        if not prepayment.on_record:
            if after < 0 and (province, period) not in noticed:
                noticed[(province, period)] = Notice(province, period, key, -after)
            continue
        balance = prepayment.fen
        if passes(after, balance, share) and not passes(before, balance, share):
            raised.append(Alert(province, key, -after, balance, share, window, prepayment.derived))
    if raised:
        conn.execute(
            insert(alerts),
            [
                {
                    "province": a.province,
                    "result_key": a.result_key,
                    "net_debit_fen": a.net_debit_fen,
                    "prepayment_fen": a.prepayment_fen,
                    "alert_share_bp": a.alert_share_bp,
                    "open_periods": ",".join(a.open_periods),
                }
                for a in raised
            ],
        )
    return raised, _store_notices(conn, list(noticed.values()))


def _store_notices(conn: Connection, candidates: list[Notice]) -> list[Notice]:
    """The candidates whose (province, period) had no notice yet; the key refuses the rest.

    Those already noticed are read first in one query: after a period's first batches every
    candidate has its notice, and a statement per candidate would be built for nothing."""
    if not candidates:
        return []
    t = notices
    query = select(t.c.province, t.c.period).where(
        t.c.kind == "no_prepayment",
        t.c.period.in_(sorted({n.period for n in candidates})),
        t.c.province.in_(sorted({n.province for n in candidates})),
    )
    noticed = {(province, period) for province, period in conn.execute(query)}
    new = []
    for notice in candidates:
        if (notice.province, notice.period) in noticed:
            continue
        statement = (
            dialect_insert(conn, notices)
            .values(
                province=notice.province,
                period=notice.period,
                kind="no_prepayment",
                result_key=notice.result_key,
                net_debit_fen=notice.net_debit_fen,
            )
            .on_conflict_do_nothing(index_elements=["province", "period", "kind"])
            .returning(notices.c.province)
        )
        if conn.execute(statement).first() is not None:
            new.append(notice)
    return new


def recent_alerts(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    return [
        {
            "province": row.province,
            "result_key": row.result_key,
            "net_debit_fen": int(row.net_debit_fen),
            "prepayment_fen": int(row.prepayment_fen),
            "alert_share_bp": row.alert_share_bp,
            "open_periods": row.open_periods.split(",") if row.open_periods else [],
            "raised_at": row.recorded_at.isoformat() if row.recorded_at else None,
            "top_up_fen": top_up(
                int(row.net_debit_fen), int(row.prepayment_fen), row.alert_share_bp
            ),
        }
        for row in conn.execute(query)
    ]


def recent_notices(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The latest "no prepayment on record" notices, latest first."""
    t = notices
    query = select(t).order_by(t.c.recorded_at.desc(), t.c.period.desc(), t.c.province).limit(limit)
    return [
        {
            "province": row.province,
            "period": row.period,
            "result_key": row.result_key,
            "net_debit_fen": int(row.net_debit_fen),
            "message": NO_PREPAYMENT,
            "raised_at": row.recorded_at.isoformat() if row.recorded_at else None,
        }
        for row in conn.execute(query)
    ]
