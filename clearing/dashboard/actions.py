"""The log of the operators' Close and Issue actions (`dashboard_operator_actions`).

Operators sign in with a bearer token of kind `operator` (`clearing.auth`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from clearing.store.schema import operator_actions as actions


def log_action(engine: Engine, operator: str, action: str, period: str, outcome: str) -> None:
    row = {
        "at": datetime.now(UTC),
        "operator": operator,
        "action": action,
        "period": period,
        "outcome": outcome[:500],
    }
    with engine.begin() as conn:
        conn.execute(insert(actions), [row])


def recent_actions(engine: Engine, limit: int = 10) -> list[dict[str, str]]:
    query = select(actions).order_by(actions.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [
            {
                "at": (row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)).isoformat(
                    timespec="seconds"
                ),
                "operator": row.operator,
                "action": row.action,
                "period": row.period,
                "outcome": row.outcome,
            }
            for row in conn.execute(query)
        ]
