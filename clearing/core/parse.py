"""Bytes in, a validated event (or the reason it is invalid) out.

One parser for the offline commands, the stream and the submission API, so an event is
judged the same wherever it enters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from clearing.core.fastparse import fast_event
from clearing.core.keys import fingerprint
from clearing.core.models.events import EVENT_MODELS, Event

_MESSAGES = {
    "missing": "is missing",
    "extra_forbidden": "is not a known field",
    "int_type": "must be an integer",
    "bool_type": "must be a boolean",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "string_pattern_mismatch": "is malformed",
}


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid event and the fingerprint of its parsed JSON object (for duplicate checks)."""

    event: Event
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the bytes are not a valid event; the message names the field."""

    error: str


class Errors(Protocol):
    """What `describe` reads of a ValidationError (the API renders each error alone)."""

    def errors(self, *, include_url: bool = ...) -> list[ErrorDetails]: ...

    def error_count(self) -> int: ...


def describe(error: Errors, limit: int = 3) -> str:
    """Human-readable field errors, e.g. `items.2.quantity: must be > 0 and at most 100000`."""
    parts = []
    for detail in error.errors(include_url=False)[:limit]:
        field = ".".join(str(p) for p in detail["loc"])
        message = _MESSAGES.get(detail["type"]) or detail["msg"].removeprefix("Value error, ")
        if not field:
            parts.append(message)
            continue
        if field == "schema_version":
            message = "must be the integer 1"
        elif detail["type"] in ("too_short", "too_long"):
            message = detail["msg"].replace("List", "list").replace("String", "string")
        parts.append(f"{field}: {message}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse_event(raw: bytes | str) -> Parsed | Rejection:
    """Validate one event exactly as `events.md` says; never raises on bad input.

    The hand-written checks of `clearing.core.fastparse` accept what is certainly valid; all
    else is judged by the models, so the verdict and the message are `parse_event_reference`'s.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejection("event must be a JSON object")
    event = fast_event(obj)
    if event is None:
        return _validate(obj)
    return Parsed(event, fingerprint(obj))


def parse_event_reference(raw: bytes | str) -> Parsed | Rejection:
    """The same verdict by the pydantic models alone: the contract `parse_event` is held to."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejection("event must be a JSON object")
    return _validate(obj)


def _validate(obj: dict[str, object]) -> Parsed | Rejection:
    kind = obj.get("type")
    model: type[Event] | None = EVENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return Rejection("type: is missing" if "type" not in obj else "type: unknown event type")
    try:
        event = model.model_validate(obj)
    except ValidationError as exc:
        return Rejection(describe(exc))
    return Parsed(event, fingerprint(obj))
