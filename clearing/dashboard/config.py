"""The dashboard's settings: the stream's own (broker, topics, group, database) plus two.

| variable | default |
|---|---|
| CLEARING_DASHBOARD_TTL | 5 (seconds a ledger or Kafka figure is reused before it is asked again) |
| CLEARING_DASHBOARD_SAMPLE | 5 (seconds between two points of the live charts) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from clearing.stream.config import StreamConfig
from clearing.topics import Topics


@dataclass(frozen=True)
class DashboardConfig:
    bootstrap: str
    topics: Topics
    group: str
    db_url: str | None = None
    ttl: float = 5.0
    sample_every: float = 5.0

    @classmethod
    def from_stream(cls, stream: StreamConfig) -> DashboardConfig:
        env = os.environ
        return cls(
            bootstrap=stream.bootstrap,
            topics=stream.topics,
            group=stream.app_id,
            db_url=stream.db_url,
            ttl=float(env.get("CLEARING_DASHBOARD_TTL") or 5.0),
            sample_every=float(env.get("CLEARING_DASHBOARD_SAMPLE") or 5.0),
        )

    @classmethod
    def from_env(cls) -> DashboardConfig:
        return cls.from_stream(StreamConfig.from_env())
