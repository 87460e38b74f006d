"""The API's settings: the stream's own (broker, topics, database) plus a few of its own
(`CLEARING_API_WAIT`, `CLEARING_API_MAX_BODY`, `CLEARING_WEB_READ_TIMEOUT`: see
`clearing.config`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from clearing.config import DEFAULT_WEB_READ_TIMEOUT, MAX_BODY_BYTES, settings
from clearing.core.refdata import RefData
from clearing.kafka_clients import ENV, Auth
from clearing.stream.config import StreamConfig
from clearing.topics import Topics

__all__ = ["MAX_BODY_BYTES", "ApiConfig"]


@dataclass(frozen=True)
class ApiConfig:
    bootstrap: str
    topics: Topics
    db_url: str | None = None
    wait_seconds: float = 3.0
    poll_seconds: float = 0.05
    max_body_bytes: int = MAX_BODY_BYTES
    publish_timeout: float = 10.0
    # Seconds a request's headers, and then its body, may take to arrive (`clearing.api.http`).
    read_timeout: float = DEFAULT_WEB_READ_TIMEOUT
    # A claimed id whose publication was never confirmed (a crash, a broker error) is
    # published again by a same-content retry after this long; the stream drops the copy.
    republish_after: float = 15.0
    # The reference data trial pricing uses (the worker's, as its refdata feed holds it now);
    # without it `POST /v1/settlements/trial` answers 503.
    refdata: Callable[[], RefData] | None = field(default=None, compare=False, repr=False)
    auth: Auth = ENV  # the Kafka login (`ENV`: read from the environment)

    @classmethod
    def from_stream(
        cls, stream: StreamConfig, refdata: Callable[[], RefData] | None = None
    ) -> ApiConfig:
        s = settings()
        return cls(
            bootstrap=stream.bootstrap,
            topics=stream.topics,
            db_url=stream.db_url,
            wait_seconds=s.api_wait,
            max_body_bytes=s.api_max_body,
            read_timeout=s.web_read_timeout,
            refdata=refdata,
            auth=stream.auth,
        )

    @classmethod
    def from_env(cls) -> ApiConfig:
        return cls.from_stream(StreamConfig.from_env())
