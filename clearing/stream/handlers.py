"""One handler per stage. Each only moves data between Kafka, the database and pure functions.

- `PriceHandler`: events -> results (+ dead letters, + prepayment alerts). One database
  transaction stores the results (keyed by source position), the pricing state and the ledger
  postings; then the produced messages are awaited; only then are the offsets acknowledged.
- `RouteHandler`: result -> the home and hospital provinces' feeds. A stage of its own, called
  by the price agent on each result it produces (the feed messages are produced and
  acknowledged with the results, before the offsets are released).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import InterfaceError, OperationalError

from clearing import metrics
from clearing.core.errors import UnavailableError
from clearing.core.jsonish import JSONMapping, JSONObject
from clearing.core.provinces import PROVINCES
from clearing.store.monitor import flag_provinces
from clearing.stream import ledger_link
from clearing.stream.batch import BatchOutput, BatchProcessor, Emit, Record, invalid_emit
from clearing.stream.consumer import Commit
from clearing.stream.refdata_feed import RefdataFeed
from clearing.stream.results import recipients
from clearing.topics import Topics

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

log = logging.getLogger(__name__)

# A message to produce: (topic, partition, key, value, headers).
Message = tuple[str, int, bytes | None, bytes, list[tuple[str, bytes]] | None]
# Messages -> futures resolved when the broker has acknowledged them (in order per partition).
SendMany = Callable[[Sequence[Message]], Awaitable[list[Awaitable[Any]]]]

UNAVAILABLE = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def record_of(message: ConsumerRecord[bytes, bytes]) -> Record:
    """A consumed message as a plain record, with the publisher's `line`, `run` and
    `principal` headers."""
    headers = dict(message.headers or ())
    line = headers.get("line")
    run = headers.get("run")
    try:
        line_no = int(line) if line is not None else None
    except ValueError:
        line_no = None
    timestamp = message.timestamp
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        line=line_no,
        run=run.decode("utf-8", "replace") if isinstance(run, bytes) else run,
        timestamp_ms=int(timestamp) if timestamp else None,
        principal=headers.get("principal"),
    )


def deadletter_headers(emit: Emit) -> list[tuple[str, bytes]]:
    r = emit.record
    headers = [
        ("reason", (emit.reason or "invalid").encode()),
        ("source_topic", r.topic.encode()),
        ("source_partition", str(r.partition).encode()),
        ("source_offset", str(r.offset).encode()),
    ]
    if r.line is not None:
        headers.append(("line", str(r.line).encode()))
    if r.run is not None:
        headers.append(("run", r.run.encode()))
    return headers


def flag_messages(topics: Topics, flags: Sequence[bytes]) -> list[tuple[str, bytes, bytes]]:
    """Each flag goes to the flags topic and to the feed of every province it involves (payer
    or payee of either settlement), no other; keyed by its flag_id."""
    out = []
    for body in flags:
        flag = orjson.loads(body)
        key = str(flag["flag_id"]).encode()
        out.append((topics.flags, key, body))
        out.extend((topics.feed(p), key, body) for p in flag_provinces(flag) if p in PROVINCES)
    return out


def alert_messages(topics: Topics, alerts: Sequence[JSONMapping]) -> list[tuple[str, bytes]]:
    """Each prepayment alert, and each "no prepayment on record" notice (its own `type`,
    `prepayment_notice`, once per province and period), goes to the clearing topic and to its
    province's feed."""
    out = []
    for alert in alerts:
        body = orjson.dumps({"type": "prepayment_alert", **alert})
        out.append((topics.clearing, body))
        province = alert.get("province")
        if isinstance(province, str):
            out.append((topics.feed(province), body))
    return out


async def retry_forever(what: str, attempt: Callable[[], Awaitable[None]]) -> None:
    """Until it succeeds: an offset must not be acknowledged before its results are out."""
    delay = 0.2
    while True:
        try:
            await attempt()
            return
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


@dataclass
class PriceHandler:
    topics: Topics
    refdata: RefdataFeed
    db_url: str | None
    send_many: SendMany
    executor: ThreadPoolExecutor
    route: RouteHandler

    def __post_init__(self) -> None:
        self._processor: BatchProcessor | None = None
        self._settling: asyncio.Future[None] | None = None

    def processor(self) -> BatchProcessor:
        """Created on first use, in the database thread."""
        if self._processor is None:
            engine = ledger_link.open_database(self.db_url)
            self._processor = BatchProcessor(
                engine, lambda: self.refdata.current, ledger_link.record_results
            )
        return self._processor

    async def handle(self, records: Sequence[Record], commit: Commit) -> None:
        """Prices and stores a batch, then hands its messages to the producer and returns; the
        acknowledgements are awaited in the background (while the next batch is priced), and
        only then are the batch's offsets released. A batch's messages are sent only once every
        message of the previous batch is acknowledged, so the order on the topics is kept.
        Whatever fails is retried, so the batch is never skipped."""
        await self.refdata.caught_up()
        started = time.perf_counter()
        output, alerts = await self._process(list(records))
        await self.drain()
        pending = await self._send_all(output, alerts)
        self._settling = asyncio.ensure_future(
            self._settle(records, commit, output, alerts, pending, started)
        )

    async def owned(self, partitions: Sequence[tuple[str, int]], owns: bool) -> None:
        """Partitions assigned (`owns`) or revoked: their persons are read afresh or dropped, in
        the database thread, between two batches."""
        def change() -> None:
            processor = self.processor()
            (processor.assigned if owns else processor.revoked)(partitions)

        await asyncio.get_running_loop().run_in_executor(self.executor, change)

    async def drain(self) -> None:
        """Waits until the previous batch is acknowledged and released."""
        settling, self._settling = self._settling, None
        if settling is not None:
            await settling

    async def _settle(
        self,
        records: Sequence[Record],
        commit: Commit,
        output: BatchOutput,
        alerts: list[JSONObject],
        pending: list[Awaitable[Any]] | None,
        started: float,
    ) -> None:
        now_ms = time.time() * 1000
        try:
            if pending is None:
                raise UnavailableError("the producer refused the batch")
            await asyncio.gather(*pending)
        except Exception:
            log.exception("producing results failed; sending the batch again")
            await retry_forever("producing results", lambda: self._emit(output, alerts))
        count_batch(output, alerts, now_ms)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        await commit(records)

    async def _process(self, records: list[Record]) -> tuple[BatchOutput, list[JSONObject]]:
        """Stores the batch with its ledger postings, retrying while the database is unavailable."""
        loop = asyncio.get_running_loop()
        delay = 0.2
        while True:
            try:
                return await loop.run_in_executor(self.executor, self._store, records)
            except UNAVAILABLE as exc:
                log.error("database unavailable, retrying the batch in %.1fs: %s", delay, exc)
            except Exception:
                log.exception("batch of %d failed; processing its events one by one", len(records))
                try:
                    return await loop.run_in_executor(self.executor, self._store_singly, records)
                except UNAVAILABLE as exc:
                    log.error("database unavailable, retrying in %.1fs: %s", delay, exc)
            metrics.BATCH_RETRIES.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _store(self, records: list[Record]) -> tuple[BatchOutput, list[JSONObject]]:
        output = self.processor().process(records)
        if output.attempts > 1:
            metrics.BATCH_RETRIES.inc(output.attempts - 1)
        return output, output.alerts

    def _store_singly(self, records: list[Record]) -> tuple[BatchOutput, list[JSONObject]]:
        """Isolates the event a batch fails on: it is dead-lettered, the others go on."""
        emits: list[Emit] = []
        alerts: list[JSONObject] = []
        flags: list[bytes] = []
        rules: list[str] = []
        for record in records:
            try:
                single = self.processor().process([record])
                emits.extend(single.emits)
                alerts.extend(single.alerts)
                flags.extend(single.flags)
                rules.extend(single.raised_rules)
            except UNAVAILABLE:
                raise
            except Exception as exc:
                # The type only: an exception's text may quote the event's content.
                log.error(
                    "event at %s cannot be processed (%s); dead-lettering it",
                    record.source,
                    type(exc).__name__,
                )
                emits.append(invalid_emit(record, f"could not be processed ({type(exc).__name__})"))
        return BatchOutput(emits, alerts, flags=flags, raised_rules=rules), alerts

    async def _send_all(
        self, output: BatchOutput, alerts: list[JSONObject]
    ) -> list[Awaitable[Any]] | None:
        """Hands every message of the batch to the producer: each result to the results topic
        and, through the route stage, to its provinces' feeds; dead letters; alerts. The futures
        resolve when the broker has acknowledged them (None: the producer refused one)."""
        topics, route = self.topics, self.route
        messages: list[Message] = []
        add = messages.append
        try:
            # Partitions are given, so the producer hashes no key: a result goes to its event's
            # partition (the results topic has the events topic's partitions and the same
            # keys, so it is the partition the key hashes to), every other topic has one.
            for emit in output.emits:
                record = emit.record
                key, message = record.key, emit.message
                add((topics.results, record.partition, key, message, None))
                for feed in route.feeds(emit.result):
                    add((feed, 0, key, message, None))
                if emit.status == "invalid":
                    add((topics.deadletter, 0, key, record.value, deadletter_headers(emit)))
            for topic, body in alert_messages(topics, alerts):
                add((topic, 0, None, body, None))
            for topic, key, body in flag_messages(topics, output.flags):
                add((topic, 0, key, body, None))
            return await self.send_many(messages)
        except Exception:
            log.exception("handing the batch to the producer failed")
            return None

    async def _emit(self, output: BatchOutput, alerts: list[JSONObject]) -> None:
        pending = await self._send_all(output, alerts)
        if pending is None:
            raise UnavailableError("the producer refused the batch")
        await asyncio.gather(*pending)


def count_batch(output: BatchOutput, alerts: list[JSONObject], now_ms: float) -> None:
    """The batch's counters, added up first: one increment per label, not per event."""
    results: Counter[str] = Counter()
    events_in: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    replayed = dead = 0
    observe = metrics.LATENCY.observe
    for emit in output.emits:
        results[emit.status] += 1
        if emit.replayed:
            replayed += 1
        else:
            events_in[emit.event_type or "invalid"] += 1
        if emit.status == "invalid":
            dead += 1
        elif emit.status == "rejected":
            rejections.update(emit.result.get("reasons", ()))
        if emit.record.timestamp_ms:
            observe(max(0.0, now_ms - emit.record.timestamp_ms) / 1000)
    for status, n in results.items():
        metrics.RESULTS.labels(status).inc(n)
    for kind, n in events_in.items():
        metrics.EVENTS_IN.labels(kind).inc(n)
    for reason, n in rejections.items():
        metrics.REJECTIONS.labels(reason).inc(n)
    if replayed:
        metrics.REPLAYED.inc(replayed)
    if dead:
        metrics.DEAD_LETTERS.inc(dead)
    if alerts:
        metrics.ALERTS.inc(len(alerts))
    for rule, n in Counter(output.raised_rules).items():
        metrics.FLAGS.labels(rule).inc(n)


@dataclass
class RouteHandler:
    """The route stage: which feeds get a result (the payer's and the payee's provinces').

    Called by the price agent for every result it produces, so a result and its feed
    messages leave in one go, with no second agent consuming the results topic again."""

    topics: Topics

    def feeds(self, result: JSONMapping) -> list[str]:
        provinces = recipients(result)
        if provinces:
            metrics.ROUTED.inc(len(provinces))
        return [self.topics.feed(p) for p in provinces]
