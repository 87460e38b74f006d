"""Hostile input to the event parser and the reference-data loader (hypothesis).

Every malformed input is rejected with a reason naming what is wrong; none raises, none is
accepted by accident, and memory stays bounded.
"""

from __future__ import annotations

import json
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import CATALOG, POLICY, filing, raw, reversal, settlement

from clearing.core.parse import Parsed, Rejection, parse_event
from clearing.core.refdata import RefDataError, parse_document

FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
valid_events = st.sampled_from([settlement(), reversal(), filing()])


def assert_rejected_or_valid(data: bytes) -> None:
    result = parse_event(data)
    assert isinstance(result, Parsed | Rejection)
    if isinstance(result, Rejection):
        assert result.error.strip()
    else:
        # Anything accepted must round-trip to the same object it was parsed from.
        assert result.event.model_dump(mode="json") == json.loads(data)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes(data):
    assert_rejected_or_valid(data)


@FUZZ
@given(event=valid_events, cut=st.integers(0, 3000))
def test_truncated_events(event, cut):
    data = raw(event)
    if cut < len(data):
        result = parse_event(data[:cut])
        assert isinstance(result, Rejection)


@FUZZ
@given(event=valid_events, data=st.data())
def test_one_field_replaced_by_any_json(event, data):
    key = data.draw(st.sampled_from(sorted(event)))
    value = data.draw(json_values)
    changed = {**event, key: value}
    result = parse_event(json.dumps(changed).encode())
    if isinstance(result, Rejection):
        assert key in result.error or "type" in result.error or "valid_to" in result.error
    else:
        assert result.event.model_dump(mode="json") == changed


@FUZZ
@given(
    event=st.sampled_from([settlement()]),
    index=st.sampled_from(["code", "quantity", "unit_price_fen", "amount_fen"]),
    value=json_values,
)
def test_item_field_replaced_by_any_json(event, index, value):
    item = {**event["items"][0], index: value}
    result = parse_event(json.dumps({**event, "items": [item]}).encode())
    if isinstance(result, Rejection):
        assert f"items.0.{index}" in result.error or "items" in result.error


@settings(max_examples=300, deadline=None)
@given(depth=st.integers(100, 20000), opener=st.sampled_from([b"[", b'{"a":']))
def test_deep_nesting(depth, opener):
    closer = b"]" if opener == b"[" else b"}"
    assert isinstance(parse_event(opener * depth + closer * depth), Rejection)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=1, max_size=200), position=st.integers(0, 1000))
def test_invalid_utf8_inside_a_string(data, position):
    text = raw(settlement())
    position = min(position, len(text) - 2)
    spliced = text[:position] + b"\xff\xfe" + data + text[position:]
    assert isinstance(parse_event(spliced), Rejection)


def test_huge_inputs_stay_bounded():
    huge = [
        raw(settlement(items=[settlement()["items"][0]] * 100_000)),
        raw(settlement(settlement_id="S" * 1_000_000)),
        raw(settlement(diagnosis=[[[]]] * 200_000)),
        b'{"type": "settlement", "hospital_level": ' + b"9" * 100_000 + b"}",
    ]
    tracemalloc.start()
    try:
        for data in huge:
            result = parse_event(data)
            assert isinstance(result, Rejection)
            assert len(result.error) < 2000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 1024 * 1024


@FUZZ
@given(doc=st.sampled_from([POLICY, CATALOG]), data=st.data())
def test_reference_documents_with_any_field_replaced(doc, data):
    key = data.draw(st.sampled_from(sorted(doc)))
    changed = {**doc, key: data.draw(json_values)}
    try:
        parse_document(json.dumps(changed).encode(), "doc.json")
    except RefDataError as exc:
        assert str(exc).startswith("doc.json:")


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=500))
def test_reference_documents_from_random_bytes(data):
    try:
        parse_document(data, "doc.json")
    except RefDataError as exc:
        assert str(exc).startswith("doc.json:")
