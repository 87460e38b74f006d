"""One-stop settlement in the ledger (`tiers.md`): results with tier shares, one account per
home-side payer, postings that sum to zero, statements and disputes on `due_fen`.

Hand-checked numbers (fen), period 2026-01, all paid to hospital H1 of 110000:

    S1  410000 -> 110000  fund 5000  critical 1500  assistance 600 (A)  due 7100
    S2  410000 -> 110000  fund 2000  critical    0  assistance 300 (B)  due 2300, reversed by R1
    S3  320000 -> 110000  fund 1000  (no tier fields: due = fund)        due 1000

Net positions: 110000 receives 7100 + 1000 = 8100; 410000 pays 7100; 320000 pays 1000.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from support.ledger import priced

from clearing.ledger import reconcile
from clearing.ledger.errors import LedgerInputError
from clearing.ledger.records import from_row
from clearing.store.schema import accounts, balances, postings, results

PERIOD = "2026-01"


def tiered(
    settlement_id: str, *, fund: int, critical: int, assistance: int, class_: str | None
) -> dict[str, Any]:
    eligible = fund + critical + assistance + 1_000
    total = eligible + 500
    due = fund + critical + assistance
    return {
        "status": "priced",
        "settlement_id": settlement_id,
        "period": PERIOD,
        "payer": "410000",
        "payee": "110000",
        "hospital_id": "H1",
        "filed": True,
        "total_fen": total,
        "self_pay_fen": 300,
        "pre_self_pay_fen": 200,
        "eligible_fen": eligible,
        "deductible_fen": 500,
        "fund_pay_fen": fund,
        "critical_pay_fen": critical,
        "assistance_pay_fen": assistance,
        "due_fen": due,
        "personal_pay_fen": total - due,
        "cap_reached": False,
        "assistance_class": class_,
    }


def reversed_of(original: dict[str, Any], reversal_id: str) -> dict[str, Any]:
    amounts = [k for k in original if k.endswith("_fen")]
    return {
        "status": "reversed",
        "reversal_id": reversal_id,
        "settlement_id": original["settlement_id"],
        "period": original["period"],
        "payer": original["payer"],
        "payee": original["payee"],
        "hospital_id": original["hospital_id"],
        **{name: -original[name] for name in amounts},
    }


S1 = tiered("S1", fund=5_000, critical=1_500, assistance=600, class_="A")
S2 = tiered("S2", fund=2_000, critical=0, assistance=300, class_="B")
R1 = reversed_of(S2, "R1")
S3 = priced("S3", payer="320000", payee="110000", fund=1_000, hospital_id="H1")


@pytest.fixture
def recorded(ledger):
    outcomes = ledger.record_results([S1, S2, R1, S3])
    assert [o.action for o in outcomes] == ["recorded"] * 4
    return ledger


def test_results_keep_their_tier_fields_and_old_ones_print_as_before(recorded) -> None:
    with recorded.transaction() as conn:
        rows = {r.result_key: r._mapping for r in conn.execute(select(results))}
    assert from_row(rows["S:S1"]) == S1
    assert from_row(rows["R:R1"]) == R1
    assert from_row(rows["S:S3"]) == S3  # no tier fields added
    old = rows["S:S3"]
    assert (old.due_fen, old.critical_pay_fen, old.assistance_pay_fen) == (1_000, 0, 0)
    assert not old.has_tiers and old.assistance_class is None
    assert [o.action for o in recorded.record_results([S1, R1, S3])] == ["replayed"] * 3


def test_one_account_per_payer_and_postings_through_the_treating_fund(recorded) -> None:
    with recorded.transaction() as conn:
        kinds = dict(conn.execute(select(accounts.c.account_id, accounts.c.kind)).all())
        posted = conn.execute(
            select(
                postings.c.result_key,
                postings.c.leg,
                postings.c.debit_account,
                postings.c.credit_account,
                postings.c.amount_fen,
            ).order_by(postings.c.id)
        ).all()
        net = {
            (account, leg): credits - debits
            for account, leg, debits, credits in conn.execute(
                select(
                    balances.c.account_id, balances.c.leg, balances.c.debits_fen,
                    balances.c.credits_fen,
                )
            )
        }  # fmt: skip
    assert kinds == {
        "fund:110000": "fund",
        "fund:320000": "fund",
        "fund:410000": "fund",
        "critical:410000": "critical",
        "assistance:410000": "assistance",
        "hospital:H1": "hospital",
    }
    assert [tuple(p) for p in posted] == [
        ("S:S1", "fund", "fund:410000", "fund:110000", 5_000),
        ("S:S1", "critical", "critical:410000", "fund:110000", 1_500),
        ("S:S1", "assistance", "assistance:410000", "fund:110000", 600),
        ("S:S1", "hospital", "fund:110000", "hospital:H1", 7_100),
        ("S:S2", "fund", "fund:410000", "fund:110000", 2_000),
        ("S:S2", "assistance", "assistance:410000", "fund:110000", 300),
        ("S:S2", "hospital", "fund:110000", "hospital:H1", 2_300),
        ("R:R1", "fund", "fund:110000", "fund:410000", 2_000),
        ("R:R1", "assistance", "fund:110000", "assistance:410000", 300),
        ("R:R1", "hospital", "hospital:H1", "fund:110000", 2_300),
        ("S:S3", "fund", "fund:320000", "fund:110000", 1_000),
        ("S:S3", "hospital", "fund:110000", "hospital:H1", 1_000),
    ]
    assert {k: v for k, v in net.items() if v} == {
        ("fund:410000", "fund"): -5_000,
        ("critical:410000", "critical"): -1_500,
        ("assistance:410000", "assistance"): -600,
        ("fund:320000", "fund"): -1_000,
        ("fund:110000", "fund"): 6_000,
        ("fund:110000", "critical"): 1_500,
        ("fund:110000", "assistance"): 600,
        ("fund:110000", "hospital"): -8_100,
        ("hospital:H1", "hospital"): 8_100,
    }
    assert sum(net.values()) == 0
    # The treating fund receives the due in total and passes it on to the hospital.
    received = sum(v for (a, leg), v in net.items() if a == "fund:110000" and leg != "hospital")
    assert received == 7_100 + 1_000 == net[("hospital:H1", "hospital")]
    assert recorded.running_positions(PERIOD) == {
        "110000": 8_100,
        "320000": -1_000,
        "410000": -7_100,
    }


def test_the_statement_and_a_dispute_are_on_due_fen(recorded) -> None:
    info, closed = recorded.close_period(PERIOD, force=True)  # the period checks agree
    assert closed and info.results == 4
    statement = recorded.issue_period(PERIOD).statement
    assert statement["net_positions"] == {"110000": 8_100, "320000": -1_000, "410000": -7_100}
    ob = next(o for o in statement["obligations"] if o["payer"] == "410000")
    assert (ob["fund_pay_fen"], ob["critical_pay_fen"], ob["assistance_pay_fen"]) == (
        5_000,
        1_500,
        600,
    )
    assert ob["due_fen"] == 7_100
    with recorded.transaction() as conn:
        right = reconcile.dispute(conn, PERIOD, "410000", "410000", "110000", ob["digest"], 7_100)
        wrong = reconcile.dispute(conn, PERIOD, "410000", "410000", "110000", ob["digest"], 5_000)
    assert right["due_matches"] and right["ours"]["due_fen"] == 7_100
    assert right["ours"]["fund_pay_fen"] == 5_000
    assert not wrong["due_matches"] and not wrong["fund_pay_matches"]
    assert sorted(right["our_lines"]) == ["R|R1|-2300", "S|S1|7100", "S|S2|2300"]


@pytest.mark.parametrize(
    "change",
    [
        {"due_fen": 7_000},  # not fund + critical + assistance
        {"critical_pay_fen": -1, "due_fen": 5_599},  # a negative share on a priced result
    ],
)
def test_the_ledger_refuses_inconsistent_tier_shares(ledger, change) -> None:
    bad = {**S1, **change}
    bad["personal_pay_fen"] = bad["total_fen"] - bad["due_fen"]
    with pytest.raises(LedgerInputError):
        ledger.record_results([bad])


def test_the_statement_command_splits_the_due_by_payer(recorded, capsys, monkeypatch) -> None:
    from clearing.cli import main

    monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)
    recorded.close_period(PERIOD, force=True)
    issued = recorded.issue_period(PERIOD).statement
    capsys.readouterr()
    assert main(["statement", "--period", PERIOD, "--format", "table", "--db", recorded.url]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert "serious illness" in out and "medical assistance" in out and "total due" in out
    split = [r for r in rows if r[:1] in (["national"], ["pair"], ["province"]) and len(r) > 2]
    assert split == [
        ["national", "60.00", "15.00", "6.00", "81.00"],
        ["pair", "320000", "110000", "10.00", "0.00", "0.00", "10.00"],
        ["pair", "410000", "110000", "50.00", "15.00", "6.00", "71.00"],
        ["province", "320000", "10.00", "0.00", "0.00", "10.00"],
        ["province", "410000", "50.00", "15.00", "6.00", "71.00"],
    ]
    # JSON: the statement as issued; its obligations carry the sums per payer.
    assert main(["statement", "--period", PERIOD, "--db", recorded.url]) == 0
    statement = json.loads(capsys.readouterr().out)
    assert statement == issued
    sums = {
        (o["payer"], o["payee"]): (
            o["fund_pay_fen"], o["critical_pay_fen"], o["assistance_pay_fen"], o["due_fen"]
        )
        for o in statement["obligations"]
    }  # fmt: skip
    assert sums == {("410000", "110000"): (5_000, 1_500, 600, 7_100),
                    ("320000", "110000"): (1_000, 0, 0, 1_000)}  # fmt: skip


def test_prepayment_alerts_are_on_the_due(ledger) -> None:
    """The home province's net debit is the whole due (7100): over 70 % of a 9000 prepayment,
    where the basic fund's share alone (5000) would not be."""
    from clearing.ledger import prepayment

    with ledger.transaction() as conn:
        prepayment.deposit(conn, "410000", 9_000)
    (outcome,) = ledger.record_results([S1])
    assert [(a.province, a.net_debit_fen) for a in outcome.alerts] == [("410000", 7_100)]
    # ceil(7100 × 10000 / 7000) − 9000: the deposit that brings the usage back to the share
    assert [a.top_up_fen for a in outcome.alerts] == [1_143]
