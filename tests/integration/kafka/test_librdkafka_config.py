"""The client config `clearing province add` writes is one librdkafka takes as it is (the file
kcat reads with `-F`): its `key=value` lines go to confluent-kafka's Consumer and Producer
unchanged, and with them province 650000 reads its own feed and writes its own inbound topic,
and the broker refuses it everything else. So a bureau's node can use any librdkafka client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from fixtures.kafka import KafkaBroker
from support.cli import clearing
from support.services import unavailable

from clearing.kafka_auth import KafkaAuth
from clearing.topics import Topics, delete_topics

pytestmark = pytest.mark.kafka

# Not the province test_kafka_security adds: each test owns its principal's ACLs.
PROVINCE = "650000"


def kcat_config(path: Path) -> dict[str, str]:
    """The file read as kcat's `-F` reads it: `key=value` per line, `#` comments, blank lines."""
    config: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        config[key] = value
    return config


class Province(NamedTuple):
    topics: Topics
    config: dict[str, str]  # the file `clearing province add` wrote, as kcat reads it


@pytest.fixture(scope="module")
def province(
    kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Province]:
    """Province 650000 added on a prefix of its own, its feed and 120000's holding a record."""
    if kafka_broker.auth is None:
        unavailable(f"the {kafka_broker.kind} Kafka broker takes anonymous clients")
    bootstrap, admin_auth = kafka_broker.bootstrap, kafka_broker.auth
    prefix = f"rdk-{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    out = tmp_path_factory.mktemp("rdk") / f"{PROVINCE}.properties"
    added = clearing(
        "province", "add", PROVINCE, "--prefix", prefix, "--out", str(out), bootstrap=bootstrap
    )
    assert added.returncode == 0, added.stderr
    admin_producer = Producer(admin_config(bootstrap, admin_auth))
    for code in (PROVINCE, "120000"):
        admin_producer.produce(topics.feed(code), f"for {code}".encode())
    assert admin_producer.flush(30) == 0
    try:
        yield Province(topics, kcat_config(out))
    finally:
        revoked = clearing("province", "revoke", PROVINCE, "--prefix", prefix, bootstrap=bootstrap)
        delete_topics(bootstrap, prefix, admin_auth)
    assert revoked.returncode == 0, revoked.stderr


def admin_config(bootstrap: str, auth: KafkaAuth) -> dict[str, str]:
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": auth.mechanism,
        "sasl.username": auth.username,
        "sasl.password": auth.password,
    }


def consume(config: dict[str, str], topic: str, seconds: float = 20) -> list[bytes]:
    """The topic's records read by a librdkafka consumer; raises the first error it reports."""
    consumer = Consumer(
        {
            **config,
            "group.id": f"province-{PROVINCE}-rdk-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[bytes] = []
    try:
        consumer.subscribe([topic])
        for _ in range(int(seconds / 0.5)):
            message = consumer.poll(0.5)
            if message is None:
                if received:
                    break
                continue
            error = message.error()
            if error is not None:
                raise KafkaException(error)
            received.append(message.value() or b"")
        return received
    finally:
        consumer.close()


def produce(config: dict[str, str], topic: str) -> KafkaError | None:
    """The delivery report's error for one record (None: the broker acknowledged it)."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": 10000, "acks": "all"})
    producer.produce(topic, b"from 650000", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(20)
    assert outcome, "no delivery report"
    return outcome[0]


def test_the_config_is_read_by_librdkafka_unchanged(province: Province) -> None:
    config = province.config
    assert set(config) == {
        "bootstrap.servers",
        "security.protocol",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
    }
    assert config["sasl.username"] == f"province-{PROVINCE}"


def test_the_province_reads_its_own_feed(province: Province) -> None:
    topics, config = province
    assert consume(config, topics.feed(PROVINCE)) == [f"for {PROVINCE}".encode()]


def test_the_broker_refuses_another_provinces_feed(province: Province) -> None:
    topics, config = province
    with pytest.raises(KafkaException) as refused:
        consume(config, topics.feed("120000"))
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_broker_refuses_the_events_topic_to_a_province_reader(province: Province) -> None:
    topics, config = province
    with pytest.raises(KafkaException) as refused:
        consume(config, topics.events)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_province_writes_its_inbound_topic(province: Province) -> None:
    topics, config = province
    assert produce(config, topics.inbound(PROVINCE)) is None


def test_the_broker_refuses_a_province_writing_elsewhere(province: Province) -> None:
    topics, config = province
    for topic in (topics.events, topics.inbound("120000"), topics.feed(PROVINCE)):
        error = produce(config, topic)
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, topic


def test_a_wrong_password_is_refused(province: Province) -> None:
    topics, config = province
    wrong = {**config, "sasl.password": "not-" + config["sasl.password"]}
    error = produce(wrong, topics.inbound(PROVINCE))
    assert error is not None


def test_an_anonymous_client_is_refused(province: Province) -> None:
    topics, config = province
    anonymous = {"bootstrap.servers": config["bootstrap.servers"]}
    error = produce(anonymous, topics.inbound(PROVINCE))
    assert error is not None
