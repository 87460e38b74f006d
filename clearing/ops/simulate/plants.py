"""Planted fund-safety cases (智能监控, `clearing.core.monitoring`) and their near misses.

Each person-level case is a fresh person of its own, never seen again by the rest of the
stream, whose two (or, with a filing, three) lines are made together and written on
consecutive steps; every settlement of a case prices. The line that completes a case carries
it in its intent: `{"case": "flag" | "near_miss", "rule": ..., "settlement_ids": [earlier,
later]}`, so the flag it must (or must not) raise can be checked.

- `overlapping_stays`: two stays at hospitals in different provinces (where possible), the
  second admitted before the first was discharged.
- `outpatient_during_stay`: a filed person's outpatient visit strictly inside a stay; either
  line first, the visit settled on its day (a late submission when it is second).
- `quick_readmission`: a stay discharged 0–15 days before a readmission at the same hospital
  with the same diagnosis (the first stay a late submission).
- `duplicate_billing`: a stay billed again under a new settlement_id, its items reordered.
- Near misses: `same_day_transfer` (admitted elsewhere on the discharge day),
  `late_or_other_readmission` (on day 16, or within 15 days with another diagnosis category),
  `changed_rebill` (billed again with one quantity changed), `visit_on_stay_edge` (an
  outpatient visit on the admission or the discharge day).
- `high_reversal`: in a period with the volume for it, one or two hospitals of the provinces
  that draw few patients settle with new patients and reverse their own settlements, keeping
  15–30 % of the hospital's priced settlements of the period reversed; once a hospital has 20
  settlements and more than 10 % reversed, its reversals carry
  `{"case": "flag", "rule": "HIGH_REVERSAL_RATE", "period": ..., "hospital_id": ...}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clearing.core.exact import line_amount
from clearing.core.models.types import province_of, quantity_e4
from clearing.ops.simulate.clock import DAY, day_text, second_of_day
from clearing.ops.simulate.events import DIAGNOSES, Shape, filing_event
from clearing.ops.simulate.geography import PROVINCES, Hospital
from clearing.ops.simulate.jsonline import dump
from clearing.ops.simulate.outcomes import Intent
from clearing.ops.simulate.people import PROFILES, Filing, Person

if TYPE_CHECKING:
    from clearing.ops.simulate.stream import Line, Simulator

PLANT_STEPS = (
    "overlapping_stays",
    "outpatient_during_stay",
    "quick_readmission",
    "duplicate_billing",
    "same_day_transfer",
    "late_or_other_readmission",
    "changed_rebill",
    "visit_on_stay_edge",
    "high_reversal",
)

READMISSION_DAYS = 15
MIN_SETTLEMENTS = 20
# Provinces that draw few patients: their hospitals' own volume is small.
QUIET_PROVINCES = tuple(p.code for p in PROVINCES if p.destination <= 6)
# Rogue steps a period needs for one hospital, and for two.
ONE_ROGUE, TWO_ROGUES = 30, 60

Json = dict[str, Any]
Settled = tuple["Line", Json]


def case(kind: str, rule: str, *settlements: Json) -> Json:
    return {"case": kind, "rule": rule, "settlement_ids": [s["settlement_id"] for s in settlements]}


class Planter:
    """Makes the planted cases on the simulator's generator, clock and factories."""

    def __init__(self, sim: Simulator, rogue_share: float) -> None:
        self.sim = sim
        self.rng = sim.rng
        self.rogue_share = rogue_share
        self.rogues: dict[str, list[Hospital]] = {}
        self.rogue_targets: dict[tuple[str, str], float] = {}
        self.rogue_pool: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.rogue_reversed: dict[tuple[str, str], int] = {}

    def step(self, name: str) -> Callable[[], Line]:
        make: Callable[[], list[Line] | None] = getattr(self, name)

        def run() -> Line:
            lines = make()
            if not lines:
                return self.sim.step_visit()
            self.sim.pending.extend(lines[1:])
            return lines[0]

        return run

    # -- helpers ---------------------------------------------------------------------------

    def room(self, lines: int, days_back: int = 0) -> bool:
        """Whether a case of `lines` lines fits before the end and `days_back` days in the span."""
        sim = self.sim
        return sim.remaining >= lines - 1 and sim.clock.today - days_back >= sim.span.first_day

    def past(self, days: int) -> int:
        """An instant `days` China-time days before today (now, for 0)."""
        if days == 0:
            return self.sim.clock.now
        return (self.sim.clock.today - days) * DAY + second_of_day(self.rng.random())

    def person(self, profile: str = "unfiled") -> Person:
        return self.sim.population.make_person(profile)

    def elsewhere(self, person: Person, first: Hospital) -> Hospital:
        """A hospital in a third province (neither home nor the first), else another one in the
        first's province."""
        home = province_of(person.home_region)
        atlas = self.sim.atlas
        for _ in range(8):
            hospital = atlas.hospital_in(atlas.destination().code)
            if hospital.province not in (home, first.province):
                return hospital
        while True:
            hospital = atlas.hospital_in(first.province)
            if hospital.hospital_id != first.hospital_id:
                return hospital

    def stay(
        self,
        person: Person,
        hospital: Hospital,
        local: int,
        admitted: int,
        diagnosis: str | None = None,
        items: list[Json] | None = None,
        reversible: bool = True,
    ) -> Settled:
        """An inpatient settlement (of a case: it prices, or the case is not recorded)."""
        shape = Shape(admitted=admitted, diagnosis=diagnosis, items=items)
        return self.sim.settle_event(
            person, "inpatient", hospital, local, shape=shape, reversible=reversible
        )

    def visit(self, person: Person, hospital: Hospital, day: int) -> Settled:
        """An outpatient visit on `day`, settled that day."""
        local = self.sim.clock.now if day == self.sim.clock.today else self.past_day(day)
        return self.sim.settle_event(
            person, "outpatient", hospital, local, shape=Shape(admitted=day)
        )

    def past_day(self, day: int) -> int:
        return day * DAY + second_of_day(self.rng.random())

    def filed_person(self) -> tuple[Person, Line]:
        """A person who filed for the province of their usual hospital weeks ago."""
        person = self.person("temporary")
        today = self.sim.clock.today
        person.filing = Filing(
            person.home_region, person.hospital.province, today - self.rng.randint(20, 90), None
        )
        filing_id = f"F{person.person_id[1:]}{self.rng.randint(1, 9)}"
        kind = PROFILES["temporary"].filing_kind
        event = filing_event(filing_id, person.person_id, person.filing, kind, None)
        return person, (dump(event), Intent("filed"))

    def other_category(self, diagnosis: str) -> str:
        return self.rng.choice([d for d in DIAGNOSES["inpatient"] if d[:3] != diagnosis[:3]])

    @staticmethod
    def pair(kind: str, rule: str, first: Settled, second: Settled) -> list[Line]:
        """The two settlements' lines, the second carrying the case when both price."""
        if first[0][1].status == second[0][1].status == "priced":
            second[0][1].plant = case(kind, rule, first[1], second[1])
        return [first[0], second[0]]

    # -- person-level cases ----------------------------------------------------------------

    def overlapping_stays(self) -> list[Line] | None:
        if not self.room(2):
            return None
        person = self.person()
        today = self.sim.clock.today
        first = self.stay(person, person.hospital, self.past(0), today - self.rng.randint(2, 12))
        other = self.elsewhere(person, person.hospital)
        inside = self.rng.randint(1, 5)
        second = self.stay(person, other, self.past(0), today - inside)
        return self.pair("flag", "OVERLAPPING_STAYS", first, second)

    def same_day_transfer(self) -> list[Line] | None:
        """Discharged `k` days ago (a late submission) and admitted elsewhere that day."""
        k = self.rng.randint(1, 6)
        if not self.room(2, k):
            return None
        person = self.person()
        day = self.sim.clock.today - k
        first = self.stay(person, person.hospital, self.past(k), day - self.rng.randint(1, 10))
        second = self.stay(person, self.elsewhere(person, person.hospital), self.past(0), day)
        return self.pair("near_miss", "OVERLAPPING_STAYS", first, second)

    def outpatient_during_stay(self) -> list[Line] | None:
        length = self.rng.randint(2, 10)
        if not self.room(3, length - 1):
            return None
        person, filing = self.filed_person()
        today = self.sim.clock.today
        admitted = today - length
        visit_day = admitted + self.rng.randint(1, length - 1)
        return self.stay_and_visit(person, filing, admitted, visit_day, "flag")

    def visit_on_stay_edge(self) -> list[Line] | None:
        length = self.rng.randint(1, 10)
        if not self.room(3, length):
            return None
        person, filing = self.filed_person()
        admitted = self.sim.clock.today - length
        visit_day = self.rng.choice((admitted, self.sim.clock.today))
        return self.stay_and_visit(person, filing, admitted, visit_day, "near_miss")

    def stay_and_visit(
        self, person: Person, filing: Line, admitted: int, visit_day: int, kind: str
    ) -> list[Line] | None:
        hospital = person.hospital
        visit_first = self.rng.random() < 0.5
        if visit_first:
            visit = self.visit(person, hospital, visit_day)
            stay = self.stay(person, hospital, self.past(0), admitted)
            return [filing, *self.pair(kind, "OUTPATIENT_DURING_STAY", visit, stay)]
        stay = self.stay(person, hospital, self.past(0), admitted)
        visit = self.visit(person, hospital, visit_day)
        return [filing, *self.pair(kind, "OUTPATIENT_DURING_STAY", stay, visit)]

    def readmission(self, gap: int, same: bool, kind: str) -> list[Line] | None:
        """A stay discharged `gap` + `length` days ago, then one admitted `gap` days after it."""
        length = self.rng.randint(1, 8)
        if not self.room(2, gap + length):
            return None
        person = self.person()
        today = self.sim.clock.today
        diagnosis = self.rng.choice(DIAGNOSES["inpatient"])
        discharged = gap + length
        first = self.stay(
            person,
            person.hospital,
            self.past(discharged),
            today - discharged - self.rng.randint(1, 10),
            diagnosis,
        )
        again = diagnosis if same else self.other_category(diagnosis)
        second = self.stay(person, person.hospital, self.past(0), today - length, again)
        return self.pair(kind, "QUICK_READMISSION", first, second)

    def quick_readmission(self) -> list[Line] | None:
        return self.readmission(self.rng.randint(0, READMISSION_DAYS), True, "flag")

    def late_or_other_readmission(self) -> list[Line] | None:
        if self.rng.random() < 0.5:
            return self.readmission(READMISSION_DAYS + 1, True, "near_miss")
        return self.readmission(self.rng.randint(0, READMISSION_DAYS), False, "near_miss")

    def rebill(self, changed: bool) -> list[Line] | None:
        """A stay billed twice; the second bill's items reordered, or one quantity changed."""
        if not self.room(2):
            return None
        person = self.person()
        admitted = self.sim.clock.today - self.rng.randint(1, 12)
        first = self.stay(person, person.hospital, self.past(0), admitted)
        if first[0][1].status != "priced":
            return [first[0]]
        items = [dict(item) for item in first[1]["items"]]
        self.rng.shuffle(items)
        if changed:
            item = self.rng.choice(items)
            old = quantity_e4(item["quantity"])
            item["quantity"] = next(q for q in ("2", "3", "1") if quantity_e4(q) != old)
            item["amount_fen"] = line_amount(quantity_e4(item["quantity"]), item["unit_price_fen"])
        diagnosis = first[1]["diagnosis"][0]
        second = self.stay(person, person.hospital, self.past(0), admitted, diagnosis, items)
        return self.pair("near_miss" if changed else "flag", "DUPLICATE_BILLING", first, second)

    def duplicate_billing(self) -> list[Line] | None:
        return self.rebill(False)

    def changed_rebill(self) -> list[Line] | None:
        return self.rebill(True)

    # -- the hospital-level case -----------------------------------------------------------

    def rogue_hospitals(self, month: str) -> list[Hospital]:
        """The month's hospitals with many reversals: none when its volume is too small."""
        if month not in self.rogues:
            span = self.sim.span
            steps = self.rogue_share * self.sim.events * min(31, span.days) / span.days
            count = 2 if steps >= TWO_ROGUES else 1 if steps >= ONE_ROGUE else 0
            hospitals: list[Hospital] = []
            while len(hospitals) < count:
                hospital = self.sim.atlas.hospital_in(self.rng.choice(QUIET_PROVINCES))
                if hospital not in hospitals:
                    hospitals.append(hospital)
                    self.rogue_targets[(month, hospital.hospital_id)] = self.rng.uniform(0.18, 0.28)
            self.rogues[month] = hospitals
        return self.rogues[month]

    def high_reversal(self) -> list[Line] | None:
        sim = self.sim
        month = day_text(sim.clock.today)[:7]
        hospitals = self.rogue_hospitals(month)
        if not hospitals:
            return None
        hospital = self.rng.choice(hospitals)
        key = (month, hospital.hospital_id)
        settled = sim.priced_at.get(key, 0)
        reversed_ = self.rogue_reversed.get(key, 0)
        pool = self.rogue_pool.setdefault(key, [])
        if pool and settled >= 10 and reversed_ < self.rogue_targets[key] * settled:
            sid, pid = pool.pop(self.rng.randrange(len(pool)))
            line = sim.reversal_line(sid, pid, sid[1:7])
            sim.history.note_reversed((sid, pid))
            self.rogue_reversed[key] = reversed_ = reversed_ + 1
            intent = Intent("reversed")
            if settled >= MIN_SETTLEMENTS and reversed_ * 10 > settled:
                intent.plant = {
                    "case": "flag",
                    "rule": "HIGH_REVERSAL_RATE",
                    "period": month,
                    "hospital_id": hospital.hospital_id,
                }
            return [(line, intent)]
        person = self.person()
        while province_of(person.home_region) == hospital.province:
            person = self.person()
        admitted = sim.clock.today - self.rng.randint(1, 10)
        stay = self.stay(person, hospital, self.past(0), admitted, reversible=False)
        if stay[0][1].status == "priced":
            pool.append((stay[1]["settlement_id"], person.person_id))
        return [stay[0]]
