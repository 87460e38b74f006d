"""Reconciliation with the provinces, and the daily per-hospital totals.

After a statement is issued, each province confirms it or disputes one of its obligations,
naming the province's own digest and total due (`due_fen`, what the home side owes: the basic
fund's, the serious-illness insurer's and the medical-assistance fund's shares; `fund_pay_fen`
for a statement without tiers, where the two are equal). The answer says whether they match
ours; when the province sends its line list (`S|<settlement_id>|<due_fen>` /
`R|<reversal_id>|...`, the digest's lines) it names the ids missing on either side or carried
with other amounts; without one it returns our line list of that obligation, so the province
can compare. Every
confirmation and dispute is kept with its answer and the statement's SHA-256 (append-only).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from sqlalchemy import Connection, case, func, insert, select

from clearing.core.netting import digest, due_of, obligation_lines
from clearing.ledger.errors import LedgerInputError
from clearing.ledger.periods import issued_statement, results_of
from clearing.store.schema import reconciliations, results

_LINE = re.compile(r"([SR])\|([A-Za-z0-9_-]{1,64})\|(-?[0-9]+)")


def confirm(conn: Connection, period: str, province: str) -> dict[str, Any]:
    issued = issued_statement(conn, period)
    mine = [ob for ob in issued.statement["obligations"] if province in (ob["payer"], ob["payee"])]
    answer = {
        "period": period,
        "province": province,
        "action": "confirm",
        "statement_sha256": issued.sha256,
        "obligations": len(mine),
        "net_position_fen": issued.statement["net_positions"].get(province, 0),
    }
    _keep(conn, answer, {})
    return answer


def dispute(
    conn: Connection,
    period: str,
    province: str,
    payer: str,
    payee: str,
    their_digest: str,
    their_due_fen: int,
    their_lines: list[str] | None = None,
) -> dict[str, Any]:
    """Compares a province's digest and `due_fen` of one obligation with ours.

    The answer carries `due_fen` and `due_matches`, and, for clients of before the tiers,
    `fund_pay_fen` (ours: the obligation's basic-fund total) and `fund_pay_matches` (the same as
    `due_matches`: without tiers the due is the fund pay)."""
    if province not in (payer, payee):
        raise LedgerInputError(
            f"{province} can only dispute its own obligations, not {payer}->{payee}"
        )
    issued = issued_statement(conn, period)
    ours = obligation_lines(results_of(conn, period, (payer, payee))).get((payer, payee), [])
    obligation = next(
        (
            ob
            for ob in issued.statement["obligations"]
            if (ob["payer"], ob["payee"]) == (payer, payee)
        ),
        None,
    )
    our_digest = obligation["digest"] if obligation else digest([])
    our_fund = obligation["fund_pay_fen"] if obligation else 0
    our_due = due_of(obligation) if obligation else 0
    answer: dict[str, Any] = {
        "period": period,
        "province": province,
        "action": "dispute",
        "payer": payer,
        "payee": payee,
        "statement_sha256": issued.sha256,
        "ours": {
            "digest": our_digest,
            "due_fen": our_due,
            "fund_pay_fen": our_fund,
            "lines": len(ours),
        },
        "theirs": {"digest": their_digest, "due_fen": their_due_fen},
        "digest_matches": their_digest == our_digest,
        "due_matches": their_due_fen == our_due,
        "fund_pay_matches": their_due_fen == our_due,
    }
    if their_lines is None:
        answer["our_lines"] = sorted(ours)
    else:
        answer.update(_compare(ours, their_lines))
        answer["theirs"]["lines"] = len(their_lines)
        answer["their_lines_match_their_digest"] = digest(their_lines) == their_digest
    _keep(
        conn,
        answer,
        {
            "payer": payer,
            "payee": payee,
            "digest": their_digest,
            # The amount the province named: its due (the column predates the tiers).
            "fund_pay_fen": their_due_fen,
            "lines_given": None if their_lines is None else len(their_lines),
        },
    )
    return answer


def parse_lines(text: str) -> list[str]:
    """A province's line list: one digest line per row; blank rows are skipped."""
    lines = [row.strip() for row in text.splitlines() if row.strip()]
    bad = [row for row in lines if not _LINE.fullmatch(row)]
    if bad:
        raise LedgerInputError(f"not digest lines (S|id|fen or R|id|fen): {bad[:3]}")
    return lines


def _compare(ours: list[str], theirs: list[str]) -> dict[str, Any]:
    mine = _by_id(ours)
    their = _by_id(theirs)
    differing = [
        {"id": ident, "ours_fen": mine[ident], "theirs_fen": their[ident]}
        for ident in sorted(set(mine) & set(their))
        if mine[ident] != their[ident]
    ]
    missing_here = sorted(set(their) - set(mine))
    missing_there = sorted(set(mine) - set(their))
    return {
        "missing_here": missing_here,
        "missing_there": missing_there,
        "amount_differs": differing,
        "differing_ids": sorted({*missing_here, *missing_there, *(d["id"] for d in differing)}),
    }


def _by_id(lines: list[str]) -> dict[str, int]:
    """`S|id` / `R|id` -> due in fen."""
    out: dict[str, int] = {}
    for line in lines:
        kind, ident, fen = line.split("|")
        out[f"{kind}|{ident}"] = int(fen)
    return out


def _keep(conn: Connection, answer: dict[str, Any], dispute_fields: dict[str, Any]) -> None:
    conn.execute(
        insert(reconciliations).values(
            period=answer["period"],
            province=answer["province"],
            action=answer["action"],
            statement_sha256=answer["statement_sha256"],
            answer=json.dumps(answer, separators=(",", ":"), ensure_ascii=False),
            **dispute_fields,
        )
    )


def hospital_totals(
    conn: Connection, day: date, province: str | None = None
) -> list[dict[str, Any]]:
    """Per hospital, the results settled on `day` (UTC+08:00): counts and signed sums.

    Only results that carried `settled_at` have a day; the batch covers those.
    """
    query = select(
        results.c.payee,
        results.c.hospital_id,
        func.count(),
        func.sum(case((results.c.status == "priced", 1), else_=0)),
        func.sum(results.c.total_fen),
        func.sum(results.c.fund_pay_fen),
        func.sum(results.c.personal_pay_fen),
    ).where(results.c.settled_day == day)
    if province is not None:
        query = query.where(results.c.payee == province)
    query = query.group_by(results.c.payee, results.c.hospital_id).order_by(
        results.c.payee, results.c.hospital_id
    )
    return [
        {
            "day": day.isoformat(),
            "province": payee,
            "hospital_id": hospital_id,
            "count": int(count),
            "settlements": int(priced),
            "reversals": int(count) - int(priced),
            "total_fen": int(total),
            "fund_pay_fen": int(fund),
            "personal_pay_fen": int(personal),
        }
        for payee, hospital_id, count, priced, total, fund, personal in conn.execute(query)
    ]
