"""The period state machine, the statement it issues, and late results."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import insert, select
from support.ledger import priced, reversal, sample_results, sample_statement

from clearing.core.models.types import CHINA_TZ
from clearing.core.netting import check_transfers, digest
from clearing.ledger import periods
from clearing.ledger.errors import LedgerInvariantError, PeriodStateError
from clearing.store.schema import postings, results


def test_sample_statement_matches_the_expected_one(ledger):
    ledger.record_results(sample_results())
    info, changed = ledger.close_period("2026-01")
    assert changed and info.state == "closed" and info.results == 33
    issued = ledger.issue_period("2026-01")
    expected = sample_statement("2026-01")
    assert issued.newly_issued
    assert issued.statement["period"] == "2026-01"
    assert issued.statement["obligations"] == expected["obligations"]
    assert issued.statement["net_positions"] == expected["net_positions"]
    positions = issued.statement["net_positions"]
    assert check_transfers(positions, issued.statement["transfers"]) == []
    assert len(issued.statement["transfers"]) <= sum(1 for v in positions.values() if v) - 1


def test_issuing_again_returns_the_same_statement(ledger):
    ledger.record_results(sample_results())
    ledger.close_period("2026-01")
    first = ledger.issue_period("2026-01")
    again = ledger.issue_period("2026-01")
    stored = ledger.statement("2026-01")
    assert not again.newly_issued
    assert again.statement == first.statement == stored.statement
    assert again.sha256 == first.sha256 == stored.sha256


def test_issue_before_close_is_refused(ledger):
    ledger.record_results([priced("S1")])
    with pytest.raises(PeriodStateError, match="is open"):
        ledger.issue_period("2026-01")
    with pytest.raises(PeriodStateError, match="does not exist"):
        ledger.issue_period("2031-05")
    with pytest.raises(PeriodStateError, match="no issued statement"):
        ledger.statement("2026-01")


def test_closing_twice_changes_nothing(ledger):
    ledger.record_results([priced("S1")])
    first, changed = ledger.close_period("2026-01")
    again, changed_again = ledger.close_period("2026-01")
    assert changed and not changed_again
    assert again.state == "closed" and again.closed_at == first.closed_at
    ledger.issue_period("2026-01")
    info, changed = ledger.close_period("2026-01")
    assert not changed and info.state == "issued"


def test_an_empty_period_is_closed_and_issued(ledger):
    info, changed = ledger.close_period("2025-07")
    assert changed and info.state == "closed" and info.results == 0
    issued = ledger.issue_period("2025-07")
    assert issued.statement == {
        "period": "2025-07",
        "obligations": [],
        "net_positions": {},
        "transfers": [],
    }


def test_a_late_result_is_cleared_in_the_next_open_period(ledger):
    january = priced("S1", fund=400, period="2026-01")
    ledger.record_results([january])
    ledger.close_period("2026-01")
    before = ledger.issue_period("2026-01").statement

    late = priced("S2", fund=250, period="2026-01")
    outcome = ledger.record_results([late])[0]
    assert (outcome.action, outcome.clearing_period, outcome.late) == ("recorded", "2026-02", True)
    with ledger.transaction() as conn:
        row = conn.execute(select(results).where(results.c.result_key == "S:S2")).one()
    assert (row.period, row.clearing_period) == ("2026-01", "2026-02")  # kept for audit

    assert ledger.statement("2026-01").statement == before
    ledger.close_period("2026-02")
    february = ledger.issue_period("2026-02").statement
    assert february["obligations"][0]["settlements"] == 1
    assert february["obligations"][0]["digest"] == digest(["S|S2|250"])
    assert february["net_positions"] == {"110000": 250, "410000": -250}
    assert ledger.period_status("2026-02")[0].late_results == 1


def test_a_late_result_skips_every_closed_period(ledger):
    for period in ("2026-01", "2026-02", "2026-04"):
        ledger.close_period(period)
    outcomes = ledger.record_results(
        [priced("S1", period="2026-01"), priced("S2", period="2026-04")]
    )
    assert [o.clearing_period for o in outcomes] == ["2026-03", "2026-05"]
    assert {p.period: p.state for p in ledger.period_status()} == {
        "2026-01": "closed",
        "2026-02": "closed",
        "2026-03": "open",
        "2026-04": "closed",
        "2026-05": "open",
    }


def test_a_late_reversal_is_cleared_later_too(ledger):
    original = priced("S1", fund=300)
    ledger.record_results([original])
    ledger.close_period("2026-01")
    outcome = ledger.record_results([reversal(original, "R1")])[0]
    assert outcome.clearing_period == "2026-02" and outcome.late
    assert ledger.running_positions("2026-02") == {"110000": -300, "410000": 300}


def test_a_replay_after_close_is_still_a_no_op(ledger):
    result = priced("S1")
    ledger.record_results([result])
    ledger.close_period("2026-01")
    outcome = ledger.record_results([result])[0]
    assert (outcome.action, outcome.clearing_period, outcome.late) == ("replayed", "2026-01", False)


def test_close_fails_loudly_when_postings_differ_from_results(ledger):
    ledger.record_results([priced("S1", fund=0), priced("S2", fund=100)])
    with ledger.transaction() as conn:  # a posting no result accounts for
        conn.execute(
            insert(postings).values(
                result_key="S:S1",
                leg="fund",
                debit_account="fund:410000",
                credit_account="fund:110000",
                amount_fen=5,
            )
        )
    with pytest.raises(LedgerInvariantError) as caught:
        ledger.close_period("2026-01")
    message = str(caught.value)
    assert "fund:110000 (fund leg): results say 100, postings 105, balances 100" in message
    assert "S:S1: its postings do not carry its fund share" in message
    assert ledger.period_status("2026-01")[0].state == "open"


def test_a_period_is_not_closed_before_it_ends_unless_forced(ledger):
    ledger.record_results([priced("S1", period="2026-03")])
    during = datetime(2026, 3, 31, 23, 59, tzinfo=CHINA_TZ)
    after = datetime(2026, 4, 1, 0, 0, tzinfo=CHINA_TZ)
    with pytest.raises(PeriodStateError, match="has not ended yet"):
        ledger.run(lambda conn: periods.close_period(conn, "2026-03", now=during))
    assert ledger.period_status("2026-03")[0].state == "open"
    _, changed = ledger.run(lambda conn: periods.close_period(conn, "2026-03", now=after))
    assert changed
    _, changed = ledger.run(
        lambda conn: periods.close_period(conn, "2026-04", now=during, force=True)
    )
    assert changed


def test_period_arithmetic():
    assert periods.next_period("2026-12") == "2027-01"
    assert periods.next_period("2026-01") == "2026-02"
    assert periods.period_end("2026-12").isoformat() == "2027-01-01T00:00:00+08:00"
    with pytest.raises(ValueError, match="YYYY-MM"):
        periods.check_period("2026-13")
