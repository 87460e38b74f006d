"""Reference data from the compacted refdata topic, held in memory by every worker.

Each worker reads the whole topic (no consumer group: every worker needs every document), to
its end before the first batch, then keeps following it (a new document is in force within a
fetch interval, about 0.1 s). `clearing run` publishes the reference data before it starts the
workers, so the whole run prices with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from clearing.core.models.refdata import Catalog, Policy
from clearing.core.refdata import RefData, RefDataError, parse_document
from clearing.kafka_clients import ENV, Auth, aiokafka_auth
from clearing.topics import REFDATA_PARTITIONS

if TYPE_CHECKING:  # aiokafka has no type information: these are `Any` to mypy
    from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

log = logging.getLogger(__name__)


def build_refdata(documents: Iterable[Policy | Catalog]) -> RefData:
    refdata = RefData()
    for doc in documents:
        if isinstance(doc, Catalog):
            refdata.add_catalog(doc)
        else:
            refdata.add_policy(doc)
    return refdata


class RefdataFeed:
    """The latest document per key; `current` is swapped whole, never mutated in place."""

    def __init__(self, bootstrap: str, topic: str, auth: Auth = ENV) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.topic = topic
        self.current = RefData()
        self.documents: dict[bytes, Policy | Catalog] = {}
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._moved = asyncio.Condition()

    async def run(self) -> None:
        """Follow the topic forever (a worker task)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="clearing-refdata",
            fetch_max_wait_ms=100,
            **aiokafka_auth(self.auth),
        )
        await consumer.start()
        try:
            while self.topic not in await consumer.topics():
                log.warning("refdata topic %s not found; waiting", self.topic)
                await asyncio.sleep(1)
            self._partitions = [TopicPartition(self.topic, p) for p in range(REFDATA_PARTITIONS)]
            consumer.assign(self._partitions)
            await consumer.seek_to_beginning(*self._partitions)
            self._consumer = consumer
            end = await consumer.end_offsets(self._partitions)
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                if any(self.apply(records) for records in batch.values()):
                    self.current = build_refdata(self.documents.values())
                if not self.ready.is_set() and await self._reached(end):
                    self.ready.set()
                    log.info("refdata: %d documents loaded", len(self.documents))
                async with self._moved:
                    self._moved.notify_all()
        finally:
            self._consumer = None
            await consumer.stop()

    def apply(self, records: Iterable[ConsumerRecord]) -> bool:
        """Applies documents (a null value deletes its key); returns whether anything changed."""
        changed = False
        for record in records:
            if record.value is None:
                changed |= self.documents.pop(record.key, None) is not None
                continue
            try:
                doc = parse_document(record.value, f"{self.topic}@{record.offset}")
            except RefDataError as exc:
                log.error("refdata document skipped: %s", exc)
                continue
            self.documents[record.key or b""] = doc
            changed = True
        return changed

    async def _reached(self, end: dict[TopicPartition, int]) -> bool:
        consumer = self._consumer
        if consumer is None:
            return False
        for tp in end:
            if await consumer.position(tp) < end[tp]:
                return False
        return True

    async def caught_up(self, timeout: float = 30.0) -> None:
        """Waits for the initial load, then for any document the follower has seen announced.

        The check uses the high watermark of the latest fetch (no broker round trip per batch):
        a document already fetched-about but not yet applied is waited for.
        """
        await self.ready.wait()
        consumer = self._consumer
        if consumer is None:
            return
        end: dict[TopicPartition, int] = {}
        for tp in self._partitions:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                end[tp] = highwater
        if not end or await self._reached(end):
            return

        async def wait() -> None:
            while not await self._reached(end):
                async with self._moved:
                    await self._moved.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            log.warning("refdata not caught up after %.0fs; pricing with what is loaded", timeout)
