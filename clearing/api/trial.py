"""Trial pricing (预结算, tiers.md): what a settlement would be priced at now, changing nothing.

The person's state is read as the stream reads it (`load_book`, without locks) and the event is
priced in process by the stream's own `price_parsed`, on a copy of what was read. Nothing is
written and nothing is published: no id is taken, no accumulator moves, nothing reaches the
ledger or a feed. The settlement's id is not checked against ids already taken: a trial under
an id already used is priced as if the id were new.
"""

from __future__ import annotations

from sqlalchemy import Connection

from clearing.core.jsonish import JSONObject
from clearing.core.keys import settlement_key
from clearing.core.models.events import Settlement
from clearing.core.parse import Parsed
from clearing.core.pricer import price_parsed
from clearing.core.refdata import RefData
from clearing.stream.batch import copy_book, load_book


def trial_result(conn: Connection, parsed: Parsed, refdata: RefData) -> JSONObject:
    """The `priced` or `rejected` result the settlement would get now, with `"trial": true`
    (an `invalid` one, also marked, when the pricing crashed on it)."""
    event = parsed.event
    if not isinstance(event, Settlement):
        raise TypeError("trial pricing is for settlements")
    book = copy_book(load_book(conn, [parsed], lock=False).book)
    # Priced as if new: a taken id would otherwise make this a duplicate.
    book.fingerprints.pop(settlement_key(event.settlement_id), None)
    result: JSONObject = price_parsed(parsed, refdata, book).result.model_dump(exclude_none=True)
    result["trial"] = True
    return result
