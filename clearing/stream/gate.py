"""The gate stage: a province's inbound topic -> the events topic, with the sender named.

The broker's ACLs let province P write only `<prefix>.inbound.<P>` and nobody but the gate,
the API, the workers and the operators write `<prefix>.events`, so the topic an event came in
on proves who sent it: the gate forwards the bytes unchanged, keyed by person as `clearing
publish` keys them (so they land on the partition the publisher would have chosen), with a
`principal: province:<P>` header. Whatever the province put in its own headers is dropped but
`line` and `run` (a province cannot name another principal). Nothing is judged here: bytes
that are not JSON go through too, and the price stage dead-letters them with their reason;
the price stage checks the principal against `authority.md`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from clearing.core.authority import province
from clearing.core.keys import person_key
from clearing.core.provinces import PROVINCES
from clearing.stream.consumer import Commit
from clearing.stream.handlers import Message, SendMany, retry_forever
from clearing.topics import EVENTS_PARTITIONS, Topics

KEPT_HEADERS = frozenset({"line", "run"})


def partition_of(key: bytes, partitions: int = EVENTS_PARTITIONS) -> int:
    """The partition the producers' default partitioner (Kafka's murmur2) gives a key."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class Gate:
    """Inbound records -> messages for the events topic."""

    def __init__(self, topics: Topics) -> None:
        self.events = topics.events
        self.provinces = {topics.inbound(code): code for code in PROVINCES}

    def forward(
        self,
        topic: str,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None,
    ) -> Message:
        """The message for one inbound record. Its key is the event's person_id; a record
        without one keeps its own key, or is keyed by its inbound position."""
        code = self.provinces.get(topic)
        if code is None:
            raise ValueError(f"{topic} is no province's inbound topic")
        raw = value if value is not None else b""
        out_key = person_key(raw) or key or f"{topic}:{offset}".encode()
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
        out_headers = [(k, v) for k, v in pairs if k in KEPT_HEADERS]
        out_headers.append(("principal", province(code).header.encode()))
        return (self.events, partition_of(out_key), out_key, raw, out_headers)


Inbound: TypeAlias = "ConsumerRecord[bytes, bytes]"


@dataclass
class GateHandler:
    """The gate stage fed in batches by the bulk consumer. A batch is committed only once the
    broker has acknowledged (acks=all) every message it forwarded; a failure is retried, never
    skipped. A crash in between forwards the batch again: the copies are priced as
    duplicates."""

    gate: Gate
    send_many: SendMany

    async def handle(self, records: Sequence[Inbound], commit: Commit) -> None:
        messages = [
            self.gate.forward(r.topic, r.offset, r.key, r.value, r.headers) for r in records
        ]

        async def attempt() -> None:
            for future in await self.send_many(messages):
                await future

        await retry_forever(f"forwarding {len(messages)} inbound events", attempt)
        await commit(records)

    async def drain(self) -> None:
        """Nothing is in flight between two batches: `handle` returns once committed."""

    async def owned(self, partitions: Sequence[tuple[str, int]], owns: bool) -> None:
        """The gate keeps no state by partition."""
