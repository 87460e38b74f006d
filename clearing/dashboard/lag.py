"""Consumer lag of the stream's group: committed offsets against the partitions' end offsets.

Asked of the broker (not of this worker's consumer), so every worker reports the whole group,
including partitions assigned to other workers or to none; Prometheus queries take the max per
partition. One ListOffsets and one OffsetFetch per refresh, on a client kept open.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearing.core.jsonish import JSONObject
from clearing.kafka_clients import ENV, Auth, kafka_python_auth

if TYPE_CHECKING:  # kafka-python has no type information: `Any` to mypy
    from kafka import KafkaAdminClient


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    committed: int | None  # None: the group has committed nothing there yet

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


class LagReader:
    """Reads the offsets of `topics` for `group`; `read()` is blocking (run it in a thread)."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], auth: Auth = ENV) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.group = group
        self.topics = topics
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from kafka import KafkaAdminClient
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.group}-dashboard",
                request_timeout_ms=5000,
                **kafka_python_auth(self.auth),
            )
        return self._admin

    def read(self) -> list[PartitionLag]:
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec

        with self._lock:
            try:
                admin = self._client()
                described = admin.describe_topics(self.topics)
                partitions = [
                    TopicPartition(d["name"], p["partition_index"])
                    for d in described
                    if not d.get("error_code")
                    for p in d["partitions"]
                ]
                ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
                committed = admin.list_group_offsets({self.group: partitions}).get(self.group, {})
            except Exception:
                self.close()  # a fresh client next time, after a broker restart
                raise
        out = []
        for tp in sorted(partitions):
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else None
            out.append(PartitionLag(tp.topic, tp.partition, ends[tp].offset, offset))
        return out

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            finally:
                self._admin = None


def as_json(rows: list[PartitionLag]) -> list[JSONObject]:
    return [
        {
            "topic": r.topic,
            "partition": r.partition,
            "end": r.end,
            "committed": r.committed,
            "lag": r.lag,
        }
        for r in rows
    ]
