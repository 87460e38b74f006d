"""Prepayments and the usage alert: raised past the share, once per crossing, never blocking;
the prepayment derived from issued statements when no deposit is recorded; "no prepayment on
record" noticed once per (province, period)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from support.ledger import priced, reversal

from clearing.ledger import prepayment, store
from clearing.ledger.errors import LedgerInputError
from clearing.store.schema import alerts, notices


def deposit(ledger, province: str, amount_fen: int) -> int:
    return ledger.run(lambda conn: prepayment.deposit(conn, province, amount_fen))


def test_alert_fires_when_usage_passes_70_percent(ledger):
    assert deposit(ledger, "410000", 10_000) == 10_000
    assert deposit(ledger, "410000", 10_000) == 20_000  # deposits add up
    first = ledger.record_results([priced("S1", payer="410000", fund=14_000)])
    assert first[0].alerts == ()  # exactly 70 %: not past it
    crossing = ledger.record_results(
        [priced("S2", payer="410000", fund=1), priced("S3", payer="410000", fund=1)]
    )
    assert crossing[0].action == "recorded"  # never refused
    assert len(crossing[0].alerts) == 1 and crossing[1].alerts == ()  # once per crossing
    alert = crossing[0].alerts[0]
    assert (alert.province, alert.result_key, alert.net_debit_fen, alert.prepayment_fen) == (
        "410000",
        "S:S2",
        14_001,
        20_000,
    )
    assert alert.alert_share_bp == 7000 and alert.usage_bp == 7000
    # ceil(14 001 * 10000 / 7000) = ceil(20 001.43) = 20 002 brings it back to 70 %: 2 fen more.
    assert alert.top_up_fen == 2 and alert.as_dict()["top_up_fen"] == 2
    assert alert.prepayment_derived is False
    assert alert.as_dict()["open_periods"] == ["2026-01"]
    with ledger.transaction() as conn:
        assert conn.scalar(select(func.count()).select_from(alerts)) == 1


def test_alert_again_after_falling_back_under_the_share(ledger):
    deposit(ledger, "410000", 1_000)
    original = priced("S1", payer="410000", fund=800)
    assert len(ledger.record_results([original])[0].alerts) == 1
    ledger.record_results([reversal(original, "R1")])  # back to 0 %
    again = ledger.record_results([priced("S2", payer="410000", fund=701)])
    assert [a.province for a in again[0].alerts] == ["410000"]


def test_the_payee_can_cross_too_when_a_reversal_takes_money_back(ledger):
    deposit(ledger, "110000", 1_000)
    deposit(ledger, "410000", 1_000_000)
    original = priced("S1", payer="410000", payee="110000", fund=900, period="2026-01")
    ledger.record_results([original])
    ledger.close_period("2026-01")  # its credit to 110000 leaves the open window
    outcome = ledger.record_results([reversal(original, "R1", period="2026-02")])
    assert [a.province for a in outcome[0].alerts] == ["110000"]


def test_share_is_configurable_and_checked(ledger):
    deposit(ledger, "410000", 1_000)
    ledger.run(lambda conn: prepayment.set_alert_share(conn, 5000))
    outcome = ledger.record_results([priced("S1", payer="410000", fund=501)])
    assert outcome[0].alerts[0].alert_share_bp == 5000
    with pytest.raises(LedgerInputError):
        ledger.run(lambda conn: prepayment.set_alert_share(conn, 0))
    with pytest.raises(LedgerInputError):
        deposit(ledger, "410000", 0)
    with pytest.raises(LedgerInputError):
        deposit(ledger, "410100", 5)  # a city, not a province


def test_usage_lists_every_province_with_a_prepayment_or_a_position(ledger):
    deposit(ledger, "410000", 2_000)
    deposit(ledger, "650000", 3_000)
    ledger.record_results([priced("S1", payer="410000", payee="110000", fund=1_000)])
    rows = {r["province"]: r for r in ledger.run(prepayment.usage)}
    assert set(rows) == {"110000", "410000", "650000"}
    assert rows["410000"]["net_debit_fen"] == 1_000 and rows["410000"]["usage_bp"] == 5000
    assert not rows["410000"]["over"]
    assert rows["110000"]["usage_bp"] is None and not rows["110000"]["over"]
    assert rows["650000"]["net_position_fen"] == 0


def test_the_top_up_is_exact() -> None:
    assert prepayment.top_up(14_001, 20_000, 7000) == 2
    assert prepayment.top_up(14_000, 20_000, 7000) == 0  # exactly at the share: nothing
    assert prepayment.top_up(7_000, 0, 7000) == 10_000  # 7 000 is 70 % of 10 000
    assert prepayment.top_up(1, 0, 3) == 3334  # ceil(10000 / 3)


def count(ledger, table) -> int:
    with ledger.transaction() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)))


def test_without_a_deposit_the_prepayment_is_twice_the_average_monthly_due(ledger):
    # January: 410000 owes 3 000 + 1 000 = 4 000; February: 2 000. Both issued.
    ledger.record_results([priced("S1", fund=3_000), priced("S2", fund=1_000)])
    ledger.close_period("2026-01")
    ledger.issue_period("2026-01")
    ledger.record_results([priced("S3", fund=2_000, period="2026-02")])
    ledger.close_period("2026-02")
    ledger.issue_period("2026-02")
    # March opens: over the two issued periods 410000 owed 6 000, an average of 3 000 a month;
    # its prepayment is twice that, 6 000. 110000 was never payer: nothing to derive.
    ledger.record_results([priced("S4", fund=4_200, period="2026-03")])  # exactly 70 %
    with ledger.transaction() as conn:
        held = prepayment.prepayments_of(conn, ["410000", "110000"])
        assert held["410000"] == prepayment.Prepayment(6_000, derived=True)
        assert not held["110000"].on_record
        assert prepayment.derived(conn) == {"410000": 6_000}
    crossing = ledger.record_results([priced("S5", fund=1, period="2026-03")])
    (alert,) = crossing[0].alerts
    assert (alert.net_debit_fen, alert.prepayment_fen, alert.prepayment_derived) == (
        4_201,
        6_000,
        True,
    )
    # ceil(4 201 * 10000 / 7000) = ceil(6 001.43) = 6 002: 2 fen above the derived 6 000.
    assert alert.top_up_fen == 2
    rows = {r["province"]: r for r in ledger.run(prepayment.usage)}
    assert rows["410000"]["prepayment_fen"] == 6_000 and rows["410000"]["prepayment_derived"]
    assert rows["410000"]["usage_bp"] == 7001 and rows["410000"]["top_up_fen"] == 2
    assert not rows["110000"]["prepayment_on_record"]
    # A deposit, once recorded, is the prepayment: no longer derived.
    deposit(ledger, "410000", 10_000)
    with ledger.transaction() as conn:
        assert prepayment.prepayments_of(conn, ["410000"])["410000"] == prepayment.Prepayment(
            10_000, derived=False
        )


def test_issued_periods_older_than_12_months_do_not_count(ledger):
    ledger.record_results([priced("S1", fund=5_000, period="2025-01")])
    ledger.close_period("2025-01")
    ledger.issue_period("2025-01")
    ledger.record_results([priced("S2", fund=100, period="2026-01")])  # 2026-01 opens
    with ledger.transaction() as conn:
        assert prepayment.reference_period(conn) == "2026-01"
        # 2025-01 .. 2025-12 are the 12 months before 2026-01: one issued period, 5 000 owed.
        assert prepayment.derived(conn) == {"410000": 10_000}
        assert prepayment.derived(conn, before="2026-02") == {}  # 2025-01 is 13 months back


def test_none_issued_one_notice_per_period_however_many_batches(ledger):
    first = ledger.record_results([priced("S1", fund=100), priced("S2", fund=100)])
    later = [ledger.record_results([priced(f"S{n}", fund=100)]) for n in range(3, 8)]
    (notice,) = first[0].notices
    assert notice == prepayment.Notice("410000", "2026-01", "S:S1", 100)
    assert first[1].notices == () and all(o[0].notices == () for o in later)
    assert all(not o.alerts for batch in [first, *later] for o in batch)  # no alert per batch
    assert ledger.record_results([priced("S1", fund=100)])[0].notices == ()  # a replay
    assert count(ledger, notices) == 1 and count(ledger, alerts) == 0
    assert notice.as_dict() == {
        "type": "prepayment_notice",
        "province": "410000",
        "period": "2026-01",
        "result_key": "S:S1",
        "net_debit_fen": 100,
        "message": "no prepayment on record",
    }
    # The next period gets its own notice, once.
    feb = ledger.record_results(
        [priced("S8", fund=100, period="2026-02"), priced("S9", fund=100, period="2026-02")]
    )
    assert [n.period for o in feb for n in o.notices] == ["2026-02"]
    assert count(ledger, notices) == 2
    # The published messages: the notice with the alerts of the batch.
    assert store.alerts_of(feb) == [feb[0].notices[0].as_dict()]
    with ledger.transaction() as conn:
        listed = prepayment.recent_notices(conn)
    assert {(n["province"], n["period"]) for n in listed} == {
        ("410000", "2026-01"),
        ("410000", "2026-02"),
    }
