"""The dashboard's settings: the stream's own (broker, topics, group, database) plus its own
(`CLEARING_DASHBOARD_TTL`, `CLEARING_DASHBOARD_SAMPLE`, `CLEARING_WEB_READ_TIMEOUT`: see
`clearing.config`)."""

from __future__ import annotations

from dataclasses import dataclass

from clearing.config import DEFAULT_WEB_READ_TIMEOUT, settings
from clearing.kafka_clients import ENV, Auth
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
    read_timeout: float = DEFAULT_WEB_READ_TIMEOUT  # seconds a request's body may take to arrive
    auth: Auth = ENV  # the Kafka login (`ENV`: read from the environment)

    @classmethod
    def from_stream(cls, stream: StreamConfig) -> DashboardConfig:
        s = settings()
        return cls(
            bootstrap=stream.bootstrap,
            topics=stream.topics,
            group=stream.price_group,
            db_url=stream.db_url,
            ttl=s.dashboard_ttl,
            sample_every=s.dashboard_sample,
            read_timeout=s.web_read_timeout,
            auth=stream.auth,
        )

    @classmethod
    def from_env(cls) -> DashboardConfig:
        return cls.from_stream(StreamConfig.from_env())
