"""The review queue of fund-safety flags: what the page lists, and operators' reviews.

Flags are few (they point at settlements worth a look), so the queue reads them all, newest
first, and filters by rule and by province (a flag involves the payer and payee provinces of
its settlements) in Python. Each flag carries its settlements side by side (`evidence.earlier`
and `evidence.later`: kind, hospital, dates, amount) and its latest review, if any. Reviews are
appended, never changed: the newest is the flag's state.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from clearing.store.monitor import flag_provinces
from clearing.store.schema import REVIEW_STATUSES, flag_reviews, flags

MAX_LISTED = 500


class UnknownFlag(LookupError):
    """No flag has this id."""


def latest_reviews(conn: Connection) -> dict[str, dict[str, Any]]:
    t = flag_reviews
    query = select(t.c.flag_id, t.c.status, t.c.note, t.c.operator, t.c.at).order_by(t.c.id)
    out: dict[str, dict[str, Any]] = {}
    for flag_id, status, note, operator, at in conn.execute(query):
        when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        out[flag_id] = {
            "status": status,
            "note": note,
            "operator": operator,
            "at": when.isoformat(timespec="seconds"),
        }
    return out


def flag_queue(
    conn: Connection, rule: str | None = None, province: str | None = None
) -> dict[str, Any]:
    """The flags (newest first, at most MAX_LISTED after filtering) with their latest review,
    and the counts of every flag by rule and by province."""
    t = flags
    query = select(t.c.flag_id, t.c.flag, t.c.recorded_at).order_by(
        t.c.recorded_at.desc(), t.c.flag_id.desc()
    )
    reviews = latest_reviews(conn)
    by_rule: Counter[str] = Counter()
    by_province: Counter[str] = Counter()
    listed: list[dict[str, Any]] = []
    for flag_id, raw, recorded_at in conn.execute(query):
        flag = orjson.loads(raw)
        provinces = flag_provinces(flag)
        by_rule[flag["rule"]] += 1
        by_province.update(provinces)
        if rule and flag["rule"] != rule:
            continue
        if province and province not in provinces:
            continue
        if len(listed) < MAX_LISTED:
            listed.append(
                {
                    "flag": flag,
                    "provinces": list(provinces),
                    "raised_at": str(recorded_at),
                    "review": reviews.get(flag_id),
                }
            )
    return {
        "flags": listed,
        "counts": {"by_rule": dict(by_rule), "by_province": dict(by_province)},
    }


def review(engine: Engine, flag_id: str, status: str, note: str, operator: str) -> dict[str, Any]:
    """Records an operator's review of a flag; returns it."""
    if status not in REVIEW_STATUSES:
        raise ValueError(f"status must be one of {', '.join(REVIEW_STATUSES)}")
    at = datetime.now(UTC)
    with engine.begin() as conn:
        found = conn.execute(select(flags.c.flag_id).where(flags.c.flag_id == flag_id)).first()
        if found is None:
            raise UnknownFlag(flag_id)
        conn.execute(
            flag_reviews.insert().values(
                flag_id=flag_id, status=status, note=note, operator=operator, at=at
            )
        )
    return {
        "flag_id": flag_id,
        "status": status,
        "note": note,
        "operator": operator,
        "at": at.isoformat(timespec="seconds"),
    }
