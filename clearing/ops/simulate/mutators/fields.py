"""Settlements with a field of the wrong type, unknown or missing, a malformed id or region, a
value outside its enum or range, or the wrong schema version."""

from __future__ import annotations

from random import Random
from typing import Any

from clearing.core.models.events import Settlement
from clearing.ops.simulate.jsonline import dump

RAW = "@@raw@@"


def dump_raw(event: dict[str, Any], raw: str) -> str:
    """The event as JSON with the one value set to `RAW` replaced by raw JSON text."""
    return dump(event).replace(f'"{RAW}"', raw, 1)


def first_item(event: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = event["items"][0]
    return item


def m_wrong_type(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(14)
    if variant == 0:
        event["hospital_level"] = str(event["hospital_level"])
        return dump(event), f"hospital_level is the string {event['hospital_level']!r}"
    if variant == 1:
        event["emergency"] = int(event["emergency"])
        return dump(event), "emergency is the integer 0/1, not a boolean"
    if variant == 2:
        event["hospital_level"] = float(event["hospital_level"])
        return dump(event), f"hospital_level is {event['hospital_level']!r}, not an integer"
    if variant == 3:
        item = first_item(event)
        item["unit_price_fen"] = str(item["unit_price_fen"])
        return dump(event), "unit_price_fen is a string"
    if variant == 4:
        item = first_item(event)
        item["amount_fen"] = float(item["amount_fen"])
        return dump(event), "amount_fen is a float"
    if variant == 5:
        item = first_item(event)
        raw = f"{item['unit_price_fen']}e0"
        item["unit_price_fen"] = RAW
        return dump_raw(event, raw), f"unit_price_fen written with an exponent ({raw})"
    if variant == 6:
        event["hospital_level"] = True
        return dump(event), "hospital_level is a boolean"
    if variant == 7:
        event["person_id"] = 12345
        return dump(event), "person_id is a number"
    if variant == 8:
        event["diagnosis"] = event["diagnosis"][0]
        return dump(event), "diagnosis is a string, not a list"
    if variant == 9:
        event["items"] = first_item(event)
        return dump(event), "items is an object, not a list"
    if variant == 10:
        event["emergency"] = "false"
        return dump(event), 'emergency is the string "false"'
    if variant == 11:
        first_item(event)["quantity"] = 1
        return dump(event), "quantity is a number, not a string"
    if variant == 12:
        event["kind"] = None
        return dump(event), "kind is null"
    text = dump(event)
    return text[:-1] + ', "hospital_level": "3"}', "hospital_level repeated, last value a string"


def m_unknown_field(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(3)
    if variant == 0:
        event["remark"] = "加急"
        return dump(event), "unknown field remark"
    if variant == 1:
        first_item(event)["discount_fen"] = 0
        return dump(event), "unknown item field discount_fen"
    event["Kind"] = event["kind"]
    return dump(event), "unknown field Kind (case matters)"


SETTLEMENT_FIELDS = tuple(Settlement.model_fields)


def m_missing_field(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    if rng.random() < 0.2:
        key = rng.choice(("code", "quantity", "unit_price_fen", "amount_fen"))
        del first_item(event)[key]
        return dump(event), f"item without {key}"
    key = rng.choice(SETTLEMENT_FIELDS)
    del event[key]
    return dump(event), f"missing field {key}"


BAD_IDS = ("bad id with spaces", "S" * 65, "", "S2026/0001", "Ｓ2026０001", "S-é-1", "S.1")


def m_bad_id(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(5)
    if variant == 0:
        event["settlement_id"] = rng.choice(BAD_IDS)
        return dump(event), f"settlement_id malformed: {event['settlement_id'][:20]!r}"
    if variant == 1:
        event["settlement_id"] += "\n"
        return dump(event), "settlement_id ends in a newline"
    if variant == 2:
        event["person_id"] = event["person_id"][:6] + "." + event["person_id"][6:]
        return dump(event), "person_id contains a dot"
    if variant == 3:
        event["hospital_id"] = event["hospital_id"][:4] + " " + event["hospital_id"][4:]
        return dump(event), "hospital_id contains a space"
    first_item(event)["code"] = "XM 00001"
    return dump(event), "item code contains a space"


BAD_REGIONS = ("060200", "11000", "1100000", "11000A", " 110000", "１１００００", "000000")


def m_bad_region(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    key = rng.choice(("home_region", "hospital_region"))
    event[key] = rng.choice(BAD_REGIONS)
    return dump(event), f"{key} malformed: {event[key]!r}"


def m_bad_enum(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    key, value = rng.choice(
        (
            ("kind", "inpatent"),
            ("kind", "Inpatient"),
            ("kind", "emergency"),
            ("scheme", "Employee"),
            ("scheme", "commercial"),
            ("type", "refund"),
            ("type", "Settlement"),
        )
    )
    event[key] = value
    return dump(event), f"{key} is not allowed: {value!r}"


def m_out_of_range(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(5)
    item = first_item(event)
    if variant == 0:
        event["hospital_level"] = rng.choice((0, 4))
        return dump(event), f"hospital_level {event['hospital_level']}"
    if variant == 1:
        item["unit_price_fen"] = -1
        return dump(event), "unit_price_fen negative"
    if variant == 2:
        item["unit_price_fen"] = 10**10 + 1
        return dump(event), "unit_price_fen above 10^10"
    if variant == 3:
        item["amount_fen"] = 10**12 + 1
        return dump(event), "amount_fen above 10^12"
    item["amount_fen"] = -item["amount_fen"] - 1
    return dump(event), "amount_fen negative"


def m_bad_schema_version(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    value = rng.choice((2, 0, "1", 1.0, True))
    event["schema_version"] = value
    return dump(event), f"schema_version {value!r} is not the integer 1"
