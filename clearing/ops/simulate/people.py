"""The insured persons of the stream: kinds of patient, their filings and medical-assistance
records, and the bounded pool of those still active."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from random import Random

from clearing.core.models.types import province_of
from clearing.ops.simulate.geography import Atlas, Hospital, Province, city_code
from clearing.ops.simulate.ids import Ids
from clearing.ops.simulate.weighted import WeightedTable

KINDS = ("inpatient", "outpatient", "chronic")


@dataclass(frozen=True, slots=True)
class Filing:
    """A registration for treatment in another province (异地就医备案), as dates by ordinal."""

    home_region: str
    treatment_province: str
    valid_from: int
    valid_to: int | None

    def covers(self, hospital_province: str, admitted: int) -> bool:
        if self.treatment_province != hospital_province or admitted < self.valid_from:
            return False
        return self.valid_to is None or admitted <= self.valid_to


@dataclass(frozen=True, slots=True)
class Aid:
    """A medical-assistance record (救助对象认定) of the home province, as dates by ordinal."""

    home_region: str
    klass: str
    valid_from: int
    valid_to: int | None

    def covers(self, home_region: str, admitted: int) -> bool:
        if province_of(self.home_region) != province_of(home_region):
            return False
        if admitted < self.valid_from:
            return False
        return self.valid_to is None or admitted <= self.valid_to


@dataclass(slots=True)
class Person:
    """An insured person active in the stream, with the visits still to come, the
    medical-assistance records registered for them so far, and the day of their latest
    settlement (a later stay is not admitted before it: one person is in one bed at a time)."""

    person_id: str
    home_region: str
    scheme: str
    profile: str
    hospital: Hospital
    remaining: int
    filing: Filing | None
    aids: list[Aid] = field(default_factory=list)
    last_day: int | None = None

    def assistance_class(self, admitted: int) -> str | None:
        """The class of the records covering an admission: `A` over `B`, None without one."""
        classes = {aid.klass for aid in self.aids if aid.covers(self.home_region, admitted)}
        if "A" in classes:
            return "A"
        return "B" if "B" in classes else None


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of patient: why they are away from home and how they use care there.

    `heavy` patients have serious diagnoses; `inpatient_mix` is the item mix of each of their
    stays (None: an ordinary stay, a fifth of them surgical), `chronic_mix` that of their
    outpatient chronic care."""

    filing_kind: str | None
    kind_weights: tuple[int, int, int]
    mean_extra_visits: float
    heavy: bool = False
    inpatient_mix: str | None = None
    chronic_mix: str = "chronic"


PROFILES: dict[str, Profile] = {
    # Retirees living with their children or wintering in Hainan (异地安置).
    "settled": Profile("long_term", (28, 56, 16), 9.0),
    # Referred by a home hospital for treatment unavailable at home (转诊).
    "referral": Profile("referral", (78, 18, 4), 2.0),
    # Working or staying away for a while (临时外出).
    "temporary": Profile("temporary", (30, 60, 10), 4.0),
    # Cancer or dialysis patients with many costly admissions: they reach the annual caps.
    "heavy": Profile("referral", (62, 0, 38), 12.0, heavy=True, inpatient_mix="heavy"),
    # Leukaemia, transplant or advanced cancer patients with repeated very costly stays and
    # targeted drugs between them: they cross the serious-illness and assistance caps.
    "catastrophic": Profile(
        "referral",
        (80, 0, 20),
        7.0,
        heavy=True,
        inpatient_mix="catastrophic",
        chronic_mix="targeted",
    ),
    # Fell ill while travelling without filing: inpatient at a cut, outpatient usually refused.
    "unfiled": Profile(None, (58, 42, 0), 0.5),
}
FILED_PROFILE_WEIGHTS = {
    "settled": 40,
    "referral": 29,
    "temporary": 27,
    "heavy": 4,
    "catastrophic": 1,
}


class Population:
    """Makes persons and their filings, and keeps at most `limit` of them active."""

    def __init__(self, rng: Random, atlas: Atlas, ids: Ids, limit: int) -> None:
        self.rng = rng
        self.atlas = atlas
        self.ids = ids
        self.limit = limit
        self.active: list[Person] = []
        self.filed_profiles = WeightedTable.of(list(FILED_PROFILE_WEIGHTS.items()))

    def home_region(self, province: Province) -> str:
        """A city of the province (the capital more often), sometimes the province itself."""
        if self.rng.random() < 0.2:
            return province.code
        if province.cities == 1 or self.rng.random() < 0.3:
            return city_code(province, 1)
        return city_code(province, self.rng.randint(1, province.cities))

    def visits(self, mean_extra: float) -> int:
        """1 plus a geometric number of further visits with the given mean."""
        if mean_extra <= 0:
            return 1
        p = 1.0 / (1.0 + mean_extra)
        return 1 + int(math.log(1.0 - self.rng.random()) / math.log(1.0 - p))

    def make_person(self, profile_name: str) -> Person:
        home = self.atlas.origin()
        destination = self.atlas.destination_for(home)
        scheme = "employee" if self.rng.random() < 0.56 else "resident"
        profile = PROFILES[profile_name]
        return Person(
            self.ids.person(),
            self.home_region(home),
            scheme,
            profile_name,
            self.atlas.hospital_in(destination.code),
            self.visits(profile.mean_extra_visits),
            None,
        )

    def filed_profile(self) -> str:
        """The profile of a person who files before travelling."""
        return self.filed_profiles.pick(self.rng)

    def make_filing(self, person: Person, today: int) -> Filing:
        """When and for how long the person registered: long-term filings are often open-ended,
        referrals short; now and then a filing has already lapsed."""
        kind = PROFILES[person.profile].filing_kind
        rng = self.rng
        if kind == "long_term":
            valid_from = today - rng.randint(0, 700)
            valid_to = None if rng.random() < 0.7 else valid_from + rng.randint(700, 1100)
        elif kind == "referral":
            valid_from = today - rng.randint(0, 20)
            valid_to = valid_from + rng.randint(60, 180)
        else:
            valid_from = today - rng.randint(0, 60)
            valid_to = None if rng.random() < 0.2 else valid_from + rng.randint(90, 365)
        if valid_to is not None and rng.random() < 0.04:
            valid_to = today - rng.randint(1, 60)
            valid_from = min(valid_from, valid_to - 30)
        home = person.home_region
        filing_home = province_of(home) if rng.random() < 0.15 else home
        return Filing(filing_home, person.hospital.province, valid_from, valid_to)

    def make_aid(self, person: Person, today: int) -> Aid:
        """A record the person's home province issues: class A (特困/低保) or B, valid for a
        year or two from a recent day; some have already lapsed, a few are open-ended, a few
        start in the coming weeks."""
        rng = self.rng
        klass = "A" if rng.random() < 0.4 else "B"
        valid_from = today - rng.randint(0, 300)
        r = rng.random()
        valid_to: int | None
        if r < 0.08:
            valid_to = None
        elif r < 0.22:
            valid_to = today - rng.randint(1, 120)
            valid_from = min(valid_from, valid_to - rng.randint(30, 365))
        elif r < 0.27:
            valid_from = today + rng.randint(1, 30)
            valid_to = valid_from + 365
        else:
            valid_to = valid_from + rng.choice((365, 365, 730)) - 1
        home = person.home_region
        aid_home = province_of(home) if rng.random() < 0.15 else home
        return Aid(aid_home, klass, valid_from, valid_to)

    def assistance_candidate(self) -> Person | None:
        """An active person (with care still to come) the home province names for assistance:
        residents mostly, as low incomes are insured as residents."""
        if not self.active:
            return None
        person = self.rng.choice(self.active)
        for _ in range(2):
            if person.scheme == "resident":
                break
            person = self.rng.choice(self.active)
        return person

    def add(self, person: Person) -> None:
        """Make the person active, in place of a random one when the pool is full."""
        if len(self.active) >= self.limit:
            self.active[self.rng.randrange(len(self.active))] = person
        else:
            self.active.append(person)

    def take_visit(self) -> Person | None:
        """A random active person, who then has one visit fewer; None when nobody is active."""
        if not self.active:
            return None
        index = self.rng.randrange(len(self.active))
        person = self.active[index]
        person.remaining -= 1
        if person.remaining <= 0:
            self.active[index] = self.active[-1]
            self.active.pop()
        return person

    def pick_kind(self, person: Person) -> str:
        weights = PROFILES[person.profile].kind_weights
        return self.rng.choices(KINDS, weights=weights)[0]

    def visit_hospital(self, person: Person) -> Hospital:
        """The person's usual hospital; now and then another one, rarely in another province."""
        r = self.rng.random()
        if r < 0.75:
            return person.hospital
        home = province_of(person.home_region)
        if r < 0.97:
            return self.atlas.hospital_in(person.hospital.province)
        while True:
            hospital = self.atlas.hospital_in(self.atlas.destination().code)
            if hospital.province != home:
                return hospital
