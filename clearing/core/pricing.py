"""Pricing: the treating province's catalog, the home fund's policy (`pricing.md`), then the
serious-illness insurance and medical assistance of one-stop settlement (`tiers.md`).

`price_event` is a pure function. It reads what it needs from a `Book` (ids already taken,
filings, assistance records, per-person-year accumulators, priced settlements) and returns the
result together with the effects the event has on the book. Whoever owns the book — the
offline command's `MemoryBook`, or the stream's store — applies the effects; nothing here does
I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, NotRequired, Protocol, TypedDict

from clearing.core.exact import line_amount, round_half_up, share  # noqa: F401 (re-exported)
from clearing.core.keys import reversal_key, settlement_key
from clearing.core.models.events import Assistance, Event, Filing, Reversal, Settlement
from clearing.core.models.refdata import AnnualBlock, InpatientBlock, Policy
from clearing.core.models.results import (
    AMOUNT_FIELDS,
    TIER_FIELDS,
    Duplicate,
    Filed,
    Priced,
    Reason,
    Registered,
    Rejected,
    Result,
    Reversed,
    build,
)
from clearing.core.models.types import china_time, province_of
from clearing.core.refdata import RefData, Terms
from clearing.core.tiers import NO_TIERS, TierAccumulator, TierAmounts, price_tiers

# ---------------------------------------------------------------------------------------------
# Exact arithmetic (clearing.core.exact) and the calendar


def period_of(moment: datetime) -> str:
    """The clearing period (YYYY-MM) of a moment already in China time."""
    return f"{moment.year:04d}-{moment.month:02d}"


def year_and_period(timestamp: str) -> tuple[int, str]:
    """The China-time year and period of a validated timestamp.

    Most are written in China time already (`+08:00`): then they are the string's own digits,
    with no datetime to parse and convert."""
    if timestamp.endswith("+08:00"):
        return int(timestamp[:4]), timestamp[:7]
    moment = china_time(timestamp)
    return moment.year, period_of(moment)


# ---------------------------------------------------------------------------------------------
# What pricing reads and what it changes


@dataclass(frozen=True, slots=True)
class Accumulator:
    """Per (person_id, year, kind): the fund paid (for the cap) and the deductible used."""

    fund_paid: int = 0
    deductible_used: int = 0


@dataclass(frozen=True, slots=True)
class PricedEntry:
    """What a reversal needs of the settlement it cancels.

    `counted_fen` is the `isp` the settlement added to its person-year's counted burden (0 when
    serious-illness insurance did not apply); its tier pays are in `result`.
    """

    person_id: str
    year: int
    kind: str
    result: Priced
    reversed: bool = False
    counted_fen: int = 0


class Book(Protocol):
    """The state pricing reads. Keys of ids are `S:<settlement_id>` and `R:<reversal_id>`."""

    def fingerprint_of(self, key: str) -> str | None: ...

    def filings_of(self, person_id: str) -> Iterable[Filing]: ...

    def assistance_of(self, person_id: str) -> Iterable[Assistance]: ...

    def accumulator(self, person_id: str, year: int, kind: str) -> Accumulator: ...

    def tier_accumulator(self, person_id: str, year: int) -> TierAccumulator: ...

    def priced_entry(self, settlement_id: str) -> PricedEntry | None: ...


@dataclass(frozen=True, slots=True)
class TakeId:
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class AddFiling:
    filing: Filing


@dataclass(frozen=True, slots=True)
class Accrue:
    """Add to an accumulator (negative on reversal); a store never lets it go below 0."""

    person_id: str
    year: int
    kind: str
    fund_paid: int
    deductible_used: int


@dataclass(frozen=True, slots=True)
class AddAssistance:
    record: Assistance


@dataclass(frozen=True, slots=True)
class AccrueTiers:
    """Add to a person-year's tier accumulator (negative on reversal); never below 0."""

    person_id: str
    year: int
    burden: int
    critical_paid: int
    assistance_paid: int


@dataclass(frozen=True, slots=True)
class RecordPriced:
    settlement_id: str
    entry: PricedEntry


@dataclass(frozen=True, slots=True)
class MarkReversed:
    settlement_id: str


Effect = TakeId | AddFiling | AddAssistance | Accrue | AccrueTiers | RecordPriced | MarkReversed


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    effects: tuple[Effect, ...] = ()


# ---------------------------------------------------------------------------------------------
# Events


def price_event(event: Event, fingerprint: str, refdata: RefData, book: Book) -> Outcome:
    """The result of one valid event and its effects on the book."""
    if isinstance(event, Settlement):
        return price_settlement(event, fingerprint, refdata, book)
    if isinstance(event, Reversal):
        return reverse_settlement(event, fingerprint, book)
    if isinstance(event, Assistance):
        return Outcome(
            build(Registered, assistance_id=event.assistance_id), (AddAssistance(event),)
        )
    return Outcome(build(Filed, filing_id=event.filing_id), (AddFiling(event),))


def price_settlement(s: Settlement, fingerprint: str, refdata: RefData, book: Book) -> Outcome:
    key = settlement_key(s.settlement_id)
    seen = book.fingerprint_of(key)
    if seen is not None:
        if seen == fingerprint:
            return Outcome(build(Duplicate, settlement_id=s.settlement_id))
        return Outcome(
            build(Rejected, settlement_id=s.settlement_id, reasons=["DUPLICATE_CONFLICT"])
        )
    take = TakeId(key, fingerprint)

    year, period = year_and_period(s.settled_at)
    payer = province_of(s.home_region)
    payee = province_of(s.hospital_region)
    policy = refdata.policy_for(s.home_region, s.scheme, year)
    terms = refdata.terms_for(payee, year)
    filed = s.emergency or _covered(s, payer, payee, book.filings_of(s.person_id))

    # One pass over the items both checks the amounts and splits them when there is a catalog.
    if terms is not None:
        mismatch, split = checked_split(s, terms)
    else:
        mismatch = has_amount_mismatch(s)
    reasons: list[Reason] = []
    if mismatch:
        reasons.append("AMOUNT_MISMATCH")
    if payer == payee:
        reasons.append("NOT_CROSS_PROVINCE")
    if policy is None:
        reasons.append("NO_POLICY")
    if terms is None:
        reasons.append("NO_CATALOG")
    if (
        s.kind != "inpatient"
        and policy is not None
        and policy.outpatient_requires_filing
        and not filed
    ):
        reasons.append("NOT_FILED")
    if reasons or policy is None or terms is None:  # no policy or catalog is a reason
        rejected = build(Rejected, settlement_id=s.settlement_id, reasons=sorted(reasons))
        return Outcome(rejected, (take,))

    acc = book.accumulator(s.person_id, year, s.kind)
    amounts = apply_policy(s, policy, split, acc, filed)
    tiers = NO_TIERS
    if refdata.tiers:  # the tier fields are printed; the policy's blocks say what they pay
        tiers = price_tiers(
            policy,
            s,
            split.eligible,
            amounts["fund_pay_fen"],
            book.tier_accumulator(s.person_id, year),
            book.assistance_of(s.person_id),
        )
        add_tier_fields(amounts, split.total, tiers)
    result = build(
        Priced,
        settlement_id=s.settlement_id,
        period=period,
        payer=payer,
        payee=payee,
        hospital_id=s.hospital_id,
        filed=filed,
        **amounts,
    )
    annual = s.kind != "inpatient"
    effects: list[Effect] = [
        take,
        Accrue(
            s.person_id,
            year,
            s.kind,
            fund_paid=result.fund_pay_fen,
            deductible_used=result.deductible_fen if annual else 0,
        ),
    ]
    if tiers.counted or tiers.critical_pay or tiers.assistance_pay:
        effects.append(
            AccrueTiers(
                s.person_id,
                year,
                burden=tiers.counted,
                critical_paid=tiers.critical_pay,
                assistance_paid=tiers.assistance_pay,
            )
        )
    entry = PricedEntry(s.person_id, year, s.kind, result, counted_fen=tiers.counted)
    effects.append(RecordPriced(s.settlement_id, entry))
    return Outcome(result, tuple(effects))


class PolicyAmounts(TypedDict):
    """The amounts of a priced settlement, as `Priced` takes them; the tier fields with tiers."""

    total_fen: int
    self_pay_fen: int
    pre_self_pay_fen: int
    eligible_fen: int
    deductible_fen: int
    fund_pay_fen: int
    critical_pay_fen: NotRequired[int]
    assistance_pay_fen: NotRequired[int]
    due_fen: NotRequired[int]
    personal_pay_fen: int
    cap_reached: bool
    assistance_class: NotRequired[Literal["A", "B"] | None]


def add_tier_fields(amounts: PolicyAmounts, total: int, tiers: TierAmounts) -> None:
    """The tier fields of a priced result: `due = fund_pay + critical_pay + assistance_pay`
    and `personal_pay = total − due`."""
    due = amounts["fund_pay_fen"] + tiers.critical_pay + tiers.assistance_pay
    amounts["critical_pay_fen"] = tiers.critical_pay
    amounts["assistance_pay_fen"] = tiers.assistance_pay
    amounts["due_fen"] = due
    amounts["personal_pay_fen"] = total - due
    amounts["assistance_class"] = tiers.assistance_class


def is_covered(s: Settlement, filings: Iterable[Filing]) -> bool:
    """Whether a filing covers the settlement (same person, home province, destination, dates)."""
    return _covered(s, province_of(s.home_region), province_of(s.hospital_region), filings)


def _covered(s: Settlement, home: str, destination: str, filings: Iterable[Filing]) -> bool:
    """`is_covered` with the two provinces already known (a loop: most persons have none)."""
    admitted = s.admitted_on
    for f in filings:
        if (
            f.person_id == s.person_id
            and f.treatment_province == destination
            and f.home_region[:2] == home[:2]
            and f.valid_from <= admitted
            and (f.valid_to is None or admitted <= f.valid_to)
        ):
            return True
    return False


@dataclass(frozen=True, slots=True)
class ItemSplit:
    """How the items divide: paid by the patient, paid first by the patient, and in scope."""

    total: int
    self_pay: int
    pre_self_pay: int
    eligible: int


def has_amount_mismatch(s: Settlement) -> bool:
    """Whether some item's amount is not round_half_up(quantity × unit price)."""
    for item, q in zip(s.items, s.quantities_e4, strict=True):
        if item["amount_fen"] != (q * item["unit_price_fen"] * 2 + 10_000) // 20_000:
            return True
    return False


def split_items(s: Settlement, terms: dict[str, Terms]) -> ItemSplit:
    """Steps 1-3 of pricing.md for every item, summed."""
    return checked_split(s, terms)[1]


def checked_split(s: Settlement, terms: dict[str, Terms]) -> tuple[bool, ItemSplit]:
    """`has_amount_mismatch` and `split_items` in one pass over the items (the hot loop)."""
    mismatch = False
    total = self_pay = pre_self_pay = eligible = 0
    lookup = terms.get
    for item, quantity in zip(s.items, s.quantities_e4, strict=True):
        amount = item["amount_fen"]
        unit_price = item["unit_price_fen"]
        if amount != (quantity * unit_price * 2 + 10_000) // 20_000:  # line_amount
            mismatch = True
        total += amount
        entry = lookup(item["code"])
        if entry is None:
            self_pay += amount
            continue
        class_, b_selfpay_bp, cap = entry
        if class_ == "C":
            self_pay += amount
            continue
        base = amount
        if cap is not None and unit_price > cap:
            over = amount - line_amount(quantity, cap)
            self_pay += over
            base = amount - over
        if class_ == "B":
            pre = (base * b_selfpay_bp * 2 + 10_000) // 20_000  # share(base, b_selfpay_bp)
            pre_self_pay += pre
            base -= pre
        eligible += base
    return mismatch, ItemSplit(total, self_pay, pre_self_pay, eligible)


def apply_policy(
    s: Settlement, policy: Policy, split: ItemSplit, acc: Accumulator, filed: bool
) -> PolicyAmounts:
    """Deductible, bands, unfiled cut and annual cap: the amounts of a priced settlement."""
    level = s.hospital_level
    kp: InpatientBlock | AnnualBlock = getattr(policy, s.kind)
    if isinstance(kp, InpatientBlock):
        allowance = kp.deductible_fen.at(level)
    else:
        allowance = max(0, kp.annual_deductible_fen - acc.deductible_used)
    deductible = min(split.eligible, allowance)
    reimbursable = split.eligible - deductible
    cut = 0 if filed else policy.unfiled_ratio_cut_bp

    fund = 0
    lower = 0
    for band in kp.bands:
        upper = band.upto_fen
        part = reimbursable - lower if upper is None else min(reimbursable, upper) - lower
        if part <= 0:
            break
        fund += share(part, max(0, band.ratio_bp.at(level) - cut))
        if upper is None:
            break
        lower = upper

    remaining_cap = max(0, kp.annual_cap_fen - acc.fund_paid)
    fund_pay = min(fund, remaining_cap)
    return {
        "total_fen": split.total,
        "self_pay_fen": split.self_pay,
        "pre_self_pay_fen": split.pre_self_pay,
        "eligible_fen": split.eligible,
        "deductible_fen": deductible,
        "fund_pay_fen": fund_pay,
        "personal_pay_fen": split.total - fund_pay,
        "cap_reached": fund > remaining_cap,
    }


def reverse_settlement(r: Reversal, fingerprint: str, book: Book) -> Outcome:
    key = reversal_key(r.reversal_id)
    seen = book.fingerprint_of(key)
    if seen is not None:
        if seen == fingerprint:
            duplicate = build(Duplicate, settlement_id=r.settlement_id, reversal_id=r.reversal_id)
            return Outcome(duplicate)
        return Outcome(_rejected_reversal(r, "DUPLICATE_CONFLICT"))
    take = TakeId(key, fingerprint)

    entry = book.priced_entry(r.settlement_id)
    if entry is None or entry.person_id != r.person_id:
        return Outcome(_rejected_reversal(r, "UNKNOWN_SETTLEMENT"), (take,))
    if entry.reversed:
        return Outcome(_rejected_reversal(r, "ALREADY_REVERSED"), (take,))

    original = entry.result
    names = AMOUNT_FIELDS + TIER_FIELDS if original.has_tiers else AMOUNT_FIELDS
    result = build(
        Reversed,
        reversal_id=r.reversal_id,
        settlement_id=r.settlement_id,
        period=year_and_period(r.settled_at)[1],
        payer=original.payer,
        payee=original.payee,
        hospital_id=original.hospital_id,
        **{name: -getattr(original, name) for name in names},
    )
    annual = entry.kind != "inpatient"
    effects: list[Effect] = [
        take,
        Accrue(
            entry.person_id,
            entry.year,
            entry.kind,
            fund_paid=-original.fund_pay_fen,
            deductible_used=-original.deductible_fen if annual else 0,
        ),
    ]
    critical_paid = original.critical_pay_fen or 0
    assistance_paid = original.assistance_pay_fen or 0
    if entry.counted_fen or critical_paid or assistance_paid:
        # The original's isp only when it was counted, and its tier pays, back out.
        effects.append(
            AccrueTiers(
                entry.person_id,
                entry.year,
                burden=-entry.counted_fen,
                critical_paid=-critical_paid,
                assistance_paid=-assistance_paid,
            )
        )
    effects.append(MarkReversed(r.settlement_id))
    return Outcome(result, tuple(effects))


def _rejected_reversal(r: Reversal, reason: Reason) -> Rejected:
    return build(
        Rejected, settlement_id=r.settlement_id, reversal_id=r.reversal_id, reasons=[reason]
    )


# ---------------------------------------------------------------------------------------------
# The in-memory book


@dataclass
class MemoryBook:
    """A book held in memory: the offline commands' state, and the stream's per-batch cache."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    filings: dict[str, list[Filing]] = field(default_factory=dict)
    accumulators: dict[tuple[str, int, str], Accumulator] = field(default_factory=dict)
    priced: dict[str, PricedEntry] = field(default_factory=dict)
    assistance: dict[str, list[Assistance]] = field(default_factory=dict)
    tier_accumulators: dict[tuple[str, int], TierAccumulator] = field(default_factory=dict)

    def fingerprint_of(self, key: str) -> str | None:
        return self.fingerprints.get(key)

    def filings_of(self, person_id: str) -> Sequence[Filing]:
        return self.filings.get(person_id, ())

    def assistance_of(self, person_id: str) -> Sequence[Assistance]:
        return self.assistance.get(person_id, ())

    def accumulator(self, person_id: str, year: int, kind: str) -> Accumulator:
        return self.accumulators.get((person_id, year, kind), _ZERO)

    def tier_accumulator(self, person_id: str, year: int) -> TierAccumulator:
        return self.tier_accumulators.get((person_id, year), _NO_TIER_ACCUMULATOR)

    def priced_entry(self, settlement_id: str) -> PricedEntry | None:
        return self.priced.get(settlement_id)

    def apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            apply_effect(self, effect)


_ZERO = Accumulator()
_NO_TIER_ACCUMULATOR = TierAccumulator()


def accrue(acc: Accumulator, change: Accrue) -> Accumulator:
    """An accumulator after a change; reversals never take it below 0."""
    return Accumulator(
        fund_paid=max(0, acc.fund_paid + change.fund_paid),
        deductible_used=max(0, acc.deductible_used + change.deductible_used),
    )


def accrue_tiers(acc: TierAccumulator, change: AccrueTiers) -> TierAccumulator:
    """A tier accumulator after a change; reversals never take it below 0."""
    return TierAccumulator(
        burden=max(0, acc.burden + change.burden),
        critical_paid=max(0, acc.critical_paid + change.critical_paid),
        assistance_paid=max(0, acc.assistance_paid + change.assistance_paid),
    )


def apply_effect(book: MemoryBook, effect: Effect) -> None:
    # By exact type, the commonest first: a `match` on class patterns costs more per effect.
    if type(effect) is TakeId:
        book.fingerprints[effect.key] = effect.fingerprint
    elif type(effect) is Accrue:
        slot = (effect.person_id, effect.year, effect.kind)
        book.accumulators[slot] = accrue(book.accumulators.get(slot, _ZERO), effect)
    elif type(effect) is RecordPriced:
        book.priced[effect.settlement_id] = effect.entry
    elif type(effect) is AccrueTiers:
        tier_slot = (effect.person_id, effect.year)
        book.tier_accumulators[tier_slot] = accrue_tiers(
            book.tier_accumulators.get(tier_slot, _NO_TIER_ACCUMULATOR), effect
        )
    elif type(effect) is AddFiling:
        book.filings.setdefault(effect.filing.person_id, []).append(effect.filing)
    elif type(effect) is AddAssistance:
        book.assistance.setdefault(effect.record.person_id, []).append(effect.record)
    elif type(effect) is MarkReversed:
        settlement_id = effect.settlement_id
        book.priced[settlement_id] = replace(book.priced[settlement_id], reversed=True)
