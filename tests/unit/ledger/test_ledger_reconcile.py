"""Confirmations, disputes that find a planted difference, and the daily hospital totals."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select
from support.ledger import priced, reversal, sample_results

from clearing.core.netting import digest, obligation_lines
from clearing.ledger import reconcile
from clearing.ledger.errors import LedgerInputError, PeriodStateError
from clearing.store.schema import reconciliations


@pytest.fixture
def issued_sample(ledger):
    """The sample recorded, with 2026-01 closed and issued; returns that period's results."""
    sample = sample_results()
    ledger.record_results(sample)
    ledger.close_period("2026-01")
    ledger.issue_period("2026-01")
    return [r for r in sample if r.get("period") == "2026-01"]


def test_confirm_is_kept_with_the_statement_it_confirms(ledger, issued_sample):
    answer = ledger.run(lambda conn: reconcile.confirm(conn, "2026-01", "410000"))
    statement = ledger.statement("2026-01")
    assert answer["statement_sha256"] == statement.sha256
    assert answer["obligations"] == 3
    assert answer["net_position_fen"] == statement.statement["net_positions"]["410000"]
    with ledger.transaction() as conn:
        row = conn.execute(select(reconciliations)).one()
    assert (row.action, row.province, row.period) == ("confirm", "410000", "2026-01")
    assert json.loads(row.answer) == answer


def test_a_dispute_names_the_planted_differences(ledger, issued_sample):
    pair = ("150000", "420000")  # three settlements in the sample
    ours = obligation_lines(issued_sample)[pair]
    assert len(ours) == 3
    theirs = sorted(ours)
    dropped = theirs.pop(0)  # the province lacks one of ours
    kind, ident, fen = theirs[0].split("|")
    theirs[0] = f"{kind}|{ident}|{int(fen) + 1}"  # and carries another with one fen more
    theirs.append("S|S-PROVINCE-ONLY|500")  # and has one we never saw
    their_total = sum(int(line.rsplit("|", 1)[1]) for line in theirs)

    answer = ledger.run(
        lambda conn: reconcile.dispute(
            conn, "2026-01", "150000", *pair, digest(theirs), their_total, theirs
        )
    )
    assert not answer["digest_matches"] and not answer["fund_pay_matches"]
    assert answer["their_lines_match_their_digest"]
    assert answer["missing_here"] == ["S|S-PROVINCE-ONLY"]
    assert answer["missing_there"] == ["|".join(dropped.split("|")[:2])]
    assert answer["amount_differs"] == [
        {"id": f"{kind}|{ident}", "ours_fen": int(fen), "theirs_fen": int(fen) + 1}
    ]
    assert len(answer["differing_ids"]) == 3


def test_a_dispute_without_lines_gets_our_lines(ledger, issued_sample):
    pair = ("150000", "420000")
    ours = obligation_lines(issued_sample)[pair]
    statement = ledger.statement("2026-01").statement
    obligation = next(o for o in statement["obligations"] if (o["payer"], o["payee"]) == pair)
    answer = ledger.run(
        lambda conn: reconcile.dispute(
            conn, "2026-01", "420000", *pair, obligation["digest"], obligation["fund_pay_fen"]
        )
    )
    assert answer["digest_matches"] and answer["fund_pay_matches"]
    assert answer["our_lines"] == sorted(ours)


def test_matching_lines_show_no_difference(ledger, issued_sample):
    pair = ("150000", "420000")
    ours = obligation_lines(issued_sample)[pair]
    total = sum(int(line.rsplit("|", 1)[1]) for line in ours)
    answer = ledger.run(
        lambda conn: reconcile.dispute(conn, "2026-01", "150000", *pair, digest(ours), total, ours)
    )
    assert answer["digest_matches"] and answer["fund_pay_matches"]
    assert answer["differing_ids"] == []


def test_disputes_only_on_issued_statements_and_own_obligations(ledger, issued_sample):
    with pytest.raises(PeriodStateError):
        ledger.run(lambda conn: reconcile.confirm(conn, "2026-02", "410000"))
    with pytest.raises(LedgerInputError, match="its own obligations"):
        ledger.run(
            lambda conn: reconcile.dispute(conn, "2026-01", "310000", "150000", "420000", "x", 0)
        )


def test_parse_lines():
    assert reconcile.parse_lines("S|A1|5\n\nR|B-2|-7\n") == ["S|A1|5", "R|B-2|-7"]
    with pytest.raises(LedgerInputError, match="not digest lines"):
        reconcile.parse_lines("S|A1|5.0")


def test_hospital_totals_of_a_day_in_china_time(ledger):
    first = priced("S1", fund=100, hospital_id="HA", settled_at="2026-01-10T23:30:00+08:00")
    ledger.record_results(
        [
            first,
            priced("S2", fund=200, hospital_id="HA", settled_at="2026-01-10T15:59:59Z"),
            priced("S3", fund=300, hospital_id="HA", settled_at="2026-01-10T16:00:00Z"),
            priced(
                "S4",
                fund=400,
                hospital_id="HB",
                payee="310000",
                settled_at="2026-01-10T08:00:00+08:00",
            ),
            reversal(first, "R1", settled_at="2026-01-10T23:45:00+08:00"),
            priced("S5", fund=500, hospital_id="HA"),  # no settled_at: no day
        ]
    )
    rows = ledger.run(lambda conn: reconcile.hospital_totals(conn, date(2026, 1, 10)))
    by_hospital = {r["hospital_id"]: r for r in rows}
    assert set(by_hospital) == {"HA", "HB"}
    ha = by_hospital["HA"]
    assert (ha["count"], ha["settlements"], ha["reversals"]) == (3, 2, 1)
    assert ha["fund_pay_fen"] == 200  # 100 + 200 - 100
    assert ha["total_fen"] == priced("S2", fund=200)["total_fen"]  # S1 and R1 cancel out
    assert ha["personal_pay_fen"] == ha["total_fen"] - ha["fund_pay_fen"]
    only = ledger.run(lambda conn: reconcile.hospital_totals(conn, date(2026, 1, 10), "310000"))
    assert [r["hospital_id"] for r in only] == ["HB"]
    next_day = ledger.run(lambda conn: reconcile.hospital_totals(conn, date(2026, 1, 11)))
    assert [(r["hospital_id"], r["fund_pay_fen"]) for r in next_day] == [("HA", 300)]
