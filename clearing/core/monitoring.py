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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Protocol

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

ItemsKey = tuple[tuple[str, int, int], ...]
"""A settlement's items as a multiset: the sorted `(code, quantity_e4, unit_price_fen)`."""


def items_key(s: Settlement) -> ItemsKey:
    """The multiset of `(code, quantity, unit_price_fen)`, quantities as exact numbers."""
    lines = zip(s.items, s.quantities_e4, strict=True)
    return tuple(sorted((item["code"], q, item["unit_price_fen"]) for item, q in lines))


# ---------------------------------------------------------------------------------------------
# What the rules read


@dataclass(frozen=True, slots=True)
class Seen:
    """A priced settlement as the rules see it."""

    settlement_id: str
    kind: Kind
    hospital_id: str
    admitted_on: date
    discharged: date  # the date of settled_at in UTC+08:00; a stay's end when inpatient
    diagnosis: str  # the first code
    items: ItemsKey
    period: str
    payer: str
    payee: str
    total_fen: int

    @property
    def inpatient(self) -> bool:
        return self.kind == "inpatient"


def seen_of(s: Settlement, result: Priced) -> Seen:
    """What the rules need of a settlement and its priced result."""
    return Seen(
        settlement_id=s.settlement_id,
        kind=s.kind,
        hospital_id=s.hospital_id,
        admitted_on=date.fromisoformat(s.admitted_on),
        discharged=china_time(s.settled_at).date(),
        diagnosis=s.diagnosis[0],
        items=items_key(s),
        period=result.period,
        payer=result.payer,
        payee=result.payee,
        total_fen=result.total_fen,
    )


@dataclass(frozen=True, slots=True)
class PersonHistory:
    """The priced, not reversed settlements of one person, in processing order."""

    person_id: str
    settlements: tuple[Seen, ...] = ()

    def remember(self, seen: Seen) -> PersonHistory:
        return replace(self, settlements=(*self.settlements, seen))

    def forget(self, settlement_id: str) -> PersonHistory:
        kept = tuple(o for o in self.settlements if o.settlement_id != settlement_id)
        return replace(self, settlements=kept)


# ---------------------------------------------------------------------------------------------
# The rules on a pair: `o` processed before `s`


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
    by the earlier settlement's processing order."""
    earlier = [o for o in history.settlements if o.settlement_id != new.settlement_id]
    return [
        make(history.person_id, o, new)
        for applies, make in PAIR_RULES
        for o in earlier
        if applies(o, new, settings)
    ]


@dataclass(frozen=True, slots=True)
class HospitalCount:
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


@dataclass(frozen=True, slots=True)
class Remember:
    """A priced settlement joins its person's history."""

    person_id: str
    seen: Seen


@dataclass(frozen=True, slots=True)
class Forget:
    """A reversed settlement leaves its person's history: later rules no longer see it."""

    person_id: str
    settlement_id: str


@dataclass(frozen=True, slots=True)
class Tally:
    """Add to a (period, hospital) count: a priced settlement or a reversal."""

    period: str
    hospital_id: str
    payer: str
    payee: str
    settlements: int
    reversals: int


MonitorEffect = Remember | Forget | Tally


@dataclass(frozen=True, slots=True)
class Observation:
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
    return Observation()


def tally(count: HospitalCount, change: Tally) -> HospitalCount:
    return HospitalCount(
        settlements=count.settlements + change.settlements,
        reversals=count.reversals + change.reversals,
        payers=count.payers | {change.payer},
        payees=count.payees | {change.payee},
    )


_NO_COUNT = HospitalCount()


@dataclass
class Monitor:
    """The monitor's state in memory — histories by person, counts by period and hospital —
    and the rules over it: the offline command's, reusable by the stream."""

    settings: MonitorSettings = DEFAULT_SETTINGS
    histories: dict[str, PersonHistory] = field(default_factory=dict)
    counts: dict[str, dict[str, HospitalCount]] = field(default_factory=dict)

    def history_of(self, person_id: str) -> PersonHistory:
        return self.histories.get(person_id) or PersonHistory(person_id)

    def apply(self, effects: Iterable[MonitorEffect]) -> None:
        for effect in effects:
            match effect:
                case Remember(person_id, seen):
                    self.histories[person_id] = self.history_of(person_id).remember(seen)
                case Forget(person_id, settlement_id):
                    history = self.history_of(person_id).forget(settlement_id)
                    if history.settlements:
                        self.histories[person_id] = history
                    else:
                        self.histories.pop(person_id, None)
                case Tally(period, hospital_id):
                    hospitals = self.counts.setdefault(period, {})
                    hospitals[hospital_id] = tally(hospitals.get(hospital_id, _NO_COUNT), effect)

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
