"""Provinces confirm or dispute an issued statement over Kafka (`<prefix>.reconcile`).

The same ledger functions as `clearing reconcile confirm|dispute` answer; the answer goes to
the province's own feed and to the clearing topic. A request that is not valid is answered
with its reason (and dead-lettered), never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from clearing.core.jsonish import JSONObject
from clearing.core.models.results import Period
from clearing.core.models.types import STRICT, ProvinceCode, SchemaVersion
from clearing.core.parse import describe
from clearing.ledger import reconcile
from clearing.ledger.errors import LedgerError
from clearing.ledger.store import Ledger
from clearing.stream.handlers import Message
from clearing.topics import Topics

Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
DigestLine = Annotated[str, StringConstraints(pattern=r"^[SR]\|[A-Za-z0-9_-]{1,64}\|-?[0-9]+$")]


class Confirm(BaseModel):
    """A province accepts its part of an issued statement."""

    model_config = STRICT

    type: Literal["confirm"]
    schema_version: SchemaVersion
    period: Period
    province: ProvinceCode


class Dispute(BaseModel):
    """A province's own digest and totals of one obligation; its line list when it has one."""

    model_config = STRICT

    type: Literal["dispute"]
    schema_version: SchemaVersion
    period: Period
    province: ProvinceCode
    payer: ProvinceCode
    payee: ProvinceCode
    digest: Digest
    fund_pay_fen: int
    lines: Annotated[list[DigestLine], Field(max_length=10_000_000)] | None = None


REQUESTS: dict[str, type[Confirm] | type[Dispute]] = {"confirm": Confirm, "dispute": Dispute}


def parse_request(raw: bytes) -> Confirm | Dispute | str:
    """The request, or why it is not one (naming the field)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(obj, dict):
        return "request must be a JSON object"
    kind = obj.get("type")
    model = REQUESTS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return "type: must be confirm or dispute"
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        return describe(exc)


def answer(ledger: Ledger, request: Confirm | Dispute) -> JSONObject:
    """The ledger's answer to one request; an error answer when the ledger refuses it."""
    try:
        if isinstance(request, Confirm):
            return ledger.run(
                lambda conn: reconcile.confirm(conn, request.period, request.province)
            )
        return ledger.run(
            lambda conn: reconcile.dispute(
                conn,
                request.period,
                request.province,
                request.payer,
                request.payee,
                request.digest,
                request.fund_pay_fen,
                request.lines,
            )
        )
    except LedgerError as exc:
        return {
            "period": request.period,
            "province": request.province,
            "action": request.type,
            "error": str(exc),
        }


def answer_messages(topics: Topics, reply: JSONObject) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value): the answer to the province's feed and to the clearing topic."""
    body = orjson.dumps({"type": "reconciliation", **reply})
    key = f"reconcile:{reply['period']}:{reply['province']}".encode()
    return [(topics.feed(reply["province"]), key, body), (topics.clearing, key, body)]


def messages_for(
    topics: Topics, ledger: Callable[[], Ledger], raw: bytes, source: str
) -> list[Message]:
    """What one request produces: the answer to the province's feed and the clearing topic, or
    the raw request to the dead-letter topic with the reason. Runs in the database thread;
    every target topic has one partition."""
    request = parse_request(raw)
    if isinstance(request, str):
        headers = [("reason", request.encode()), ("source", source.encode())]
        return [(topics.deadletter, 0, None, raw, headers)]
    return [(t, 0, k, v, []) for t, k, v in answer_messages(topics, answer(ledger(), request))]
