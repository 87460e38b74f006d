"""The event stream: each step writes one line of some kind, with its intended outcome.

The `Simulator` decides what each line is; its collaborators, all drawing on the one seeded
generator, hold the rest: `Ids` mints identifiers, `Atlas` places patients and hospitals,
`Population` keeps the active persons, `Clock` the time, `EventFactory` builds the events and
`History` the bounded memory of earlier lines that later ones refer back to.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from random import Random
from typing import Any

from clearing.core.exact import line_amount
from clearing.core.models.types import quantity_e4
from clearing.ops.simulate.clock import DAY, Clock, Span, day_text, second_of_day, timestamp
from clearing.ops.simulate.events import EventFactory, Shape, assistance_event, filing_event
from clearing.ops.simulate.geography import NO_REFDATA_REGIONS, Atlas, Hospital
from clearing.ops.simulate.history import History
from clearing.ops.simulate.ids import Ids
from clearing.ops.simulate.jsonline import dump
from clearing.ops.simulate.mutators import MUTATIONS, Mutation
from clearing.ops.simulate.outcomes import Intent, expected_assistance_class, expected_reasons
from clearing.ops.simulate.people import KINDS, PROFILES, Person, Population
from clearing.ops.simulate.plants import PLANT_STEPS, Planter
from clearing.ops.simulate.refdata import ItemCode, RefIndex
from clearing.ops.simulate.weighted import WeightedTable


@dataclass(frozen=True)
class Mix:
    """Shares of the kinds of line in the stream (each step writes exactly one line)."""

    filing: float = 0.095
    assistance: float = 0.006
    visit: float = 0.620
    new_unfiled: float = 0.070
    same_province: float = 0.022
    no_refdata: float = 0.004
    last_year: float = 0.002
    reversal: float = 0.013
    already_reversed: float = 0.0015
    unknown_reversal: float = 0.0035
    exact_duplicate: float = 0.010
    conflicting_duplicate: float = 0.006
    invalid: float = 0.046
    # Planted fund-safety cases (`plants`): each writes two or three lines.
    overlapping_stays: float = 0.002
    outpatient_during_stay: float = 0.002
    quick_readmission: float = 0.002
    duplicate_billing: float = 0.002
    # ... and their near misses, which must not be flagged.
    same_day_transfer: float = 0.002
    late_or_other_readmission: float = 0.002
    changed_rebill: float = 0.002
    visit_on_stay_edge: float = 0.001
    # Settlements and reversals of the one or two hospitals a period with many reversals.
    high_reversal: float = 0.003
    amount_mismatch: float = 0.006  # of settlements, on top of the above
    emergency: dict[str, float] = field(
        default_factory=lambda: {"inpatient": 0.08, "outpatient": 0.04, "chronic": 0.01}
    )


Line = tuple[str, Intent]


class Simulator:
    """Writes one bundle's event stream; holds only bounded state."""

    def __init__(
        self,
        seed: int,
        events: int,
        span: Span,
        refs: RefIndex,
        pool: Sequence[ItemCode],
        mix: Mix,
        include_last_year: bool,
    ) -> None:
        self.rng = rng = Random(f"clearing-simulate/{seed}/events")
        self.events = events
        self.span = span
        self.refs = refs
        self.mix = mix
        # The order matters: the id salt is drawn first, then the hospitals.
        self.ids = Ids(rng)
        self.atlas = Atlas(rng)
        self.clock = Clock(rng, span, events)
        self.population = Population(rng, self.atlas, self.ids, max(16, min(50_000, events // 40)))
        self.factory = EventFactory(rng, self.ids, self.clock, pool, mix.emergency)
        self.history = History(rng)
        self.recent_assistance: deque[str] = deque(maxlen=64)
        # Lines already made that the next steps write (the rest of a planted case).
        self.pending: deque[Line] = deque()
        self.remaining = events  # lines still to write after the current one
        # Priced settlements by (month, hospital_id): a few thousand counters at most.
        self.priced_at: dict[tuple[str, str], int] = {}
        steps = [
            ("filing", mix.filing),
            ("assistance", mix.assistance),
            ("visit", mix.visit),
            ("new_unfiled", mix.new_unfiled),
            ("same_province", mix.same_province),
            ("no_refdata", mix.no_refdata),
            ("last_year", mix.last_year if include_last_year else 0.0),
            ("reversal", mix.reversal),
            ("already_reversed", mix.already_reversed),
            ("unknown_reversal", mix.unknown_reversal),
            ("exact_duplicate", mix.exact_duplicate),
            ("conflicting_duplicate", mix.conflicting_duplicate),
            ("invalid", mix.invalid),
            *((name, getattr(mix, name)) for name in PLANT_STEPS),
        ]
        self.steps = WeightedTable.of([(name, w) for name, w in steps if w > 0])
        self.mutations: WeightedTable[tuple[str, Mutation, str]] = WeightedTable.of(
            [((t, m, base), w) for t, w, m, base in MUTATIONS]
        )
        total = sum(w for _, w in steps if w > 0)
        self.planter = Planter(self, mix.high_reversal / total if total else 0.0)

    @property
    def persons_made(self) -> int:
        return self.ids.persons

    def lines(self) -> Iterator[Line]:
        handlers: dict[str, Callable[[], Line]] = {
            "filing": self.step_filing,
            "assistance": self.step_assistance,
            "visit": self.step_visit,
            "new_unfiled": self.step_new_unfiled,
            "same_province": self.step_same_province,
            "no_refdata": self.step_no_refdata,
            "last_year": self.step_last_year,
            "reversal": self.step_reversal,
            "already_reversed": self.step_already_reversed,
            "unknown_reversal": self.step_unknown_reversal,
            "exact_duplicate": self.step_exact_duplicate,
            "conflicting_duplicate": self.step_conflicting_duplicate,
            "invalid": self.step_invalid,
            **{name: self.planter.step(name) for name in PLANT_STEPS},
        }
        for step in range(self.events):
            self.clock.advance(step)
            self.remaining = self.events - step - 1
            if self.pending:
                yield self.pending.popleft()
            else:
                yield handlers[self.steps.pick(self.rng)]()

    # -- settlements -----------------------------------------------------------------------

    def settle(
        self, person: Person, kind: str, hospital: Hospital, local: int, mismatch: bool = False
    ) -> Line:
        """Write a settlement for the person and work out its fate."""
        line, _ = self.settle_event(person, kind, hospital, local, mismatch)
        return line

    def settle_event(
        self,
        person: Person,
        kind: str,
        hospital: Hospital,
        local: int,
        mismatch: bool = False,
        shape: Shape | None = None,
        reversible: bool = True,
    ) -> tuple[Line, dict[str, Any]]:
        """A settlement for the person, its fate, and the event; one not `reversible` is never
        offered to the reversal steps (its own planted case reverses it)."""
        event, admitted, emergency = self.factory.settlement(person, kind, hospital, local, shape)
        person.last_day = max(person.last_day or 0, local // DAY)
        covered = person.filing is not None and person.filing.covers(hospital.province, admitted)
        if mismatch:
            item = self.rng.choice(event["items"])
            item["amount_fen"] += self.rng.choice((1, 1, 2, 10, 100, 1000))
        year = date.fromordinal(local // DAY).year
        reasons = expected_reasons(
            self.refs,
            kind=kind,
            home_region=person.home_region,
            scheme=person.scheme,
            hospital_region=hospital.region,
            year=year,
            emergency=emergency,
            covered=covered,
            mismatch=mismatch,
        )
        line = dump(event)
        settlement = (event["settlement_id"], person.person_id)
        self.history.note_line("settlement", line)
        if reasons:
            self.history.note_rejected(settlement)
            return (line, Intent("rejected", reasons, kind)), event
        month = day_text(local // DAY)[:7]
        if reversible:
            self.history.note_priced(month, settlement, line)
        key = (month, hospital.hospital_id)
        self.priced_at[key] = self.priced_at.get(key, 0) + 1
        assistance_class = expected_assistance_class(
            self.refs,
            kind=kind,
            home_region=person.home_region,
            scheme=person.scheme,
            year=year,
            covering=person.assistance_class(admitted),
        )
        filed = emergency or covered
        intent = Intent("priced", [], kind, filed, assistance_class=assistance_class)
        return (line, intent), event

    def mismatch(self) -> bool:
        return self.rng.random() < self.mix.amount_mismatch

    def step_filing(self) -> Line:
        profile = self.population.filed_profile()
        person = self.population.make_person(profile)
        person.filing = filing = self.population.make_filing(person, self.clock.today)
        self.population.add(person)
        filing_id = f"F{person.person_id[1:]}{self.rng.randint(1, 9)}"
        kind = PROFILES[profile].filing_kind
        event = filing_event(filing_id, person.person_id, filing, kind, filing.valid_to)
        return dump(event), Intent("filed")

    def step_assistance(self) -> Line:
        """The home province names an active person eligible for medical assistance; now and
        then it sends an earlier record again (records are not deduplicated: it registers)."""
        if self.recent_assistance and self.rng.random() < 0.05:
            return self.rng.choice(self.recent_assistance), Intent("registered")
        person = self.population.assistance_candidate()
        if person is None:
            return self.step_filing()
        aid = self.population.make_aid(person, self.clock.today)
        person.aids.append(aid)
        assistance_id = f"AS{person.person_id[1:]}{len(person.aids) - 1}"
        line = dump(assistance_event(assistance_id, person.person_id, aid))
        self.recent_assistance.append(line)
        return line, Intent("registered")

    def step_visit(self) -> Line:
        person = self.population.take_visit()
        if person is None:
            return self.step_new_unfiled()
        kind = self.population.pick_kind(person)
        hospital = self.population.visit_hospital(person)
        return self.settle(person, kind, hospital, self.clock.settle_time(), self.mismatch())

    def step_new_unfiled(self) -> Line:
        person = self.population.make_person("unfiled")
        person.remaining -= 1
        if person.remaining > 0:
            self.population.add(person)
        kind = self.population.pick_kind(person)
        return self.settle(person, kind, person.hospital, self.clock.settle_time(), self.mismatch())

    def step_same_province(self) -> Line:
        """A hospital claiming a local patient through the cross-province channel."""
        person = self.population.make_person("unfiled")
        province = self.atlas.destination()
        person.home_region = self.population.home_region(province)
        hospital = self.atlas.hospital_in(province.code)
        kind = self.rng.choices(KINDS, weights=(50, 45, 5))[0]
        return self.settle(person, kind, hospital, self.clock.now)

    def step_no_refdata(self) -> Line:
        """A payer or a payee for which no refdata is ever published."""
        person = self.population.make_person("unfiled")
        if self.rng.random() < 0.5:
            person.home_region = self.rng.choice(NO_REFDATA_REGIONS)
            return self.settle(person, "inpatient", person.hospital, self.clock.now)
        return self.settle(person, "inpatient", self.atlas.foreign_hospital(), self.clock.now)

    def step_last_year(self) -> Line:
        """A late submission from last December, a year with no refdata in the bundle."""
        person = self.population.make_person("unfiled")
        last_december = date(self.span.year - 1, 12, 1).toordinal()
        local = (last_december + self.rng.randint(0, 30)) * DAY + second_of_day(self.rng.random())
        return self.settle(person, "inpatient", person.hospital, local)

    # -- reversals -------------------------------------------------------------------------

    def reversal_line(self, settlement_id: str, person_id: str, region: str) -> str:
        line = dump(self.factory.reversal(settlement_id, person_id, region))
        self.history.note_line("reversal", line)
        return line

    def step_reversal(self) -> Line:
        target = self.history.take_priced()
        if target is None:
            return self.step_visit()
        sid, pid = target
        line = self.reversal_line(sid, pid, sid[1:7])
        self.history.note_reversed(target)
        return line, Intent("reversed")

    def step_already_reversed(self) -> Line:
        if not self.history.reversed:
            return self.step_visit()
        sid, pid = self.rng.choice(self.history.reversed)
        return self.reversal_line(sid, pid, sid[1:7]), Intent("rejected", ["ALREADY_REVERSED"])

    def step_unknown_reversal(self) -> Line:
        """A reversal of a settlement never priced for that person: made up, rejected, or
        priced for someone else."""
        r = self.rng.random()
        if r < 0.4 or not self.history.rejected:
            sid, pid = f"SX{self.rng.getrandbits(40):012x}", self.ids.person()
        elif r < 0.7:
            sid, pid = self.rng.choice(self.history.rejected)
        else:
            chosen = self.history.choose_priced()
            if chosen is None:
                return self.step_visit()
            bucket, index = chosen
            sid, pid = bucket[index][0], self.ids.person()
        region = sid[1:7] if sid[1:7].isdigit() else self.atlas.destination().code
        return self.reversal_line(sid, pid, region), Intent("rejected", ["UNKNOWN_SETTLEMENT"])

    # -- retransmissions -------------------------------------------------------------------

    def step_exact_duplicate(self) -> Line:
        """A retransmission: the same line again, or the same object written differently."""
        if not self.history.recent_lines:
            return self.step_visit()
        _, line = self.rng.choice(self.history.recent_lines)
        if self.rng.random() < 0.2:
            line = json.dumps(
                json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
        return line, Intent("duplicate")

    def step_conflicting_duplicate(self) -> Line:
        """A resubmission under a used settlement_id with changed (still priceable) content."""
        if not self.history.recent_priced:
            return self.step_visit()
        event = json.loads(self.rng.choice(self.history.recent_priced))
        item = self.rng.choice(event["items"])
        old = item["quantity"]
        new = next(q for q in ("2", "3", "1") if q != old)
        item["quantity"] = new
        item["amount_fen"] = line_amount(quantity_e4(new), item["unit_price_fen"])
        return dump(event), Intent("rejected", ["DUPLICATE_CONFLICT"])

    # -- malformed lines -------------------------------------------------------------------

    def step_invalid(self) -> Line:
        tag, mutation, base = self.mutations.pick(self.rng)
        event = self.throwaway(base)
        line, detail = mutation(self.rng, event)
        return line, Intent("invalid", invalid=tag, detail=detail)

    def throwaway(self, base: str) -> dict[str, Any]:
        """A fresh valid event that no later line relies on, to be spoilt."""
        person = self.population.make_person("unfiled")
        if base == "assistance":
            aid = self.population.make_aid(person, self.clock.today)
            if aid.valid_to is None:
                aid = replace(aid, valid_to=aid.valid_from + 365)
            return assistance_event(f"AS{person.person_id[1:]}0", person.person_id, aid)
        if base == "filing":
            profile = self.population.filed_profile()
            person.profile = profile
            filing = self.population.make_filing(person, self.clock.today)
            kind = PROFILES[profile].filing_kind
            filing_id = f"F{person.person_id[1:]}0"
            return filing_event(filing_id, person.person_id, filing, kind, filing.valid_from + 180)
        if base == "reversal":
            sid = self.ids.settlement(person.hospital.region)
            return self.factory.reversal(sid, person.person_id, person.hospital.region)
        kind = self.population.pick_kind(person)
        event, _, _ = self.factory.settlement(person, kind, person.hospital, self.clock.now)
        event["settled_at"] = timestamp(self.clock.now)
        return event
