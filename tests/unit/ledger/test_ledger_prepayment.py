"""Prepayments and the usage alert: raised past the share, once per crossing, never blocking."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from support.ledger import priced, reversal

from clearing.ledger import prepayment
from clearing.ledger.errors import LedgerInputError
from clearing.store.schema import alerts


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
