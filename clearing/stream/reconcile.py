"""Provinces confirm or dispute an issued statement over Kafka (`<prefix>.reconcile`).

The same ledger functions as `clearing reconcile confirm|dispute` answer; the answer goes to
the province's own feed and to the clearing topic. A request that is not valid is answered
with its reason (and dead-lettered), never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, Field, StringConstraints, ValidationError, model_validator

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
    # The province's total due of the obligation; `fund_pay_fen` is its name for clients of
    # before the tiers (where the due is the fund pay). One of the two is required.
    due_fen: int | None = None
    fund_pay_fen: int | None = None
    lines: Annotated[list[DigestLine], Field(max_length=10_000_000)] | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> Dispute:
        if self.due_fen is None and self.fund_pay_fen is None:
            raise ValueError("due_fen: required (or fund_pay_fen, its name before the tiers)")
        if None not in (self.due_fen, self.fund_pay_fen) and self.due_fen != self.fund_pay_fen:
            raise ValueError("due_fen: differs from fund_pay_fen; send due_fen alone")
        return self

    @property
    def due(self) -> int:
        """The province's total due: `due_fen`, else the `fund_pay_fen` of an older client."""
        due = self.due_fen if self.due_fen is not None else self.fund_pay_fen
        assert due is not None  # _one_amount
        return due


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
                request.due,
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
