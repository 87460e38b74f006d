"""The insured persons of the stream: kinds of patient, their filings, and the bounded pool of
those still active."""

from __future__ import annotations

import math
from dataclasses import dataclass
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


@dataclass(slots=True)
class Person:
    """An insured person active in the stream, with the visits still to come."""

    person_id: str
    home_region: str
    scheme: str
    profile: str
    hospital: Hospital
    remaining: int
    filing: Filing | None


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of patient: why they are away from home and how they use care there."""

    filing_kind: str | None
    kind_weights: tuple[int, int, int]
    mean_extra_visits: float
    heavy: bool = False


PROFILES: dict[str, Profile] = {
    # Retirees living with their children or wintering in Hainan (异地安置).
    "settled": Profile("long_term", (28, 56, 16), 9.0),
    # Referred by a home hospital for treatment unavailable at home (转诊).
    "referral": Profile("referral", (78, 18, 4), 2.0),
    # Working or staying away for a while (临时外出).
    "temporary": Profile("temporary", (30, 60, 10), 4.0),
    # Cancer or dialysis patients with many costly admissions: they reach the annual caps.
    "heavy": Profile("referral", (62, 0, 38), 12.0, heavy=True),
    # Fell ill while travelling without filing: inpatient at a cut, outpatient usually refused.
    "unfiled": Profile(None, (58, 42, 0), 0.5),
}
FILED_PROFILE_WEIGHTS = {"settled": 40, "referral": 29, "temporary": 27, "heavy": 4}


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
