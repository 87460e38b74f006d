"""Event syntax exactly as events.md writes it; every invalid event says which field and why."""

from __future__ import annotations

import pytest
from support.builders import filing, raw, reversal, settlement

from clearing.core.parse import Parsed, Rejection, parse_event


def error_of(data: bytes) -> str:
    result = parse_event(data)
    assert isinstance(result, Rejection), f"accepted: {data!r}"
    return result.error


def with_item(**changes) -> dict:
    event = settlement()
    event["items"] = [{**event["items"][0], **changes}]
    return event


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (settlement(hospital_level="3"), "hospital_level"),
        (settlement(hospital_level=3.0), "hospital_level"),
        (settlement(hospital_level=True), "hospital_level"),
        (settlement(hospital_level=4), "hospital_level"),
        (settlement(emergency=1), "emergency"),
        (settlement(schema_version=2), "schema_version"),
        (settlement(schema_version=True), "schema_version"),
        (settlement(schema_version=1.0), "schema_version"),
        (settlement(settlement_id="has space"), "settlement_id"),
        (settlement(settlement_id="x" * 65), "settlement_id"),
        (settlement(settlement_id="S1\n"), "settlement_id"),
        (settlement(person_id=""), "person_id"),
        (settlement(home_region="023000"), "home_region"),
        (settlement(home_region="23000"), "home_region"),
        (settlement(home_region="２３００００"), "home_region"),
        (settlement(kind="dental"), "kind"),
        (settlement(scheme="private"), "scheme"),
        (settlement(admitted_on="2026-02-30"), "admitted_on"),
        (settlement(admitted_on="2026-1-05"), "admitted_on"),
        (settlement(settled_at="2026-01-15T10:00:00"), "settled_at"),
        (settlement(settled_at="2026-01-15 10:00:00+08:00"), "settled_at"),
        (settlement(settled_at="2026-01-15t10:00:00Z"), "settled_at"),
        (settlement(settled_at="2026-01-15T10:00+08:00"), "settled_at"),
        (settlement(settled_at="2026-01-15T25:00:00+08:00"), "settled_at"),
        (settlement(diagnosis=[]), "diagnosis"),
        (settlement(diagnosis=["X" * 17]), "diagnosis"),
        (settlement(items=[]), "items"),
        (settlement(items=[settlement()["items"][0]] * 2001), "items"),
        (settlement(extra="x"), "extra"),
        (with_item(quantity="0"), "quantity"),
        (with_item(quantity="1.23456"), "quantity"),
        (with_item(quantity="100000.0001"), "quantity"),
        (with_item(quantity="1e2"), "quantity"),
        (with_item(quantity=1), "quantity"),
        (with_item(unit_price_fen=10**10 + 1), "unit_price_fen"),
        (with_item(amount_fen=-1), "amount_fen"),
        (with_item(amount_fen=10**12 + 1), "amount_fen"),
        (with_item(note="x"), "note"),
        (reversal(reason=""), "reason"),
        (reversal(reason="x" * 201), "reason"),
        (filing(treatment_province="110100"), "treatment_province"),
        (filing(valid_to="2024-12-31"), "valid_to"),
        (filing(filing_kind="forever"), "filing_kind"),
    ],
)
def test_invalid_field_is_named(event, field):
    assert field in error_of(raw(event))


def test_missing_fields_are_named():
    event = settlement()
    del event["hospital_id"]
    assert "hospital_id" in error_of(raw(event))
    no_valid_to = filing()
    del no_valid_to["valid_to"]
    assert "valid_to" in error_of(raw(no_valid_to))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"[1, 2]", "object"),
        (b'"settlement"', "object"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
        (b'{"type": "settlement", "x": NaN}', "not JSON"),
        (b'{"type": "\xff"}', "not JSON"),
        (b'{"schema_version": 1}', "type"),
        (b'{"type": "refund", "schema_version": 1}', "type"),
    ],
)
def test_unparseable_input_is_invalid(data, words):
    assert words in error_of(data)


def test_valid_events_parse():
    for event in (settlement(), reversal(), filing(), filing(valid_to="2026-12-31")):
        assert isinstance(parse_event(raw(event)), Parsed)
    assert isinstance(parse_event(raw(settlement(settled_at="2026-01-15T10:00:00.123Z"))), Parsed)
    assert isinstance(parse_event(raw(settlement(settlement_id="x" * 64))), Parsed)


def test_string_lengths_count_code_points():
    assert isinstance(parse_event(raw(settlement(diagnosis=["中" * 16]))), Parsed)
    assert isinstance(parse_event(raw(reversal(reason="退" * 200))), Parsed)


def test_fingerprint_ignores_key_order_and_whitespace():
    a = parse_event(b'{"type":"filing","schema_version":1,"filing_id":"F1","person_id":"P1",'
                    b'"home_region":"230100","treatment_province":"110000",'
                    b'"filing_kind":"temporary","valid_from":"2026-01-01","valid_to":null}')
    b = parse_event(raw(filing(filing_kind="temporary", valid_from="2026-01-01")))
    assert isinstance(a, Parsed) and isinstance(b, Parsed)
    assert a.fingerprint == b.fingerprint
