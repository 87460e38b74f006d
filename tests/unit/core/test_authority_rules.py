"""Each row of authority.md's table, and what a NOT_AUTHORIZED event does to the book (nothing).

The builders' settlement S1 is at hospital H1 in 110105 (Beijing, 110000) for a person insured
in 230100 (Heilongjiang, 230000); its filing's home region is 230100 too.
"""

from __future__ import annotations

import pytest
from support.builders import filing, raw, refdata, reversal, settlement

from clearing.core import authority
from clearing.core.authority import OPERATOR, Principal, hospital, principal_of, province
from clearing.core.parse import Parsed, parse_event
from clearing.core.pricer import price_parsed
from clearing.core.pricing import MemoryBook


def assistance(aid: str = "A1", **fields: object) -> dict:
    event = {
        "type": "assistance",
        "schema_version": 1,
        "assistance_id": aid,
        "person_id": "P1",
        "home_region": "230100",
        "class": "A",
        "valid_from": "2026-01-01",
        "valid_to": None,
    }
    event.update(fields)
    return event


def price(book: MemoryBook, event: dict, principal: Principal | None) -> dict:
    parsed = parse_event(raw(event))
    assert isinstance(parsed, Parsed)
    return price_parsed(parsed, refdata(), book, principal).result.model_dump(exclude_none=True)


def priced_book() -> MemoryBook:
    """A book holding S1 (H1's, in 110000), priced by an operator."""
    book = MemoryBook()
    assert price(book, settlement(), None)["status"] == "priced"
    return book


NOT_AUTHORIZED = ["NOT_AUTHORIZED"]


# ---- the header ------------------------------------------------------------------------------


def test_the_header_names_the_principal_and_no_header_is_an_operator():
    assert principal_of(None) == OPERATOR
    assert principal_of(b"operator") == OPERATOR
    assert principal_of(b"province:110000") == province("110000")
    assert principal_of("hospital:H-1_x") == hospital("H-1_x")
    assert province("110000").header == "province:110000"
    assert hospital("H1").header == "hospital:H1"
    assert OPERATOR.header == "operator"
    # A hospital registered with its province carries it.
    assert hospital("H1", "120000").header == "hospital:H1@120000"
    assert principal_of(b"hospital:H1@120000") == hospital("H1", "120000")


@pytest.mark.parametrize(
    "header",
    [
        b"", b"admin", b"province:110105", b"province:990000", b"hospital:", b"hospital:a b",
        b"hospital:H1@990000", b"hospital:H1@", b"hospital:@120000",
    ],
)  # fmt: skip
def test_a_header_no_channel_writes_may_send_nothing(header):
    principal = principal_of(header)
    assert principal.kind == "unknown"
    for event in (settlement(), filing(), assistance()):
        assert price(MemoryBook(), event, principal)["reasons"] == NOT_AUTHORIZED
    assert price(priced_book(), reversal(), principal)["reasons"] == NOT_AUTHORIZED


# ---- hospital H ------------------------------------------------------------------------------


def test_a_hospital_sends_its_own_settlements_only():
    assert price(MemoryBook(), settlement(), hospital("H1"))["status"] == "priced"
    assert price(MemoryBook(), settlement(), hospital("H2")) == {
        "status": "rejected",
        "settlement_id": "S1",
        "reasons": NOT_AUTHORIZED,
    }


def test_a_hospital_reverses_its_own_settlements_only():
    assert price(priced_book(), reversal(), hospital("H1"))["status"] == "reversed"
    assert price(priced_book(), reversal(), hospital("H2")) == {
        "status": "rejected",
        "settlement_id": "S1",
        "reversal_id": "R1",
        "reasons": NOT_AUTHORIZED,
    }


def test_a_hospital_sends_no_filing_nor_assistance_record():
    assert price(MemoryBook(), filing(), hospital("H1")) == {
        "status": "rejected",
        "filing_id": "F1",
        "reasons": NOT_AUTHORIZED,
    }
    assert price(MemoryBook(), assistance(), hospital("H1")) == {
        "status": "rejected",
        "assistance_id": "A1",
        "reasons": NOT_AUTHORIZED,
    }


# ---- province P ------------------------------------------------------------------------------


def test_a_province_sends_the_settlements_of_its_own_hospitals_only():
    assert price(MemoryBook(), settlement(), province("110000"))["status"] == "priced"
    # The home province (the payer) does not send the treating province's settlements.
    assert price(MemoryBook(), settlement(), province("230000"))["reasons"] == NOT_AUTHORIZED
    assert price(MemoryBook(), settlement(), province("120000"))["reasons"] == NOT_AUTHORIZED


def test_a_province_reverses_the_settlements_of_its_own_hospitals_only():
    assert price(priced_book(), reversal(), province("110000"))["status"] == "reversed"
    assert price(priced_book(), reversal(), province("230000"))["reasons"] == NOT_AUTHORIZED


def test_a_province_sends_filings_and_assistance_records_of_its_own_insured_only():
    assert price(MemoryBook(), filing(), province("230000"))["status"] == "filed"
    assert price(MemoryBook(), assistance(), province("230000"))["status"] == "registered"
    # The treating province does not file for the home fund's insured.
    assert price(MemoryBook(), filing(), province("110000"))["reasons"] == NOT_AUTHORIZED
    assert price(MemoryBook(), assistance(), province("110000"))["reasons"] == NOT_AUTHORIZED
    # A city's region lies in its province.
    city = filing(home_region="230100")
    assert price(MemoryBook(), city, province("230000"))["status"] == "filed"


# ---- operator --------------------------------------------------------------------------------


@pytest.mark.parametrize("principal", [None, OPERATOR])
def test_an_operator_sends_anything(principal):
    book = MemoryBook()
    assert price(book, filing(), principal)["status"] == "filed"
    assert price(book, assistance(), principal)["status"] == "registered"
    assert price(book, settlement(hospital_id="H9"), principal)["status"] == "priced"
    assert price(book, reversal(), principal)["status"] == "reversed"


# ---- what a NOT_AUTHORIZED event does --------------------------------------------------------


def test_a_not_authorized_event_takes_no_id_moves_no_money_and_changes_no_state():
    book = priced_book()
    before = repr(book)
    for event, principal in [
        (settlement("S2"), hospital("H2")),
        (settlement("S2"), province("230000")),
        (reversal(), hospital("H2")),
        (reversal(), province("120000")),
        (filing("F2"), province("110000")),
        (assistance(), hospital("H1")),
    ]:
        assert price(book, event, principal)["reasons"] == NOT_AUTHORIZED
    assert repr(book) == before
    # The rightful senders can still use the ids.
    assert price(book, settlement("S2"), hospital("H1"))["status"] == "priced"
    assert price(book, reversal(), hospital("H1"))["status"] == "reversed"
    assert price(book, filing("F2"), province("230000"))["status"] == "filed"


def test_hospital_a_reversing_b_settlement_is_refused_and_b_still_reverses_it():
    book = MemoryBook()
    assert price(book, settlement("SB", hospital_id="HB"), province("110000"))["status"] == (
        "priced"
    )
    refused = price(book, reversal("RA", "SB"), hospital("HA"))
    assert refused["status"] == "rejected"
    assert refused["reasons"] == NOT_AUTHORIZED
    # Refused before the duplicate check too: the same reversal again is still refused.
    assert price(book, reversal("RA", "SB"), hospital("HA"))["reasons"] == NOT_AUTHORIZED
    assert book.priced["SB"].reversed is False
    assert price(book, reversal("RA", "SB"), hospital("HB"))["status"] == "reversed"


def test_a_reversal_of_a_settlement_not_priced_is_unknown_whoever_sends_it():
    for principal in (hospital("HA"), province("120000"), OPERATOR):
        result = price(MemoryBook(), reversal(), principal)
        assert result["reasons"] == ["UNKNOWN_SETTLEMENT"]
    # Another person's reversal does not name the settlement: unknown, not a refusal.
    assert price(priced_book(), reversal(person_id="P2"), hospital("H2"))["reasons"] == [
        "UNKNOWN_SETTLEMENT"
    ]


def test_a_refusal_is_checked_before_a_duplicate_conflict():
    book = priced_book()
    other = settlement(emergency=True)  # S1 again, other content
    assert price(book, other, province("120000"))["reasons"] == NOT_AUTHORIZED
    assert price(book, other, province("110000"))["reasons"] == ["DUPLICATE_CONFLICT"]


# ---- routing ---------------------------------------------------------------------------------


def test_a_refusal_goes_to_the_principal_s_own_province():
    where = {"HA": "120000", "HX": "999999"}.get
    assert authority.home_province(province("130000"), where) == "130000"
    assert authority.home_province(hospital("HA"), where) == "120000"
    assert authority.home_province(hospital("HX"), where) is None  # no province of ours
    assert authority.home_province(hospital("HZ"), where) is None  # not known: operators only
    assert authority.home_province(OPERATOR, where) is None
    assert authority.home_province(principal_of(b"bogus"), where) is None
    # The registered province first, whatever the ledger says or does not know yet.
    assert authority.home_province(hospital("HZ", "310000"), where) == "310000"
    assert authority.home_province(hospital("HA", "310000"), where) == "310000"
