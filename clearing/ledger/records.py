"""Results as the ledger keeps them: parsed from the spec's JSON, keyed, and back.

The business key is the id's key in `ids` (`clearing.core.keys`): `S:<settlement_id>` for a
priced result and `R:<reversal_id>` for a reversed one. A result's content is the spec's fields
(plus `settled_at` when the carrier adds it), without what only says how it travelled (`line`,
`source`, `run`, ...): the row keeps exactly that, so the same result replayed from another file
or offset is recognised as the same by comparing it with the stored row (`content`).

The tier shares (`tiers.md`) are columns of every row: a result printed without the tier fields
is kept with zero shares and `due_fen = fund_pay_fen`, and `has_tiers` false, so it prints back
exactly as it came.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import RowMapping

from clearing.core.keys import result_key
from clearing.core.models.results import Priced, Reversed
from clearing.core.models.types import Timestamp, china_time
from clearing.core.pricing import period_of
from clearing.ledger.errors import LedgerInputError
from clearing.store.schema import AMOUNTS

TIER_SHARES = ("critical_pay_fen", "assistance_pay_fen")

MODELS: dict[str, type[Priced] | type[Reversed]] = {"priced": Priced, "reversed": Reversed}
TRANSPORT = frozenset({"line", "source"})
FIELDS = {status: frozenset(model.model_fields) - TRANSPORT for status, model in MODELS.items()}
_TIMESTAMP = TypeAdapter(Timestamp)


def to_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """The row of a priced or reversed result; LedgerInputError names what is wrong with it."""
    status = result["status"]
    key = result_key(result)
    model = MODELS[status]
    fields = {k: v for k, v in result.items() if k in FIELDS[status]}
    try:
        parsed = model.model_validate(fields, strict=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'result'}: {e['msg']}" for e in exc.errors()
        )
        raise LedgerInputError(f"{key}: not a valid {status} result: {problems}") from None
    spec = parsed.model_dump(exclude=set(TRANSPORT), exclude_none=True)
    settled_at = result.get("settled_at")
    settled_day = None
    if settled_at is not None:
        settled_day = _settled_day(key, settled_at, spec["period"])
        spec["settled_at"] = settled_at
    return {
        "result_key": key,
        "status": status,
        "settlement_id": spec["settlement_id"],
        "reversal_id": spec.get("reversal_id"),
        "period": spec["period"],
        "payer": spec["payer"],
        "payee": spec["payee"],
        "hospital_id": spec["hospital_id"],
        "settled_at": settled_at,
        "settled_day": settled_day,
        "filed": spec.get("filed"),
        "cap_reached": spec.get("cap_reached"),
        **{name: spec[name] for name in AMOUNTS},
        **{name: spec.get(name, 0) for name in TIER_SHARES},
        "due_fen": spec.get("due_fen", spec["fund_pay_fen"]),
        "has_tiers": "due_fen" in spec,
        "assistance_class": spec.get("assistance_class"),
    }


def _settled_day(key: str, settled_at: Any, period: str) -> date:
    try:
        moment = china_time(_TIMESTAMP.validate_python(settled_at, strict=True))
    except ValidationError:
        raise LedgerInputError(f"{key}: settled_at {settled_at!r} is not a timestamp") from None
    if period_of(moment) != period:
        raise LedgerInputError(f"{key}: settled_at {settled_at} is not in period {period}")
    return moment.date()


def from_row(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    """The result as the spec prints it (with `settled_at` when known), from its stored row (or
    from a row `to_row` made): its content, to print and to compare."""
    status = row["status"]
    out: dict[str, Any] = {"status": status, "settlement_id": row["settlement_id"]}
    if status == "reversed":
        out["reversal_id"] = row["reversal_id"]
    out.update(
        period=row["period"], payer=row["payer"], payee=row["payee"], hospital_id=row["hospital_id"]
    )
    if status == "priced":
        out.update(filed=bool(row["filed"]), cap_reached=bool(row["cap_reached"]))
    out.update({name: int(row[name]) for name in AMOUNTS})
    if row["has_tiers"]:
        out.update({name: int(row[name]) for name in (*TIER_SHARES, "due_fen")})
        if status == "priced":
            out["assistance_class"] = row["assistance_class"]
    if row["settled_at"] is not None:
        out["settled_at"] = row["settled_at"]
    return out
