"""The Kafka clients of every stage and tool, made in one place so they connect alike."""

from __future__ import annotations

import functools
import sys
import time
import warnings
from typing import TYPE_CHECKING

from clearing.core.errors import UnavailableError

if TYPE_CHECKING:  # kafka-python has no type information: these are `Any` to mypy
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer


def producer(bootstrap: str) -> KafkaProducer:
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
    bootstrap: str, topics: str | list[str], client_id: str = "clearing-reader"
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


def admin_client(bootstrap: str, client_id: str = "clearing-admin") -> KafkaAdminClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
