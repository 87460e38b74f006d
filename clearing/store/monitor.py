"""The fund-safety monitor's state in the database, for the stream's price stage.

The rules are `clearing.core.monitoring`'s, unchanged; this module only reads the histories a
batch needs (`monitor_seen`), applies the effects (`Remember`, `Forget`, `Tally`) and stores the
flags (`flags`), all inside the batch's one transaction. A flag is stored with the position of
the event that raised it, so a replayed position re-emits its stored flags and raises none.
Period-close flags (rule 5) are raised from `monitor_counts` when a period closes
(`raise_period_flags`, called by `clearing.ledger.cycle.close`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Connection, select

from clearing.core.models.events import Event
from clearing.core.models.flags import Flag
from clearing.core.models.results import Result
from clearing.core.monitoring import (
    DEFAULT_SETTINGS,
    Forget,
    HospitalCount,
    Monitor,
    MonitorSettings,
    PersonHistory,
    Remember,
    Seen,
    Tally,
    monitor_event,
    period_close_flags,
)
from clearing.store import db
from clearing.store.schema import flags, monitor_counts, monitor_seen


def flag_message(flag: Flag) -> bytes:
    """A flag as published and stored: `clearing flags`' line without its newline."""
    return orjson.dumps(flag.model_dump())


def flag_provinces(flag: Mapping[str, Any]) -> tuple[str, ...]:
    """Every province involved: payer or payee of either settlement (or of the hospital's)."""
    return tuple(sorted({*flag.get("payers", ()), *flag.get("payees", ())}))


def load_histories(conn: Connection, persons: Iterable[str]) -> dict[str, PersonHistory]:
    """The stored histories of these persons, each in processing order."""
    t = monitor_seen
    found: dict[str, list[Seen]] = {}
    for part in db.chunks(sorted(set(persons))):
        query = (
            select(t)
            .where(t.c.person_id.in_(part))
            .order_by(t.c.person_id, t.c.source_offset, t.c.settlement_id)
        )
        for row in conn.execute(query).mappings():
            items = tuple((c, int(q), int(u)) for c, q, u in orjson.loads(row["items"]))
            found.setdefault(row["person_id"], []).append(
                Seen(
                    settlement_id=row["settlement_id"],
                    kind=row["kind"],
                    hospital_id=row["hospital_id"],
                    admitted_on=row["admitted_on"],
                    discharged=row["discharged"],
                    diagnosis=row["diagnosis"],
                    items=items,
                    period=row["period"],
                    payer=row["payer"],
                    payee=row["payee"],
                    total_fen=int(row["total_fen"]),
                )
            )
    return {person: PersonHistory(person, tuple(seen)) for person, seen in found.items()}


@dataclass
class MonitorPlan:
    """What a batch's monitoring changes: rows to add and remove, counts, flags by source."""

    remembered: dict[str, tuple[str, int, Seen]] = field(default_factory=dict)
    forgotten: set[tuple[str, str]] = field(default_factory=set)
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
        self._monitor.apply(e for e in observation.effects if not isinstance(e, Tally))
        plan = self.plan
        for effect in observation.effects:
            match effect:
                case Remember(person_id, seen):
                    plan.remembered[seen.settlement_id] = (person_id, offset, seen)
                case Forget(person_id, settlement_id):
                    if plan.remembered.pop(settlement_id, None) is None:
                        plan.forgotten.add((person_id, settlement_id))
                case Tally(period, hospital_id, payer, payee, settlements, reversals):
                    key = (period, hospital_id, payer, payee)
                    s, r = plan.tallies.get(key, (0, 0))
                    plan.tallies[key] = (s + settlements, r + reversals)
        if observation.flags:
            plan.flags[source] = list(observation.flags)
            plan.raised[source] = [flag_message(f) for f in observation.flags]


def write_monitor(conn: Connection, plan: MonitorPlan) -> None:
    """The batch's monitor changes, in its transaction."""
    t = monitor_seen
    sqlite = conn.dialect.name == "sqlite"

    def day(value: date) -> date | str:
        return value.isoformat() if sqlite else value

    for person_id, settlement_id in sorted(plan.forgotten):
        conn.execute(
            t.delete().where(t.c.settlement_id == settlement_id, t.c.person_id == person_id)
        )
    db.bulk_insert(
        conn,
        t,
        [
            {
                "settlement_id": seen.settlement_id,
                "person_id": person_id,
                "source_offset": offset,
                "kind": seen.kind,
                "hospital_id": seen.hospital_id,
                "admitted_on": day(seen.admitted_on),
                "discharged": day(seen.discharged),
                "diagnosis": seen.diagnosis,
                "items": orjson.dumps([list(i) for i in seen.items]),
                "period": seen.period,
                "payer": seen.payer,
                "payee": seen.payee,
                "total_fen": seen.total_fen,
            }
            for person_id, offset, seen in plan.remembered.values()
        ],
    )
    add_counts(conn, plan.tallies)
    rows = []
    for source, raised in plan.flags.items():
        for position, (flag, message) in enumerate(zip(raised, plan.raised[source], strict=True)):
            rows.append(
                {
                    "flag_id": flag.flag_id,
                    "rule": flag.rule,
                    "period": flag.period,
                    "flag": message,
                    "source": source,
                    "position": position,
                }
            )
    db.bulk_insert(conn, flags, rows)


def add_counts(
    conn: Connection, tallies: Mapping[tuple[str, str, str, str], tuple[int, int]]
) -> None:
    """Adds to the counts: an upsert per row, so concurrent batches never lose an increment.
    One executemany through the driver (a statement built per row cost more than the rows)."""
    if not tallies:
        return
    t = monitor_counts.name
    sql = (
        f"INSERT INTO {t} (period, hospital_id, payer, payee, settlements, reversals) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (period, hospital_id, payer, payee) DO UPDATE "
        f"SET settlements = {t}.settlements + excluded.settlements, "
        f"reversals = {t}.reversals + excluded.reversals"
    )
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, [(*key, s, r) for key, (s, r) in sorted(tallies.items())])


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
