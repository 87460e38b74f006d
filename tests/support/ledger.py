"""Builders and sample data shared by the ledger tests (no tests here)."""

from __future__ import annotations

import json
from typing import Any

from support.paths import CASES

AMOUNTS = (
    "total_fen",
    "self_pay_fen",
    "pre_self_pay_fen",
    "eligible_fen",
    "deductible_fen",
    "fund_pay_fen",
    "personal_pay_fen",
)


def sample_results() -> list[dict[str, Any]]:
    """The sample's results (`shared/cases/priced.jsonl`), every status."""
    with open(CASES / "priced.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def sample_statement(period: str = "2026-01") -> dict[str, Any]:
    with open(CASES / f"statement-{period}.json", encoding="utf-8") as handle:
        return json.load(handle)


def priced(
    settlement_id: str,
    *,
    payer: str = "410000",
    payee: str = "110000",
    fund: int = 1_000,
    period: str = "2026-01",
    hospital_id: str = "H110105001",
    settled_at: str | None = None,
) -> dict[str, Any]:
    """A consistent priced result with fund share `fund` (fen)."""
    eligible = fund + 500
    total = eligible + 300
    result = {
        "status": "priced",
        "settlement_id": settlement_id,
        "period": period,
        "payer": payer,
        "payee": payee,
        "hospital_id": hospital_id,
        "filed": True,
        "total_fen": total,
        "self_pay_fen": 200,
        "pre_self_pay_fen": 100,
        "eligible_fen": eligible,
        "deductible_fen": 100,
        "fund_pay_fen": fund,
        "personal_pay_fen": total - fund,
        "cap_reached": False,
    }
    if settled_at is not None:
        result["settled_at"] = settled_at
    return result


def reversal(
    original: dict[str, Any],
    reversal_id: str,
    *,
    period: str | None = None,
    settled_at: str | None = None,
) -> dict[str, Any]:
    """The reversed result of `original`: its amounts negated, in `period` (default: its own)."""
    result = {
        "status": "reversed",
        "reversal_id": reversal_id,
        "settlement_id": original["settlement_id"],
        "period": period or original["period"],
        "payer": original["payer"],
        "payee": original["payee"],
        "hospital_id": original["hospital_id"],
        **{name: -original[name] for name in AMOUNTS},
    }
    if settled_at is not None:
        result["settled_at"] = settled_at
    return result
