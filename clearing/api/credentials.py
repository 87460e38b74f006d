"""Hospital bearer tokens: random, shown once, stored only as a SHA-256 hash.

A token is 256 random bits, so an unsalted hash is enough: nothing can be guessed from it, and
looking a token up by its hash needs no per-row salt.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from clearing.api.tables import credentials
from clearing.core.errors import InputError

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TOKEN_CHARS = 256


class CredentialError(InputError):
    """A credential that cannot be added or revoked; the message says why."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add(engine: Engine, hospital_id: str, replace: bool = False) -> str:
    """Creates (or with `replace`, rotates) a hospital's token; returns the token itself."""
    if not ID_PATTERN.fullmatch(hospital_id):
        raise CredentialError(f"hospital_id {hospital_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    token = secrets.token_urlsafe(32)
    row = {
        "hospital_id": hospital_id,
        "token_hash": token_hash(token),
        "created_at": datetime.now(UTC),
    }
    with engine.begin() as conn:
        if replace:
            conn.execute(delete(credentials).where(credentials.c.hospital_id == hospital_id))
        try:
            conn.execute(insert(credentials), [row])
        except IntegrityError:
            raise CredentialError(
                f"hospital {hospital_id} already has a token (revoke it, or add --replace)"
            ) from None
    return token


def revoke(engine: Engine, hospital_id: str) -> bool:
    """Removes a hospital's token; False when it had none."""
    with engine.begin() as conn:
        done = conn.execute(delete(credentials).where(credentials.c.hospital_id == hospital_id))
    return bool(done.rowcount)


def listing(engine: Engine) -> list[tuple[str, datetime]]:
    """(hospital_id, created_at) of every hospital with a token."""
    query = select(credentials.c.hospital_id, credentials.c.created_at).order_by(
        credentials.c.hospital_id
    )
    with engine.connect() as conn:
        return [(h, t) for h, t in conn.execute(query)]


def authenticate(engine: Engine, token: str) -> str | None:
    """The hospital a presented token belongs to, or None."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    query = select(credentials.c.hospital_id).where(credentials.c.token_hash == token_hash(token))
    with engine.connect() as conn:
        return conn.execute(query).scalar_one_or_none()
