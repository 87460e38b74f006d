"""Operator tokens for the page's Close and Issue actions, and the log of those actions.

Same scheme as the hospitals' API tokens (`clearing.api.credentials`, whose hashing and limits
are reused): 256 random bits shown once, only the SHA-256 kept, looked up by hash.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from clearing.api.credentials import ID_PATTERN, MAX_TOKEN_CHARS, CredentialError, token_hash

metadata = MetaData()

operators = Table(
    "dashboard_operators",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

actions = Table(
    "dashboard_operator_actions",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("operator", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("period", String(7), nullable=False),
    Column("outcome", String(500), nullable=False),
)


def create_tables(engine: Engine) -> None:
    metadata.create_all(engine, checkfirst=True)


def add(engine: Engine, name: str, replace: bool = False) -> str:
    """Creates (or with `replace`, rotates) an operator's token; returns the token itself."""
    if not ID_PATTERN.fullmatch(name):
        raise CredentialError(f"operator name {name!r} must match [A-Za-z0-9_-]{{1,64}}")
    token = secrets.token_urlsafe(32)
    row = {"name": name, "token_hash": token_hash(token), "created_at": datetime.now(UTC)}
    with engine.begin() as conn:
        if replace:
            conn.execute(delete(operators).where(operators.c.name == name))
        try:
            conn.execute(insert(operators), [row])
        except IntegrityError:
            raise CredentialError(
                f"operator {name} already has a token (revoke it, or add --replace)"
            ) from None
    return token


def revoke(engine: Engine, name: str) -> bool:
    with engine.begin() as conn:
        done = conn.execute(delete(operators).where(operators.c.name == name))
    return bool(done.rowcount)


def listing(engine: Engine) -> list[tuple[str, datetime]]:
    query = select(operators.c.name, operators.c.created_at).order_by(operators.c.name)
    with engine.connect() as conn:
        return [(name, created) for name, created in conn.execute(query)]


def authenticate(engine: Engine, token: str) -> str | None:
    """The operator a presented token belongs to, or None."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    query = select(operators.c.name).where(operators.c.token_hash == token_hash(token))
    with engine.connect() as conn:
        return conn.execute(query).scalar_one_or_none()


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
