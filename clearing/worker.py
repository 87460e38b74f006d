"""The faust app: `faust -A clearing.worker worker -l info`.

Raw-bytes topics (events are validated by `clearing.core.parse`, not by faust), at-least-once
processing made effectively-once by idempotent, source-keyed storage (see README, "State and
crash safety"). No faust tables: the state lives in the database.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import faust

from clearing.api import ApiConfig
from clearing.api import install as install_api
from clearing.config import Settings, private_state
from clearing.dashboard import DashboardConfig
from clearing.dashboard import install as install_dashboard
from clearing.kafka_auth import faust_settings
from clearing.kafka_clients import client_auth
from clearing.ledger.store import Ledger
from clearing.stream import reconcile
from clearing.stream.config import StreamConfig
from clearing.stream.consumer import BulkConsumer
from clearing.stream.gate import Gate, GateHandler
from clearing.stream.handlers import (
    Message,
    PriceHandler,
    RouteHandler,
    record_of,
    retry_forever,
)
from clearing.stream.refdata_feed import RefdataFeed

if TYPE_CHECKING:
    from faust.transport.drivers.aiokafka import Producer


def follow_parent(parent_pid: int | None) -> None:
    """A worker started by `clearing run` or the demo asks the kernel for SIGTERM when that
    process dies, however it dies (SIGKILL too), and stops at once if it is gone already: no
    worker is left orphaned. Linux only (prctl); elsewhere the parent's own stopping holds."""
    if parent_pid is None or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


FAUST_PAGES = (
    "web_router_enabled",
    "web_tables_enabled",
    "web_stats_enabled",
    "web_graph_enabled",
    "web_metrics_enabled",
)


def make_app(config: StreamConfig) -> faust.App:
    private_state()
    follow_parent(Settings.from_env().parent_pid)
    config.datadir.parent.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "broker": f"kafka://{config.bootstrap}",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "producer_acks": -1,
        "producer_linger_ms": 5,
        "producer_max_batch_size": 512 * 1024,
        "broker_max_poll_records": 2000,
        "broker_session_timeout": 15.0,
        "broker_heartbeat_interval": 3.0,
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": 4 * config.batch_size,
        # Do not wait on shutdown for in-flight events to be acked: an unfinished batch is
        # simply consumed again after the restart (and replayed from the database).
        "stream_wait_empty": False,
        "web_enabled": config.web_port != 0,
        "web_port": config.web_port or 6066,
        "web_host": "127.0.0.1",
        "web_bind": config.web_bind,
        "datadir": str(config.datadir),
        # SASL for faust's consumer, producer and admin client alike (none without a login).
        **faust_settings(client_auth(config.auth)),
    }
    if config.worker_id:
        # Static membership: a restarted worker takes its partitions back at once. Its identity
        # in faust's assignment (the canonical URL) must not depend on the web port, or a
        # restart on another port fails faust's check that the assignment is its own.
        member = f"{config.app_id}-{config.worker_id}"
        settings["consumer_group_instance_id"] = member
        settings["canonical_url"] = f"http://{member}"
    app = faust.App(config.app_id, **settings)
    # None of faust's own pages: they would answer anyone on the hospitals' port with the
    # worker's internals (its peers' URLs, sensors, partitions, service graph). The port serves
    # the API, the dashboard and `/metrics` only, each behind its credential. Set on the
    # settings object, since faust's APP_WEB_*_ENABLED variables override its constructor's.
    for page in FAUST_PAGES:
        setattr(app.conf, page, False)
    return app


config = StreamConfig.from_env()
app = make_app(config)
topics = config.topics
refdata_feed = RefdataFeed(config.bootstrap, topics.refdata, config.auth)
# Trial pricing prices with the reference data this worker holds now.
install_api(app, ApiConfig.from_stream(config, lambda: refdata_feed.current))
install_dashboard(app, DashboardConfig.from_stream(config))

db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clearing-db")


async def send_many(messages: Sequence[Message]) -> list[Awaitable[Any]]:
    """Hands messages to the producer as one record batch per topic and partition (in their
    order), instead of one `send` per message: no per-message future, partitioner or signal.
    The returned futures resolve when the broker has acknowledged each batch."""
    # The aiokafka producer faust started; `app.producer` is typed as the transport-agnostic base.
    producer = cast("Producer", app.producer)._ensure_producer()
    builders: dict[tuple[str, int], Any] = {}
    futures: list[Awaitable[Any]] = []
    for topic, partition, key, value, headers in messages:
        builder = builders.get((topic, partition))
        if builder is None:
            builder = builders[(topic, partition)] = producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
            futures.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[(topic, partition)] = producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                raise ValueError(f"a message for {topic} is larger than a producer batch")
    for (topic, partition), builder in builders.items():
        futures.append(await producer.send_batch(builder, topic, partition=partition))
    return futures


route_handler = RouteHandler(topics)
price_handler = PriceHandler(
    topics, refdata_feed, config.db_url, send_many, db_executor, route_handler
)


# faust's `App.task` is typed as returning a union that is not always a decorator.
@app.task  # type: ignore[untyped-decorator]
async def quiet_client_logs() -> None:
    """The Kafka client logs every message it sends at DEBUG, and the worker's root logger is at
    DEBUG whatever `-l` says (its handlers filter): building those records costs more than the
    send. Kept at INFO unless `CLEARING_CLIENT_DEBUG` is set."""
    if not config.client_debug:
        logging.getLogger("aiokafka").setLevel(logging.INFO)


@app.task  # type: ignore[untyped-decorator]
async def tune_gc() -> None:
    """Fewer garbage collections: a batch allocates many short-lived objects (parsed events,
    result dicts, rows, producer futures), and with the default gen-0 threshold of 700 the
    collector ran thousands of times per batch over the worker's long-lived imports.
    Everything loaded at start-up is frozen out of the collector's reach."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@app.task  # type: ignore[untyped-decorator]
async def follow_refdata() -> None:
    await refdata_feed.run()


price_consumer = BulkConsumer(
    "price stage", config, price_handler, [topics.events], config.price_group, record_of
)


@app.task  # type: ignore[untyped-decorator]
async def price() -> None:
    """events -> results, their provinces' feeds (the route stage), dead letters and alerts.

    Consumed in bulk beneath faust's per-message layer (`clearing.stream.consumer`): each batch
    is committed by the handler once everything it produced is acknowledged; that wait overlaps
    the pricing of the next batch."""
    await price_consumer.run()


gate_consumer = BulkConsumer(
    "gate",
    config,
    GateHandler(Gate(topics), send_many),
    topics.inbounds(),
    config.gate_group,
    lambda message: message,
)


@app.task  # type: ignore[untyped-decorator]
async def gate() -> None:
    """The 31 provinces' inbound topics -> the events topic, each event with its sender in a
    `principal` header (`clearing.stream.gate`), in bulk as the price stage consumes."""
    await gate_consumer.run()


reconcile_topic = app.topic(topics.reconcile, internal=False)


@functools.cache
def reconcile_ledger() -> Ledger:
    return Ledger(config.db_url)


@app.agent(reconcile_topic)
async def reconcile_requests(stream: faust.StreamT[bytes]) -> None:
    """Provinces' confirmations and disputes -> the ledger's answers, on the province's feed.

    Each request is answered (or dead-lettered) and acknowledged by the broker before the next;
    a failure is retried, never skipped, since faust would move past a request that raised."""
    loop = asyncio.get_running_loop()
    async for event in stream.events():
        message = event.message
        source = f"{message.topic}:{message.partition}:{message.offset}"
        raw = message.value or b""

        async def attempt(raw: bytes = raw, source: str = source) -> None:
            produced = await loop.run_in_executor(
                db_executor, reconcile.messages_for, topics, reconcile_ledger, raw, source
            )
            for future in await send_many(produced):
                await future

        await retry_forever(f"reconciliation request {source}", attempt)
