"""Recording results: idempotent replays, conflicts, postings, reversals, late results."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from support.ledger import priced, reversal, sample_results

from clearing.core.netting import build_statement
from clearing.ledger import store
from clearing.ledger.errors import LedgerConflict, LedgerInputError
from clearing.store.schema import alerts, balances, postings, results


def snapshot(ledger) -> dict:
    """Everything recording writes, to show that a replay changes nothing."""
    with ledger.transaction() as conn:
        return {
            "results": conn.execute(select(results).order_by(results.c.id)).all(),
            "postings": conn.execute(select(postings).order_by(postings.c.id)).all(),
            "balances": conn.execute(
                select(balances).order_by(balances.c.clearing_period, balances.c.account_id)
            ).all(),
            "alerts": conn.execute(select(alerts).order_by(alerts.c.id)).all(),
        }


def test_sample_is_recorded_once_and_replays_change_nothing(ledger):
    sample = sample_results()
    first = ledger.record_results(sample)
    cleared = [r for r in sample if r["status"] in ("priced", "reversed")]
    assert len(first) == len(sample)
    assert sum(o.action == "recorded" for o in first) == len(cleared) == 347
    assert {o.action for o, r in zip(first, sample, strict=True) if r not in cleared} == {"ignored"}
    before = snapshot(ledger)

    again = ledger.record_results(sample)
    assert [o.action for o in again] == ["replayed" if r in cleared else "ignored" for r in sample]
    assert [o.clearing_period for o in again] == [o.clearing_period for o in first]
    assert not any(o.alerts for o in again)
    assert snapshot(ledger) == before


def test_replay_ignores_how_the_result_travelled(ledger):
    result = priced("S1")
    ledger.record_results([{**result, "line": 7}])
    outcome = ledger.record_results([{**result, "line": 99, "source": "events:0:42", "run": "x"}])
    assert outcome[0].action == "replayed"


def test_positions_per_period_equal_the_netting_of_the_sample(ledger):
    sample = sample_results()
    ledger.record_results(sample)
    for period in sorted({r["period"] for r in sample if "period" in r}):
        netted = build_statement(period, [r for r in sample if r.get("period") == period])
        expected = {p: v for p, v in netted["net_positions"].items() if v}
        booked = {p: v for p, v in ledger.running_positions(period).items() if v}
        assert booked == expected, period


def test_same_key_with_other_content_raises_and_writes_nothing(ledger):
    ledger.record_results([priced("S1", fund=1_000)])
    before = snapshot(ledger)
    with pytest.raises(LedgerConflict) as caught:
        ledger.record_results([priced("S2"), priced("S1", fund=1_001)])
    assert caught.value.keys == ["S:S1"]
    assert "S:S1" in str(caught.value)
    assert snapshot(ledger) == before  # S2 was not written either


def test_conflict_inside_one_batch(ledger):
    with pytest.raises(LedgerConflict):
        ledger.record_results([priced("S1", fund=10), priced("S1", fund=20)])
    outcomes = ledger.record_results([priced("S1"), priced("S1")])
    assert [o.action for o in outcomes] == ["recorded", "replayed"]


def test_postings_move_the_fund_share_both_legs(ledger):
    ledger.record_results([priced("S1", payer="410000", payee="110000", fund=700)])
    with ledger.transaction() as conn:
        rows = conn.execute(
            select(
                postings.c.leg,
                postings.c.debit_account,
                postings.c.credit_account,
                postings.c.amount_fen,
            ).order_by(postings.c.leg)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("fund", "fund:410000", "fund:110000", 700),
        ("hospital", "fund:110000", "hospital:H110105001", 700),
    ]
    assert ledger.running_positions("2026-01") == {"110000": 700, "410000": -700}


def test_reversal_posts_the_opposite_direction(ledger):
    original = priced("S1", fund=700)
    ledger.record_results([original])
    outcome = ledger.record_results([reversal(original, "R1", period="2026-02")])
    assert outcome[0].action == "recorded" and outcome[0].clearing_period == "2026-02"
    with ledger.transaction() as conn:
        rows = conn.execute(
            select(
                postings.c.leg,
                postings.c.debit_account,
                postings.c.credit_account,
                postings.c.amount_fen,
            )
            .where(postings.c.result_key == "R:R1")
            .order_by(postings.c.leg)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("fund", "fund:110000", "fund:410000", 700),
        ("hospital", "hospital:H110105001", "fund:110000", 700),
    ]
    assert ledger.running_positions("2026-02") == {"110000": -700, "410000": 700}
    assert ledger.running_positions() == {"110000": 0, "410000": 0}


def test_zero_fund_share_makes_no_posting(ledger):
    ledger.record_results([priced("S0", fund=0)])
    with ledger.transaction() as conn:
        assert conn.scalar(select(func.count()).select_from(postings)) == 0
        assert conn.scalar(select(func.count()).select_from(results)) == 1


def test_a_reversal_must_negate_its_original_and_come_once(ledger):
    original = priced("S1", fund=700)
    ledger.record_results([original])
    wrong = reversal(original, "R1")
    wrong["fund_pay_fen"] += 1
    wrong["personal_pay_fen"] -= 1
    with pytest.raises(LedgerConflict, match="does not negate S:S1"):
        ledger.record_results([wrong])
    ledger.record_results([reversal(original, "R1")])
    with pytest.raises(LedgerConflict, match="already reversed by R:R1"):
        ledger.record_results([reversal(original, "R2")])


def test_malformed_result_is_refused_by_name(ledger):
    bad = priced("S1")
    del bad["payer"]
    with pytest.raises(LedgerInputError, match="S:S1.*payer"):
        ledger.record_results([bad])
    bad = priced("S2")
    bad["fund_pay_fen"] = 1.5
    with pytest.raises(LedgerInputError, match="S:S2.*fund_pay_fen"):
        ledger.record_results([bad])


def test_settled_at_must_lie_in_the_period(ledger):
    outcome = ledger.record_results([priced("S1", settled_at="2026-01-31T23:59:59+08:00")])
    assert outcome[0].action == "recorded"
    with pytest.raises(LedgerInputError, match="not in period 2026-01"):
        ledger.record_results([priced("S2", settled_at="2026-01-31T16:00:00Z")])


def test_an_overlong_id_is_refused_on_either_database(ledger):
    with pytest.raises(LedgerInputError, match="refused"):
        ledger.record_results([priced("S1", hospital_id="H" * 65)])


def test_amounts_that_do_not_add_up_are_refused_by_the_database(ledger):
    bad = priced("S1")
    bad["total_fen"] += 1  # total != self_pay + pre_self_pay + eligible
    bad["personal_pay_fen"] += 1
    with pytest.raises(LedgerInputError, match="(?i)check|constraint"):
        ledger.record_results([bad])


def test_module_level_record_results_uses_a_shared_ledger(db_url):
    outcomes = store.record_results([priced("S1", payer="410000", fund=900)], url=db_url)
    assert [o.action for o in outcomes] == ["recorded"]
    assert store.shared_ledger(db_url) is store.shared_ledger(db_url)
    alerts_raised = store.alerts_of(outcomes)
    # No prepayment on record: a notice, not an alert.
    assert alerts_raised[0]["type"] == "prepayment_notice"
    assert alerts_raised[0]["province"] == "410000"
    assert alerts_raised[0]["net_debit_fen"] == 900
    store.shared_ledger(db_url).close()
