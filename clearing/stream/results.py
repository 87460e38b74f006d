"""What the stream adds to a spec result, and who receives it."""

from __future__ import annotations

from clearing.core.jsonish import JSONMapping, JSONObject
from clearing.core.provinces import PROVINCES

# Fields the stream adds to every result: where the event was read, and the publisher's run.
STREAM_FIELDS = ("source", "run", "settled_at", "principal", "feed")
ROUTED = frozenset({"priced", "reversed", "rejected"})


def spec_view(result: JSONMapping) -> JSONObject:
    """The result exactly as `clearing price` prints it (spec fields and `line`)."""
    out = {k: v for k, v in result.items() if k not in STREAM_FIELDS}
    if out.get("status") == "rejected":
        out.pop("payer", None)
        out.pop("payee", None)
    return out


def recipients(result: JSONMapping) -> tuple[str, ...]:
    """The provinces whose feeds get this result: home and hospital province, no other.

    Only priced, reversed and rejected results are delivered, and a rejected one only when its
    payer and payee could be determined. A code that is no province of ours (a rejected event
    from outside the mainland's 31) has no feed. A `NOT_AUTHORIZED` rejection goes only to its
    sender's own province (`feed`; none when the sender's province is not known), never to the
    provinces it tried to touch (authority.md); the operators read it on the results topic.
    """
    if result.get("status") not in ROUTED:
        return ()
    reasons = result.get("reasons")
    if isinstance(reasons, list) and "NOT_AUTHORIZED" in reasons:
        feed = result.get("feed")
        return (feed,) if isinstance(feed, str) and feed in _FEEDS else ()
    payer, payee = result.get("payer"), result.get("payee")
    if not (isinstance(payer, str) and isinstance(payee, str)):
        return ()
    return tuple(p for p in dict.fromkeys((payer, payee)) if p in _FEEDS)


_FEEDS = frozenset(PROVINCES)


def result_key(result: JSONMapping) -> str:
    """What identifies a result across replays: the event's source position, else its line."""
    source = result.get("source")
    if isinstance(source, str):
        return source
    return f"line:{result.get('line')}"
