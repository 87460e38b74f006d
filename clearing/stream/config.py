"""The worker's settings, all from the environment (so `faust -A clearing.worker` needs none).

| variable | default |
|---|---|
| KAFKA_BOOTSTRAP | 127.0.0.1:9092 |
| CLEARING_TOPIC_PREFIX | clearing |
| CLEARING_DB_URL | sqlite under CLEARING_HOME (the ledger's database) |
| CLEARING_WEB_PORT | 6066 (`0` turns the web server off) |
| CLEARING_WORKER_ID | none; when set, static group membership (a restarted worker takes its
  partitions back at once instead of after the session timeout) |
| CLEARING_BATCH_SIZE, CLEARING_BATCH_WITHIN | 1000 events, 0.05 s |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clearing.topics import Topics, prefix_from_env

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def clearing_home() -> Path:
    return Path(os.environ.get("CLEARING_HOME") or Path.home() / ".local/share/clearing")


@dataclass(frozen=True)
class StreamConfig:
    bootstrap: str
    topics: Topics
    db_url: str | None
    web_port: int
    worker_id: str | None
    batch_size: int
    batch_within: float

    @classmethod
    def from_env(cls) -> StreamConfig:
        env = os.environ
        return cls(
            bootstrap=env.get("KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP,
            topics=Topics(prefix_from_env()),
            db_url=env.get("CLEARING_DB_URL") or None,
            web_port=int(env.get("CLEARING_WEB_PORT") or 6066),
            worker_id=env.get("CLEARING_WORKER_ID") or None,
            batch_size=int(env.get("CLEARING_BATCH_SIZE") or 1000),
            batch_within=float(env.get("CLEARING_BATCH_WITHIN") or 0.05),
        )

    @property
    def app_id(self) -> str:
        """Also the consumer group: one group per topic prefix."""
        return f"{self.topics.prefix}-stream"

    @property
    def datadir(self) -> Path:
        return clearing_home() / "faust" / self.app_id
