"""The stream's batch processor on a SQLite database, without a broker.

Batches of the sample bundle must give exactly `clearing price`'s results; replaying any batch
(a crash before the offset commit) must re-emit the stored results and change nothing.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from support.paths import CASES

from clearing.core.pricer import Pricer
from clearing.ops.bundle import load_refdata
from clearing.store import schema
from clearing.store.db import open_engine
from clearing.stream.batch import BatchProcessor, Record
from clearing.stream.results import spec_view


@pytest.fixture(scope="module")
def sample() -> tuple[list[bytes], object]:
    lines = (CASES / "events.jsonl").read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines, load_refdata(CASES / "refdata")


def offline(lines: list[bytes], refdata) -> list[dict]:
    pricer = Pricer(refdata)
    out = []
    for number, raw in enumerate(lines, start=1):
        result = pricer.process(raw).model_dump(exclude_none=True)
        result["line"] = number
        out.append(result)
    return out


def records(lines: list[bytes], topic: str = "t.events", partitions: int = 1) -> list[Record]:
    """Records as the broker would hand them out: one offset sequence per partition."""
    offsets = [0] * partitions
    out = []
    for number, raw in enumerate(lines, start=1):
        part = number % partitions if partitions > 1 else 0
        out.append(Record(topic, part, offsets[part], None, raw, line=number, run="r1"))
        offsets[part] += 1
    return out


def processor(tmp_path: Path, refdata) -> BatchProcessor:
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    return BatchProcessor(engine, lambda: refdata)


def run(proc: BatchProcessor, recs: list[Record], size: int) -> list[dict]:
    out = []
    for start in range(0, len(recs), size):
        out.extend(e.result for e in proc.process(recs[start : start + size]).emits)
    return out


def test_batches_equal_offline(tmp_path: Path, sample) -> None:
    lines, refdata = sample
    proc = processor(tmp_path, refdata)
    got = [spec_view(r) for r in run(proc, records(lines), 37)]
    assert got == offline(lines, refdata)


def test_replay_reemits_stored_results_and_changes_nothing(tmp_path: Path, sample) -> None:
    lines, refdata = sample
    proc = processor(tmp_path, refdata)
    recs = records(lines)
    first = run(proc, recs, 100)
    with proc.engine.connect() as conn:
        before = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in schema.metadata.sorted_tables
        }
    # A restart resumes from an older committed offset with other batch boundaries.
    again = run(proc, recs[150:], 61)
    assert again == first[150:]
    with proc.engine.connect() as conn:
        after = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar()
            for t in schema.metadata.sorted_tables
        }
    assert after == before


def test_republished_events_are_duplicates(tmp_path: Path, sample) -> None:
    lines, refdata = sample
    proc = processor(tmp_path, refdata)
    first = run(proc, records(lines, "a.events"), 200)
    second = run(proc, records(lines, "b.events"), 200)
    priced = [r for r in first if r["status"] == "priced"]
    assert priced
    by_line = {r["line"]: r for r in second}
    for r in priced:
        assert by_line[r["line"]]["status"] == "duplicate"


def test_invalid_events_are_dead_lettered_with_a_reason(tmp_path: Path, sample) -> None:
    _, refdata = sample
    proc = processor(tmp_path, refdata)
    recs = records([b"", b"{not json", b"[1]", b'{"type": "settlement"}'])
    out = proc.process(recs)
    assert [e.status for e in out.emits] == ["invalid"] * 4
    assert all(e.reason for e in out.emits)
    assert [e.result["line"] for e in out.emits] == [1, 2, 3, 4]


def test_partitions_interleaved_equal_offline(tmp_path: Path, sample) -> None:
    """Events keyed by person: any interleaving of partitions prices every person the same."""
    lines, refdata = sample
    proc = processor(tmp_path, refdata)
    keyed: dict[int, list[int]] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            person = orjson.loads(raw).get("person_id")
        except (orjson.JSONDecodeError, AttributeError):
            person = None
        part = hash(person if isinstance(person, str) else number) % 3
        keyed.setdefault(part, []).append(number)
    recs = []
    for part, numbers in sorted(keyed.items()):
        recs.extend(
            Record("t.events", part, offset, None, lines[n - 1], line=n)
            for offset, n in enumerate(numbers)
        )
    got = sorted((spec_view(r) for r in run(proc, recs, 50)), key=lambda r: r["line"])
    assert got == offline(lines, refdata)


def test_a_batch_raced_by_another_partition_is_priced_again(db_url: str) -> None:
    """Partition 1 takes settlement id X between partition 0's read and its write: partition 0
    must see the id taken (DUPLICATE_CONFLICT), never price X a second time."""
    from support.builders import raw, refdata, reversal, settlement

    data = refdata()
    engine = open_engine(db_url)
    other = BatchProcessor(engine, lambda: data)
    racing = [Record("t.events", 1, 0, b"P2", raw(settlement("X", person_id="P2")), line=2)]

    class Interrupted(BatchProcessor):
        raced = False

        def _price(self, *args):
            if not self.raced:  # between the unlocked read and the write transaction
                self.raced = True
                assert other.process(racing).emits[0].status == "priced"
            return super()._price(*args)

    mine = [
        Record("t.events", 0, 0, b"P1", raw(settlement("X")), line=1),
        Record("t.events", 0, 1, b"P1", raw(reversal("R1", "X")), line=3),
    ]
    out = Interrupted(engine, lambda: data).process(mine)
    statuses = [(e.status, e.result.get("reasons")) for e in out.emits]
    assert statuses == [
        ("rejected", ["DUPLICATE_CONFLICT"]),
        ("rejected", ["UNKNOWN_SETTLEMENT"]),
    ]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.stream_priced)).scalar() == 1
        taken = conn.execute(select(schema.ids.c.key, schema.ids.c.source)).all()
    assert sorted(taken) == [("R:R1", "t.events:0:1"), ("S:X", "t.events:1:0")]


def test_a_pricing_crash_is_the_same_invalid_result_offline_and_on_the_stream(
    tmp_path: Path, sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths price through `price_parsed`: a crash on one event sets that event aside as
    `invalid`, naming the failure, and every other event is priced as without it."""
    import clearing.core.pricer as pricer_module

    lines, refdata = sample
    compact = [raw.replace(b" ", b"") for raw in lines]
    victim = next(i for i, raw in enumerate(compact) if b'"type":"settlement"' in raw)
    victim_id = orjson.loads(lines[victim])["settlement_id"]
    real = pricer_module.price_event

    def crashing(event, fingerprint, refdata, book):
        if getattr(event, "settlement_id", None) == victim_id and event.type == "settlement":
            raise ZeroDivisionError("planted")
        return real(event, fingerprint, refdata, book)

    monkeypatch.setattr(pricer_module, "price_event", crashing)
    expected = offline(lines, refdata)
    assert expected[victim] == {
        "status": "invalid",
        "error": "could not be processed (ZeroDivisionError)",
        "line": victim + 1,
    }
    got = [spec_view(r) for r in run(processor(tmp_path, refdata), records(lines), 50)]
    assert got == expected


def test_an_api_claim_is_not_a_take(db_url: str) -> None:
    """The API claims an id before it publishes; the stream prices the id as new all the same
    (pricing.md's duplicate semantics are the stream's alone), adds its take to the claim's
    row and keeps the claim, even when the event that took it is another than the claimed."""
    from support.builders import raw, refdata, settlement

    from clearing.api.store import Store
    from clearing.core.parse import parse_event

    data = refdata()
    engine = open_engine(db_url)
    claimed = settlement("X", hospital_id="H1")
    other = settlement("X", hospital_id="H1", emergency=True)
    store = Store(engine)
    assert store.claim("S:X", "H1", parse_event(raw(claimed)).fingerprint) is None
    assert store.taken("S:X") is None

    out = BatchProcessor(engine, lambda: data).process(
        [Record("t.events", 0, 0, None, raw(other)), Record("t.events", 0, 1, None, raw(claimed))]
    )
    statuses = [(e.status, e.result.get("reasons")) for e in out.emits]
    assert statuses == [("priced", None), ("rejected", ["DUPLICATE_CONFLICT"])]
    with engine.connect() as conn:
        row = conn.execute(select(schema.ids)).one()
    assert (row.key, row.source, row.hospital_id) == ("S:X", "t.events:0:0", "H1")
    assert row.content_hash == parse_event(raw(other)).fingerprint
    assert row.claim_hash == parse_event(raw(claimed)).fingerprint
    assert store.claim_of("S:X").fingerprint == row.claim_hash
    answer = store.answer("S:X", row.claim_hash, "t.events:0:1")
    assert answer.state == "conflict" and answer.result["reasons"] == ["DUPLICATE_CONFLICT"]
    engine.dispose()
