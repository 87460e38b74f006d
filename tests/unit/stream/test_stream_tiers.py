"""The one-stop settlement sample (`cases/tiers/`) through the stream's batch processor.

The stream keeps assistance records, the per person-year tier accumulators and each priced
settlement's counted burden in the database, so any batching prices every event exactly as
`clearing price` does, on SQLite and on PostgreSQL; replaying a batch changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from support.paths import CASES

from clearing.core.pricer import Pricer
from clearing.core.refdata import RefData
from clearing.ops.bundle import load_refdata
from clearing.store import schema
from clearing.store.db import open_engine
from clearing.stream.batch import BatchProcessor, Record
from clearing.stream.results import spec_view

TIERS = CASES / "tiers"


@pytest.fixture(scope="module")
def sample() -> tuple[list[bytes], RefData]:
    lines = (TIERS / "events.jsonl").read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines, load_refdata(TIERS / "refdata")


def offline(lines: list[bytes], refdata: RefData) -> list[dict[str, Any]]:
    """What `clearing price` prints, line by line."""
    pricer = Pricer(refdata)
    out = []
    for number, raw in enumerate(lines, start=1):
        result = pricer.process(raw).model_dump(exclude_none=True)
        result["line"] = number
        out.append(result)
    return out


def records(lines: list[bytes]) -> list[Record]:
    return [
        Record("t.events", 0, offset, None, raw, line=offset + 1, run="r1")
        for offset, raw in enumerate(lines)
    ]


def run(proc: BatchProcessor, recs: list[Record], size: int) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(recs), size):
        out.extend(e.result for e in proc.process(recs[start : start + size]).emits)
    return out


def snapshot(proc: BatchProcessor) -> dict[str, Any]:
    """Every table's row count, and the tier state row by row."""
    with proc.engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in schema.metadata.sorted_tables
        }
        tiers = conn.execute(
            select(schema.stream_tier_accumulators).order_by(
                schema.stream_tier_accumulators.c.person_id, schema.stream_tier_accumulators.c.year
            )
        ).all()
        counted = conn.execute(
            select(schema.stream_priced.c.settlement_id, schema.stream_priced.c.counted_fen)
            .order_by(schema.stream_priced.c.settlement_id)
        ).all()
    return {"counts": counts, "tiers": tiers, "counted": counted}


def test_the_sample_exercises_the_tiers(sample) -> None:
    lines, refdata = sample
    expected = offline(lines, refdata)
    assert any(r["status"] == "registered" for r in expected)
    assert any(r.get("critical_pay_fen") for r in expected)
    assert any(r.get("assistance_pay_fen") for r in expected)
    assert any(r["status"] == "reversed" and r.get("critical_pay_fen") for r in expected)


@pytest.mark.parametrize("size", [1, 7, 50, 10_000])
def test_batches_of_any_size_equal_clearing_price(db_url: str, sample, size: int) -> None:
    lines, refdata = sample
    engine = open_engine(db_url)
    try:
        proc = BatchProcessor(engine, lambda: refdata)
        got = [spec_view(r) for r in run(proc, records(lines), size)]
        expected = offline(lines, refdata)
        assert got == expected
        # ... and the bundle's expected lines, but for the free wording of errors.
        bundle = [json.loads(line) for line in (TIERS / "priced.jsonl").read_text().splitlines()]
        assert [r for r in got if r["status"] != "invalid"] == [
            r for r in bundle if r["status"] != "invalid"
        ]
        state = snapshot(proc)
        assert state["counts"]["stream_assistance"] == sum(
            r["status"] == "registered" for r in expected
        )
        assert state["tiers"] and any(row.counted_fen for row in state["counted"])
    finally:
        engine.dispose()


def test_replaying_a_batch_changes_nothing(db_url: str, sample) -> None:
    lines, refdata = sample
    engine = open_engine(db_url)
    try:
        proc = BatchProcessor(engine, lambda: refdata)
        recs = records(lines)
        first = run(proc, recs, 40)
        before = snapshot(proc)
        again = run(proc, recs[100:], 23)  # other batch boundaries, from an older offset
        assert again == first[100:]
        assert snapshot(proc) == before
    finally:
        engine.dispose()


def test_feeds_get_the_tier_results_with_their_tier_fields(tmp_path, sample) -> None:
    """A feed message is the result's own message: the tier fields travel with it to the home
    and the hospital province; an assistance record's `registered` result goes to no feed."""
    import orjson

    from clearing.stream.handlers import RouteHandler
    from clearing.topics import Topics

    lines, refdata = sample
    engine = open_engine(f"sqlite:///{tmp_path / 'feeds.sqlite'}")
    try:
        emits = BatchProcessor(engine, lambda: refdata).process(records(lines)).emits
    finally:
        engine.dispose()
    route = RouteHandler(Topics("p"))
    tiered = [e for e in emits if e.result.get("due_fen") is not None]
    assert any(e.result["critical_pay_fen"] or e.result["assistance_pay_fen"] for e in tiered)
    for emit in tiered:
        message = orjson.loads(emit.message)
        assert {k: message[k] for k in ("critical_pay_fen", "assistance_pay_fen", "due_fen")} == {
            k: emit.result[k] for k in ("critical_pay_fen", "assistance_pay_fen", "due_fen")
        }
        assert route.feeds(emit.result) == [
            f"p.feed.{emit.result['payer']}",
            f"p.feed.{emit.result['payee']}",
        ]
    assert all(route.feeds(e.result) == [] for e in emits if e.status == "registered")
