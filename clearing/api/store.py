"""Reads over the stream's state and the API's claims: what a submission's answer is, and who
may see it.

The stream keys taken ids as `S:<settlement_id>`/`R:<reversal_id>` with the fingerprint and
source position of the event that took them, and stores each event's result by source position.
So the result of an id is `stream_results[stream_ids[key].source]` — the original answer, even
when the same event was later published again (that copy only gets a `duplicate` result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from clearing.api.tables import submissions
from clearing.stream import state


@dataclass(frozen=True, slots=True)
class Claim:
    """A hospital's claim on an id through the API."""

    key: str
    hospital_id: str
    fingerprint: str
    source: str | None
    submitted_ms: int

    def age_seconds(self) -> float:
        return time.time() - self.submitted_ms / 1000


@dataclass(frozen=True, slots=True)
class Answer:
    """`done`: the stored result; `conflict`: the id was taken by other content (the result of
    this event, when stored, is its DUPLICATE_CONFLICT rejection); `pending`: nothing yet."""

    state: Literal["done", "conflict", "pending"]
    result: dict | None = None


def settlement_key(settlement_id: str) -> str:
    return f"S:{settlement_id}"


def reversal_key(reversal_id: str) -> str:
    return f"R:{reversal_id}"


def taken(conn: Connection, key: str) -> tuple[str, str] | None:
    """(fingerprint, source) of the event that took an id in the stream."""
    t = state.ids
    row = conn.execute(select(t.c.fingerprint, t.c.source).where(t.c.key == key)).first()
    return (row[0], row[1]) if row is not None else None


def result_at(conn: Connection, source: str | None) -> dict | None:
    """The stored result of the event at a source position."""
    if source is None:
        return None
    t = state.results
    message = conn.execute(select(t.c.message).where(t.c.source == source)).scalar()
    return orjson.loads(bytes(message)) if message is not None else None


def claim_of(conn: Connection, key: str) -> Claim | None:
    t = submissions
    row = conn.execute(
        select(t.c.key, t.c.hospital_id, t.c.fingerprint, t.c.source, t.c.submitted_ms).where(
            t.c.key == key
        )
    ).first()
    return Claim(*row) if row is not None else None


@dataclass
class Store:
    """Every database call of the API; synchronous, run in the API's executor."""

    engine: Engine

    def answer(self, key: str, fingerprint: str, own_source: str | None) -> Answer:
        with self.engine.connect() as conn:
            took = taken(conn, key)
            if took is not None and took[0] != fingerprint:
                return Answer("conflict", result_at(conn, own_source))
            result = result_at(conn, took[1] if took is not None else own_source)
        return Answer("done", result) if result is not None else Answer("pending")

    def taken(self, key: str) -> tuple[str, dict | None] | None:
        """(fingerprint, original result) of an id the stream has taken."""
        with self.engine.connect() as conn:
            took = taken(conn, key)
            if took is None:
                return None
            return took[0], result_at(conn, took[1])

    def claim(self, key: str, hospital_id: str, fingerprint: str) -> Claim | None:
        """Claims an id for a hospital; returns the earlier claim instead when there is one."""
        row = {
            "key": key,
            "hospital_id": hospital_id,
            "fingerprint": fingerprint,
            "source": None,
            "submitted_ms": int(time.time() * 1000),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(submissions), [row])
            return None
        except IntegrityError:
            with self.engine.connect() as conn:
                earlier = claim_of(conn, key)
            if earlier is None:  # released in between (a failed publication): claim again
                return self.claim(key, hospital_id, fingerprint)
            return earlier

    def published(self, key: str, source: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(submissions).where(submissions.c.key == key).values(source=source))

    def release(self, key: str) -> None:
        """Drops a claim whose event was never confirmed published."""
        t = submissions
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.key == key, t.c.source.is_(None)))

    def claim_of(self, key: str) -> Claim | None:
        with self.engine.connect() as conn:
            return claim_of(conn, key)

    def settlement_owner(self, settlement_id: str) -> str | None:
        """The hospital of a settlement: its API claim, else its priced result; None if unknown.

        A settlement published in a file and rejected carries no hospital in its result, so
        its owner is unknown here.
        """
        with self.engine.connect() as conn:
            claim = claim_of(conn, settlement_key(settlement_id))
            if claim is not None:
                return claim.hospital_id
            t = state.priced
            raw = conn.execute(
                select(t.c.result).where(t.c.settlement_id == settlement_id)
            ).scalar()
        if raw is None:
            return None
        hospital = orjson.loads(bytes(raw)).get("hospital_id")
        return hospital if isinstance(hospital, str) else None
