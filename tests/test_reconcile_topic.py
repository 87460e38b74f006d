"""Confirmations and disputes as province nodes send them on `<prefix>.reconcile`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_ledger_support import sample_results

from clearing.core.netting import digest, obligation_lines
from clearing.stream.reconcile import Confirm, Dispute, answer, answer_messages, parse_request
from clearing.topics import Topics


@pytest.fixture
def issued(ledger):
    sample = sample_results()
    ledger.record_results(sample)
    ledger.close_period("2026-01")
    ledger.issue_period("2026-01")
    return obligation_lines([r for r in sample if r.get("period") == "2026-01"])


def request(**fields) -> bytes:
    return orjson.dumps({"schema_version": 1, "period": "2026-01", **fields})


def test_a_confirmation_is_answered_with_the_statement_it_confirms(ledger, issued):
    parsed = parse_request(request(type="confirm", province="110000"))
    assert isinstance(parsed, Confirm)
    reply = answer(ledger, parsed)
    assert reply["action"] == "confirm"
    assert reply["statement_sha256"] == ledger.statement("2026-01").sha256
    assert reply["net_position_fen"] == ledger.statement("2026-01").statement["net_positions"][
        "110000"
    ]


def test_a_dispute_finds_the_planted_difference(ledger, issued):
    (payer, payee), lines = next((pair, ls) for pair, ls in sorted(issued.items()) if len(ls) > 1)
    theirs = sorted(lines)
    kind, ident, fen = theirs[0].split("|")
    theirs[0] = f"{kind}|{ident}|{int(fen) + 100}"
    theirs.append("S|NOT-OURS-1|500")
    parsed = parse_request(
        request(
            type="dispute",
            province=payer,
            payer=payer,
            payee=payee,
            digest=digest(theirs),
            fund_pay_fen=sum(int(line.split("|")[2]) for line in theirs),
            lines=theirs,
        )
    )
    assert isinstance(parsed, Dispute)
    reply = answer(ledger, parsed)
    assert reply["digest_matches"] is False
    assert reply["differing_ids"] == sorted([f"{kind}|{ident}", "S|NOT-OURS-1"])
    assert reply["missing_here"] == ["S|NOT-OURS-1"]


def test_refusals_are_answers_not_crashes(ledger, issued):
    unissued = answer(ledger, parse_request(request(type="confirm", province="110000",
                                                    period="2026-03")))
    assert "error" in unissued and "2026-03" in unissued["error"]
    other = parse_request(
        request(type="dispute", province="110000", payer="410000", payee="310000",
                digest="0" * 64, fund_pay_fen=0)
    )
    assert "own obligations" in answer(ledger, other)["error"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{", "not JSON"),
        (b"[]", "object"),
        (request(type="approve", province="110000"), "type"),
        (request(type="confirm", province="110100"), "province"),
        (request(type="confirm", province="110000", period="2026-13"), "period"),
        (request(type="confirm", province="110000", extra=1), "extra"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="abc", fund_pay_fen=0), "digest"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="0" * 64, fund_pay_fen="1"), "fund_pay_fen"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="0" * 64, fund_pay_fen=1, lines=["X|1|2"]), "lines.0"),
    ],
)
def test_invalid_requests_name_the_field(raw, field):
    reason = parse_request(raw)
    assert isinstance(reason, str) and field in reason


def test_answers_go_to_the_province_and_the_clearing_topic_only():
    topics = Topics("p")
    messages = answer_messages(topics, {"period": "2026-01", "province": "110000", "x": 1})
    assert [topic for topic, _, _ in messages] == ["p.feed.110000", "p.clearing"]
    assert orjson.loads(messages[0][2])["type"] == "reconciliation"


@pytest.mark.kafka
def test_a_worker_answers_a_province_on_its_feed(kafka_bootstrap, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from stream_support import run_with

    from clearing.ledger.store import Ledger
    from clearing.ops.bundle import event_lines

    cases = Path(__file__).resolve().parents[2] / "shared" / "cases"
    lines = list(event_lines(cases / "events.jsonl"))
    pipeline, results = run_with(kafka_bootstrap, tmp_path, cases / "refdata", lines)
    try:
        assert len(results.by_line) == len(lines)
        with Ledger(pipeline.db_url) as ledger:
            ledger.close_period("2026-01", force=True)
            issued = ledger.issue_period("2026-01")
        topics = pipeline.topics
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        producer.send(topics.reconcile, request(type="confirm", province="110000"))
        producer.send(topics.reconcile, b'{"type": "confirm"}')
        producer.flush()
        producer.close()

        def first(topic: str, wanted) -> object | None:
            """The first message of a one-partition topic that `wanted` accepts (60 s at most)."""
            consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=2000)
            consumer.assign([TopicPartition(topic, 0)])
            consumer.seek_to_beginning()
            try:
                for _ in range(30):
                    for message in consumer:
                        if wanted(message):
                            return message
            finally:
                consumer.close()
            return None

        answer_message = first(topics.feed("110000"), lambda m: b'"reconciliation"' in m.value)
        assert answer_message is not None
        reply = orjson.loads(answer_message.value)
        assert reply["action"] == "confirm"
        assert reply["statement_sha256"] == issued.sha256
        dead = first(topics.deadletter, lambda m: m.value == b'{"type": "confirm"}')
        assert dead is not None and b"schema_version" in dict(dead.headers)["reason"]
    finally:
        pipeline.cleanup()
