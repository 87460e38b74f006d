"""The worker's settings (see `clearing.config` for the variables that set them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clearing.config import DEFAULT_BOOTSTRAP, Settings, settings
from clearing.kafka_auth import KafkaAuth
from clearing.kafka_clients import ENV, Auth
from clearing.topics import Topics

__all__ = ["DEFAULT_BOOTSTRAP", "StreamConfig", "clearing_home"]


def clearing_home() -> Path:
    return settings().home


@dataclass(frozen=True)
class StreamConfig:
    bootstrap: str
    topics: Topics
    db_url: str | None
    web_port: int
    worker_id: str | None
    batch_size: int
    batch_within: float
    home: Path = Path(".")
    web_bind: str = "127.0.0.1"
    client_debug: bool = False
    # The Kafka login of every client of the worker (`ENV`: read from the environment).
    auth: Auth = ENV

    @classmethod
    def from_env(cls) -> StreamConfig:
        return cls.from_settings(settings())

    @classmethod
    def from_settings(cls, s: Settings) -> StreamConfig:
        return cls(
            bootstrap=s.bootstrap,
            topics=Topics(s.topic_prefix),
            db_url=s.db_url,
            web_port=s.web_port,
            worker_id=s.worker_id,
            batch_size=s.batch_size,
            batch_within=s.batch_within,
            home=s.home,
            web_bind=s.web_bind,
            client_debug=s.client_debug,
            auth=KafkaAuth.from_settings(s),
        )

    @property
    def app_id(self) -> str:
        """Also the consumer group: one group per topic prefix."""
        return f"{self.topics.prefix}-stream"

    @property
    def price_group(self) -> str:
        """The price stage's own consumer group (it consumes beneath faust's)."""
        return f"{self.app_id}-price"

    @property
    def gate_group(self) -> str:
        """The gate's own consumer group (it consumes beneath faust's)."""
        return f"{self.app_id}-gate"

    @property
    def datadir(self) -> Path:
        return self.home / "faust" / self.app_id
