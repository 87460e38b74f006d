"""Fund-safety monitoring (智能监控): flags on priced settlements worth an operator's look.

The rules, for a priced settlement `s` of person `p`, evaluated when `s` is processed (events
in order) against the earlier priced settlements of `p` not reversed before `s`:

1. `OVERLAPPING_STAYS` — `s` inpatient, and an earlier inpatient settlement `o` of `p` at a
   different hospital with `o.admitted_on < s.discharged` and `s.admitted_on < o.discharged`
   (a transfer on the same day does not overlap).
2. `OUTPATIENT_DURING_STAY` — an outpatient or chronic settlement whose visit date lies strictly
   between the admission and discharge dates of an inpatient settlement of `p` (either first).
3. `QUICK_READMISSION` — `s` inpatient at the same hospital as an earlier inpatient settlement
   `o` of `p`, `0 <= s.admitted_on − o.discharged <= 15` days, and the same first three
   characters of the first diagnosis code.
4. `DUPLICATE_BILLING` — an earlier settlement of `p` at the same hospital, of the same kind,
   with the same `admitted_on` and the same multiset of `(code, quantity, unit_price_fen)`
   items, under another `settlement_id`.
5. `HIGH_REVERSAL_RATE` — when a period closes: a hospital with at least 20 priced settlements
   in it whose reversals in it exceed 10 % of them.

A stay is `[admitted_on, discharged]`, `discharged` being the date of `settled_at` in
UTC+08:00; an outpatient or chronic visit's date is its `admitted_on`. Dates are compared as
given, even when a settlement was settled before its admission date.

Quantities are compared as numbers (`quantity_e4`): "2" and "2.0" are the same quantity.
A period's counts (rule 5) are those of the clearing statement: a priced settlement counts in
the period of its `settled_at`, a reversal in the period of its own `settled_at` (`pricing.md`:
"its own `settled_at` decides its period"), whichever period the settlement it cancels was in.

Like pricing, this is pure: `monitor_event` reads a `MonitorBook` and returns the flags with
the effects on the book; the owner (`Monitor` here, the stream's store later) applies them.
Flags never move money, never refuse a patient, and are never withdrawn: a settlement
reversed after a flag named it leaves later rules, not the flag.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import NamedTuple, Protocol

import orjson
from typing_extensions import TypedDict

from clearing.core.models.events import Event, Reversal, Settlement
from clearing.core.models.flags import (
    DuplicateBilling,
    DuplicateBillingEvidence,
    Flag,
    FlaggedSettlement,
    HighReversalRate,
    Kind,
    OutpatientDuringStay,
    OutpatientDuringStayEvidence,
    OverlapEvidence,
    OverlappingStays,
    PersonFlag,
    QuickReadmission,
    ReadmissionEvidence,
    ReversalRateEvidence,
)
from clearing.core.models.results import Priced, Result, Reversed
from clearing.core.models.types import china_time


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """The rules' thresholds: readmission within 15 days; a hospital with at least 20
    settlements in a period and more than 10.00 % (1000 basis points) of them reversed."""

    readmission_days: int = 15
    min_settlements: int = 20
    max_reversal_rate_bp: int = 1000


DEFAULT_SETTINGS = MonitorSettings()

ItemLine = tuple[str, int, int]
"""One billed item as rule 4 compares it: `(code, quantity_e4, unit_price_fen)`."""


class Items:
    """A settlement's items as a multiset of `(code, quantity_e4, unit_price_fen)`.

    Held as one JSON array of the lines in the order billed (`blob`, as the store keeps it):
    a person's history holds every earlier settlement, and one bytes object per settlement,
    instead of a tuple per line, is what the garbage collector then need not walk. Rule 4
    compares two settlements' items only when their hospital, kind and date already match, so
    the lines are almost never parsed and sorted; equal multisets have blobs of equal length
    (each line is written alike, whatever its place)."""

    __slots__ = ("_key", "blob")

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self._key: tuple[ItemLine, ...] | None = None

    @classmethod
    def of(cls, lines: Iterable[ItemLine]) -> Items:
        return cls(orjson.dumps(list(lines)))

    @property
    def lines(self) -> tuple[ItemLine, ...]:
        """The lines in the order billed."""
        return tuple((code, quantity, price) for code, quantity, price in orjson.loads(self.blob))

    @property
    def key(self) -> tuple[ItemLine, ...]:
        """The lines sorted: equal for equal multisets."""
        if self._key is None:
            self._key = tuple(sorted(self.lines))
        return self._key

    def __len__(self) -> int:
        return len(self.key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Items):
            return NotImplemented
        if self.blob == other.blob:
            return True
        return len(self.blob) == len(other.blob) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Items({self.key!r})"


_code = itemgetter("code")
_unit_price = itemgetter("unit_price_fen")


def items_key(s: Settlement) -> Items:
    """The multiset of `(code, quantity, unit_price_fen)`, quantities as exact numbers."""
    return Items.of(
        zip(map(_code, s.items), s.quantities_e4, map(_unit_price, s.items), strict=True)
    )


# ---------------------------------------------------------------------------------------------
# What the rules read

INPATIENT = "inpatient"


class Seen(NamedTuple):
    """A priced settlement as the rules see it (a named tuple: made once per settlement on
    the hot path, compared field by field)."""

    settlement_id: str
    kind: Kind
    hospital_id: str
    admitted_on: date
    discharged: date  # the date of settled_at in UTC+08:00; a stay's end when inpatient
    diagnosis: str  # the first code
    items: Items
    period: str
    payer: str
    payee: str
    total_fen: int

    @property
    def inpatient(self) -> bool:
        return self.kind == INPATIENT


def seen_of(s: Settlement, result: Priced) -> Seen:
    """What the rules need of a settlement and its priced result."""
    return Seen(
        s.settlement_id,
        s.kind,
        s.hospital_id,
        date.fromisoformat(s.admitted_on),
        china_time(s.settled_at).date(),
        s.diagnosis[0],
        items_key(s),
        result.period,
        result.payer,
        result.payee,
        result.total_fen,
    )


Indexed = tuple[int, Seen]
"""A settlement with its position in its person's processing order."""


def _position(entry: Indexed) -> int:
    return entry[0]


class PersonHistory:
    """The priced, not reversed settlements of one person, in processing order, indexed for
    the rules: the stays (inpatient) in order, the visits (outpatient, chronic) by date.

    Immutable: `remember` and `forget` return a new history (the stream compares the
    histories a batch read twice). Equal when the person and the settlements are."""

    __slots__ = ("person_id", "settlements", "stays", "visit_days", "visits")

    person_id: str
    settlements: tuple[Seen, ...]
    stays: tuple[Indexed, ...]
    visit_days: tuple[date, ...]  # ascending, beside `visits`
    visits: tuple[Indexed, ...]  # by date, then position

    def __init__(self, person_id: str, settlements: tuple[Seen, ...] = ()) -> None:
        self.person_id = person_id
        self.settlements = settlements
        self.stays = tuple((n, o) for n, o in enumerate(settlements) if o.kind == INPATIENT)
        visits = sorted(
            ((n, o) for n, o in enumerate(settlements) if o.kind != INPATIENT),
            key=lambda entry: (entry[1].admitted_on, entry[0]),
        )
        self.visits = tuple(visits)
        self.visit_days = tuple(o.admitted_on for _, o in visits)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PersonHistory):
            return NotImplemented
        return self.person_id == other.person_id and self.settlements == other.settlements

    def __hash__(self) -> int:
        return hash((self.person_id, self.settlements))

    def __repr__(self) -> str:
        return f"PersonHistory({self.person_id!r}, {self.settlements!r})"

    def remember(self, seen: Seen) -> PersonHistory:
        """With `seen` processed last: its index entry added, nothing re-sorted."""
        entry = (len(self.settlements), seen)
        history = PersonHistory.__new__(PersonHistory)
        history.person_id = self.person_id
        history.settlements = (*self.settlements, seen)
        if seen.kind == INPATIENT:
            history.stays = (*self.stays, entry)
            history.visit_days, history.visits = self.visit_days, self.visits
        else:
            at = bisect_right(self.visit_days, seen.admitted_on)
            days, visits = self.visit_days, self.visits
            history.visit_days = (*days[:at], seen.admitted_on, *days[at:])
            history.visits = (*visits[:at], entry, *visits[at:])
            history.stays = self.stays
        return history

    def forget(self, settlement_id: str) -> PersonHistory:
        kept = tuple(o for o in self.settlements if o.settlement_id != settlement_id)
        if len(kept) == len(self.settlements):
            return self
        return PersonHistory(self.person_id, kept)

    def visits_between(self, after: date, before: date) -> list[Seen]:
        """The visits dated strictly between two dates, in processing order."""
        days = self.visit_days
        found = self.visits[bisect_right(days, after) : bisect_left(days, before)]
        return [o for _, o in sorted(found, key=_position)]

    def visits_on(self, day: date) -> list[Seen]:
        """The visits of one date, in processing order (ties are kept in it)."""
        days = self.visit_days
        return [o for _, o in self.visits[bisect_left(days, day) : bisect_right(days, day)]]


# ---------------------------------------------------------------------------------------------
# The rules on a pair: `o` processed before `s`. `flags_for` applies them through the
# history's indexes; these are their plain statements (and the tests' reference).


def overlapping_stays(o: Seen, s: Seen, settings: MonitorSettings) -> bool:
    return (
        s.inpatient
        and o.inpatient
        and o.hospital_id != s.hospital_id
        and o.admitted_on < s.discharged
        and s.admitted_on < o.discharged
    )


def outpatient_during_stay(o: Seen, s: Seen, settings: MonitorSettings) -> bool:
    stay, visit = (o, s) if o.inpatient else (s, o)
    return (
        stay.inpatient
        and not visit.inpatient
        and (stay.admitted_on < visit.admitted_on < stay.discharged)
    )


def quick_readmission(o: Seen, s: Seen, settings: MonitorSettings) -> bool:
    return (
        s.inpatient
        and o.inpatient
        and o.hospital_id == s.hospital_id
        and 0 <= (s.admitted_on - o.discharged).days <= settings.readmission_days
        and o.diagnosis[:3] == s.diagnosis[:3]
    )


def duplicate_billing(o: Seen, s: Seen, settings: MonitorSettings) -> bool:
    return (
        o.hospital_id == s.hospital_id
        and o.kind == s.kind
        and o.admitted_on == s.admitted_on
        and o.items == s.items
        and o.settlement_id != s.settlement_id
    )


# ---------------------------------------------------------------------------------------------
# The flags


def flag_id(rule: str, first: str, second: str) -> str:
    """`<rule>:<earlier>:<later>`, or `<rule>:<period>:<hospital_id>`: the same in every run."""
    return f"{rule}:{first}:{second}"


def flagged(seen: Seen) -> FlaggedSettlement:
    return FlaggedSettlement(
        settlement_id=seen.settlement_id,
        kind=seen.kind,
        hospital_id=seen.hospital_id,
        admitted_on=seen.admitted_on.isoformat(),
        discharged=seen.discharged.isoformat() if seen.inpatient else None,
        diagnosis=seen.diagnosis,
        total_fen=seen.total_fen,
    )


class PairFields(TypedDict):
    flag_id: str
    person_id: str
    settlement_ids: list[str]
    period: str
    hospital_ids: list[str]
    payers: list[str]
    payees: list[str]


def pair_fields(rule: str, person_id: str, o: Seen, s: Seen) -> PairFields:
    """The fields of a person-level flag on the pair `o` (processed first) and `s`."""
    return PairFields(
        flag_id=flag_id(rule, o.settlement_id, s.settlement_id),
        person_id=person_id,
        settlement_ids=[o.settlement_id, s.settlement_id],
        period=s.period,
        hospital_ids=sorted({o.hospital_id, s.hospital_id}),
        payers=sorted({o.payer, s.payer}),
        payees=sorted({o.payee, s.payee}),
    )


def overlapping_stays_flag(person_id: str, o: Seen, s: Seen) -> OverlappingStays:
    overlap = min(o.discharged, s.discharged) - max(o.admitted_on, s.admitted_on)
    evidence = OverlapEvidence(earlier=flagged(o), later=flagged(s), overlap_days=overlap.days)
    return OverlappingStays(**pair_fields("OVERLAPPING_STAYS", person_id, o, s), evidence=evidence)


def outpatient_during_stay_flag(person_id: str, o: Seen, s: Seen) -> OutpatientDuringStay:
    stay, visit = (o, s) if o.inpatient else (s, o)
    evidence = OutpatientDuringStayEvidence(
        earlier=flagged(o),
        later=flagged(s),
        days_after_admission=(visit.admitted_on - stay.admitted_on).days,
    )
    return OutpatientDuringStay(
        **pair_fields("OUTPATIENT_DURING_STAY", person_id, o, s), evidence=evidence
    )


def quick_readmission_flag(person_id: str, o: Seen, s: Seen) -> QuickReadmission:
    evidence = ReadmissionEvidence(
        earlier=flagged(o),
        later=flagged(s),
        days_between=(s.admitted_on - o.discharged).days,
        diagnosis_category=s.diagnosis[:3],
    )
    return QuickReadmission(**pair_fields("QUICK_READMISSION", person_id, o, s), evidence=evidence)


def duplicate_billing_flag(person_id: str, o: Seen, s: Seen) -> DuplicateBilling:
    evidence = DuplicateBillingEvidence(earlier=flagged(o), later=flagged(s), items=len(s.items))
    return DuplicateBilling(**pair_fields("DUPLICATE_BILLING", person_id, o, s), evidence=evidence)


PairRule = Callable[[Seen, Seen, MonitorSettings], bool]
PairFlag = Callable[[str, Seen, Seen], PersonFlag]

# In the order a settlement raises them.
PAIR_RULES: tuple[tuple[PairRule, PairFlag], ...] = (
    (overlapping_stays, overlapping_stays_flag),
    (outpatient_during_stay, outpatient_during_stay_flag),
    (quick_readmission, quick_readmission_flag),
    (duplicate_billing, duplicate_billing_flag),
)


def flags_for(
    history: PersonHistory, new: Seen, settings: MonitorSettings = DEFAULT_SETTINGS
) -> list[Flag]:
    """The flags a newly priced settlement raises against its person's history: by rule, then
    by the earlier settlement's processing order.

    The same as every pair rule over every earlier settlement, but each rule reads only its
    candidates: a stay meets the stays (rules 1, 3, 4) and the visits dated inside it (rule 2);
    a visit meets the stays around it (rule 2) and the visits of its day (rule 4)."""
    if not history.settlements:
        return []
    sid = new.settlement_id
    overlaps: list[Seen] = []
    during: list[Seen] = []
    readmissions: list[Seen] = []
    duplicates: list[Seen] = []
    if new.kind == INPATIENT:
        hospital, admitted, discharged = new.hospital_id, new.admitted_on, new.discharged
        category, days = new.diagnosis[:3], settings.readmission_days
        for _, o in history.stays:
            if o.settlement_id == sid:
                continue
            if o.hospital_id != hospital:
                if o.admitted_on < discharged and admitted < o.discharged:
                    overlaps.append(o)
                continue
            if 0 <= (admitted - o.discharged).days <= days and o.diagnosis[:3] == category:
                readmissions.append(o)
            if o.admitted_on == admitted and o.items == new.items:
                duplicates.append(o)
        during = [o for o in history.visits_between(admitted, discharged) if o.settlement_id != sid]
    else:
        visited = new.admitted_on
        during = [
            o
            for _, o in history.stays
            if o.admitted_on < visited < o.discharged and o.settlement_id != sid
        ]
        duplicates = [
            o
            for o in history.visits_on(visited)
            if o.hospital_id == new.hospital_id
            and o.kind == new.kind
            and o.items == new.items
            and o.settlement_id != sid
        ]
    if not (overlaps or during or readmissions or duplicates):
        return []
    person = history.person_id
    flags: list[Flag] = [overlapping_stays_flag(person, o, new) for o in overlaps]
    flags += [outpatient_during_stay_flag(person, o, new) for o in during]
    flags += [quick_readmission_flag(person, o, new) for o in readmissions]
    flags += [duplicate_billing_flag(person, o, new) for o in duplicates]
    return flags


def flags_by_pairs(
    history: PersonHistory, new: Seen, settings: MonitorSettings = DEFAULT_SETTINGS
) -> list[Flag]:
    """`flags_for` as the list of rules reads: every pair rule over every earlier settlement."""
    earlier = [o for o in history.settlements if o.settlement_id != new.settlement_id]
    return [
        make(history.person_id, o, new)
        for applies, make in PAIR_RULES
        for o in earlier
        if applies(o, new, settings)
    ]


class HospitalCount(NamedTuple):
    """One hospital's priced settlements and reversals in one period, and their provinces."""

    settlements: int = 0
    reversals: int = 0
    payers: frozenset[str] = frozenset()
    payees: frozenset[str] = frozenset()


def high_reversal_rate(count: HospitalCount, settings: MonitorSettings) -> bool:
    """At least `min_settlements`, and reversals above `max_reversal_rate_bp` of them."""
    return (
        count.settlements >= settings.min_settlements
        and count.reversals * 10_000 > count.settlements * settings.max_reversal_rate_bp
    )


def period_close_flags(
    hospital_counts: Mapping[str, HospitalCount],
    period: str,
    settings: MonitorSettings = DEFAULT_SETTINGS,
) -> list[Flag]:
    """Rule 5 when `period` closes, over its counts by hospital_id; hospitals sorted."""
    flags: list[Flag] = []
    for hospital_id in sorted(hospital_counts):
        count = hospital_counts[hospital_id]
        if not high_reversal_rate(count, settings):
            continue
        evidence = ReversalRateEvidence(
            settlements=count.settlements,
            reversals=count.reversals,
            min_settlements=settings.min_settlements,
            max_reversal_rate_bp=settings.max_reversal_rate_bp,
        )
        flags.append(
            HighReversalRate(
                flag_id=flag_id("HIGH_REVERSAL_RATE", period, hospital_id),
                hospital_id=hospital_id,
                period=period,
                hospital_ids=[hospital_id],
                payers=sorted(count.payers),
                payees=sorted(count.payees),
                evidence=evidence,
            )
        )
    return flags


# ---------------------------------------------------------------------------------------------
# One event: what the monitor reads and what it changes


class MonitorBook(Protocol):
    def history_of(self, person_id: str) -> PersonHistory: ...


class Remember(NamedTuple):
    """A priced settlement joins its person's history."""

    person_id: str
    seen: Seen


class Forget(NamedTuple):
    """A reversed settlement leaves its person's history: later rules no longer see it."""

    person_id: str
    settlement_id: str


class Tally(NamedTuple):
    """Add to a (period, hospital) count: a priced settlement or a reversal."""

    period: str
    hospital_id: str
    payer: str
    payee: str
    settlements: int
    reversals: int


MonitorEffect = Remember | Forget | Tally


class Observation(NamedTuple):
    flags: tuple[Flag, ...] = ()
    effects: tuple[MonitorEffect, ...] = ()


def monitor_event(
    event: Event | None,
    result: Result,
    book: MonitorBook,
    settings: MonitorSettings = DEFAULT_SETTINGS,
) -> Observation:
    """The flags an event raises, given its pricing result, and its effects on the book.

    Only a `priced` settlement and a `reversed` reversal count; every other result (an invalid
    event has no `event`) changes nothing."""
    if isinstance(result, Priced) and isinstance(event, Settlement):
        new = seen_of(event, result)
        flags = flags_for(book.history_of(event.person_id), new, settings)
        tally = Tally(result.period, result.hospital_id, result.payer, result.payee, 1, 0)
        return Observation(tuple(flags), (Remember(event.person_id, new), tally))
    if isinstance(result, Reversed) and isinstance(event, Reversal):
        tally = Tally(result.period, result.hospital_id, result.payer, result.payee, 0, 1)
        return Observation((), (Forget(event.person_id, result.settlement_id), tally))
    return _NOTHING


def tally(count: HospitalCount, change: Tally) -> HospitalCount:
    payers, payees = count.payers, count.payees
    return HospitalCount(
        count.settlements + change.settlements,
        count.reversals + change.reversals,
        payers if change.payer in payers else payers | {change.payer},
        payees if change.payee in payees else payees | {change.payee},
    )


_NO_COUNT = HospitalCount()
_NOTHING = Observation()


@dataclass
class Monitor:
    """The monitor's state in memory — histories by person, counts by period and hospital —
    and the rules over it: the offline command's, reusable by the stream."""

    settings: MonitorSettings = DEFAULT_SETTINGS
    histories: dict[str, PersonHistory] = field(default_factory=dict)
    counts: dict[str, dict[str, HospitalCount]] = field(default_factory=dict)

    def history_of(self, person_id: str) -> PersonHistory:
        history = self.histories.get(person_id)
        return PersonHistory(person_id) if history is None else history

    def remember(self, person_id: str, seen: Seen) -> None:
        self.histories[person_id] = self.history_of(person_id).remember(seen)

    def forget(self, person_id: str, settlement_id: str) -> None:
        history = self.history_of(person_id).forget(settlement_id)
        if history.settlements:
            self.histories[person_id] = history
        else:
            self.histories.pop(person_id, None)

    def count(self, change: Tally) -> None:
        hospitals = self.counts.setdefault(change.period, {})
        hospitals[change.hospital_id] = tally(hospitals.get(change.hospital_id, _NO_COUNT), change)

    def apply(self, effects: Iterable[MonitorEffect]) -> None:
        for effect in effects:
            if isinstance(effect, Remember):
                self.remember(*effect)
            elif isinstance(effect, Forget):
                self.forget(*effect)
            else:
                self.count(effect)

    def observe(self, event: Event | None, result: Result) -> list[Flag]:
        """The flags of one priced event, in the order raised; the state moves on."""
        observation = monitor_event(event, result, self, self.settings)
        self.apply(observation.effects)
        return list(observation.flags)

    def periods(self) -> list[str]:
        """The periods with counts, ascending."""
        return sorted(self.counts)

    def close_period(self, period: str) -> list[Flag]:
        """Rule 5 for a period that closes; its counts are then dropped (closed once)."""
        return period_close_flags(self.counts.pop(period, {}), period, self.settings)
