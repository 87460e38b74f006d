"""One batch of consumed events through the pure pricing, with the state in the database.

The handler only moves data: it loads from the database the part of the book the batch needs,
runs `price_event` in order over a `MemoryBook`, and stores results and state changes in one
transaction keyed by each event's source position. A replayed position finds its stored result
and is re-emitted unchanged instead of being priced again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, Select, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError

from clearing.config import settings
from clearing.core.authority import Principal, home_province, principal_of
from clearing.core.errors import UnavailableError
from clearing.core.jsonish import JSONObject
from clearing.core.keys import reversal_key, settlement_key
from clearing.core.models.events import Assistance, Filing, Reversal, Settlement
from clearing.core.models.results import Invalid, Priced, Rejected, Result
from clearing.core.models.types import province_of
from clearing.core.monitoring import PersonHistory, Seen
from clearing.core.parse import Parsed, Rejection, parse_event
from clearing.core.periods import CLEARED
from clearing.core.pricer import price_parsed
from clearing.core.pricing import (
    Accrue,
    AccrueTiers,
    Accumulator,
    AddAssistance,
    AddFiling,
    MarkReversed,
    MemoryBook,
    PricedEntry,
    RecordPriced,
    TakeId,
)
from clearing.core.refdata import RefData
from clearing.core.tiers import TierAccumulator
from clearing.store import db
from clearing.store.monitor import (
    NOT_SEEN,
    BatchMonitor,
    MonitorPlan,
    load_flags,
    load_histories,
    seen_fields,
    write_monitor,
)
from clearing.store.schema import (
    MONITOR_COLUMNS,
    ids,
    stream_accumulators,
    stream_assistance,
    stream_filings,
    stream_priced,
    stream_results,
    stream_tier_accumulators,
)
from clearing.store.schema import (
    results as ledger_results,
)
from clearing.stream.state import PersonCache, PersonState

log = logging.getLogger(__name__)


class TakenMeanwhile(Exception):
    """An id this batch takes was taken by another batch since it was read: redo the batch."""


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed event: its position, key, raw bytes and the publisher's headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    line: int | None = None
    run: str | None = None
    timestamp_ms: int | None = None
    # The `principal` header (authority.md): the gate's `province:<code>`, the API's
    # `hospital:<id>`; None (no header) is an operator.
    principal: bytes | None = None
    # The record's position as the store keys it: made once, read many times per batch.
    source: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", f"{self.topic}:{self.partition}:{self.offset}")


@dataclass(frozen=True, slots=True)
class Emit:
    """A result to produce, and (for invalid events) the dead letter that goes with it."""

    record: Record
    status: str
    message: bytes
    result: JSONObject
    reason: str | None = None
    event_type: str | None = None
    replayed: bool = False


@dataclass
class BatchOutput:
    emits: list[Emit] = field(default_factory=list)
    alerts: list[JSONObject] = field(default_factory=list)
    attempts: int = 1
    # The flags the batch's events raised (or, replayed, had raised), in event order.
    flags: list[bytes] = field(default_factory=list)
    # The rule of each flag newly raised (not replayed), for the counter.
    raised_rules: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Building result messages


def result_dict(
    result: Result, record: Record, route: tuple[str, str] | None = None
) -> JSONObject:
    """The result as the spec prints it, plus `line`, the event's `source` and the `run`.

    Rejected results also carry `payer`/`payee` when they can be determined, so the router can
    deliver them to both provinces.
    """
    out = result.model_dump(exclude_none=True)
    if route is not None and out["status"] == "rejected":
        out["payer"], out["payee"] = route
    return _with_record(out, record)


def refused_dict(
    result: Result, record: Record, principal: Principal, feed: str | None
) -> JSONObject:
    """A NOT_AUTHORIZED rejection, with who sent it and the one feed it goes to (the sender's
    own province, when known), never the payer's or payee's."""
    out = result.model_dump(exclude_none=True)
    out["principal"] = principal.header
    if feed is not None:
        out["feed"] = feed
    return _with_record(out, record)


def _with_record(out: JSONObject, record: Record) -> JSONObject:
    if record.line is not None:
        out["line"] = record.line
    out["source"] = record.source
    if record.run is not None:
        out["run"] = record.run
    return out


def is_refusal(result: Result) -> bool:
    return isinstance(result, Rejected) and "NOT_AUTHORIZED" in result.reasons


def rejected_route(parsed: Parsed, book: MemoryBook) -> tuple[str, str] | None:
    """Payer and payee of a rejected event, when they are known."""
    event = parsed.event
    if isinstance(event, Settlement):
        return province_of(event.home_region), province_of(event.hospital_region)
    if isinstance(event, Reversal):
        entry = book.priced_entry(event.settlement_id)
        if entry is not None and entry.person_id == event.person_id:
            return entry.result.payer, entry.result.payee
    return None


def make_emit(
    record: Record, result: JSONObject, reason: str | None = None, kind: str | None = None
) -> Emit:
    return Emit(record, result["status"], orjson.dumps(result), result, reason, kind)


def invalid_emit(record: Record, error: str) -> Emit:
    return make_emit(record, result_dict(Invalid(error=error), record), reason=error)


def stored_emit(record: Record, status: str, message: bytes) -> Emit:
    result = orjson.loads(message)
    return Emit(record, status, message, result, result.get("error"), replayed=True)


# ---------------------------------------------------------------------------------------------
# The processor


@dataclass
class Plan:
    """A batch priced against the persons' books: what to write, and to keep once written."""

    stored: dict[str, tuple[str, bytes]]
    loaded: LoadedBook
    book: MemoryBook
    by_source: dict[str, Emit]
    new: list[Emit]
    effects: list[tuple[Record, object]]
    monitor: MonitorPlan | None = None
    histories: dict[str, PersonHistory] | None = None

    def flags(self, records: Sequence[Record], replayed: dict[str, list[bytes]]) -> list[bytes]:
        raised = self.monitor.raised if self.monitor is not None else {}
        out: list[bytes] = []
        for record in records:
            out.extend(replayed.get(record.source) or raised.get(record.source) or ())
        return out

    def emits(self, records: Sequence[Record]) -> list[Emit]:
        out = []
        for record in records:
            if record.source in self.stored:
                status, message = self.stored[record.source]
                out.append(stored_emit(record, status, message))
            else:
                out.append(self.by_source[record.source])
        return out


@dataclass
class BatchProcessor:
    """Prices batches against partition-owned state; one per worker, called from one thread.

    The persons of a batch are taken from the worker's `PersonCache` (a miss reads the person
    from the store, outside any lock), priced in memory, and the batch's results, state changes,
    monitor rows and ledger postings written in one transaction, with no second read. Stored
    results are looked up only in a partition not yet known to be past them (newly assigned):
    each partition's stored results are a prefix of it, so once a batch of the partition finds
    its last record unstored, the later ones are new. Ids are global, not per person: an id
    another partition took collides at write time (its unique key), and the batch is redone
    "cold": its persons, ids and stored results read again from the store.
    """

    engine: Engine
    refdata: Callable[[], RefData]
    # Records cleared results in the ledger inside the batch's transaction; returns alerts.
    ledger: Callable[[Connection, list[JSONObject]], list[JSONObject]] | None = None
    max_attempts: int = 20
    reader: Engine | None = None
    # Fund-safety monitoring (CLEARING_MONITOR; on unless "0"): flags, never money.
    monitor: bool | None = None
    cache: PersonCache | None = None

    def __post_init__(self) -> None:
        if self.reader is None:
            self.reader = db.read_engine(self.engine)
        if self.monitor is None:
            self.monitor = settings().monitor
        if self.cache is None:
            self.cache = PersonCache(settings().cache_persons)
        # Partitions whose stored results are known to lie behind the records to come.
        self._past_stored: set[tuple[str, int]] = set()

    def assigned(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions (topic, partition) this worker now owns: their persons are read afresh."""
        self.revoked(partitions)

    def revoked(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions this worker no longer owns: their persons and positions are forgotten."""
        gone = set(partitions)
        self._past_stored -= gone
        if self.cache is not None:
            self.cache.drop_partitions(p for _, p in gone)

    def process(self, records: Sequence[Record]) -> BatchOutput:
        """Results for every record, in order; redoes a batch that raced another."""
        parsed = [parse_event(r.value) for r in records]
        cold = False
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._attempt(records, parsed, cold, attempt)
            except (IntegrityError, TakenMeanwhile) as exc:
                self._forget(records, parsed)
                if attempt == self.max_attempts:
                    raise
                log.info("batch of %d raced another (%s); redoing it", len(records), exc)
                time.sleep(min(0.5, 0.01 * attempt))
            except DBAPIError as exc:
                self._forget(records, parsed)
                if not _is_conflict(exc) or attempt == self.max_attempts:
                    raise
                log.info("batch of %d hit a lock conflict; redoing it", len(records))
                time.sleep(min(0.5, 0.01 * attempt))
            except BaseException:
                self._forget(records, parsed)
                raise
            cold = True
        raise UnavailableError(f"batch of {len(records)} still conflicting after retries")

    def _attempt(
        self,
        records: Sequence[Record],
        parsed: Sequence[Parsed | Rejection],
        cold: bool,
        attempt: int,
    ) -> BatchOutput:
        cache = self.cache
        if self.reader is None or cache is None:
            raise RuntimeError("BatchProcessor is not initialised: __post_init__ sets it")
        past = set() if cold else self._past_stored
        checked = [r.source for r in records if (r.topic, r.partition) not in past]
        owners = id_owners(parsed)
        with self.reader.connect() as conn:
            stored = load_stored(conn, checked) if checked else {}
            events = [
                (record, p)
                for record, p in zip(records, parsed, strict=True)
                if record.source not in stored and isinstance(p, Parsed)
            ]
            persons = {
                p.event.person_id: record.partition
                for record, p in events
                if isinstance(p.event, Settlement | Reversal | Filing | Assistance)
            }
            if cold or stored:
                # The store may hold more than the copies: read these persons again.
                cache.forget(persons)
            missing = cache.missing(persons)
            if missing:
                cache.add(load_persons(conn, {p: persons[p] for p in missing}, bool(self.monitor)))
            book = cache.book_for(persons)
            if cold:
                book.fingerprints.update(load_fingerprints(conn, owners))
            targets = [
                p.event.settlement_id
                for _, p in events
                if isinstance(p.event, Reversal) and p.event.settlement_id not in book.priced
            ]
            if targets:
                for sid, entry in load_priced(conn, targets).items():
                    book.priced.setdefault(sid, entry)
            routed = hospitals_to_route(records, [p for _, p in events], stored)
            hospitals = hospital_provinces(conn, routed) if routed else {}
        loaded = LoadedBook(
            MemoryBook(),
            set(book.accumulators),
            set(book.priced),
            {sid for sid, e in book.priced.items() if e.reversed},
            set(book.tier_accumulators),
            hospitals=hospitals,
        )
        if self.monitor:
            loaded.histories = {
                p: h for p in persons if (h := cache.persons[p].history) is not None
            }
        plan = self._price(records, parsed, stored, loaded, book)
        with self.engine.begin() as conn:
            remembered = plan.monitor.remembered if plan.monitor is not None else None
            write_batch(conn, plan.loaded, plan.book, plan.new, plan.effects, remembered)
            replayed: dict[str, list[bytes]] = {}
            if plan.monitor is not None:
                write_monitor(conn, plan.monitor)
            if self.monitor and stored:
                replayed = load_flags(conn, list(stored))
            alerts = []
            if self.ledger is not None:
                cleared = [e.result for e in plan.new if e.status in CLEARED]
                alerts = self.ledger(conn, cleared)
        cache.absorb(plan.book, owners, plan.histories, persons)
        self._mark_past_stored(records, stored)
        rules: list[str] = (
            [f.rule for raised in plan.monitor.flags.values() for f in raised]
            if plan.monitor is not None
            else []
        )
        return BatchOutput(
            plan.emits(records), alerts, attempt, plan.flags(records, replayed), rules
        )

    def _mark_past_stored(self, records: Sequence[Record], stored: Mapping[str, object]) -> None:
        last: dict[tuple[str, int], Record] = {}
        for record in records:
            last[(record.topic, record.partition)] = record
        for position, record in last.items():
            if record.source not in stored:
                self._past_stored.add(position)

    def _forget(self, records: Sequence[Record], parsed: Sequence[Parsed | Rejection]) -> None:
        """After a failed attempt nothing of the batch's persons is trusted: read them again."""
        if self.cache is not None:
            self.cache.forget(
                p.event.person_id
                for p in parsed
                if isinstance(p, Parsed)
                and isinstance(p.event, Settlement | Reversal | Filing | Assistance)
            )
        self._past_stored -= {(r.topic, r.partition) for r in records}

    def _price(
        self,
        records: Sequence[Record],
        parsed: Sequence[Parsed | Rejection],
        stored: dict[str, tuple[str, bytes]],
        loaded: LoadedBook,
        book: MemoryBook,
    ) -> Plan:
        fresh = [
            (record, p)
            for record, p in zip(records, parsed, strict=True)
            if record.source not in stored
        ]
        refdata = self.refdata()
        by_source: dict[str, Emit] = {}
        effects: list[tuple[Record, object]] = []
        monitor = BatchMonitor(dict(loaded.histories)) if self.monitor else None
        for record, p in fresh:
            if isinstance(p, Rejection):
                by_source[record.source] = invalid_emit(record, p.error)
                continue
            principal = principal_of(record.principal)
            outcome = price_parsed(p, refdata, book, principal)
            if isinstance(outcome.result, Invalid):  # the pricing crashed on this event
                # Its error names the exception's type only: its text may quote the event.
                error = outcome.result.error
                log.error("event at %s could not be priced: %s", record.source, error)
                by_source[record.source] = invalid_emit(record, outcome.result.error)
                continue
            if monitor is not None:
                monitor.observe(record.source, record.offset, p.event, outcome.result)
            effects.extend((record, e) for e in outcome.effects)
            if is_refusal(outcome.result):
                feed = home_province(principal, lambda h: hospital_province(h, loaded, book))
                result = refused_dict(outcome.result, record, principal, feed)
            else:
                route = rejected_route(p, book) if outcome.result.status == "rejected" else None
                result = result_dict(outcome.result, record, route)
            if result["status"] in CLEARED:
                # The ledger's daily per-hospital batch is by the day of settlement.
                if not isinstance(p.event, Settlement | Reversal):
                    raise TypeError(
                        f"a cleared result for a {p.event.type} event at {record.source}"
                    )
                result["settled_at"] = p.event.settled_at
            by_source[record.source] = make_emit(record, result, kind=p.event.type)
        new = [by_source[r.source] for r, _ in fresh]
        plan = monitor.plan if monitor is not None else None
        histories = monitor.histories_now() if monitor is not None else None
        return Plan(stored, loaded, book, by_source, new, effects, plan, histories)


def _is_conflict(exc: DBAPIError) -> bool:
    """Deadlocks, serialization failures and busy databases: worth redoing the batch."""
    text = str(exc.orig).lower()
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))


# ---------------------------------------------------------------------------------------------
# Reading the book


def load_stored(conn: Connection, sources: Sequence[str]) -> dict[str, tuple[str, bytes]]:
    t = stream_results
    found: dict[str, tuple[str, bytes]] = {}
    for part in db.chunks(sources):
        rows = conn.execute(select(t.c.source, t.c.status, t.c.message).where(t.c.source.in_(part)))
        for source, status, message in rows:
            found[source] = (status, bytes(message))
    return found


@dataclass
class LoadedBook:
    """The book a batch starts from, and what of it already existed in the database."""

    book: MemoryBook
    accumulator_keys: set[tuple[str, int, str]]
    priced_ids: set[str]
    reversed_ids: set[str]
    tier_keys: set[tuple[str, int]] = field(default_factory=set)
    # The monitor's histories of the batch's persons (when monitoring is on).
    histories: dict[str, PersonHistory] = field(default_factory=dict)
    # Where the hospitals lie whose reversals may be refused (routing only, not pricing).
    hospitals: dict[str, str] = field(default_factory=dict)


def hospitals_to_route(
    records: Sequence[Record], events: Sequence[Parsed], stored: dict[str, tuple[str, bytes]]
) -> set[str]:
    """The hospitals whose reversals in the batch may be refused (a hospital's settlements are
    refused only for another hospital_id, which the API never lets through)."""
    sending = {
        r.principal for r in records if r.source not in stored and r.principal is not None
    }
    if not sending or not any(isinstance(p.event, Reversal) for p in events):
        return set()
    found = {principal_of(header) for header in sending}
    return {p.id for p in found if p.kind == "hospital"}


def hospital_province(hospital_id: str, loaded: LoadedBook, book: MemoryBook) -> str | None:
    """Where a hospital lies: as the ledger said when the batch was read, else as a settlement
    of it priced in this batch says (called only for a refused event)."""
    known = loaded.hospitals.get(hospital_id)
    if known is not None:
        return known
    for entry in book.priced.values():
        if entry.result.hospital_id == hospital_id:
            return entry.result.payee
    return None


def hospital_provinces(conn: Connection, hospitals: set[str]) -> dict[str, str]:
    """The province each hospital lies in, as its priced settlements in the ledger say."""
    t = ledger_results
    found: dict[str, str] = {}
    for hospital_id in sorted(hospitals):
        query = select(t.c.payee).where(t.c.hospital_id == hospital_id, t.c.status == "priced")
        payee = conn.execute(query.limit(1)).scalar()
        if payee is not None:
            found[hospital_id] = payee
    return found


def copy_book(book: MemoryBook) -> MemoryBook:
    """A copy pricing may change while the original stays as read (its values are immutable)."""
    return MemoryBook(
        fingerprints=dict(book.fingerprints),
        filings={person: list(filings) for person, filings in book.filings.items()},
        accumulators=dict(book.accumulators),
        priced=dict(book.priced),
        assistance={person: list(records) for person, records in book.assistance.items()},
        tier_accumulators=dict(book.tier_accumulators),
    )


def load_book(conn: Connection, events: Sequence[Parsed], lock: bool = True) -> LoadedBook:
    """Filings, assistance records, accumulators, tier accumulators, taken ids and priced
    settlements the events can touch, read straight from the store (the trial API's view).

    With `lock`, accumulator, tier accumulator and priced rows are read `FOR UPDATE`
    (PostgreSQL).
    """
    persons: set[str] = set()
    filers: set[str] = set()
    owners: dict[str, str] = {}
    targets: set[str] = set()
    for p in events:
        e = p.event
        if isinstance(e, Settlement):
            persons.add(e.person_id)
            filers.add(e.person_id)
            owners[settlement_key(e.settlement_id)] = e.person_id
        elif isinstance(e, Reversal):
            persons.add(e.person_id)
            owners[reversal_key(e.reversal_id)] = e.person_id
            targets.add(e.settlement_id)
    book = MemoryBook()
    book.fingerprints.update(load_fingerprints(conn, owners))
    book.filings.update(load_filings(conn, filers))
    book.assistance.update(load_assistance(conn, filers))
    book.accumulators.update(load_accumulators(conn, persons, lock))
    book.tier_accumulators.update(load_tier_accumulators(conn, persons, lock))
    book.priced.update(load_priced(conn, targets, lock))
    reversed_ids = {sid for sid, entry in book.priced.items() if entry.reversed}
    return LoadedBook(
        book, set(book.accumulators), set(book.priced), reversed_ids, set(book.tier_accumulators)
    )


def id_owners(parsed: Iterable[Parsed | Rejection]) -> dict[str, str]:
    """The id key each valid settlement or reversal takes, and the person it belongs to."""
    owners: dict[str, str] = {}
    for p in parsed:
        if not isinstance(p, Parsed):
            continue
        e = p.event
        if isinstance(e, Settlement):
            owners[settlement_key(e.settlement_id)] = e.person_id
        elif isinstance(e, Reversal):
            owners[reversal_key(e.reversal_id)] = e.person_id
    return owners


def load_persons(
    conn: Connection, partitions: Mapping[str, int], monitor: bool
) -> dict[str, PersonState]:
    """The stored books of these persons (person -> the partition that owns them)."""
    persons = sorted(partitions)
    states = {p: PersonState(partitions[p]) for p in persons}
    for person, filings in load_filings(conn, persons).items():
        states[person].filings = filings
    for person, records in load_assistance(conn, persons).items():
        states[person].assistance = records
    for key, acc in load_accumulators(conn, persons, False).items():
        states[key[0]].accumulators[key] = acc
    for tkey, tacc in load_tier_accumulators(conn, persons, False).items():
        states[tkey[0]].tiers[tkey] = tacc
    if monitor:
        for person, history in load_histories(conn, persons).items():
            states[person].history = history
    return states


def load_fingerprints(conn: Connection, keys: Iterable[str]) -> dict[str, str]:
    """Taken ids only: an API claim (no source yet) is not a take."""
    t = ids
    found: dict[str, str] = {}
    for part in db.chunks(sorted(keys)):
        query = select(t.c.key, t.c.content_hash).where(t.c.key.in_(part), t.c.source.is_not(None))
        for key, fp in conn.execute(query):
            found[key] = fp
    return found


def load_filings(conn: Connection, persons: Iterable[str]) -> dict[str, list[Filing]]:
    t = stream_filings
    found: dict[str, list[Filing]] = {}
    for part in db.chunks(sorted(persons)):
        rows = conn.execute(select(t.c.person_id, t.c.filing).where(t.c.person_id.in_(part)))
        for person, raw in rows:
            found.setdefault(person, []).append(Filing.model_validate_json(raw))
    return found


def load_assistance(conn: Connection, persons: Iterable[str]) -> dict[str, list[Assistance]]:
    t = stream_assistance
    found: dict[str, list[Assistance]] = {}
    for part in db.chunks(sorted(persons)):
        # By source, so two reads of the same rows give equal books (the order does not
        # change a price: the class that covers a settlement is `A` over `B`, tiers.md).
        rows = conn.execute(
            select(t.c.person_id, t.c.record).where(t.c.person_id.in_(part)).order_by(t.c.source)
        )
        for person, raw in rows:
            found.setdefault(person, []).append(Assistance.model_validate_json(raw))
    return found


def load_accumulators(
    conn: Connection, persons: Iterable[str], lock: bool
) -> dict[tuple[str, int, str], Accumulator]:
    t = stream_accumulators
    found: dict[tuple[str, int, str], Accumulator] = {}
    for part in db.chunks(sorted(persons)):
        query = (
            select(t.c.person_id, t.c.year, t.c.kind, t.c.fund_paid, t.c.deductible_used)
            .where(t.c.person_id.in_(part))
            .order_by(t.c.person_id, t.c.year, t.c.kind)
        )
        for person, year, kind, fund, deductible in _read_rows(conn, query, lock):
            found[(person, year, kind)] = Accumulator(fund, deductible)
    return found


def load_tier_accumulators(
    conn: Connection, persons: Iterable[str], lock: bool
) -> dict[tuple[str, int], TierAccumulator]:
    t = stream_tier_accumulators
    found: dict[tuple[str, int], TierAccumulator] = {}
    for part in db.chunks(sorted(persons)):
        query = (
            select(t.c.person_id, t.c.year, t.c.burden, t.c.critical_paid, t.c.assistance_paid)
            .where(t.c.person_id.in_(part))
            .order_by(t.c.person_id, t.c.year)
        )
        for person, year, burden, critical, assistance in _read_rows(conn, query, lock):
            found[(person, year)] = TierAccumulator(burden, critical, assistance)
    return found


def load_priced(
    conn: Connection, settlement_ids: Iterable[str], lock: bool = False
) -> dict[str, PricedEntry]:
    t = stream_priced
    found: dict[str, PricedEntry] = {}
    for part in db.chunks(sorted(set(settlement_ids))):
        query = (
            select(
                t.c.settlement_id,
                t.c.person_id,
                t.c.year,
                t.c.kind,
                t.c.result,
                t.c.reversed,
                t.c.counted_fen,
            )
            .where(t.c.settlement_id.in_(part))
            .order_by(t.c.settlement_id)
        )
        for sid, person, year, kind, raw, was_reversed, counted in _read_rows(conn, query, lock):
            result = Priced.model_validate_json(raw)
            found[sid] = PricedEntry(
                person, year, kind, result, bool(was_reversed), counted_fen=counted
            )
    return found


def _read_rows(
    conn: Connection, query: Select[*tuple[Any, ...]], lock: bool
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The rows of `query`, read `FOR UPDATE` when `lock` (PostgreSQL; SQLite ignores it)."""
    return conn.execute(query.with_for_update() if lock else query).all()


# ---------------------------------------------------------------------------------------------
# Writing the batch


def write_batch(
    conn: Connection,
    loaded: LoadedBook,
    book: MemoryBook,
    emits: Sequence[Emit],
    effects: Sequence[tuple[Record, object]],
    remembered: Mapping[str, tuple[int, Seen]] | None = None,
) -> None:
    """Results by source position plus the state changes, as bulk statements (`remembered`:
    what the monitor keeps of the new priced settlements, see `write_priced`)."""
    db.bulk_insert(
        conn,
        stream_results,
        [{"source": e.record.source, "status": e.status, "message": e.message} for e in emits],
    )
    taken: list[dict[str, Any]] = []
    new_filings: list[dict[str, Any]] = []
    new_assistance: list[dict[str, Any]] = []
    touched: set[tuple[str, int, str]] = set()
    touched_tiers: set[tuple[str, int]] = set()
    new_priced: set[str] = set()
    newly_reversed: set[str] = set()
    for record, effect in effects:
        match effect:
            case TakeId(key, fp):
                taken.append({"key": key, "content_hash": fp, "source": record.source})
            case AddFiling(filing):
                new_filings.append(
                    {
                        "source": record.source,
                        "person_id": filing.person_id,
                        "filing": filing.model_dump_json().encode(),
                    }
                )
            case AddAssistance(assistance):
                new_assistance.append(
                    {
                        "source": record.source,
                        "person_id": assistance.person_id,
                        "record": assistance.model_dump_json(by_alias=True).encode(),
                    }
                )
            case Accrue(person_id, year, kind):
                touched.add((person_id, year, kind))
            case AccrueTiers(person_id, year):
                touched_tiers.add((person_id, year))
            case RecordPriced(settlement_id):
                new_priced.add(settlement_id)
            case MarkReversed(settlement_id):
                newly_reversed.add(settlement_id)
    take_ids(conn, taken)
    db.bulk_insert(conn, stream_filings, new_filings)
    db.bulk_insert(conn, stream_assistance, new_assistance)
    write_accumulators(conn, loaded, book, touched)
    write_tier_accumulators(conn, loaded, book, touched_tiers)
    write_priced(conn, loaded, book, new_priced, newly_reversed, remembered)


def take_ids(conn: Connection, taken: list[JSONObject]) -> None:
    """The stream takes ids: a new row, or the take added to the row of an API claim (the claim
    stays). An id another batch took meanwhile raises TakenMeanwhile, so the batch is redone."""
    if conn.dialect.name == "sqlite":
        written = db.bulk_insert(
            conn,
            ids,
            taken,
            ' ON CONFLICT ("key") DO UPDATE SET content_hash = excluded.content_hash,'
            " source = excluded.source WHERE ids.source IS NULL",
        )
    else:
        def take(insert: postgresql.Insert) -> postgresql.Insert:
            new = insert.excluded
            return insert.on_conflict_do_update(
                index_elements=["key"],
                set_={"content_hash": new.content_hash, "source": new.source},
                where=ids.c.source.is_(None),
            )

        counted = db.insert_rows(conn, ids, taken, take, count=True)
        if counted is None:
            raise RuntimeError("insert_rows returned no count although asked for one")
        written = counted
    if written != len(taken):
        raise TakenMeanwhile(f"{len(taken) - written} of {len(taken)} ids were taken meanwhile")


def write_accumulators(
    conn: Connection, loaded: LoadedBook, book: MemoryBook, touched: set[tuple[str, int, str]]
) -> None:
    t = stream_accumulators
    rows = [
        {
            "p": person,
            "y": year,
            "k": kind,
            "fund_paid": book.accumulators[(person, year, kind)].fund_paid,
            "deductible_used": book.accumulators[(person, year, kind)].deductible_used,
        }
        for person, year, kind in sorted(touched)
    ]
    old = [r for r in rows if (r["p"], r["y"], r["k"]) in loaded.accumulator_keys]
    new = [r for r in rows if (r["p"], r["y"], r["k"]) not in loaded.accumulator_keys]
    db.bulk_update(
        conn,
        t,
        ("person_id", "year", "kind"),
        ("fund_paid", "deductible_used"),
        [(r["fund_paid"], r["deductible_used"], r["p"], r["y"], r["k"]) for r in old],
    )
    if new:
        db.bulk_insert(
            conn,
            t,
            [
                {
                    "person_id": r["p"],
                    "year": r["y"],
                    "kind": r["k"],
                    "fund_paid": r["fund_paid"],
                    "deductible_used": r["deductible_used"],
                }
                for r in new
            ],
        )


def write_tier_accumulators(
    conn: Connection, loaded: LoadedBook, book: MemoryBook, touched: set[tuple[str, int]]
) -> None:
    t = stream_tier_accumulators
    values = {slot: book.tier_accumulators[slot] for slot in sorted(touched)}
    db.bulk_update(
        conn,
        t,
        ("person_id", "year"),
        ("burden", "critical_paid", "assistance_paid"),
        [
            (acc.burden, acc.critical_paid, acc.assistance_paid, person, year)
            for (person, year), acc in values.items()
            if (person, year) in loaded.tier_keys
        ],
    )
    db.bulk_insert(
        conn,
        t,
        [
            {
                "person_id": person,
                "year": year,
                "burden": acc.burden,
                "critical_paid": acc.critical_paid,
                "assistance_paid": acc.assistance_paid,
            }
            for (person, year), acc in values.items()
            if (person, year) not in loaded.tier_keys
        ],
    )


def write_priced(
    conn: Connection,
    loaded: LoadedBook,
    book: MemoryBook,
    new_priced: set[str],
    newly_reversed: set[str],
    remembered: Mapping[str, tuple[int, Seen]] | None = None,
) -> None:
    """New priced settlements, with what the monitor remembered of them (`remembered`: by id,
    the offset and `Seen`; None with monitoring off), and the reversed ones marked."""
    t = stream_priced
    sqlite = conn.dialect.name == "sqlite"
    seen = remembered or {}
    if new_priced:
        rows = []
        for sid in sorted(new_priced):
            entry = book.priced[sid]
            row: dict[str, Any] = {
                "settlement_id": sid,
                "person_id": entry.person_id,
                "year": entry.year,
                "kind": entry.kind,
                "result": entry.result.model_dump_json().encode(),
                "reversed": entry.reversed,
                "counted_fen": entry.counted_fen,
            }
            remembers = seen.get(sid)
            fields = NOT_SEEN if remembers is None else seen_fields(*remembers, sqlite)
            row.update(zip(MONITOR_COLUMNS, fields, strict=True))
            rows.append(row)
        db.bulk_insert(conn, t, rows)
    existing = sorted(newly_reversed - new_priced)
    db.bulk_update(conn, t, ("settlement_id",), ("reversed",), [(True, sid) for sid in existing])
