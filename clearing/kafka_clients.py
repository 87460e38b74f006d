"""The Kafka clients of every stage and tool, made in one place so they connect alike.

Every client logs in as `clearing.kafka_auth` says: `auth=ENV` (the default) reads the login
from the environment (`clearing.config.Settings`) when the client is made; a `KafkaAuth`, or
`None` for no authentication, overrides it.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeAlias

from clearing.config import settings
from clearing.core.errors import UnavailableError
from clearing.kafka_auth import KafkaAuth

if TYPE_CHECKING:  # kafka-python has no type information: these are `Any` to mypy
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer


class _Env(Enum):
    ENV = "env"


ENV = _Env.ENV
Auth: TypeAlias = KafkaAuth | None | _Env


def client_auth(auth: Auth = ENV) -> KafkaAuth | None:
    """The login a client uses: the environment's for `ENV`, else `auth` itself."""
    return KafkaAuth.from_settings(settings()) if auth is ENV else auth


def aiokafka_auth(auth: Auth = ENV) -> dict[str, Any]:
    """aiokafka's keyword arguments for the login (nothing without one)."""
    login = client_auth(auth)
    return login.aiokafka_kwargs() if login else {}


def kafka_python_auth(auth: Auth = ENV) -> dict[str, Any]:
    """kafka-python's keyword arguments for the login (nothing without one)."""
    login = client_auth(auth)
    return login.kafka_python_kwargs() if login else {}


def producer(bootstrap: str, auth: Auth = ENV) -> KafkaProducer:
    """Idempotent, acks=all, batching producer (kafka-python)."""
    warn_without_crc32c()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaProducer
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="clearing-publish",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # Large batches: the per-batch cost dominates (under the broker's 1 MB message limit).
        batch_size=768 * 1024,
        max_request_size=1024 * 1024,
        **kafka_python_auth(auth),
    )


@functools.cache
def warn_without_crc32c() -> None:
    """kafka-python checksums every record batch in pure Python unless `crc32c` is installed,
    which makes the publisher about three times slower on 2 KB events."""
    try:
        import crc32c  # noqa: F401
    except ImportError:
        print("clearing: the `crc32c` package is missing; publishing is slower", file=sys.stderr)


def consumer(
    bootstrap: str,
    topics: str | list[str],
    client_id: str = "clearing-reader",
    auth: Auth = ENV,
) -> KafkaConsumer:
    """A group-less consumer assigned every partition of the topics, from the beginning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition
    names = [topics] if isinstance(topics, str) else list(topics)
    reader = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        fetch_max_bytes=64 * 1024 * 1024,
        **kafka_python_auth(auth),
    )
    tps = []
    for topic in names:
        partitions = None
        deadline = time.monotonic() + 30
        while not partitions and time.monotonic() < deadline:
            partitions = reader.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        if not partitions:
            reader.close()
            raise UnavailableError(f"topic {topic} not found")
        tps += [TopicPartition(topic, p) for p in sorted(partitions)]
    reader.assign(tps)
    reader.seek_to_beginning(*tps)
    return reader


def admin_client(
    bootstrap: str, client_id: str = "clearing-admin", auth: Auth = ENV, **config: Any
) -> KafkaAdminClient:
    """A kafka-python admin client (`config`: its other settings); close it when done."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=client_id, **kafka_python_auth(auth), **config
    )
