"""Lines spoilt as a whole: not JSON, blank, nested past any parser's limit, or not an object."""

from __future__ import annotations

from random import Random
from typing import Any

from clearing.ops.simulate.jsonline import dump


def m_unparseable(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    text = dump(event)
    if rng.random() < 0.5:
        cut = rng.randint(1, len(text) - 2)
        return text[:cut], f"truncated after {cut} characters"
    garbage = rng.choice(
        (
            "}{",
            "<settlement/>",
            "{'type': 'settlement'}",
            '{"type": "settlement",}',
            "\x00\x01",
            "settlement,S1,P1",
            '{"type": "settlement" "schema_version": 1}',
            '{"type": "filing", "schema_version": 1',
            "undefined",
        )
    )
    return garbage, f"not JSON: {garbage!r}"


def m_blank(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    text = rng.choice(("", "", "", "   ", "\t"))
    return text, "blank line"


def m_too_deep(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    depth = rng.randint(10_000, 20_000)
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth, f"arrays nested {depth} deep"
    head = '{"type": "settlement", "schema_version": 1, "settlement_id": '
    return head + '{"a": ' * depth + "1" + "}" * depth + "}", f"objects nested {depth} deep"


def m_not_object(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    text = rng.choice((dump([event]), '"settlement"', "42", "null", "true", "[]"))
    return text, f"top-level JSON is not an object: {text[:20]!r}"
