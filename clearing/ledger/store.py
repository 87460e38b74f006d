"""Recording priced and reversed results: one transaction per batch, idempotent per business key.

Each new result gets its row and its postings (TigerBeetle transfers): one per home-side payer
whose share is not zero, from that payer's account of the home province to the treating fund —
the basic fund's `fund_pay_fen` (leg `fund`, `fund:<home>`), the serious-illness insurer's
`critical_pay_fen` (leg `critical`, `critical:<home>`), the medical-assistance fund's
`assistance_pay_fen` (leg `assistance`, `assistance:<home>`) — and one of `due_fen`, their sum,
from the treating fund to the hospital (leg `hospital`); a reversal posts the opposite
direction. The balances they move are updated in
the same transaction. Replaying a result (same key, the same content as its stored row) is a
no-op; the same key with other content raises `LedgerConflict` and nothing of the batch is
written. Results with other statuses are ignored. A result whose period is closed is cleared in
the next open period (see `periods`).

Every result's key is the id's row in `ids` (`clearing.store.schema`): the stream took it in the
same transaction; a result recorded without the stream (a results file) gets a row of its own,
with neither a take nor a claim.

`Ledger` is the database handle; `record_results(results)` at module level uses one shared
handle per URL (default: CLEARING_DB_URL, else the SQLite file), for the stream's executor.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Date, Table, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from clearing.core.periods import CLEARED
from clearing.ledger import balances, periods
from clearing.ledger.errors import LedgerConflict, LedgerInputError
from clearing.ledger.prepayment import Alert, Notice, raise_alerts
from clearing.ledger.records import from_row, to_row
from clearing.store.db import (
    chunks,
    default_url,
    insert_rows,
    make_engine,
    normalize_url,
)
from clearing.store.db import migrate as migrate_schema
from clearing.store.schema import AMOUNTS, SHARES, accounts, ids, postings, results

# What a reversal negates: the amounts and the tier shares.
NEGATED = (*AMOUNTS, "critical_pay_fen", "assistance_pay_fen", "due_fen")

T = TypeVar("T")
ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    """What recording did with one input result (one per input, in input order)."""

    key: str | None
    action: Literal["recorded", "replayed", "ignored"]
    clearing_period: str | None = None
    late: bool = False
    alerts: tuple[Alert, ...] = ()
    notices: tuple[Notice, ...] = ()


IGNORED = Outcome(None, "ignored")


def record(conn: Connection, batch: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    """Records a batch inside the caller's transaction; see the module docstring."""
    outcomes = [IGNORED] * len(batch)
    parsed: list[tuple[int, dict[str, Any]]] = []
    for index, result in enumerate(batch):
        if not isinstance(result, Mapping):
            raise LedgerInputError(f"result #{index + 1} is not a JSON object")
        if result.get("status") in CLEARED:
            parsed.append((index, to_row(result)))
    if not parsed:
        return outcomes

    stored = _stored(conn, {row["result_key"] for _, row in parsed})
    fresh: dict[str, dict[str, Any]] = {}
    decided: list[tuple[int, str, Literal["recorded", "replayed"]]] = []
    conflicts: list[str] = []
    for index, row in parsed:
        key = row["result_key"]
        known = stored.get(key) or fresh.get(key)
        if known is None:
            fresh[key] = row
            decided.append((index, key, "recorded"))
        elif from_row(known) != from_row(row):
            conflicts.append(f"{key}: already recorded with other content")
        else:
            decided.append((index, key, "replayed"))
    conflicts += _reversal_conflicts(conn, fresh)
    if conflicts:
        keys = sorted({c.split(": ", 1)[0] for c in conflicts})
        raise LedgerConflict("; ".join(conflicts), keys)

    cache: dict[str, str] = {}
    for row in fresh.values():
        row["clearing_period"] = periods.clearing_period(conn, row["period"], cache)
    raised, noticed = _post(conn, list(fresh.values()))

    for index, key, action in decided:
        row = stored.get(key) or fresh[key]
        recorded = action == "recorded"
        alerts = tuple(raised.get(key, ())) if recorded else ()
        notices = tuple(noticed.get(key, ())) if recorded else ()
        late = row["clearing_period"] != row["period"]
        outcomes[index] = Outcome(key, action, row["clearing_period"], late, alerts, notices)
    return outcomes


def _stored(conn: Connection, keys: set[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(sorted(keys)):
        for row in conn.execute(select(results).where(results.c.result_key.in_(chunk))):
            found[row.result_key] = dict(row._mapping)
    return found


def _reversal_conflicts(conn: Connection, fresh: dict[str, dict[str, Any]]) -> list[str]:
    """A settlement is reversed at most once, and a reversal negates its original exactly."""
    reversals = [row for row in fresh.values() if row["status"] == "reversed"]
    if not reversals:
        return []
    settlement_ids = sorted({row["settlement_id"] for row in reversals})
    originals: dict[str, Mapping[str, Any]] = {}
    reversed_by: dict[str, str] = {}
    for chunk in chunks(settlement_ids):
        for found in conn.execute(select(results).where(results.c.settlement_id.in_(chunk))):
            if found.status == "priced":
                originals[found.settlement_id] = dict(found._mapping)
            else:
                reversed_by[found.settlement_id] = found.result_key
    for fresh_row in fresh.values():
        if fresh_row["status"] == "priced":
            originals.setdefault(fresh_row["settlement_id"], fresh_row)
    problems = []
    for row in reversals:
        key, settlement_id = row["result_key"], row["settlement_id"]
        earlier = reversed_by.setdefault(settlement_id, key)
        if earlier != key:
            problems.append(f"{key}: settlement {settlement_id} is already reversed by {earlier}")
        original = originals.get(settlement_id)
        if original is not None and (
            any(row[f] != original[f] for f in ("payer", "payee", "hospital_id", "has_tiers"))
            or any(row[a] != -original[a] for a in NEGATED)
        ):
            problems.append(f"{key}: does not negate S:{settlement_id} exactly")
    return problems


def _post(
    conn: Connection, rows: list[dict[str, Any]]
) -> tuple[dict[str, list[Alert]], dict[str, list[Notice]]]:
    """Inserts new results, their postings and balances; returns the alerts and the notices per
    result key."""
    if not rows:
        return {}, {}
    transfers: list[dict[str, Any]] = []
    deltas: dict[balances.Key, list[int]] = defaultdict(lambda: [0, 0])
    moves: list[tuple[str, str, int, str]] = []
    # Every fund and hospital the batch names, and the tier payers that pay in it.
    needed: dict[str, tuple[str, str]] = {
        balances.fund_account(p): ("fund", p) for r in rows for p in (r["payer"], r["payee"])
    }
    hospitals = {r["hospital_id"] for r in rows}
    needed.update((balances.hospital_account(h), ("hospital", h)) for h in hospitals)
    for row in rows:
        due = row["due_fen"]
        if due == 0:
            continue
        key, period = row["result_key"], row["clearing_period"]
        treating = balances.fund_account(row["payee"])
        hospital = balances.hospital_account(row["hospital_id"])
        legs = [
            (leg, balances.payer_account(leg, row["payer"]), treating, row[share])
            for leg, share in SHARES.items()
        ]
        legs.append(("hospital", treating, hospital, due))
        for leg, source, target, amount in legs:
            if amount == 0:
                continue
            debit, credit = (source, target) if amount > 0 else (target, source)
            if leg in SHARES:
                needed.setdefault(source, (leg, row["payer"]))
            transfers.append(
                {
                    "result_key": key,
                    "leg": leg,
                    "debit_account": debit,
                    "credit_account": credit,
                    "amount_fen": abs(amount),
                }
            )
            deltas[(period, debit, leg)][0] += abs(amount)
            deltas[(period, credit, leg)][1] += abs(amount)
        moves += [(key, row["payer"], -due, period), (key, row["payee"], due, period)]
    insert_rows(
        conn,
        accounts,
        [
            {"account_id": account, "kind": kind, "ref": ref}
            for account, (kind, ref) in sorted(needed.items())
        ],
        lambda insert: insert.on_conflict_do_nothing(index_elements=["account_id"]),
    )
    insert_rows(  # the ids the stream took already have their rows
        conn,
        ids,
        [{"key": row["result_key"]} for row in rows],
        lambda insert: insert.on_conflict_do_nothing(index_elements=["key"]),
    )
    _insert(conn, results, rows)
    _insert(conn, postings, transfers)
    balances.apply(conn, deltas)
    raised: dict[str, list[Alert]] = defaultdict(list)
    noticed: dict[str, list[Notice]] = defaultdict(list)
    new_alerts, new_notices = raise_alerts(conn, moves)
    for alert in new_alerts:
        raised[alert.result_key].append(alert)
    for notice in new_notices:
        noticed[notice.result_key].append(notice)
    return raised, noticed


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """`insert_rows`, except on SQLite, where the rows go straight to the driver's executemany
    (SQLAlchemy's per-row parameter processing costs more than SQLite's insert itself).
    Every constraint of the table applies either way."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        insert_rows(conn, table, rows)
        return
    columns = list(rows[0])
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    dated = {c for c in columns if isinstance(table.c[c].type, Date)}
    if dated:
        rows = [{**row, **{c: _sqlite_value(row[c]) for c in dated}} for row in rows]
    conn.exec_driver_sql(sql, [tuple(row[c] for c in columns) for row in rows])


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy stores on SQLite: dates as ISO text; the rest as the driver takes it."""
    return value.isoformat() if isinstance(value, date) else value


def _lost_race(exc: IntegrityError | DataError) -> bool:
    """A unique key taken by a concurrent transaction (PostgreSQL; SQLite writers queue)."""
    return getattr(exc.orig, "sqlstate", None) == "23505"


class Ledger:
    """The ledger database: opened (and migrated to the newest schema) once, then one
    transaction per call."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = normalize_url(url or default_url())
        self.engine = make_engine(self.url)
        if migrate:
            migrate_schema(self.engine)

    def transaction(self) -> AbstractContextManager[Connection]:
        return self.engine.begin()

    def run(self, operation: Callable[[Connection], T]) -> T:
        """Runs `operation` in one transaction, again when it lost a race (deadlock, lock
        timeout, a key another transaction took meanwhile: the retry then sees that key as a
        replay or a conflict). Any other refusal by the database is a LedgerInputError."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return operation(conn)
            except OperationalError:
                if attempt == ATTEMPTS:
                    raise
            except (IntegrityError, DataError) as exc:
                if attempt == ATTEMPTS or not _lost_race(exc):
                    raise LedgerInputError(f"the database refused it: {exc.orig}") from exc
        raise AssertionError("unreachable")

    def record_results(self, batch: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        return self.run(lambda conn: record(conn, batch))

    def running_positions(self, period: str | None = None) -> dict[str, int]:
        """Net position per province in `period`, or over every open period when None."""
        if period is not None:
            periods.check_period(period)
        return self.run(lambda conn: balances.positions(conn, period))

    def close_period(self, period: str, *, force: bool = False) -> tuple[periods.PeriodInfo, bool]:
        return self.run(lambda conn: periods.close_period(conn, period, force=force))

    def issue_period(self, period: str) -> periods.Issued:
        return self.run(lambda conn: periods.issue_period(conn, period))

    def statement(self, period: str) -> periods.Issued:
        return self.run(lambda conn: periods.issued_statement(conn, period))

    def period_status(self, period: str | None = None) -> list[periods.PeriodInfo]:
        return self.run(lambda conn: periods.period_status(conn, period))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


_shared: dict[str, Ledger] = {}
_shared_lock = threading.Lock()


def shared_ledger(url: str | None = None) -> Ledger:
    """One open Ledger per URL in this process (migrated once, thread-safe engine)."""
    url = normalize_url(url or default_url())
    with _shared_lock:
        if url not in _shared:
            _shared[url] = Ledger(url)
        return _shared[url]


def record_results(batch: Sequence[Mapping[str, Any]], *, url: str | None = None) -> list[Outcome]:
    """Records a batch of results (see `record`) through the shared Ledger for `url`."""
    return shared_ledger(url).record_results(batch)


def alerts_of(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The prepayment alerts and notices a batch raised, as JSON-ready dicts, to publish (a
    notice's dict says `"type": "prepayment_notice"`)."""
    out: list[dict[str, Any]] = []
    for outcome in outcomes:
        out += [alert.as_dict() for alert in outcome.alerts]
        out += [notice.as_dict() for notice in outcome.notices]
    return out
