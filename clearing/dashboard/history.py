"""A short in-memory history for the page's live charts: throughput, latency, lag.

Every few seconds a sample is taken of this worker's own counters (events in, latency
histogram, from `clearing.metrics`) and of the group's offsets (from the broker, for every
worker at once). Rates and percentiles are computed between consecutive samples, as
Prometheus' `rate()` and `histogram_quantile()` would.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.samples import Sample as MetricSample

from clearing import metrics
from clearing.dashboard.lag import PartitionLag

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Sample:
    at: float  # wall-clock seconds
    events_local: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count)
    offsets_at: float | None = None  # when the offsets below were read
    events_end: int | None = None  # sum over the events topic's partitions
    events_committed: int | None = None
    lag: int | None = None
    results: dict[str, float] = field(default_factory=dict)


def _samples(metric: MetricWrapperBase, suffix: str = "") -> list[MetricSample]:
    return [s for family in metric.collect() for s in family.samples if s.name.endswith(suffix)]


def take(
    offsets: Sequence[PartitionLag] | None, offsets_at: float | None, events_topic: str
) -> Sample:
    """One sample of the local registry and, when known, of the group's offsets."""
    events = sum(s.value for s in _samples(metrics.EVENTS_IN, "_total"))
    results: dict[str, float] = {}
    for s in _samples(metrics.RESULTS, "_total"):
        results[s.labels["status"]] = results.get(s.labels["status"], 0.0) + s.value
    buckets = tuple((float(s.labels["le"]), s.value) for s in _samples(metrics.LATENCY, "_bucket"))
    if offsets is None:
        return Sample(time.time(), events, buckets, results=results)
    mine = [o for o in offsets if o.topic == events_topic]
    return Sample(
        time.time(),
        events,
        buckets,
        offsets_at=offsets_at,
        events_end=sum(o.end for o in mine),
        events_committed=sum(o.committed or 0 for o in mine),
        lag=sum(o.lag for o in mine),
        results=results,
    )


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """`histogram_quantile` over cumulative (bound, count) pairs; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # the highest finite bound, as Prometheus answers
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


class History:
    def __init__(self, keep: int = 180) -> None:
        self.samples: deque[Sample] = deque(maxlen=keep)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def series(self) -> list[dict[str, object]]:
        """One point per interval between consecutive samples."""
        points = []
        pairs = zip(list(self.samples), list(self.samples)[1:], strict=False)
        for a, b in pairs:
            dt = b.at - a.at
            if dt <= 0:
                continue
            delta = [
                (bound, max(0.0, cb - ca))
                for (bound, cb), (_, ca) in zip(b.buckets, a.buckets, strict=False)
            ]
            point: dict[str, object] = {
                "t": int(b.at * 1000),
                "events_local_per_s": round(max(0.0, b.events_local - a.events_local) / dt, 2),
                "lag": b.lag,
            }
            for q in QUANTILES:
                value = quantile(q, delta)
                point[f"p{round(q * 100)}_s"] = None if value is None else round(value, 4)
            odt = (b.offsets_at or 0) - (a.offsets_at or 0)
            if a.events_end is not None and b.events_end is not None and odt > 0:
                point["events_in_per_s"] = round(max(0, b.events_end - a.events_end) / odt, 2)
                done = max(0, (b.events_committed or 0) - (a.events_committed or 0))
                point["events_done_per_s"] = round(done / odt, 2)
            else:
                point["events_in_per_s"] = point["events_done_per_s"] = None
            points.append(point)
        return points
