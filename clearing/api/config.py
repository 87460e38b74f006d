"""The API's settings: the stream's own (broker, topics, database) plus a few of its own.

| variable | default |
|---|---|
| CLEARING_API_WAIT | 3 (seconds a submission waits for its result before answering 202) |
| CLEARING_API_MAX_BODY | 4194304 (bytes; larger bodies get 413) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from clearing.stream.config import StreamConfig
from clearing.topics import Topics

MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ApiConfig:
    bootstrap: str
    topics: Topics
    db_url: str | None = None
    wait_seconds: float = 3.0
    poll_seconds: float = 0.05
    max_body_bytes: int = MAX_BODY_BYTES
    publish_timeout: float = 10.0
    # A claimed id whose publication was never confirmed (a crash, a broker error) is
    # published again by a same-content retry after this long; the stream drops the copy.
    republish_after: float = 15.0

    @classmethod
    def from_stream(cls, stream: StreamConfig) -> ApiConfig:
        env = os.environ
        return cls(
            bootstrap=stream.bootstrap,
            topics=stream.topics,
            db_url=stream.db_url,
            wait_seconds=float(env.get("CLEARING_API_WAIT") or 3.0),
            max_body_bytes=int(env.get("CLEARING_API_MAX_BODY") or MAX_BODY_BYTES),
        )

    @classmethod
    def from_env(cls) -> ApiConfig:
        return cls.from_stream(StreamConfig.from_env())
