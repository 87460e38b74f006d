"""A worker on the real broker answers the confirmations and disputes province nodes send on
`<prefix>.reconcile` (the answers themselves: unit/stream/test_reconcile_topic.py)."""

from __future__ import annotations

import orjson
import pytest
from support.paths import CASES


def request(**fields) -> bytes:
    return orjson.dumps({"schema_version": 1, "period": "2026-01", **fields})


@pytest.mark.kafka
def test_a_worker_answers_a_province_on_its_feed(kafka_bootstrap, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from support.stream import run_with

    from clearing.kafka_clients import kafka_python_auth
    from clearing.ledger.store import Ledger
    from clearing.ops.bundle import event_lines

    lines = list(event_lines(CASES / "events.jsonl"))
    pipeline, results = run_with(kafka_bootstrap, tmp_path, CASES / "refdata", lines)
    try:
        assert len(results.by_line) == len(lines)
        with Ledger(pipeline.db_url) as ledger:
            ledger.close_period("2026-01", force=True)
            issued = ledger.issue_period("2026-01")
        topics = pipeline.topics
        producer = KafkaProducer(
            bootstrap_servers=kafka_bootstrap, acks="all", **kafka_python_auth()
        )
        producer.send(topics.reconcile, request(type="confirm", province="110000"))
        producer.send(topics.reconcile, b'{"type": "confirm"}')
        producer.flush()
        producer.close()

        def first(topic: str, wanted) -> object | None:
            """The first message of a one-partition topic that `wanted` accepts (60 s at most)."""
            consumer = KafkaConsumer(
                bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=2000, **kafka_python_auth()
            )
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
