"""One handler per stage. Each only moves data between Kafka, the database and pure functions.

- `PriceHandler`: events -> results (+ dead letters, + prepayment alerts). One database
  transaction stores the results (keyed by source position), the pricing state and the ledger
  postings; then the produced messages are awaited; only then are the offsets acknowledged.
- `RouteHandler`: results -> the home and hospital provinces' feeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import InterfaceError, OperationalError

from clearing import metrics
from clearing.stream import ledger_link
from clearing.stream.batch import BatchOutput, BatchProcessor, Emit, Record, invalid_emit
from clearing.stream.refdata_feed import RefdataFeed
from clearing.stream.results import recipients
from clearing.topics import Topics

log = logging.getLogger(__name__)

# (topic, key, value, headers) -> a future resolved when the broker has acknowledged it.
Send = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]] | None], Awaitable[Awaitable]]

UNAVAILABLE = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def record_of(event: Any) -> Record:
    """A faust event as a plain record, with the publisher's `line` and `run` headers."""
    message = event.message
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
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
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


def alert_messages(topics: Topics, alerts: Sequence[dict]) -> list[tuple[str, bytes]]:
    """Each prepayment alert goes to the clearing topic and to its province's feed."""
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


def hold(events: Sequence[Any]) -> None:
    """One more reference on each message, so faust cannot commit its offset on its own.

    `take_events` acks a batch when the agent asks for the next one, and also when the agent is
    cancelled mid-batch (worker shutdown). The extra reference is dropped by `release` only
    after the batch is stored and its results acknowledged by the broker; a batch interrupted
    before that stays uncommitted and is consumed again (and replayed from the database).
    """
    for event in events:
        event.message.incref()


def release(events: Sequence[Any]) -> None:
    for event in events:
        event.ack()


@dataclass
class PriceHandler:
    topics: Topics
    refdata: RefdataFeed
    db_url: str | None
    send: Send
    executor: ThreadPoolExecutor

    def __post_init__(self) -> None:
        self._processor: BatchProcessor | None = None

    def processor(self) -> BatchProcessor:
        """Created on first use, in the database thread."""
        if self._processor is None:
            engine = ledger_link.open_database(self.db_url)
            self._processor = BatchProcessor(
                engine, lambda: self.refdata.current, ledger_link.record_results
            )
        return self._processor

    async def handle(self, events: Sequence[Any]) -> None:
        """Prices a batch; whatever fails is retried, so the batch is never skipped."""
        records = [record_of(e) for e in events]
        await self.refdata.caught_up()
        started = time.perf_counter()
        output, alerts = await self._process(records)
        await retry_forever("producing results", lambda: self._emit(output, alerts))
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _process(self, records: list[Record]) -> tuple[BatchOutput, list[dict]]:
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

    def _store(self, records: list[Record]) -> tuple[BatchOutput, list[dict]]:
        output = self.processor().process(records)
        if output.attempts > 1:
            metrics.BATCH_RETRIES.inc(output.attempts - 1)
        return output, output.alerts

    def _store_singly(self, records: list[Record]) -> tuple[BatchOutput, list[dict]]:
        """Isolates the event a batch fails on: it is dead-lettered, the others go on."""
        emits: list[Emit] = []
        alerts: list[dict] = []
        for record in records:
            try:
                single = self.processor().process([record])
                emits.extend(single.emits)
                alerts.extend(single.alerts)
            except UNAVAILABLE:
                raise
            except Exception as exc:
                log.exception("event at %s cannot be processed; dead-lettering it", record.source)
                emits.append(invalid_emit(record, f"could not be processed: {exc!r}"))
        return BatchOutput(emits, alerts), alerts

    async def _emit(self, output: BatchOutput, alerts: list[dict]) -> None:
        pending = []
        now_ms = time.time() * 1000
        for emit in output.emits:
            record = emit.record
            pending.append(await self.send(self.topics.results, record.key, emit.message, None))
            if emit.status == "invalid":
                pending.append(
                    await self.send(
                        self.topics.deadletter, record.key, record.value, deadletter_headers(emit)
                    )
                )
        for topic, body in alert_messages(self.topics, alerts):
            pending.append(await self.send(topic, None, body, None))
        await asyncio.gather(*pending)
        count_batch(output, alerts, now_ms)


def count_batch(output: BatchOutput, alerts: list[dict], now_ms: float) -> None:
    for emit in output.emits:
        metrics.RESULTS.labels(emit.status).inc()
        if emit.replayed:
            metrics.REPLAYED.inc()
        else:
            metrics.EVENTS_IN.labels(emit.event_type or "invalid").inc()
        if emit.status == "invalid":
            metrics.DEAD_LETTERS.inc()
        elif emit.status == "rejected":
            for reason in emit.result.get("reasons", ()):
                metrics.REJECTIONS.labels(reason).inc()
        if emit.record.timestamp_ms:
            metrics.LATENCY.observe(max(0.0, now_ms - emit.record.timestamp_ms) / 1000)
    if alerts:
        metrics.ALERTS.inc(len(alerts))


@dataclass
class RouteHandler:
    topics: Topics
    send: Send

    async def handle(self, events: Sequence[Any]) -> None:
        await retry_forever("routing results", lambda: self._route(events))

    async def _route(self, events: Sequence[Any]) -> None:
        pending = []
        for event in events:
            message = event.message
            try:
                result = orjson.loads(message.value)
            except (orjson.JSONDecodeError, TypeError):
                log.error("result at %s:%s is not JSON", message.partition, message.offset)
                continue
            if not isinstance(result, dict):
                continue
            for province in recipients(result):
                pending.append(
                    await self.send(self.topics.feed(province), message.key, message.value, None)
                )
        await asyncio.gather(*pending)
        metrics.ROUTED.inc(len(pending))
