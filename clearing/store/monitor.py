"""The fund-safety monitor's state in the database, for the stream's price stage.

The rules are `clearing.core.monitoring`'s, unchanged; this module only reads the histories a
batch needs, applies the effects (`Remember`, `Forget`, `Tally`) and stores the flags (`flags`),
all inside the batch's one transaction. A history is kept in the stream's own rows of priced
settlements (`stream_priced`, its monitor columns): `Remember` fills them in the row the batch
writes anyway (`seen_fields`), and `Forget` is that row's `reversed`, which the reversal sets.
A flag is stored with the position of the event that raised it, so a replayed position re-emits
its stored flags and raises none.
Period-close flags (rule 5) are raised from `monitor_counts` when a period closes
(`raise_period_flags`, called by `clearing.ledger.cycle.close`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Connection, Table, select

from clearing.core.models.events import Event
from clearing.core.models.flags import Flag
from clearing.core.models.results import Result
from clearing.core.monitoring import (
    DEFAULT_SETTINGS,
    Forget,
    HospitalCount,
    Items,
    Monitor,
    MonitorSettings,
    PersonHistory,
    Remember,
    Seen,
    monitor_event,
    period_close_flags,
)
from clearing.store import db
from clearing.store.schema import MONITOR_COLUMNS, flags, monitor_counts, stream_priced


def flag_message(flag: Flag) -> bytes:
    """A flag as published and stored: `clearing flags`' line without its newline."""
    return orjson.dumps(flag.model_dump())


def flag_provinces(flag: Mapping[str, Any]) -> tuple[str, ...]:
    """Every province involved: payer or payee of either settlement (or of the hospital's)."""
    return tuple(sorted({*flag.get("payers", ()), *flag.get("payees", ())}))


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def seen_fields(offset: int, seen: Seen, sqlite: bool) -> tuple[Any, ...]:
    """A remembered settlement's values of `MONITOR_COLUMNS`, in their order, as the driver
    stores them (SQLite gets dates as text)."""
    if sqlite:
        admitted: date | str = seen.admitted_on.isoformat()
        discharged: date | str = seen.discharged.isoformat()
    else:
        admitted, discharged = seen.admitted_on, seen.discharged
    return (offset, admitted, discharged, seen.diagnosis, seen.items.blob)


NOT_SEEN: tuple[Any, ...] = (None,) * len(MONITOR_COLUMNS)


def load_histories(conn: Connection, persons: Iterable[str]) -> dict[str, PersonHistory]:
    """The stored histories of these persons, each in processing order: their priced
    settlements remembered and not reversed."""
    t = stream_priced
    found: dict[str, list[Seen]] = {}
    for part in db.chunks(sorted(set(persons))):
        query = (
            select(
                t.c.person_id,
                t.c.settlement_id,
                t.c.kind,
                t.c.admitted_on,
                t.c.discharged,
                t.c.diagnosis,
                t.c["items"],
                t.c.result,
            )
            .where(t.c.person_id.in_(part), t.c["items"].is_not(None), t.c.reversed.is_(False))
            .order_by(t.c.person_id, t.c.source_offset, t.c.settlement_id)
        )
        for person, sid, kind, admitted, discharged, diagnosis, items, raw in conn.execute(query):
            result = orjson.loads(raw)
            found.setdefault(person, []).append(
                Seen(
                    sid,
                    kind,
                    result["hospital_id"],
                    _day(admitted),
                    _day(discharged),
                    diagnosis,
                    Items(bytes(items)),
                    result["period"],
                    result["payer"],
                    result["payee"],
                    int(result["total_fen"]),
                )
            )
    return {person: PersonHistory(person, tuple(seen)) for person, seen in found.items()}


@dataclass
class MonitorPlan:
    """What a batch's monitoring changes: settlements remembered (by id: the offset they were
    read at, and what the rules see), counts, flags by source. A settlement forgotten in the
    batch that remembered it is not remembered at all."""

    remembered: dict[str, tuple[int, Seen]] = field(default_factory=dict)
    tallies: dict[tuple[str, str, str, str], tuple[int, int]] = field(default_factory=dict)
    raised: dict[str, list[bytes]] = field(default_factory=dict)
    flags: dict[str, list[Flag]] = field(default_factory=dict)


@dataclass
class BatchMonitor:
    """The rules over the histories a batch loaded; collects what to write."""

    histories: dict[str, PersonHistory]
    settings: MonitorSettings = DEFAULT_SETTINGS
    plan: MonitorPlan = field(default_factory=MonitorPlan)

    def __post_init__(self) -> None:
        self._monitor = Monitor(self.settings, dict(self.histories))

    def histories_now(self) -> dict[str, PersonHistory]:
        """The persons' histories after what the batch observed (an emptied one is absent)."""
        return self._monitor.histories

    def observe(self, source: str, offset: int, event: Event | None, result: Result) -> None:
        observation = monitor_event(event, result, self._monitor, self.settings)
        if not observation.effects:
            return
        monitor, plan = self._monitor, self.plan
        for effect in observation.effects:
            if isinstance(effect, Remember):
                person_id, seen = effect
                monitor.remember(person_id, seen)
                plan.remembered[seen.settlement_id] = (offset, seen)
            elif isinstance(effect, Forget):
                person_id, settlement_id = effect
                monitor.forget(person_id, settlement_id)
                plan.remembered.pop(settlement_id, None)
            else:  # a Tally: counted in the store, by the batch's upsert
                period, hospital_id, payer, payee, settlements, reversals = effect
                key = (period, hospital_id, payer, payee)
                s, r = plan.tallies.get(key, (0, 0))
                plan.tallies[key] = (s + settlements, r + reversals)
        if observation.flags:
            plan.flags[source] = list(observation.flags)
            plan.raised[source] = [flag_message(f) for f in observation.flags]


def write_monitor(conn: Connection, plan: MonitorPlan) -> None:
    """The batch's counts and flags, in its transaction: one executemany per table (what it
    remembered goes into the priced settlements' rows, `seen_fields`)."""
    add_counts(conn, plan.tallies)
    flag_rows = [
        (flag.flag_id, flag.rule, flag.period, message, source, position)
        for source, raised in plan.flags.items()
        for position, (flag, message) in enumerate(zip(raised, plan.raised[source], strict=True))
    ]
    insert_rows(conn, flags, FLAG_COLUMNS, flag_rows)


FLAG_COLUMNS = ("flag_id", "rule", "period", "flag", "source", "position")
COUNT_KEY = ("period", "hospital_id", "payer", "payee")
COUNT_COLUMNS = (*COUNT_KEY, "settlements", "reversals")
# Adds to a count row, or makes it: concurrent batches never lose an increment.
COUNT_UPSERT = (
    f" ON CONFLICT ({', '.join(COUNT_KEY)}) DO UPDATE SET"
    " settlements = monitor_counts.settlements + excluded.settlements,"
    " reversals = monitor_counts.reversals + excluded.reversals"
)


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    suffix: str = "",
) -> None:
    """One executemany of compact rows (tuples in `columns`' order), straight to the driver:
    the values are already what it stores. `suffix` is appended (an ON CONFLICT clause)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))}){suffix}"
    )
    conn.exec_driver_sql(sql, list(rows))


def add_counts(
    conn: Connection, tallies: Mapping[tuple[str, str, str, str], tuple[int, int]]
) -> None:
    """Adds to the counts: an upsert per row, in key order (so concurrent batches take the
    rows' locks in one order), all in one executemany."""
    rows = [(*key, s, r) for key, (s, r) in sorted(tallies.items())]
    insert_rows(conn, monitor_counts, COUNT_COLUMNS, rows, COUNT_UPSERT)


def load_flags(conn: Connection, sources: Sequence[str]) -> dict[str, list[bytes]]:
    """The stored flags raised at these positions, each source's in the order raised."""
    t = flags
    found: dict[str, list[bytes]] = {}
    for part in db.chunks(list(sources)):
        query = (
            select(t.c.source, t.c.flag)
            .where(t.c.source.in_(part))
            .order_by(t.c.source, t.c.position)
        )
        for source, message in conn.execute(query):
            found.setdefault(source, []).append(bytes(message))
    return found


def period_counts(conn: Connection, period: str) -> dict[str, HospitalCount]:
    """A period's counts by hospital, summed over payers and payees."""
    t = monitor_counts
    counts: dict[str, HospitalCount] = {}
    query = select(t.c.hospital_id, t.c.payer, t.c.payee, t.c.settlements, t.c.reversals).where(
        t.c.period == period
    )
    for hospital_id, payer, payee, s, r in conn.execute(query):
        old = counts.get(hospital_id, HospitalCount())
        counts[hospital_id] = HospitalCount(
            old.settlements + int(s),
            old.reversals + int(r),
            old.payers | {payer},
            old.payees | {payee},
        )
    return counts


def raise_period_flags(
    conn: Connection, period: str, settings: MonitorSettings = DEFAULT_SETTINGS
) -> list[bytes]:
    """Rule 5 for a period that closes: its flags, stored once (`close:<period>`); closing the
    period again returns the stored ones and stores nothing."""
    source = f"close:{period}"
    stored = load_flags(conn, [source]).get(source)
    if stored is not None:
        return stored
    raised = period_close_flags(period_counts(conn, period), period, settings)
    messages = [flag_message(f) for f in raised]
    db.bulk_insert(
        conn,
        flags,
        [
            {
                "flag_id": f.flag_id,
                "rule": f.rule,
                "period": f.period,
                "flag": m,
                "source": source,
                "position": n,
            }
            for n, (f, m) in enumerate(zip(raised, messages, strict=True))
        ],
    )
    return messages
