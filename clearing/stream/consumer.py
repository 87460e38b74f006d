"""The bulk consumer of the price and gate stages, beneath faust's per-message layer.

faust wraps every message in an `Event`, a task and an `asyncio.wait`: measured on two cores,
its consumer loop alone costs more per event than pricing does. The price stage (the events
topic) and the gate (the 31 inbound topics) therefore read with the aiokafka consumer directly,
each in a consumer group of its own: `getmany` returns what has arrived, at
most `batch_size` records, waiting at most `batch_within` only when nothing has; so a batch is
small at a low rate (latency) and large under load (throughput), with no fixed wait per batch.

Offsets are committed by the handler only after the batch's transaction and the broker's
acknowledgement of everything it produced. A rebalance listener finishes the batch in flight
before a partition is given up, then drops the partition's persons; a newly assigned
partition's persons are read from the store when first met. faust stays the worker's framework
(app, web server, metrics, lifecycle and the low-volume agents).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from clearing.kafka_clients import aiokafka_auth
from clearing.stream.config import StreamConfig

log = logging.getLogger(__name__)

# How long a commit may take before the batch's offsets are left to the next commit (or to a
# replay by the partition's next owner, which finds the stored results).
COMMIT_TIMEOUT = 10.0


class Positioned(Protocol):
    """What a commit needs of a consumed record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


T = TypeVar("T", bound=Positioned)
T_in = TypeVar("T_in", bound=Positioned, contravariant=True)
# Commits the offsets of a batch's records (called once they are stored and acknowledged).
Commit = Callable[[Sequence[Positioned]], Awaitable[None]]


class BatchHandler(Protocol[T_in]):
    """A stage fed in batches: it calls `commit` once a batch is settled."""

    async def handle(self, records: Sequence[T_in], commit: Commit) -> None: ...
    async def drain(self) -> None: ...
    async def owned(self, partitions: Sequence[tuple[str, int]], owns: bool) -> None: ...


class BulkConsumer(Generic[T]):
    """Feeds a stage's handler batches of its topics; commits what the handler has settled."""

    def __init__(
        self,
        name: str,
        config: StreamConfig,
        handler: BatchHandler[T],
        topics: Sequence[str],
        group: str,
        convert: Callable[[ConsumerRecord[bytes, bytes]], T],
    ) -> None:
        self.name = name
        self.config = config
        self.handler = handler
        self.topics = list(topics)
        self.group = group
        self.convert = convert
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None

    def make_consumer(self) -> AIOKafkaConsumer:
        config = self.config
        member = f"{self.group}-{config.worker_id}" if config.worker_id else None
        return AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap,
            client_id=f"{self.group}-{config.worker_id or 'worker'}",
            group_id=self.group,
            group_instance_id=member,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=15_000,
            heartbeat_interval_ms=3_000,
            max_poll_interval_ms=600_000,
            **aiokafka_auth(config.auth),
        )

    async def run(self) -> None:
        consumer = self.consumer = self.make_consumer()
        await consumer.start()
        try:
            consumer.subscribe(self.topics, listener=_Listener(self))
            timeout_ms = max(1, int(self.config.batch_within * 1000))
            while True:
                batches = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self.config.batch_size
                )
                if not batches:
                    continue
                async with self.lock:
                    # A rebalance may have taken a partition since these were fetched.
                    owned = consumer.assignment()
                    records = [
                        self.convert(message)
                        for tp, messages in batches.items()
                        if tp in owned
                        for message in messages
                    ]
                    if records:
                        await self.handler.handle(records, self.commit)
        finally:
            self.consumer = None
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def commit(self, records: Sequence[Positioned]) -> None:
        """Commits the position after each partition's last record, if still owned. A failed
        commit is logged and left: the next commit covers it, or the next owner replays."""
        consumer = self.consumer
        if consumer is None:
            return
        owned = consumer.assignment()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in owned:
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "")
        if not offsets:
            return
        try:
            await asyncio.wait_for(consumer.commit(offsets), COMMIT_TIMEOUT)
        except Exception as exc:
            log.warning("committing %d partitions' offsets failed (%s)", len(offsets),
                        type(exc).__name__)

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        async with self.lock:
            await self.handler.drain()
            await self.handler.owned([(tp.topic, tp.partition) for tp in partitions], False)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        await self.handler.owned([(tp.topic, tp.partition) for tp in partitions], True)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: BulkConsumer[Any]) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("%s: %d partitions revoked", self.stage.name, len(revoked))
        await self.stage.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("%s: %d partitions assigned", self.stage.name, len(assigned))
        await self.stage.assigned(assigned)
