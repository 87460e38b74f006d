"""The one place the stream talks to the ledger (`clearing.ledger`).

The stream's tables live in the ledger's database, on the ledger's engine, so a batch's results,
its pricing state and its ledger postings commit in ONE transaction: there is no moment at which
a result is stored but not in the ledger, or the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine

from clearing.core.jsonish import JSONObject
from clearing.ledger import store


def open_database(url: str | None = None) -> Engine:
    """The ledger's engine, on a database migrated to its newest schema (every table)."""
    return store.shared_ledger(url).engine


def record_results(conn: Connection, results: Sequence[JSONObject]) -> list[JSONObject]:
    """Records priced and reversed results in the caller's transaction; returns the prepayment
    alerts they raised. Idempotent per business key (S:<sid>/R:<rid>)."""
    if not results:
        return []
    return store.alerts_of(store.record(conn, list(results)))

