"""The faust app: `faust -A clearing.stream.app worker -l info`.

Raw-bytes topics (events are validated by `clearing.parse`, not by faust), at-least-once
processing made effectively-once by idempotent, source-keyed storage (see README, "State and
crash safety"). No faust tables: the state lives in the database.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import faust

from clearing.api import ApiConfig
from clearing.api import install as install_api
from clearing.dashboard import DashboardConfig
from clearing.dashboard import install as install_dashboard
from clearing.metrics import render
from clearing.stream.config import StreamConfig
from clearing.stream.handlers import PriceHandler, RouteHandler, hold, release
from clearing.stream.refdata_feed import RefdataFeed
from clearing.topics import EVENTS_PARTITIONS


def make_app(config: StreamConfig) -> faust.App:
    config.datadir.parent.mkdir(parents=True, exist_ok=True)
    settings: dict = {
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
        "web_bind": os.environ.get("CLEARING_WEB_BIND") or "127.0.0.1",
        "datadir": str(config.datadir),
    }
    if config.worker_id:
        # Static membership: a restarted worker takes its partitions back at once. Its identity
        # in faust's assignment (the canonical URL) must not depend on the web port, or a
        # restart on another port fails faust's check that the assignment is its own.
        member = f"{config.app_id}-{config.worker_id}"
        settings["consumer_group_instance_id"] = member
        settings["canonical_url"] = f"http://{member}"
    return faust.App(config.app_id, **settings)


config = StreamConfig.from_env()
app = make_app(config)
install_api(app, ApiConfig.from_stream(config))
install_dashboard(app, DashboardConfig.from_stream(config))
topics = config.topics

events_topic = app.topic(topics.events, partitions=EVENTS_PARTITIONS, internal=False)
results_topic = app.topic(topics.results, partitions=EVENTS_PARTITIONS, internal=False)

refdata_feed = RefdataFeed(config.bootstrap, topics.refdata)
db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clearing-db")


async def send(topic: str, key: bytes | None, value: bytes, headers) -> object:
    """Hands a message to the producer; the returned future resolves when it is acknowledged."""
    return await app.producer.send(topic, key, value, None, None, headers)


price_handler = PriceHandler(topics, refdata_feed, config.db_url, send, db_executor)
route_handler = RouteHandler(topics, send)


@app.task
async def quiet_client_logs() -> None:
    """The Kafka client logs every message it sends at DEBUG, and the worker's root logger is at
    DEBUG whatever `-l` says (its handlers filter): building those records costs more than the
    send. Kept at INFO unless `CLEARING_CLIENT_DEBUG` is set."""
    if not os.environ.get("CLEARING_CLIENT_DEBUG"):
        logging.getLogger("aiokafka").setLevel(logging.INFO)


@app.task
async def follow_refdata() -> None:
    await refdata_feed.run()


@app.agent(events_topic)
async def price(stream) -> None:
    """events -> results, dead letters and alerts."""
    async for events in stream.take_events(config.batch_size, within=config.batch_within):
        hold(events)
        await price_handler.handle(events)
        release(events)


@app.agent(results_topic)
async def route(stream) -> None:
    """results -> the payer's and the payee's feeds."""
    async for events in stream.take_events(config.batch_size, within=config.batch_within):
        hold(events)
        await route_handler.handle(events)
        release(events)


@app.page("/metrics")
async def metrics_page(web, request):
    body, content_type = render()
    return web.bytes(body, content_type=content_type)
