"""Fund-safety monitoring in the price stage, through BatchProcessor without a broker.

Batches of several sizes (and persons spread over partitions) raise exactly the flags
`clearing flags` raises on the same events; a replayed batch re-emits the flags it raised and
stores nothing twice; period-close flags come from the stored counts.
"""

from __future__ import annotations

import zlib

import orjson
import pytest
from sqlalchemy import func, select
from support.flag_bundle import flag_lines, flag_refdata

from clearing.core.monitoring import Monitor
from clearing.core.pricer import Pricer
from clearing.ops.flags import flag_lines as offline_flag_lines
from clearing.store import schema
from clearing.store.db import open_engine
from clearing.store.monitor import raise_period_flags
from clearing.stream.batch import BatchProcessor, Record


def offline() -> tuple[set[bytes], set[bytes]]:
    """`clearing flags`' lines: (event flags, period-close flags)."""
    out = [
        line.rstrip(b"\n")
        for line in offline_flag_lines(Pricer(flag_refdata()), Monitor(), flag_lines())
    ]
    close = {f for f in out if orjson.loads(f)["rule"] == "HIGH_REVERSAL_RATE"}
    return set(out) - close, close


def records(partitions: int) -> list[Record]:
    """Keyed by person as the publisher keys them: a person's events share a partition."""
    offsets = [0] * partitions
    out = []
    for number, raw in enumerate(flag_lines(), start=1):
        person = orjson.loads(raw)["person_id"].encode()
        part = zlib.crc32(person) % partitions
        out.append(Record("t.events", part, offsets[part], person, raw, line=number))
        offsets[part] += 1
    return out


def run(proc: BatchProcessor, recs: list[Record], size: int) -> list[bytes]:
    out: list[bytes] = []
    for start in range(0, len(recs), size):
        out.extend(proc.process(recs[start : start + size]).flags)
    return out


def counts(proc: BatchProcessor) -> dict[str, int]:
    with proc.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in schema.metadata.sorted_tables
        }


@pytest.mark.parametrize(("size", "partitions"), [(1, 1), (7, 1), (1000, 1), (5, 3)])
def test_batches_raise_the_offline_flags(db_url: str, size: int, partitions: int) -> None:
    proc = BatchProcessor(open_engine(db_url), flag_refdata, monitor=True)
    events, close = offline()
    raised = run(proc, records(partitions), size)
    assert len(raised) == len(set(raised))
    assert set(raised) == events
    with proc.engine.begin() as conn:
        closing = raise_period_flags(conn, "2026-01") + raise_period_flags(conn, "2026-02")
    assert set(closing) == close
    with proc.engine.begin() as conn:
        assert raise_period_flags(conn, "2026-01") + raise_period_flags(conn, "2026-02") == closing
    with proc.engine.connect() as conn:
        stored = conn.execute(select(schema.flags.c.flag)).scalars().all()
    assert sorted(bytes(f) for f in stored) == sorted(events | close)
    proc.engine.dispose()


def test_a_replayed_batch_reemits_its_flags_and_stores_nothing(db_url: str) -> None:
    proc = BatchProcessor(open_engine(db_url), flag_refdata, monitor=True)
    recs = records(1)
    first = run(proc, recs, 10)
    before = counts(proc)
    again = run(proc, recs[5:], 13)  # a restart from an older offset, other batch boundaries
    assert counts(proc) == before
    # The same flags in the same order, less those raised by the five events not replayed.
    early = {orjson.loads(r.value).get("settlement_id") for r in recs[:5]}
    assert again == [f for f in first if orjson.loads(f)["settlement_ids"][-1] not in early]
    proc.engine.dispose()


def test_monitoring_off_raises_nothing(tmp_path) -> None:
    proc = BatchProcessor(
        open_engine(f"sqlite:///{tmp_path / 'l.sqlite'}"), flag_refdata, monitor=False
    )
    assert run(proc, records(1), 10) == []
    assert counts(proc)["flags"] == counts(proc)["monitor_counts"] == 0
    assert counts(proc)["stream_priced"] > 0
    t = schema.stream_priced
    with proc.engine.connect() as conn:  # nothing remembered for the rules
        kept = conn.execute(select(func.count()).where(t.c["items"].is_not(None))).scalar_one()
    assert kept == 0
    proc.engine.dispose()


def test_a_flag_goes_to_the_flags_topic_and_the_feeds_it_involves() -> None:
    from clearing.stream.handlers import flag_messages
    from clearing.topics import Topics

    topics = Topics("x")
    assert {s.name: s.partitions for s in topics.specs()}["x.flags"] == 1
    body = orjson.dumps(
        {"flag_id": "DUPLICATE_BILLING:A:B", "payers": ["230000"], "payees": ["110000", "310000"]}
    )
    sent = flag_messages(topics, [body])
    assert [t for t, _, _ in sent] == ["x.flags", "x.feed.110000", "x.feed.230000", "x.feed.310000"]
    assert {k for _, k, _ in sent} == {b"DUPLICATE_BILLING:A:B"}


def test_closing_a_period_raises_and_publishes_its_flags_once(tmp_path) -> None:
    from clearing.ledger import cycle
    from clearing.ledger.store import Ledger
    from clearing.topics import Topics

    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    proc = BatchProcessor(open_engine(url), flag_refdata, monitor=True)
    run(proc, records(1), 50)
    sent: list[tuple[str, bytes, bytes]] = []
    publisher = cycle.Publisher(Topics("x"), sent.extend)
    ledger = Ledger(url)
    step = cycle.close(ledger, "2026-01", force=True, publisher=publisher, monitor=True)
    assert set(step.flags) == offline()[1]
    assert {t for t, _, _ in sent} == {"x.flags", "x.feed.230000", "x.feed.110000"}
    assert {k for _, k, _ in sent} == {b"HIGH_REVERSAL_RATE:2026-01:H9"}
    again = cycle.close(ledger, "2026-01", force=True, publisher=publisher, monitor=True)
    assert not again.changed and again.flags == step.flags and len(sent) == 3
    ledger.close()
    proc.engine.dispose()
