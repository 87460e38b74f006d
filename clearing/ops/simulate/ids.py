"""The identifiers the stream mints: persons, settlements, reversals."""

from __future__ import annotations

from random import Random

PERSON_MASK = (1 << 48) - 1
PERSON_MULTIPLIER = 0x9E3779B97F4B  # odd, so multiplying by it permutes 48-bit numbers


class Ids:
    """Unique ids from counters: person ids are the count scrambled under a salt drawn from the
    stream's generator, so that they look random yet never repeat."""

    def __init__(self, rng: Random) -> None:
        self.person_salt = rng.getrandbits(48)
        self.persons = 0
        self.settlements = 0
        self.reversals = 0

    def person(self) -> str:
        self.persons += 1
        token = (self.persons * PERSON_MULTIPLIER & PERSON_MASK) ^ self.person_salt
        return f"P{token:012x}"

    def settlement(self, hospital_region: str) -> str:
        self.settlements += 1
        return f"S{hospital_region}{self.settlements:010d}"

    def reversal(self, region: str) -> str:
        self.reversals += 1
        return f"R{region}{self.reversals:010d}"
