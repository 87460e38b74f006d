"""Bytes in, result out: the parser and the pure pricing put together over a `MemoryBook`."""

from __future__ import annotations

from dataclasses import dataclass, field

from clearing.core.models.results import Invalid, Result
from clearing.core.parse import Rejection, parse_event
from clearing.core.pricing import MemoryBook, price_event
from clearing.core.refdata import RefData


@dataclass
class Pricer:
    """Prices a sequence of raw events in order, keeping the book in memory."""

    refdata: RefData
    book: MemoryBook = field(default_factory=MemoryBook)

    def process(self, raw: bytes | str) -> Result:
        parsed = parse_event(raw)
        if isinstance(parsed, Rejection):
            return Invalid(error=parsed.error)
        outcome = price_event(parsed.event, parsed.fingerprint, self.refdata, self.book)
        self.book.apply(outcome.effects)
        return outcome.result
