"""The stream's small pieces, without a broker: topics, routing, keys, headers, statements,
reference-data updates, offset holding, and the batch processor with the ledger attached."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest
from aiokafka import ConsumerRecord
from support.paths import CASES
from support.stream import issue_statements

from clearing.core.netting import build_statement
from clearing.core.pricer import Pricer
from clearing.core.statements import province_view, statement_messages
from clearing.ops.bundle import load_refdata
from clearing.ops.publish import event_key, refdata_documents
from clearing.stream import ledger_link
from clearing.stream.batch import BatchProcessor, Record
from clearing.stream.handlers import deadletter_headers, record_of
from clearing.stream.refdata_feed import RefdataFeed
from clearing.stream.results import recipients, spec_view
from clearing.topics import PROVINCES, Topics


def test_topic_names_and_partitions() -> None:
    topics = Topics("x")
    specs = {s.name: s for s in topics.specs()}
    assert specs["x.events"].partitions == specs["x.results"].partitions == 12
    assert specs["x.refdata"].configs["cleanup.policy"] == "compact"
    assert {"x.results", "x.deadletter", "x.clearing"} <= set(specs)
    assert len(PROVINCES) == 31 and len(set(PROVINCES)) == 31
    assert [n for n in specs if ".feed." in n] == [f"x.feed.{p}" for p in PROVINCES]
    assert Topics.from_env().prefix  # default or CLEARING_TOPIC_PREFIX


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"status": "priced", "payer": "230000", "payee": "110000"}, ("230000", "110000")),
        ({"status": "reversed", "payer": "230000", "payee": "110000"}, ("230000", "110000")),
        ({"status": "rejected", "payer": "110000", "payee": "110000"}, ("110000",)),
        ({"status": "rejected", "payer": "810000", "payee": "110000"}, ("110000",)),
        ({"status": "rejected", "settlement_id": "S1", "reasons": ["UNKNOWN_SETTLEMENT"]}, ()),
        ({"status": "duplicate", "settlement_id": "S1"}, ()),
        ({"status": "filed", "filing_id": "F1"}, ()),
        ({"status": "invalid", "error": "x"}, ()),
    ],
)
def test_recipients(result: dict, expected: tuple) -> None:
    assert recipients(result) == expected


def test_spec_view_drops_what_the_stream_adds() -> None:
    rejected = {
        "status": "rejected",
        "settlement_id": "S1",
        "reasons": ["NOT_FILED"],
        "payer": "230000",
        "payee": "110000",
        "line": 3,
        "source": "t:0:2",
        "run": "r",
    }
    assert spec_view(rejected) == {
        "status": "rejected",
        "settlement_id": "S1",
        "reasons": ["NOT_FILED"],
        "line": 3,
    }
    priced = {"status": "priced", "payer": "230000", "payee": "110000", "line": 1, "source": "s"}
    assert spec_view(priced) == {
        "status": "priced",
        "payer": "230000",
        "payee": "110000",
        "line": 1,
    }


def test_event_keys() -> None:
    assert event_key(b'{"type": "filing", "person_id": "P1"}', 1) == b"P1"
    assert event_key(b'{"person_id": 7}', 2) == b"line:2"
    assert event_key(b"not json", 3) == b"line:3"
    assert event_key(b'["P1"]', 4) == b"line:4"
    assert event_key(b"", 5) == b"line:5"


def test_refdata_documents_are_keyed() -> None:
    keys = [key for key, _ in refdata_documents(CASES / "refdata")]
    assert "catalog:110000:2026" in keys
    assert any(k.startswith("policy:") and k.endswith(":employee:2026") for k in keys)
    assert len(keys) == len(set(keys))


@dataclass
class FakeRecord:
    key: bytes | None
    value: bytes | None
    offset: int = 0


def test_refdata_feed_applies_updates_and_deletions() -> None:
    feed = RefdataFeed("unused:9092", "x.refdata")
    docs = list(refdata_documents(CASES / "refdata"))
    assert feed.apply(FakeRecord(k.encode(), v) for k, v in docs)
    assert len(feed.documents) == len(docs)
    assert not feed.apply([FakeRecord(b"policy:nope", None)])  # deleting nothing changes nothing
    assert feed.apply([FakeRecord(b"catalog:110000:2026", None)])
    assert not feed.apply([FakeRecord(b"broken", b"{not json")])  # logged and skipped
    assert b"catalog:110000:2026" not in feed.documents


def test_province_view_and_statement_messages() -> None:
    results = [r for r in map(orjson.loads, (CASES / "priced.jsonl").read_bytes().splitlines())]
    statement = build_statement("2026-01", [r for r in results if r.get("period") == "2026-01"])
    province = next(iter(statement["net_positions"]))
    view = province_view(statement, province)
    assert view["net_position"] == statement["net_positions"][province]
    assert view["obligations"] and all(
        province in (o["payer"], o["payee"]) for o in view["obligations"]
    )
    messages = statement_messages(Topics("x"), [statement])
    assert messages[0][0] == "x.clearing"
    assert {t for t, _, _ in messages[1:]} == {f"x.feed.{p}" for p in statement["net_positions"]}


def consumer_record(**fields: object) -> ConsumerRecord[bytes, bytes]:
    values: dict[str, object] = {
        "topic": "x.events", "partition": 2, "offset": 41, "timestamp": 1_700_000_000_500,
        "timestamp_type": 0, "key": b"P1", "value": b"{}", "checksum": None,
        "serialized_key_size": 2, "serialized_value_size": 2,
        "headers": [("line", b"17"), ("run", b"r1")],
    }
    values.update(fields)
    return ConsumerRecord(**values)  # type: ignore[arg-type]


def test_record_of_reads_position_and_headers() -> None:
    record = record_of(consumer_record())
    assert (record.topic, record.partition, record.offset) == ("x.events", 2, 41)
    assert (record.line, record.run, record.timestamp_ms) == (17, "r1", 1_700_000_000_500)
    assert record.source == "x.events:2:41"
    bare = record_of(consumer_record(headers=[], value=None))
    assert (bare.line, bare.run, bare.value) == (None, None, b"")


def test_deadletter_headers_name_reason_and_source() -> None:
    from clearing.stream.batch import invalid_emit

    emit = invalid_emit(Record("x.events", 1, 9, b"k", b"{", line=4, run="r"), "not JSON")
    headers = dict(deadletter_headers(emit))
    assert headers == {
        "reason": b"not JSON",
        "source_topic": b"x.events",
        "source_partition": b"1",
        "source_offset": b"9",
        "line": b"4",
        "run": b"r",
    }


def test_batches_with_the_ledger_clear_like_offline_and_replays_count_once(db_url: str) -> None:
    """Results, state and ledger postings commit together: replayed batches change nothing."""
    pytest.importorskip("clearing.ledger.store")
    lines = (CASES / "events.jsonl").read_bytes().split(b"\n")[:-1]
    refdata = load_refdata(CASES / "refdata")
    url = db_url
    engine = ledger_link.open_database(url)
    proc = BatchProcessor(engine, lambda: refdata, ledger_link.record_results)
    records = [Record("t.events", 0, n, None, raw, line=n + 1) for n, raw in enumerate(lines)]
    for start in range(0, len(records), 100):
        proc.process(records[start : start + 100])
    for start in range(50, len(records), 77):  # a restart from an older offset
        replay = proc.process(records[start : start + 77])
        assert all(e.replayed for e in replay.emits) and not replay.alerts

    pricer = Pricer(refdata)
    offline = []
    for n, raw in enumerate(lines, start=1):
        offline.append({**pricer.process(raw).model_dump(exclude_none=True), "line": n})
    periods = sorted({r["period"] for r in offline if r["status"] in ("priced", "reversed")})
    statements = issue_statements(url, periods)
    for period in periods:
        want = build_statement(period, [r for r in offline if r.get("period") == period])
        assert statements[period]["obligations"] == want["obligations"]
        assert statements[period]["net_positions"] == want["net_positions"]


def test_no_prepayment_on_record_is_published_once_per_province_and_period(db_url: str) -> None:
    """No deposit and nothing issued: batch after batch, each (province, period) in net debit
    gets one notice, on the clearing topic and its own feed, and no alert."""
    from clearing.stream.handlers import alert_messages

    lines = (CASES / "events.jsonl").read_bytes().split(b"\n")[:-1]
    refdata = load_refdata(CASES / "refdata")
    engine = ledger_link.open_database(db_url)
    proc = BatchProcessor(engine, lambda: refdata, ledger_link.record_results)
    records = [Record("t.events", 0, n, None, raw, line=n + 1) for n, raw in enumerate(lines)]
    raised = []
    for start in range(0, len(records), 25):
        raised += proc.process(records[start : start + 25]).alerts
    engine.dispose()
    assert raised and all(a["type"] == "prepayment_notice" for a in raised)
    keys = [(a["province"], a["period"]) for a in raised]
    assert len(keys) == len(set(keys))
    topics = Topics("t")
    messages = alert_messages(topics, raised[:1])
    body = orjson.loads(messages[0][1])
    assert [topic for topic, _ in messages] == [topics.clearing, topics.feed(body["province"])]
    assert body["message"] == "no prepayment on record" and body["net_debit_fen"] > 0
