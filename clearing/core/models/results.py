"""The result of each event (`pricing.md`, "Result of each event"), one per input event.

`line` is set by the offline command (1-based input line); the stream sets `source` instead.

Which tier fields a result carries (`tiers.md`): `critical_pay_fen`, `assistance_pay_fen`,
`due_fen` and, on a priced result, `assistance_class` are printed on every priced and reversed
result of reference data that has tiers — some policy with a `critical` or `assistance` block —
with `assistance_class: null` when assistance did not apply. Reference data with neither block
leaves them out (None) and prints results exactly as `pricing.md` did, so a bundle of before
the tiers gives the same output as before; there `due = fund_pay`. A reversal carries the tier
fields when its original does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from clearing.core.jsonish import JSONObject
from clearing.core.periods import PERIOD_PATTERN

Reason = Literal[
    "AMOUNT_MISMATCH",
    "NOT_CROSS_PROVINCE",
    "NO_POLICY",
    "NO_CATALOG",
    "NOT_FILED",
    "DUPLICATE_CONFLICT",
    "UNKNOWN_SETTLEMENT",
    "ALREADY_REVERSED",
    "NOT_AUTHORIZED",
]
Period = Annotated[str, Field(pattern=f"^{PERIOD_PATTERN}$")]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int | None = None
    source: str | None = None


class Invalid(_Result):
    status: Literal["invalid"] = "invalid"
    error: str


class Filed(_Result):
    status: Literal["filed"] = "filed"
    filing_id: str


class Registered(_Result):
    status: Literal["registered"] = "registered"
    assistance_id: str


class Duplicate(_Result):
    status: Literal["duplicate"] = "duplicate"
    settlement_id: str
    reversal_id: str | None = None


class Rejected(_Result):
    """The id of the event it rejects: `settlement_id` (and `reversal_id`) for a settlement or
    reversal; a filing's or assistance record's own id when its sender may not send it
    (`NOT_AUTHORIZED`, the only reason such events are rejected)."""

    status: Literal["rejected"] = "rejected"
    settlement_id: str | None = None
    reversal_id: str | None = None
    filing_id: str | None = None
    assistance_id: str | None = None
    reasons: list[Reason]


_TIER = "Printed (an integer) when the reference data has tiers (tiers.md), else left out"


class Amounts(_Result):
    """The seven amounts every priced and reversed result carries, in fen, and the tiers'.

    The three tier amounts are None (left out) for reference data without tiers.
    """

    period: Period
    payer: str
    payee: str
    hospital_id: str
    total_fen: int
    self_pay_fen: int
    pre_self_pay_fen: int
    eligible_fen: int
    deductible_fen: int
    fund_pay_fen: int
    critical_pay_fen: Annotated[int | None, Field(description=_TIER)] = None
    assistance_pay_fen: Annotated[int | None, Field(description=_TIER)] = None
    due_fen: Annotated[int | None, Field(description=_TIER)] = None
    personal_pay_fen: int

    @property
    def has_tiers(self) -> bool:
        return self.due_fen is not None


class Priced(Amounts):
    status: Literal["priced"] = "priced"
    settlement_id: str
    filed: bool
    cap_reached: bool
    assistance_class: Annotated[
        Literal["A", "B"] | None,
        Field(description="With tiers: the class assistance applied with, null when it did not"),
    ] = None

    # No return annotation: pydantic would publish it as the serialised schema (the model's own
    # is the contract), and mypy --strict wants one.
    @model_serializer(mode="wrap")
    def _null_assistance_class(  # type: ignore[no-untyped-def]
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ):
        """With tiers, `assistance_class` is printed even when null (no assistance applied)."""
        out: JSONObject = handler(self)
        if self.due_fen is None or "assistance_class" in out:
            return out
        if info.include is not None and "assistance_class" not in info.include:
            return out
        if info.exclude is not None and "assistance_class" in info.exclude:
            return out
        out["assistance_class"] = None
        return out


class Reversed(Amounts):
    status: Literal["reversed"] = "reversed"
    reversal_id: str
    settlement_id: str


Result = Invalid | Filed | Registered | Duplicate | Rejected | Priced | Reversed
AMOUNT_FIELDS = (
    "total_fen",
    "self_pay_fen",
    "pre_self_pay_fen",
    "eligible_fen",
    "deductible_fen",
    "fund_pay_fen",
    "personal_pay_fen",
)
TIER_FIELDS = ("critical_pay_fen", "assistance_pay_fen", "due_fen")


R = TypeVar("R", bound=_Result)
_set = object.__setattr__
_TEMPLATES: dict[type[_Result], dict[str, Any]] = {}


def build(model: type[R], /, **given: Any) -> R:
    """`model(**given)` for values pricing has computed, without validating them again.

    The same object validation builds (every field in order, the defaults filled in, the
    fields given as its fields set) for a third of the cost: the hot path builds one per event.
    Only for values already of the fields' types; `tests/unit/core/test_results_fast.py`
    checks every result of the sample bundles against validation.
    """
    template = _TEMPLATES.get(model)
    if template is None:
        template = _TEMPLATES[model] = {
            name: info.default for name, info in model.model_fields.items()
        }
    result = model.__new__(model)
    _set(result, "__dict__", {**template, **given})
    _set(result, "__pydantic_fields_set__", set(given))
    _set(result, "__pydantic_extra__", None)
    _set(result, "__pydantic_private__", None)
    return result


def result_json(result: Result) -> JSONObject:
    """The result as the JSON object the spec prints (no null optional fields).

    Equal to `result.model_dump(exclude_none=True)`, key order included, built directly: the
    fields are plain values, in order in the model's `__dict__`.
    """
    out = {name: value for name, value in result.__dict__.items() if value is not None}
    if type(result) is Priced:
        if result.due_fen is not None:  # with tiers the class is printed, null or not (last)
            out["assistance_class"] = result.assistance_class
    elif type(result) is Rejected:
        out["reasons"] = list(result.reasons)
    return out
