"""Reads and writes of the API in the one `ids` table, and reads over the stream's state: what a
submission's answer is, and who may see it.

Each id has one row in `ids` (`clearing.store.schema`), keyed `S:<settlement_id>` or
`R:<reversal_id>`. The API writes only the row's claim part (hospital, time, the fingerprint of
what the hospital submitted, and where the API published it); the stream writes only its take
part (the fingerprint and source position of the event that took the id), and prices by the
take alone. So for one id:

| state | claim | take | a new submission of the id |
|---|---|---|---|
| unknown | - | - | claimed, published, awaited (201 / 202) |
| claimed | hospital, hash, source | - | same hospital and content: as the first (200 / 202) |
| taken | maybe | hash, source | same content: the original result (200) |

Any other submission of a known id is 409. The claim's source is NULL until the broker has
acknowledged the claimed event.

The result of an id is `stream_results[take source]`: the original answer, even when the same
event was later published again (that copy only gets a `duplicate` result). When another way in
(a province's feed) took the id first with other content, the claim's own event gets its
DUPLICATE_CONFLICT rejection, stored at the claim's source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import orjson
from sqlalchemy import Connection, Engine, delete, exists, select, update

from clearing.core.jsonish import JSONObject
from clearing.core.keys import settlement_key
from clearing.store.db import dialect_insert
from clearing.store.schema import ids, stream_priced, stream_results
from clearing.store.schema import results as ledger_results


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
    result: JSONObject | None = None


def taken(conn: Connection, key: str) -> tuple[str, str] | None:
    """(fingerprint, source) of the event that took an id in the stream."""
    query = select(ids.c.content_hash, ids.c.source).where(
        ids.c.key == key, ids.c.source.is_not(None)
    )
    row = conn.execute(query).first()
    return (row[0], row[1]) if row is not None else None


def result_at(conn: Connection, source: str | None) -> JSONObject | None:
    """The stored result of the event at a source position."""
    if source is None:
        return None
    t = stream_results
    message = conn.execute(select(t.c.message).where(t.c.source == source)).scalar()
    return orjson.loads(bytes(message)) if message is not None else None


def is_refused(result: JSONObject | None) -> bool:
    """Whether a stored result refuses its event for its sender (`NOT_AUTHORIZED`)."""
    return result is not None and "NOT_AUTHORIZED" in (result.get("reasons") or ())


def claim_of(conn: Connection, key: str) -> Claim | None:
    t = ids
    row = conn.execute(
        select(t.c.key, t.c.hospital_id, t.c.claim_hash, t.c.claim_source, t.c.claimed_ms).where(
            t.c.key == key, t.c.hospital_id.is_not(None)
        )
    ).first()
    return Claim(*row) if row is not None else None


@dataclass
class Store:
    """Every database call of the API; synchronous, run in the API's executor. Each write is one
    statement (the engine autocommits on SQLite, so reads never wait behind a worker's batch)."""

    engine: Engine

    def answer(self, key: str, fingerprint: str, own_source: str | None) -> Answer:
        with self.engine.connect() as conn:
            took = taken(conn, key)
            if took is not None and took[0] != fingerprint:
                return Answer("conflict", result_at(conn, own_source))
            result = result_at(conn, took[1] if took is not None else own_source)
        return Answer("done", result) if result is not None else Answer("pending")

    def taken(self, key: str) -> tuple[str, JSONObject | None] | None:
        """(fingerprint, original result) of an id the stream has taken."""
        with self.engine.connect() as conn:
            took = taken(conn, key)
            if took is None:
                return None
            return took[0], result_at(conn, took[1])

    def claim(self, key: str, hospital_id: str, fingerprint: str) -> Claim | None:
        """Claims an id for a hospital; returns the earlier claim instead when there is one.

        The claim goes on the id's row, new or not (the stream may have taken the id since the
        caller looked): one INSERT ... ON CONFLICT that writes only where there is no claim yet.
        """
        claim = {
            "hospital_id": hospital_id,
            "claimed_ms": int(time.time() * 1000),
            "claim_hash": fingerprint,
        }
        with self.engine.begin() as conn:
            statement = dialect_insert(conn, ids).values(key=key, **claim)
            returning = statement.on_conflict_do_update(
                index_elements=["key"], set_=claim, where=ids.c.hospital_id.is_(None)
            ).returning(ids.c.key)
            if conn.execute(returning).first() is not None:
                return None
        with self.engine.connect() as conn:
            earlier = claim_of(conn, key)
            refused = earlier is not None and is_refused(result_at(conn, earlier.source))
        if earlier is None:  # released in between (a failed publication): claim again
            return self.claim(key, hospital_id, fingerprint)
        if refused and self._take_over(key, earlier, claim):
            return None
        return earlier

    def _take_over(self, key: str, earlier: Claim, claim: JSONObject) -> bool:
        """A claim whose event the stream refused (NOT_AUTHORIZED) took no id (authority.md):
        the id's rightful sender claims it over that one. True if this claim is now on it."""
        t = ids
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t)
                .where(t.c.key == key, t.c.claim_source == earlier.source, t.c.source.is_(None))
                .values(**claim, claim_source=None)
            )
            return bool(done.rowcount)

    def published(self, key: str, source: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(ids)
                .where(ids.c.key == key, ids.c.hospital_id.is_not(None))
                .values(claim_source=source)
            )

    def release(self, key: str) -> None:
        """Drops a claim whose event was never confirmed published; the row goes too when
        nothing else is on it (no take, no ledger result)."""
        t = ids
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.key == key, t.c.hospital_id.is_not(None), t.c.claim_source.is_(None))
                .values(hospital_id=None, claimed_ms=None, claim_hash=None)
            )
        with self.engine.begin() as conn:
            recorded = exists().where(ledger_results.c.result_key == t.c.key)
            conn.execute(
                delete(t).where(
                    t.c.key == key, t.c.source.is_(None), t.c.hospital_id.is_(None), ~recorded
                )
            )

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
            t = stream_priced
            raw = conn.execute(
                select(t.c.result).where(t.c.settlement_id == settlement_id)
            ).scalar()
        if raw is None:
            return None
        hospital = orjson.loads(bytes(raw)).get("hospital_id")
        return hospital if isinstance(hospital, str) else None
