"""The database itself holds the money invariants: rows written with plain SQL, past the Python
code, are refused by CHECKs, keys and triggers. (tests/unit/store/test_migrations.py checks that
the migrations build exactly the model.)"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from support.ledger import priced, reversal

from clearing.ledger.records import to_row
from clearing.store import db
from clearing.store.schema import (
    alerts,
    balances,
    ids,
    periods,
    postings,
    prepayments,
    results,
)


def refused(ledger, statement, constraint: str) -> None:
    """The statement fails in the database, naming `constraint` (a CHECK, key or trigger)."""
    with pytest.raises(IntegrityError) as caught, ledger.transaction() as conn:
        conn.execute(statement)
    assert constraint in str(caught.value.orig)


def accepted(ledger, statement) -> None:
    with ledger.transaction() as conn:
        conn.execute(statement)


def known_ids(ledger, *keys: str) -> None:
    """The ids' rows a result row references (the stream or the ledger makes them)."""
    with ledger.transaction() as conn:
        conn.execute(insert(ids), [{"key": key} for key in keys])


def test_upgrade_twice_is_a_no_op(ledger):
    assert db.upgrade(ledger.engine) == db.head_revision()
    assert db.upgrade(ledger.engine) == db.head_revision()


def result_row(settlement_id: str, **changes: Any) -> dict[str, Any]:
    row = to_row(priced(settlement_id))
    row["clearing_period"] = row["period"]
    row.update(changes)
    return row


RESULT_CASES = [
    ("total", {"self_pay_fen": 201}),
    ("personal", {"personal_pay_fen": 1}),
    ("signs", {"self_pay_fen": -200, "total_fen": 1_400, "personal_pay_fen": 400}),
    ("signs", {"deductible_fen": 5_000}),
    ("status_key", {"result_key": "S:other"}),
    ("status_key", {"reversal_id": "R1"}),
    ("status_key", {"filed": None}),
    ("cross_province", {"payee": "410000"}),
    ("provinces", {"payer": "410100"}),
    ("period_format", {"period": "2026-00"}),
    ("cleared_not_before", {"period": "2026-02"}),
    ("id_lengths", {"hospital_id": ""}),
]


@pytest.mark.parametrize(("constraint", "changes"), RESULT_CASES)
def test_database_refuses_bad_results(ledger, constraint, changes):
    ledger.record_results([priced("S0"), priced("S9", period="2026-02")])
    known_ids(ledger, "S:S1", "S:S2", "S:other")
    accepted(ledger, insert(results).values(**result_row("S1")))
    refused(ledger, insert(results).values(**result_row("S2", **changes)), constraint)


def test_database_refuses_a_reversed_result_with_positive_amounts(ledger):
    ledger.record_results([priced("S0")])
    row = to_row(reversal(priced("S1"), "R1"))
    row.update(clearing_period="2026-01", **{k: -v for k, v in row.items() if k.endswith("_fen")})
    known_ids(ledger, "R:R1")
    refused(ledger, insert(results).values(**row), "signs")


def test_database_refuses_a_result_of_an_unknown_id(ledger):
    ledger.record_results([priced("S0")])
    with pytest.raises(IntegrityError) as caught, ledger.transaction() as conn:
        conn.execute(insert(results).values(**result_row("S1")))
    assert "foreign key" in str(caught.value.orig).lower()


def test_database_refuses_a_second_priced_or_reversed_row_of_one_settlement(ledger):
    original = priced("S1")
    ledger.record_results([original, reversal(original, "R1")])
    row = to_row(reversal(original, "R2"))
    row["clearing_period"] = "2026-01"
    known_ids(ledger, "R:R2")
    refused(ledger, insert(results).values(**row), "settlement_id")


def posting(**changes: Any) -> dict[str, Any]:
    row = {
        "result_key": "S:S0",
        "leg": "fund",
        "debit_account": "fund:410000",
        "credit_account": "fund:110000",
        "amount_fen": 1,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("constraint", "changes"),
    [
        ("amount_positive", {"amount_fen": 0}),
        ("amount_positive", {"amount_fen": -5}),
        ("two_accounts", {"credit_account": "fund:410000"}),
        ("ck_ledger_postings_leg", {"leg": "refund"}),
    ],
)
def test_database_refuses_bad_postings(ledger, constraint, changes):
    ledger.record_results([priced("S0", fund=0)])  # a result without postings
    refused(ledger, insert(postings).values(**posting(**changes)), constraint)
    accepted(ledger, insert(postings).values(**posting()))


def test_database_refuses_a_second_posting_for_one_leg(ledger):
    ledger.record_results([priced("S0", fund=5)])
    refused(ledger, insert(postings).values(**posting()), "leg")


def test_database_refuses_postings_to_unknown_accounts(ledger):
    ledger.record_results([priced("S0", fund=0)])
    with pytest.raises(IntegrityError), ledger.transaction() as conn:
        conn.execute(insert(postings).values(**posting(credit_account="fund:999999")))


@pytest.mark.parametrize("table", [results, postings])
def test_results_and_postings_are_append_only(ledger, table):
    ledger.record_results([priced("S0", fund=5)])
    refused(ledger, update(table).values(result_key="S:S0"), "append-only")
    refused(ledger, delete(table), "append-only")


def test_prepayments_are_append_only_and_positive(ledger):
    accepted(ledger, insert(prepayments).values(province="410000", amount_fen=100))
    refused(ledger, insert(prepayments).values(province="410000", amount_fen=0), "amount")
    refused(ledger, update(prepayments).values(amount_fen=1_000_000), "append-only")
    refused(ledger, delete(prepayments), "append-only")


def test_nothing_is_written_into_a_closed_period(ledger):
    ledger.record_results([priced("S0", fund=0), priced("S5", fund=5)])
    ledger.close_period("2026-01")
    known_ids(ledger, "S:S1")
    refused(ledger, insert(results).values(**result_row("S1")), "open")
    refused(ledger, insert(postings).values(**posting()), "open")
    refused(
        ledger,
        update(balances).values(debits_fen=balances.c.debits_fen + 1),
        "open",
    )


def test_a_period_only_moves_forward_and_an_issued_statement_never_changes(ledger):
    ledger.record_results([priced("S0")])
    refused(
        ledger,
        update(periods).values(state="issued", statement="{}", statement_sha256="0" * 64),
        "open -> closed -> issued",
    )
    ledger.close_period("2026-01")
    refused(
        ledger, update(periods).values(state="open", closed_at=None), "open -> closed -> issued"
    )
    ledger.issue_period("2026-01")
    refused(ledger, update(periods).values(statement="{}"), "open -> closed -> issued")
    refused(ledger, delete(periods), "never deleted")
    with ledger.transaction() as conn:
        assert conn.scalar(select(periods.c.state)) == "issued"


def test_an_alert_must_pass_its_share(ledger):
    ledger.record_results([priced("S0")])
    row = {
        "province": "110000",
        "result_key": "S:S0",
        "net_debit_fen": 70,
        "prepayment_fen": 100,
        "alert_share_bp": 7000,
        "open_periods": "2026-01",
    }
    refused(ledger, insert(alerts).values(**row), "passes_share")
    accepted(ledger, insert(alerts).values(**{**row, "net_debit_fen": 71}))
