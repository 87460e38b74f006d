"""Balances per (clearing period, account, leg), kept in the transaction that makes the postings.

They make running positions and prepayment usage cost O(accounts) per batch; closing a period
checks them against the postings and the results (`periods.check_totals`).

Accounts are `<payer kind>:<province>` — `fund` (the basic fund), `critical` (the
serious-illness insurer), `assistance` (the medical-assistance fund) — and
`hospital:<hospital_id>`. The leg of each payer kind moves that payer's share of a result from the
home province's account to the treating fund; leg `hospital` moves the due (the sum of the
shares) from the treating fund to its hospital. So a province's net position (on `due_fen`) is
the balance (credits - debits) of its payer accounts on the payer legs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, func, select

from clearing.store.db import insert_rows
from clearing.store.schema import PAYER_KINDS, balances, periods

Key = tuple[str, str, str]  # (clearing_period, account_id, leg)


def fund_account(province: str) -> str:
    return f"fund:{province}"


def payer_account(kind: str, province: str) -> str:
    """The account of a home-side payer (`fund`, `critical` or `assistance`) of a province."""
    return f"{kind}:{province}"


def hospital_account(hospital_id: str) -> str:
    return f"hospital:{hospital_id}"


def apply(conn: Connection, deltas: Mapping[Key, Sequence[int]]) -> None:
    """Adds (debits, credits) to each balance, in key order so concurrent batches never deadlock."""
    if not deltas:
        return
    rows = [
        {
            "clearing_period": period,
            "account_id": account,
            "leg": leg,
            "debits_fen": debits,
            "credits_fen": credits,
        }
        for (period, account, leg), (debits, credits) in sorted(deltas.items())
    ]
    insert_rows(
        conn,
        balances,
        rows,
        lambda insert: insert.on_conflict_do_update(
            index_elements=["clearing_period", "account_id", "leg"],
            set_={
                "debits_fen": balances.c.debits_fen + insert.excluded.debits_fen,
                "credits_fen": balances.c.credits_fen + insert.excluded.credits_fen,
            },
        ),
    )


def open_periods(conn: Connection) -> list[str]:
    query = select(periods.c.period).where(periods.c.state == "open").order_by(periods.c.period)
    return list(conn.scalars(query))


def positions(
    conn: Connection, period: str | None = None, provinces: Iterable[str] | None = None
) -> dict[str, int]:
    """Net position (received - paid) per province in `period`, or over every open period."""
    net = func.sum(balances.c.credits_fen - balances.c.debits_fen)
    query = select(balances.c.account_id, net).where(balances.c.leg.in_(PAYER_KINDS))
    if period is not None:
        query = query.where(balances.c.clearing_period == period)
    else:
        query = query.join(periods, periods.c.period == balances.c.clearing_period).where(
            periods.c.state == "open"
        )
    if provinces is not None:
        query = query.where(
            balances.c.account_id.in_([payer_account(k, p) for k in PAYER_KINDS for p in provinces])
        )
    rows = conn.execute(query.group_by(balances.c.account_id).order_by(balances.c.account_id))
    out: dict[str, int] = {}
    for account, value in rows:
        province = account.split(":", 1)[1]
        out[province] = out.get(province, 0) + int(value)
    return dict(sorted(out.items()))


def by_account(conn: Connection, period: str) -> dict[tuple[str, str], int]:
    """Credits - debits per (account, leg) in `period`, zeros left out."""
    query = select(
        balances.c.account_id, balances.c.leg, balances.c.credits_fen - balances.c.debits_fen
    ).where(balances.c.clearing_period == period)
    return {(account, leg): int(net) for account, leg, net in conn.execute(query) if net}
