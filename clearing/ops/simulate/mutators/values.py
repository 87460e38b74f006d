"""Settlements with a malformed timestamp, date or quantity, or bad diagnoses or items."""

from __future__ import annotations

from random import Random
from typing import Any

from clearing.ops.simulate.jsonline import dump
from clearing.ops.simulate.mutators.fields import first_item


def bad_timestamps(good: str) -> tuple[str, ...]:
    """Ways of getting RFC 3339 wrong, from a good `YYYY-MM-DDTHH:MM:SS+08:00` timestamp."""
    day, clock = good[:10], good[11:19]
    return (
        f"{day} {clock}+08:00",
        f"{day}T{clock[:5]}+08:00",
        f"{day}T{clock}",
        f"{day}T{clock}+0800",
        f"{day}t{clock}+08:00",
        f"{day[:5]}13{day[7:]}T{clock}+08:00",
        f"{day[:8]}32T{clock}+08:00",
        f"{day}T24{clock[2:]}+08:00",
        f"{day}T{clock}.+08:00",
        f"{day}T{clock}+8:00",
        day,
    )


def m_bad_timestamp(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    good = event["settled_at"]
    if rng.random() < 0.1:
        event["settled_at"] = 1_767_000_000
        return dump(event), "settled_at is a number"
    event["settled_at"] = rng.choice(bad_timestamps(good))
    return dump(event), f"settled_at malformed: {event['settled_at']!r}"


BAD_DATES = (
    "20260109",
    "2026-1-9",
    "2026-02-30",
    "2026/01/09",
    "2026-01-09T00:00:00+08:00",
    "2026-13-01",
    "09-01-2026",
    "",
)


def m_bad_date(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    event["admitted_on"] = rng.choice(BAD_DATES)
    return dump(event), f"admitted_on malformed: {event['admitted_on']!r}"


BAD_QUANTITIES = (
    "1.00001",
    "1e0",
    "+3",
    "0",
    "0.0000",
    "-1",
    "100000.0001",
    "100001",
    "1.",
    ".5",
    " 1",
    "１",
    "1,5",
    "",
)


def m_bad_quantity(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    item = rng.choice(event["items"])
    item["quantity"] = rng.choice(BAD_QUANTITIES)
    return dump(event), f"quantity malformed or out of range: {item['quantity']!r}"


def m_bad_diagnosis(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(4)
    if variant == 0:
        event["diagnosis"] = []
        return dump(event), "diagnosis empty"
    if variant == 1:
        event["diagnosis"] = ["C34.9000000000000"]
        return dump(event), "diagnosis code of 17 characters"
    if variant == 2:
        event["diagnosis"] = [""]
        return dump(event), "diagnosis code empty"
    event["diagnosis"] = [34.9]
    return dump(event), "diagnosis code is a number"


def m_bad_items(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(10)
    if variant < 6:
        event["items"] = []
        return dump(event), "no items"
    if variant < 9:
        event["items"][0] = "XM00001"
        return dump(event), "an item is a string"
    template = first_item(event)
    event["items"] = [template] * 2001
    return dump(event), "2001 items"
