"""Issued statements onto the clearing topic and, each province's part, onto its feed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson

from clearing.topics import Topics


def province_view(statement: Mapping, province: str) -> dict:
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
    topics: Topics, statements: Iterable[Mapping]
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


def publish_statements(bootstrap: str, topics: Topics, statements: Iterable[Mapping]) -> int:
    from clearing.kafka_clients import producer

    kafka = producer(bootstrap)
    try:
        futures = [
            kafka.send(topic, key=key, value=value)
            for topic, key, value in statement_messages(topics, statements)
        ]
        kafka.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        kafka.close()
    return len(futures)
