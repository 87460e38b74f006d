"""The stream bench publishes each event from the province node that may send it."""

from __future__ import annotations

import orjson
from support.builders import filing, raw, reversal, settlement
from support.paths import CASES

from clearing.core.authority import may_send, province
from clearing.core.parse import Parsed, parse_event
from clearing.core.pricer import Pricer
from clearing.ops.bench.stream import senders
from clearing.ops.bundle import load_refdata


def test_each_event_comes_from_a_province_that_may_send_it() -> None:
    lines = [
        raw(settlement("S1", hospital_region="110105", home_region="120101")),
        raw(filing("F1", home_region="120101")),
        raw(reversal("R1", "S1")),
        b"not json",
    ]
    assert senders(lines) == ["110000", "120000", "110000", "110000"]


def test_the_sample_bundle_is_sent_by_provinces_the_spec_allows() -> None:
    lines = (CASES / "events.jsonl").read_bytes().splitlines()
    pricer = Pricer(load_refdata(CASES / "refdata"))
    for raw_line, sender in zip(lines, senders(lines), strict=True):
        parsed = parse_event(raw_line)
        pricer.process(raw_line)
        if not isinstance(parsed, Parsed):
            continue
        named = None
        if parsed.event.type == "reversal":
            entry = pricer.book.priced_entry(parsed.event.settlement_id)
            named = entry.result if entry else None
        if parsed.event.type == "reversal" and named is None:
            continue  # UNKNOWN_SETTLEMENT whoever sends it
        assert may_send(province(sender), parsed.event, named), (sender, orjson.loads(raw_line))
