"""A request body judged by `clearing.core.parse`, with every field error listed for the hospital.

`parse_event` decides; only when it rejects is the body validated again against the endpoint's
model, to list each field with the parser's own wording (`describe` renders each error alone).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from clearing.core.models.events import EVENT_MODELS
from clearing.core.parse import Parsed, Rejection, describe, parse_event

# A hospital gets at most this many field errors back; the `error` text gives the total.
MAX_FIELD_ERRORS = 100
_PATH_PREFIX = re.compile(r"([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*): (.+)", re.DOTALL)
# An unknown key is named by this instead of itself unless it looks like a field name (short
# lower-case snake case, as every field of the contract is): a key is the sender's text, and
# may be a credential pasted in the wrong place, which an answer never quotes back.
UNKNOWN_KEY = "<unknown>"
_FIELD_LIKE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # dotted path, e.g. "items.2.quantity"; empty for the event as a whole
    message: str


@dataclass(frozen=True, slots=True)
class BodyError:
    """Why a body is not a valid event of the endpoint's type."""

    error: str
    fields: list[FieldError] = field(default_factory=list)


@functools.cache
def known_names() -> frozenset[str]:
    """Every property name of the events' schemas, at any depth."""
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(properties)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for model in EVENT_MODELS.values():
        walk(model.model_json_schema())
    return frozenset(names)


def _safe_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    known = known_names()
    return tuple(
        p if isinstance(p, int) or p in known or _FIELD_LIKE.fullmatch(p) else UNKNOWN_KEY
        for p in loc
    )


def _safe_details(error: ValidationError) -> Iterator[ErrorDetails]:
    for detail in error.errors(include_url=False):
        safe: Any = {**detail, "loc": _safe_loc(detail["loc"])}
        yield safe


class _Safe:
    """A ValidationError's details with unknown keys unnamed, shaped as `describe` reads it."""

    def __init__(self, error: ValidationError) -> None:
        self._details = list(_safe_details(error))

    def errors(self, include_url: bool = False) -> list[ErrorDetails]:
        return self._details

    def error_count(self) -> int:
        return len(self._details)


class _OneError:
    """One error detail shaped as `describe` reads a ValidationError."""

    def __init__(self, detail: ErrorDetails) -> None:
        self._detail = detail

    def errors(self, include_url: bool = False) -> list[ErrorDetails]:
        return [self._detail]

    def error_count(self) -> int:
        return 1


def field_errors(error: ValidationError, limit: int = MAX_FIELD_ERRORS) -> list[FieldError]:
    out = []
    for detail in _Safe(error).errors()[:limit]:
        path = ".".join(str(p) for p in detail["loc"])
        text = describe(_OneError(detail))
        if path:
            out.append(FieldError(path, text.removeprefix(f"{path}: ")))
            continue
        # Model-level checks name their field in the message ("items.3.quantity: ...").
        match = _PATH_PREFIX.fullmatch(text)
        out.append(FieldError(*match.groups()) if match else FieldError("", text))
    return out


def validate(raw: bytes, model: type[BaseModel], event_type: str) -> Parsed | BodyError:
    """The parsed event when `raw` is a valid event of `event_type`, else every reason."""
    parsed = parse_event(raw)
    if isinstance(parsed, Parsed) and parsed.event.type == event_type:
        return parsed
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BodyError(f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return BodyError("the body must be a JSON object")
    try:
        model.model_validate(obj)
    except ValidationError as exc:
        return BodyError(describe(_Safe(exc)), field_errors(exc))
    # The model accepts what the parser did not (or the parser accepted another type): not
    # possible while `type` is a literal in each model; kept so a model change fails safe.
    if isinstance(parsed, Rejection):
        return BodyError(parsed.error)
    message = f"must be {event_type!r} at this endpoint"
    return BodyError(f"type: {message}", [FieldError("type", message)])
