"""The result of each event (`pricing.md`, "Result of each event"), one per input event.

`line` is set by the offline command (1-based input line); the stream sets `source` instead.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class Duplicate(_Result):
    status: Literal["duplicate"] = "duplicate"
    settlement_id: str
    reversal_id: str | None = None


class Rejected(_Result):
    status: Literal["rejected"] = "rejected"
    settlement_id: str
    reversal_id: str | None = None
    reasons: list[Reason]


class Amounts(_Result):
    """The seven amounts every priced and reversed result carries, in fen."""

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
    personal_pay_fen: int


class Priced(Amounts):
    status: Literal["priced"] = "priced"
    settlement_id: str
    filed: bool
    cap_reached: bool


class Reversed(Amounts):
    status: Literal["reversed"] = "reversed"
    reversal_id: str
    settlement_id: str


Result = Invalid | Filed | Duplicate | Rejected | Priced | Reversed
AMOUNT_FIELDS = (
    "total_fen",
    "self_pay_fen",
    "pre_self_pay_fen",
    "eligible_fen",
    "deductible_fen",
    "fund_pay_fen",
    "personal_pay_fen",
)


def result_json(result: BaseModel) -> dict:
    """The result as the JSON object the spec prints (no null optional fields)."""
    return result.model_dump(exclude_none=True)
