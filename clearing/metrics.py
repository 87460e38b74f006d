"""Prometheus metrics of the stream, served at `/metrics` on the worker's web server."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

EVENTS_IN = Counter(
    "clearing_events_in_total",
    "Events consumed, by event type ('invalid' when unparsable)",
    ["type"],
)
RESULTS = Counter("clearing_results_total", "Results produced, by status", ["status"])
REJECTIONS = Counter(
    "clearing_rejections_total", "Rejection reasons of rejected results", ["reason"]
)
DEAD_LETTERS = Counter("clearing_dead_letters_total", "Events sent to the dead-letter topic")
REPLAYED = Counter(
    "clearing_results_replayed_total", "Stored results re-emitted for a replayed offset"
)
BATCH_RETRIES = Counter(
    "clearing_batch_retries_total", "Batches redone after a conflict or a database error"
)
ROUTED = Counter("clearing_feed_messages_total", "Messages delivered to province feeds")
ALERTS = Counter("clearing_prepayment_alerts_total", "Prepayment alerts raised")
FLAGS = Counter("clearing_flags_total", "Fund-safety monitoring flags raised, by rule", ["rule"])
LATENCY = Histogram(
    "clearing_result_latency_seconds",
    "From the event's submission (its Kafka timestamp) to its result being produced",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
BATCH_SIZE = Histogram(
    "clearing_batch_size",
    "Events per processed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_SECONDS = Histogram(
    "clearing_batch_seconds",
    "Time to price and store one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type (without the charset, which aiohttp adds)."""
    content_type = ";".join(p for p in CONTENT_TYPE_LATEST.split(";") if "charset" not in p)
    return generate_latest(), content_type.strip()
