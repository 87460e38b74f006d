"""The clearinghouse's Kafka topics: explicit names under one configurable prefix.

Every topic is created up front by `ensure_topics`: the broker does not create topics on first
use, and a topic created with the wrong partition count cannot be fixed without losing order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clearing.config import DEFAULT_PREFIX, settings
from clearing.core.errors import UnavailableError
from clearing.core.provinces import PROVINCES
from clearing.kafka_clients import ENV, Auth, admin_client

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

    from clearing.core.models.refdata import Catalog, Policy

# Divisible by 1, 2, 3, 4 and 6: the partitions share out evenly over that many workers.
EVENTS_PARTITIONS = 12
REFDATA_PARTITIONS = 1


def prefix_from_env() -> str:
    return settings().topic_prefix


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """The names of every topic under one prefix."""

    prefix: str = DEFAULT_PREFIX

    @classmethod
    def from_env(cls) -> Topics:
        return cls(prefix_from_env())

    @property
    def events(self) -> str:
        """Inbound events, keyed by person_id: one person's events stay in one partition."""
        return f"{self.prefix}.events"

    @property
    def refdata(self) -> str:
        """Compacted: the latest policy/catalog document per `policy:...`/`catalog:...` key."""
        return f"{self.prefix}.refdata"

    @property
    def results(self) -> str:
        """One result per event, keyed like the event."""
        return f"{self.prefix}.results"

    @property
    def deadletter(self) -> str:
        """Raw bytes of events that could not be processed, with reason and source in headers."""
        return f"{self.prefix}.deadletter"

    @property
    def reconcile(self) -> str:
        """Provinces' confirmations and disputes of issued statements (answers go to feeds)."""
        return f"{self.prefix}.reconcile"

    @property
    def clearing(self) -> str:
        """Statements, reconciliation batches and alerts."""
        return f"{self.prefix}.clearing"

    @property
    def flags(self) -> str:
        """Fund-safety monitoring flags (`clearing.core.models.flags`), keyed by flag_id; each
        also goes to the feed of every province it involves."""
        return f"{self.prefix}.flags"

    def feed(self, province: str) -> str:
        """What one province receives: results it pays or is paid for, its statements, alerts."""
        return f"{self.prefix}.feed.{province}"

    def feeds(self) -> list[str]:
        return [self.feed(p) for p in PROVINCES]

    def inbound(self, province: str) -> str:
        """What one province sends (its principal may write only there); the gate stage
        forwards it to `events` with the province as the events' principal."""
        return f"{self.prefix}.inbound.{province}"

    def inbounds(self) -> list[str]:
        return [self.inbound(p) for p in PROVINCES]

    def specs(self) -> list[TopicSpec]:
        return [
            TopicSpec(self.events, EVENTS_PARTITIONS),
            TopicSpec(
                self.refdata,
                REFDATA_PARTITIONS,
                {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"},
            ),
            TopicSpec(self.results, EVENTS_PARTITIONS),
            TopicSpec(self.deadletter, 1),
            TopicSpec(self.reconcile, 1),
            TopicSpec(self.clearing, 1),
            TopicSpec(self.flags, 1),
            *(TopicSpec(name, 1) for name in self.feeds()),
            *(TopicSpec(name, 1) for name in self.inbounds()),
        ]

    def all(self) -> list[str]:
        return [spec.name for spec in self.specs()]


def refdata_key(document: Policy | Catalog) -> str:
    """`policy:<region>:<scheme>:<year>` or `catalog:<province>:<year>` of a parsed document."""
    if hasattr(document, "province"):
        return f"catalog:{document.province}:{document.year}"
    return f"policy:{document.region}:{document.scheme}:{document.year}"


def ensure_topics(bootstrap: str, prefix: str = DEFAULT_PREFIX, auth: Auth = ENV) -> list[str]:
    """Creates whichever of the prefix's topics are missing; returns the names it created.

    Idempotent: existing topics are left as they are (a partition-count mismatch is reported,
    not "fixed", since adding partitions would reorder keyed events).
    """
    topics = Topics(prefix)
    admin = admin_client(bootstrap, auth=auth)
    try:
        existing = set(admin.list_topics())
        missing = {
            spec.name: {
                "num_partitions": spec.partitions,
                "replication_factor": 1,
                "configs": spec.configs,
            }
            for spec in topics.specs()
            if spec.name not in existing
        }
        if missing:
            admin.create_topics(missing, raise_errors=False, wait_for_metadata=True)
        check_partitions(admin, topics)
        return sorted(missing)
    finally:
        admin.close()


def check_partitions(admin: KafkaAdminClient, topics: Topics) -> None:
    wanted = {spec.name: spec.partitions for spec in topics.specs()}
    for description in admin.describe_topics(list(wanted)):
        name = description.get("name") or description.get("topic")
        if description.get("error_code"):
            raise UnavailableError(f"topic {name}: error code {description['error_code']}")
        found = len(description["partitions"])
        if found != wanted[name]:
            raise UnavailableError(f"topic {name} has {found} partitions, expected {wanted[name]}")


def delete_topics(bootstrap: str, prefix: str, auth: Auth = ENV) -> None:
    """Best-effort removal of a prefix's topics (tests and throwaway runs)."""
    admin = admin_client(bootstrap, auth=auth)
    try:
        names = [n for n in admin.list_topics() if n in set(Topics(prefix).all())]
        if names:
            admin.delete_topics(names, raise_errors=False)
    finally:
        admin.close()
