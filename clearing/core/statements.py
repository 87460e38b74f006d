"""An issued statement as it is published: whole on the clearing topic, and to each province
its own part on its feed. Pure: the messages are built here and sent by whoever has a broker."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import orjson

from clearing.core.jsonish import JSONMapping, JSONObject


class StatementTopics(Protocol):
    """Where statements go (`clearing.topics.Topics`)."""

    @property
    def clearing(self) -> str: ...

    def feed(self, province: str) -> str: ...


def province_view(statement: JSONMapping, province: str) -> JSONObject:
    """What one province receives: its obligations, its net position, its transfers."""
    return {
        "type": "statement",
        "period": statement["period"],
        "province": province,
        "obligations": [
            ob for ob in statement["obligations"] if province in (ob["payer"], ob["payee"])
        ],
        "net_position": statement["net_positions"].get(province, 0),
        "transfers": [t for t in statement["transfers"] if province in (t["from"], t["to"])],
    }


def statement_messages(
    topics: StatementTopics, statements: Iterable[JSONMapping]
) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of every message that publishes the statements."""
    out = []
    for statement in statements:
        key = f"statement:{statement['period']}".encode()
        out.append((topics.clearing, key, orjson.dumps({"type": "statement", **statement})))
        for province in statement["net_positions"]:
            body = orjson.dumps(province_view(statement, province))
            out.append((topics.feed(province), key, body))
    return out
