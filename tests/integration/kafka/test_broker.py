"""The broker guarantees the pipeline builds on: every acknowledged message comes back exactly once,
also after the broker restarts."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from clearing.kafka_clients import kafka_python_auth

if TYPE_CHECKING:
    from fixtures.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


def produce(bootstrap: str, topic: str, values: list[bytes]) -> list[bytes]:
    """Sends with acks=all and idempotence; returns the values the broker acknowledged."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **kafka_python_auth(),
    )
    try:
        futures = [producer.send(topic, key=value, value=value) for value in values]
        producer.flush(timeout=30)
        return [value for value, future in zip(values, futures, strict=True) if future.get(30)]
    finally:
        producer.close()


def drain(consumer: KafkaConsumer, expected: int, timeout: float = 30.0) -> list[bytes]:
    """Polls until `expected` records arrived (plus one more poll to catch extras) or timeout."""
    received: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            received.extend(record.value for record in records)
    for records in consumer.poll(timeout_ms=1000).values():
        received.extend(record.value for record in records)
    return received


def test_round_trip_exactly_once_per_message(
    kafka_bootstrap: str, kafka_topics: Callable[..., str]
) -> None:
    topic = kafka_topics("roundtrip", partitions=3)
    values = [f"msg-{i:05d}".encode() for i in range(2000)]

    acked = produce(kafka_bootstrap, topic, values)
    assert acked == values

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka_python_auth(),
    )
    try:
        received = drain(consumer, len(values))
        partitions = {tp.partition for tp in consumer.assignment()}
    finally:
        consumer.close()

    assert len(received) == len(values), "lost or duplicated messages"
    assert set(received) == set(values)
    assert partitions == {0, 1, 2}


def test_acknowledged_messages_survive_restart(
    kafka_broker: KafkaBroker, kafka_topics: Callable[..., str]
) -> None:
    topic = kafka_topics("durable", partitions=3)
    values = [f"durable-{i:05d}".encode() for i in range(500)]
    acked = produce(kafka_broker.bootstrap, topic, values)
    assert acked == values

    kafka_broker.restart()

    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap,
        enable_auto_commit=False,
        group_id=None,
        **kafka_python_auth(),
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        consumer.seek_to_beginning()
        received = drain(consumer, len(acked), timeout=45)
    finally:
        consumer.close()

    assert sorted(received) == sorted(acked)
    # The restarted broker takes writes again.
    assert produce(kafka_broker.bootstrap, topic, [b"after-restart"]) == [b"after-restart"]
