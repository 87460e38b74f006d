"""Medical-assistance records with faults of their own."""

from __future__ import annotations

from datetime import date
from random import Random
from typing import Any

from clearing.ops.simulate.clock import day_text
from clearing.ops.simulate.jsonline import dump
from clearing.ops.simulate.mutators.fields import BAD_REGIONS
from clearing.ops.simulate.mutators.values import BAD_DATES

BAD_CLASSES: tuple[object, ...] = ("a", "C", "AB", "", None, 1, ["A"])


def assistance_mutation(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    """A class other than `A`/`B`, bad dates, a malformed region or id, a stray field."""
    variant = rng.randrange(9)
    if variant == 0:
        event["class"] = rng.choice(BAD_CLASSES)
        return dump(event), f"class is not A or B: {event['class']!r}"
    if variant == 1:
        event["valid_to"] = day_text(date.fromisoformat(event["valid_from"]).toordinal() - 1)
        return dump(event), "valid_to before valid_from"
    if variant == 2:
        del event["valid_to"]
        return dump(event), "assistance without valid_to"
    if variant == 3:
        event["valid_from"] = rng.choice(BAD_DATES)
        return dump(event), f"valid_from malformed: {event['valid_from']!r}"
    if variant == 4:
        event["home_region"] = rng.choice(BAD_REGIONS)
        return dump(event), f"home_region malformed: {event['home_region']!r}"
    if variant == 5:
        event["note"] = rng.choice(("低保", "x"))
        return dump(event), "unknown field note"
    if variant == 6:
        event["person_id"] = event["person_id"][:5] + " " + event["person_id"][5:]
        return dump(event), "person_id contains a space"
    if variant == 7:
        event["assistance_id"] = "A" * 65
        return dump(event), "assistance_id of 65 characters"
    del event["class"]
    return dump(event), "assistance without class"
