"""Clearing periods and their statements.

State machine (a CHECK holds each row consistent, a trigger allows only these moves):

    (absent) ──first result, or close──▶ open ──close──▶ closed ──issue──▶ issued

- A period is a calendar month of `settled_at` in UTC+08:00. It opens when its first result
  arrives; closing a period that never had one creates it, so an empty period is closed and
  issued like any other (its statement has no obligations).
- close (explicit: operator or schedule): refused before the month has ended in China time
  unless forced; refused, changing nothing, when the period's balances, postings and results
  disagree. Closing a closed or issued period changes nothing and says so (not an error), so
  a schedule may retry it.
- issue: only a closed period. The statement is computed once, with
  `clearing.core.netting.build_statement` over the results cleared in the period, stored with its
  SHA-256, and never changes: issuing again returns the stored statement. Issuing an open or
  unknown period is an error.
- Late results: a result whose own period is closed or issued is cleared in the next open
  period (the first later month not closed, opened if absent). Its `period` is kept for audit;
  `clearing_period` says where it is counted. Nothing is dropped.

Locking: writers of results take a share lock on the period rows they write into; close and
issue lock the row for update, so a close waits for batches in flight and later batches see it
closed (PostgreSQL); SQLite serialises writers anyway (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, case, func, select, update

from clearing.core import periods as calendar
from clearing.core.netting import Statement, build_statement, check_transfers
from clearing.core.periods import next_period, period_end
from clearing.ledger import balances
from clearing.ledger.errors import LedgerInputError, LedgerInvariantError, PeriodStateError
from clearing.ledger.records import from_row
from clearing.store.db import dialect_insert
from clearing.store.schema import SHARES, periods, postings, results


@dataclass(frozen=True)
class PeriodInfo:
    period: str
    state: str
    results: int
    late_results: int
    opened_at: datetime | None
    closed_at: datetime | None
    issued_at: datetime | None
    statement_sha256: str | None


@dataclass(frozen=True)
class Issued:
    """An issued statement; `newly_issued` is true only for the call that issued it, which is
    the one that should publish it."""

    period: str
    statement: Statement
    sha256: str
    newly_issued: bool


def check_period(period: str) -> str:
    """`clearing.core.periods.check_period`, refusing as the ledger refuses input."""
    try:
        return calendar.check_period(period)
    except ValueError as exc:
        raise LedgerInputError(str(exc)) from None


def _ensure(conn: Connection, period: str) -> None:
    insert = dialect_insert(conn, periods).values(period=period)
    conn.execute(insert.on_conflict_do_nothing(index_elements=["period"]))


def _locked_state(conn: Connection, period: str, *, share: bool) -> str | None:
    query = select(periods.c.state).where(periods.c.period == period)
    return conn.scalar(query.with_for_update(read=share))


def clearing_period(conn: Connection, period: str, cache: dict[str, str]) -> str:
    """The open period a result of `period` is cleared in: its own, or the next open one."""
    if period not in cache:
        current = period
        while True:
            _ensure(conn, current)
            if _locked_state(conn, current, share=True) == "open":
                break
            current = next_period(current)
        cache[period] = current
    return cache[period]


def close_period(
    conn: Connection, period: str, *, force: bool = False, now: datetime | None = None
) -> tuple[PeriodInfo, bool]:
    """Closes `period`; returns its state and whether this call closed it."""
    check_period(period)
    _ensure(conn, period)
    if _locked_state(conn, period, share=False) != "open":
        return period_info(conn, period), False
    now = now or datetime.now(UTC)
    if not force and now < period_end(period):
        raise PeriodStateError(
            f"period {period} has not ended yet (it ends {period_end(period).isoformat()}); "
            "closing it early sends the rest of its results to the next period: use --force"
        )
    check_totals(conn, period)
    conn.execute(
        update(periods)
        .where(periods.c.period == period)
        .values(state="closed", closed_at=func.now())
    )
    return period_info(conn, period), True


def issue_period(conn: Connection, period: str) -> Issued:
    """Issues the statement of a closed period once; afterwards returns the same statement."""
    check_period(period)
    row = conn.execute(select(periods).where(periods.c.period == period).with_for_update()).first()
    if row is None:
        raise PeriodStateError(f"period {period} does not exist: close it first")
    if row.state == "issued":
        return Issued(period, json.loads(row.statement), row.statement_sha256, False)
    if row.state != "closed":
        raise PeriodStateError(
            f"period {period} is {row.state}: close it before issuing its statement"
        )
    statement = build_statement(period, results_of(conn, period))
    _check_statement(conn, period, statement)
    text = json.dumps(statement, separators=(",", ":"), ensure_ascii=False)
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    conn.execute(
        update(periods)
        .where(periods.c.period == period)
        .values(state="issued", issued_at=func.now(), statement=text, statement_sha256=sha256)
    )
    return Issued(period, statement, sha256, True)


def issued_statement(conn: Connection, period: str) -> Issued:
    """The issued statement of `period`; PeriodStateError when there is none yet."""
    check_period(period)
    row = conn.execute(
        select(periods.c.state, periods.c.statement, periods.c.statement_sha256).where(
            periods.c.period == period
        )
    ).first()
    if row is None or row.state != "issued":
        state = "unknown" if row is None else row.state
        raise PeriodStateError(f"period {period} has no issued statement (it is {state})")
    return Issued(period, json.loads(row.statement), row.statement_sha256, False)


def results_of(
    conn: Connection, period: str, pair: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """The results cleared in `period` (optionally of one payer/payee pair), as the spec's dicts."""
    query = select(results).where(results.c.clearing_period == period)
    if pair is not None:
        query = query.where(results.c.payer == pair[0], results.c.payee == pair[1])
    return [from_row(row._mapping) for row in conn.execute(query.order_by(results.c.id))]


def period_status(conn: Connection, period: str | None = None) -> list[PeriodInfo]:
    counts = (
        select(
            results.c.clearing_period,
            func.count().label("n"),
            func.sum(case((results.c.period != results.c.clearing_period, 1), else_=0)).label(
                "late"
            ),
        )
        .group_by(results.c.clearing_period)
        .subquery()
    )
    query = (
        select(periods, counts.c.n, counts.c.late)
        .outerjoin(counts, counts.c.clearing_period == periods.c.period)
        .order_by(periods.c.period)
    )
    if period is not None:
        query = query.where(periods.c.period == check_period(period))
    return [
        PeriodInfo(
            row.period,
            row.state,
            int(row.n or 0),
            int(row.late or 0),
            row.opened_at,
            row.closed_at,
            row.issued_at,
            row.statement_sha256,
        )
        for row in conn.execute(query)
    ]


def period_info(conn: Connection, period: str) -> PeriodInfo:
    return period_status(conn, period)[0]


def check_totals(conn: Connection, period: str) -> None:
    """Results, postings and balances of `period` must tell the same story, account by account.

    From the results: each home-side payer of the payer province pays its share to the payee's
    fund (its own leg: `fund`, `critical`, `assistance`), which pays the due on to the hospital
    (leg `hospital`). The postings and the balances must show the same net per (account, leg),
    and each result must have one posting per share that is not zero plus one of its due, of
    |share| and |due|.
    """
    expected: dict[tuple[str, str], int] = defaultdict(int)
    shares = select(
        results.c.payer,
        results.c.payee,
        results.c.hospital_id,
        *(func.sum(results.c[column]) for column in SHARES.values()),
        func.sum(results.c.due_fen),
    ).where(results.c.clearing_period == period)
    for payer, payee, hospital_id, *amounts in conn.execute(
        shares.group_by(results.c.payer, results.c.payee, results.c.hospital_id)
    ):
        *paid, due = (int(a) for a in amounts)
        for leg, share in zip(SHARES, paid, strict=True):
            expected[(balances.fund_account(payee), leg)] += share
            expected[(balances.payer_account(leg, payer), leg)] -= share
        expected[(balances.hospital_account(hospital_id), "hospital")] += due
        expected[(balances.fund_account(payee), "hospital")] -= due

    posted: dict[tuple[str, str], int] = defaultdict(int)
    moved = (
        select(
            postings.c.leg,
            postings.c.debit_account,
            postings.c.credit_account,
            func.sum(postings.c.amount_fen),
        )
        .select_from(postings.join(results, results.c.result_key == postings.c.result_key))
        .where(results.c.clearing_period == period)
        .group_by(postings.c.leg, postings.c.debit_account, postings.c.credit_account)
    )
    for leg, debit, credit, amount in conn.execute(moved):
        posted[(credit, leg)] += int(amount)
        posted[(debit, leg)] -= int(amount)

    stored = balances.by_account(conn, period)
    problems = [
        f"{account} ({leg} leg): results say {expected.get((account, leg), 0)}, postings "
        f"{posted.get((account, leg), 0)}, balances {stored.get((account, leg), 0)}"
        for account, leg in sorted(set(expected) | set(posted) | set(stored))
        if not expected.get((account, leg), 0)
        == posted.get((account, leg), 0)
        == stored.get((account, leg), 0)
    ]
    problems += [
        f"{key}: its postings do not carry its fund share (each payer's, and the due)"
        for key in conn.scalars(_results_with_wrong_postings(period))
    ]
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise LedgerInvariantError(
            f"period {period}: the ledger's totals differ from its results; nothing was "
            f"changed:\n  {shown}{more}"
        )


def _results_with_wrong_postings(period: str) -> Select[tuple[str]]:
    amounts = [results.c[column] for column in (*SHARES.values(), "due_fen")]
    count: ColumnElement[int] = sum_of([case((a == 0, 0), else_=1) for a in amounts])
    total: ColumnElement[int] = sum_of([func.abs(a) for a in amounts])
    return (
        select(results.c.result_key)
        .select_from(results.outerjoin(postings, postings.c.result_key == results.c.result_key))
        .where(results.c.clearing_period == period)
        .group_by(results.c.result_key, *amounts)
        .having(
            (func.count(postings.c.id) != count)
            | (func.coalesce(func.sum(postings.c.amount_fen), 0) != total)
        )
        .order_by(results.c.result_key)
    )


def sum_of(terms: list[ColumnElement[int]]) -> ColumnElement[int]:
    out = terms[0]
    for term in terms[1:]:
        out = out + term
    return out


def _check_statement(conn: Connection, period: str, statement: Statement) -> None:
    netted = {p: v for p, v in statement["net_positions"].items() if v}
    booked = {p: v for p, v in balances.positions(conn, period).items() if v}
    problems = [
        f"{province}: statement {netted.get(province, 0)}, ledger {booked.get(province, 0)}"
        for province in sorted(set(netted) | set(booked))
        if netted.get(province, 0) != booked.get(province, 0)
    ]
    problems += check_transfers(statement["net_positions"], statement["transfers"])
    if problems:
        raise LedgerInvariantError(
            f"period {period}: the statement disagrees with the ledger; not issued:\n  "
            + "\n  ".join(problems)
        )
