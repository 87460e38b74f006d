"""The price stage's partition-owned state: each person's book, kept in memory by the worker
whose partition the person's key hashes to.

Events are keyed by person, so one partition owns each person's filings, assistance records,
accumulators, priced settlements and monitor history. The worker assigned that partition keeps
its persons here (bounded: the least recently used person is dropped first; a miss reads the
person from the store), trusts the copy while it owns the partition, and drops it when the
partition is revoked. The store stays the authority: every batch's changes are written before
they are kept here, so a dropped or lost copy is read again, never trusted stale.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clearing.core.models.events import Assistance, Filing
from clearing.core.monitoring import PersonHistory
from clearing.core.pricing import Accumulator, MemoryBook, PricedEntry
from clearing.core.tiers import TierAccumulator

AccumulatorKey = tuple[str, int, str]
TierKey = tuple[str, int]


@dataclass(slots=True)
class PersonState:
    """One person's part of the book, as stored (every value here is also in the database)."""

    partition: int
    filings: list[Filing] = field(default_factory=list)
    assistance: list[Assistance] = field(default_factory=list)
    accumulators: dict[AccumulatorKey, Accumulator] = field(default_factory=dict)
    tiers: dict[TierKey, TierAccumulator] = field(default_factory=dict)
    # Settlements priced while the person was held (older ones are read when a reversal
    # names them), and the ids the person's events were seen to take or find taken.
    priced: dict[str, PricedEntry] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    history: PersonHistory | None = None


@dataclass
class PersonCache:
    """Persons by id, least recently used first; at most `limit` of them."""

    limit: int
    persons: OrderedDict[str, PersonState] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self.persons)

    def missing(self, person_ids: Iterable[str]) -> list[str]:
        held = self.persons
        return sorted({p for p in person_ids if p not in held})

    def add(self, states: Mapping[str, PersonState]) -> None:
        self.persons.update(states)

    def forget(self, person_ids: Iterable[str]) -> None:
        for person in person_ids:
            self.persons.pop(person, None)

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        """Forgets every person of these partitions (revoked); returns how many."""
        gone = set(partitions)
        doomed = [p for p, state in self.persons.items() if state.partition in gone]
        self.forget(doomed)
        return len(doomed)

    def clear(self) -> None:
        self.persons.clear()

    def book_for(self, person_ids: Iterable[str]) -> MemoryBook:
        """A book of these persons' copies, which pricing may change while the cache stays as
        stored (its values are immutable; the lists and dicts are copied)."""
        book = MemoryBook()
        for person in person_ids:
            state = self.persons[person]
            if state.filings:
                book.filings[person] = list(state.filings)
            if state.assistance:
                book.assistance[person] = list(state.assistance)
            book.accumulators.update(state.accumulators)
            book.tier_accumulators.update(state.tiers)
            book.priced.update(state.priced)
            book.fingerprints.update(state.fingerprints)
        return book

    def absorb(
        self,
        book: MemoryBook,
        owners: Mapping[str, str],
        histories: Mapping[str, PersonHistory] | None,
        person_ids: Iterable[str],
    ) -> None:
        """Keeps what a stored batch's book holds for its persons, then trims to the limit.

        `owners` names the person each id key of the batch belongs to (the event's person)."""
        persons = self.persons
        batch = set(person_ids)
        for person in batch:
            state = persons[person]
            state.filings = book.filings.get(person, [])
            state.assistance = book.assistance.get(person, [])
            if histories is not None:
                state.history = histories.get(person)
            persons.move_to_end(person)
        for key, value in book.accumulators.items():
            if key[0] in batch:
                persons[key[0]].accumulators[key] = value
        for tkey, tvalue in book.tier_accumulators.items():
            if tkey[0] in batch:
                persons[tkey[0]].tiers[tkey] = tvalue
        for sid, entry in book.priced.items():
            if entry.person_id in batch:
                persons[entry.person_id].priced[sid] = entry
        for id_key, fp in book.fingerprints.items():
            owner = owners.get(id_key)
            if owner is not None and owner in batch:
                persons[owner].fingerprints[id_key] = fp
        while len(persons) > self.limit:
            persons.popitem(last=False)
