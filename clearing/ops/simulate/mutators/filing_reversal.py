"""Filings and reversals with faults of their own."""

from __future__ import annotations

from datetime import date
from random import Random
from typing import Any

from clearing.ops.simulate.clock import day_text
from clearing.ops.simulate.jsonline import dump
from clearing.ops.simulate.mutators.values import BAD_DATES, bad_timestamps


def filing_mutation(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    """Filing-specific faults: bad dates, a city as treatment province, a missing valid_to."""
    variant = rng.randrange(6)
    if variant == 0:
        event["treatment_province"] = event["treatment_province"][:2] + "0100"
        return dump(event), "treatment_province is a city, not a province"
    if variant == 1:
        del event["valid_to"]
        return dump(event), "filing without valid_to"
    if variant == 2:
        event["valid_to"] = day_text(date.fromisoformat(event["valid_from"]).toordinal() - 1)
        return dump(event), "valid_to before valid_from"
    if variant == 3:
        event["filing_kind"] = rng.choice(("permanent", "Temporary", ""))
        return dump(event), f"filing_kind {event['filing_kind']!r}"
    if variant == 4:
        event["valid_from"] = rng.choice(BAD_DATES)
        return dump(event), f"valid_from malformed: {event['valid_from']!r}"
    event["filing_id"] = "F" * 65
    return dump(event), "filing_id of 65 characters"


def reversal_mutation(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    """Reversal-specific faults: the reason's length in characters, a bad timestamp, a bad id."""
    variant = rng.randrange(5)
    if variant == 0:
        event["reason"] = ""
        return dump(event), "reason empty"
    if variant == 1:
        event["reason"] = "退" * 201
        return dump(event), "reason of 201 characters"
    if variant == 2:
        del event["reason"]
        return dump(event), "reversal without reason"
    if variant == 3:
        event["reversal_id"] = "R 1"
        return dump(event), "reversal_id contains a space"
    event["settled_at"] = rng.choice(bad_timestamps(event["settled_at"][:19] + "+08:00"))
    return dump(event), f"settled_at malformed: {event['settled_at']!r}"
