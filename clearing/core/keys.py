"""The business key of every settlement and reversal id, and the one content fingerprint.

Each id is processed once (pricing.md): its key is `S:<settlement_id>` for a settlement and
`R:<reversal_id>` for a reversal. The submission API claims an id under that key, the stream
takes it, and the ledger records the id's result under it: all three in the one `ids` table.

The fingerprint of a JSON object is the SHA-256 of its canonical JSON (keys sorted): equal
parsed objects have equal fingerprints, whatever their key order or spacing. Events are compared
by it (duplicate or conflict), and so are stored results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson


def settlement_key(settlement_id: str) -> str:
    return f"S:{settlement_id}"


def reversal_key(reversal_id: str) -> str:
    return f"R:{reversal_id}"


def result_key(result: Mapping[str, Any]) -> str:
    """The key of the id a priced (`S:`) or reversed (`R:`) result belongs to."""
    if result.get("status") == "priced":
        return settlement_key(str(result.get("settlement_id")))
    return reversal_key(str(result.get("reversal_id")))


def person_key(raw: bytes) -> bytes | None:
    """The Kafka key of an event: its person_id when the bytes are a JSON object with a
    non-empty string person_id (one person's events stay in one partition), else None."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    person = obj.get("person_id") if isinstance(obj, dict) else None
    if isinstance(person, str) and person:
        return person.encode("utf-8")
    return None


def fingerprint(obj: object) -> str:
    """SHA-256 of the canonical JSON of a parsed object: equal objects, equal fingerprints."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()
