"""Prepayments (预付金) and the alerts on their usage.

Each province keeps a prepayment with the national platform: deposits are append-only, the
balance is their sum. Usage is the province's running net debit (its negative net position over
every open period) divided by that balance. When a recorded result takes a province's usage past
the configured share (`alert_share_bp`, default 7000 = 70 %), an alert is raised: one per
crossing from below to above, attributed to the result that crossed, stored, and returned by
`record_results` so the stream can publish it. With no prepayment at all, any net debit passes
the share. Settlements are never refused for it: patients are not turned away over an
inter-fund matter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from clearing.ledger import balances
from clearing.ledger.errors import LedgerInputError
from clearing.store.schema import alerts, config, prepayments


@dataclass(frozen=True)
class Alert:
    province: str
    result_key: str
    net_debit_fen: int
    prepayment_fen: int
    alert_share_bp: int
    open_periods: tuple[str, ...]

    @property
    def usage_bp(self) -> int | None:
        if not self.prepayment_fen:
            return None
        return self.net_debit_fen * 10_000 // self.prepayment_fen

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "open_periods": list(self.open_periods), "usage_bp": self.usage_bp}


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


def alert_share(conn: Connection) -> int:
    return int(conn.scalar(select(config.c.alert_share_bp).where(config.c.id == 1)))


def set_alert_share(conn: Connection, share_bp: int) -> None:
    if isinstance(share_bp, bool) or not isinstance(share_bp, int) or not 1 <= share_bp <= 10_000:
        raise LedgerInputError(f"the alert share is 1..10000 basis points, not {share_bp!r}")
    conn.execute(update(config).where(config.c.id == 1).values(alert_share_bp=share_bp))


def usage(conn: Connection) -> list[dict[str, Any]]:
    """Per province with a prepayment or an open position: balance, position, usage, alert."""
    positions = balances.positions(conn)
    deposits = prepaid(conn)
    share = alert_share(conn)
    rows = []
    for province in sorted(set(positions) | set(deposits)):
        net = positions.get(province, 0)
        balance = deposits.get(province, 0)
        debit = max(0, -net)
        rows.append(
            {
                "province": province,
                "prepayment_fen": balance,
                "net_position_fen": net,
                "net_debit_fen": debit,
                "usage_bp": debit * 10_000 // balance if balance else None,
                "alert_share_bp": share,
                "over": passes(net, balance, share),
            }
        )
    return rows


def raise_alerts(conn: Connection, moves: list[tuple[str, str, int]]) -> list[Alert]:
    """Alerts for a batch just posted; `moves` are (result key, province, change of its net
    position) in recording order. Stored, and returned in that order."""
    if not moves:
        return []
    change: dict[str, int] = defaultdict(int)
    for _, province, delta in moves:
        change[province] += delta
    now = balances.positions(conn, provinces=change)
    running = {p: now.get(p, 0) - change[p] for p in change}
    deposits = prepaid(conn, change)
    share = alert_share(conn)
    window = tuple(balances.open_periods(conn))
    raised = []
    for key, province, delta in moves:
        before = running[province]
        running[province] = after = before + delta
        balance = deposits[province]
        if passes(after, balance, share) and not passes(before, balance, share):
            raised.append(Alert(province, key, -after, balance, share, window))
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
    return raised


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
        }
        for row in conn.execute(query)
    ]
