"""Accepted events onto the inbound events topic, with `clearing publish`'s own producer
(idempotent, acks=all), keyed by person_id so one person's events stay in order, with the
hospital whose token submitted it in the `principal` header (`hospital:<id>`, authority.md).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from clearing.core.authority import hospital
from clearing.kafka_clients import ENV, Auth, producer

if TYPE_CHECKING:
    from kafka import KafkaProducer


class Publisher:
    """One producer per API, created on first use; calls block, so run them in an executor."""

    def __init__(self, bootstrap: str, topic: str, timeout: float, auth: Auth = ENV) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.topic = topic
        self.timeout = timeout
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _kafka(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = producer(self.bootstrap, self.auth)
            return self._producer

    def publish(
        self, person_id: str, raw: bytes, hospital_id: str, province: str | None = None
    ) -> str:
        """Sends the body unchanged and waits for the broker; returns `topic:partition:offset`,
        the source position under which the stream stores the event's result."""
        headers = [("principal", hospital(hospital_id, province).header.encode())]
        future = self._kafka().send(self.topic, key=person_id.encode(), value=raw, headers=headers)
        meta = future.get(timeout=self.timeout)
        return f"{meta.topic}:{meta.partition}:{meta.offset}"

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self.timeout)
                self._producer = None
