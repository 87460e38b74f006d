"""Bytes in, result out: the parser and the pure pricing put together over a `MemoryBook`.

The one entry point of pricing for the offline commands and the stream, so both behave the
same on every outcome, a crash included: an event the pricing cannot process becomes an
`invalid` result naming the failure by type (its text may quote the event), and the book is
left as it was.

The principal (`clearing.core.authority`) is checked first: an event its sender may not send
gets its `NOT_AUTHORIZED` rejection with no effect at all (no id taken, no money, no state).
The offline commands pass none: they act as an operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clearing.core.authority import Principal, check
from clearing.core.models.events import Event, Reversal
from clearing.core.models.results import Invalid, Priced, Result
from clearing.core.parse import Parsed, Rejection, parse_event
from clearing.core.pricing import MemoryBook, Outcome, price_event
from clearing.core.refdata import RefData


def crash_message(exc: BaseException) -> str:
    return f"could not be processed ({type(exc).__name__})"


def named_settlement(event: Event, book: MemoryBook) -> Priced | None:
    """The priced settlement a reversal names (of its person), as the reversal would cancel it."""
    if not isinstance(event, Reversal):
        return None
    entry = book.priced_entry(event.settlement_id)
    return entry.result if entry is not None and entry.person_id == event.person_id else None


def price_parsed(
    parsed: Parsed | Rejection,
    refdata: RefData,
    book: MemoryBook,
    principal: Principal | None = None,
) -> Outcome:
    """The outcome of one parsed event, its effects applied to the book; `principal` None is
    an operator."""
    if isinstance(parsed, Rejection):
        return Outcome(Invalid(error=parsed.error))
    try:
        if principal is not None:
            refused = check(principal, parsed.event, named_settlement(parsed.event, book))
            if refused is not None:
                return Outcome(refused)
        outcome = price_event(parsed.event, parsed.fingerprint, refdata, book)
        book.apply(outcome.effects)
    except Exception as exc:  # a bug must not stop a run: the event is set aside, named
        return Outcome(Invalid(error=crash_message(exc)))
    return outcome


@dataclass
class Pricer:
    """Prices a sequence of raw events in order, keeping the book in memory."""

    refdata: RefData
    book: MemoryBook = field(default_factory=MemoryBook)

    def process(self, raw: bytes | str) -> Result:
        return price_parsed(parse_event(raw), self.refdata, self.book).result

    def process_event(self, raw: bytes | str) -> tuple[Event | None, Result]:
        """The same as `process`, with the valid event the result is of (None when invalid):
        for whoever reads the settlement's fields beside its result (monitoring)."""
        parsed = parse_event(raw)
        result = price_parsed(parsed, self.refdata, self.book).result
        return (parsed.event if isinstance(parsed, Parsed) else None), result
