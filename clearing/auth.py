"""Bearer tokens of everyone who calls in: hospitals (the submission API), operators (the
dashboard's Close and Issue) and viewers (the dashboard, read-only).

One table, `credentials`: one token per (kind, id). A token is 256 random bits, shown once when
it is made; only its SHA-256 is stored. An unsalted hash is enough for such a token: nothing can
be guessed from it, and a presented token is looked up by its hash (an index) with no per-row
salt. The stored hash found is compared again in constant time, so how long a check takes says
nothing about a stored hash. `clearing credentials add|revoke|list` manages them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Delete, Engine, Select, Update, delete, insert, select
from sqlalchemy.exc import IntegrityError

from clearing.core.errors import InputError
from clearing.core.provinces import PROVINCES
from clearing.store.schema import PRINCIPAL_KINDS, credentials

_Filterable = TypeVar("_Filterable", Select[tuple[str]], Delete, Update)

KINDS = PRINCIPAL_KINDS
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TOKEN_CHARS = 256
# A token made elsewhere (a deployment's secret file) must be as hard to guess as one made here.
GIVEN_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{43,{MAX_TOKEN_CHARS}}}")


class CredentialError(InputError):
    """A credential that cannot be added or revoked; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to."""

    kind: str
    id: str
    # A hospital's province, given when its credential was added (authority.md: a hospital
    # belongs to its own province, whose feed gets its refused events).
    province: str | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise CredentialError(f"kind {kind!r} is not one of {', '.join(KINDS)}")


def add(
    engine: Engine,
    kind: str,
    principal_id: str,
    replace: bool = False,
    province: str | None = None,
    token: str | None = None,
) -> str:
    """Creates (or with `replace`, rotates) a principal's token; returns the token itself.

    `province`: the province a hospital lies in (hospitals only). `token` sets a token made
    beforehand instead of a new one: a deployment whose scraper reads its token from a secret
    file registers that file's token (at least 43 URL-safe characters, as many random bits as a
    token made here)."""
    _check_kind(kind)
    if not ID_PATTERN.fullmatch(principal_id):
        raise CredentialError(f"{kind} id {principal_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    if province is not None and (kind != "hospital" or province not in PROVINCES):
        raise CredentialError(
            f"province {province!r}: only a hospital has one, a code of the 31 provinces"
        )
    if token is None:
        token = secrets.token_urlsafe(32)
    elif not GIVEN_TOKEN.fullmatch(token):
        raise CredentialError(
            f"a given token must be 43 to {MAX_TOKEN_CHARS} characters of [A-Za-z0-9_-]"
        )
    row = {
        "kind": kind,
        "id": principal_id,
        "token_hash": token_hash(token),
        "created_at": datetime.now(UTC),
        "province": province,
    }
    with engine.begin() as conn:
        if replace:
            conn.execute(_where(delete(credentials), kind, principal_id))
        try:
            conn.execute(insert(credentials), [row])
        except IntegrityError:
            raise CredentialError(
                f"{kind} {principal_id} already has a token (revoke it, or add --replace)"
            ) from None
    return token


def revoke(engine: Engine, kind: str, principal_id: str) -> bool:
    """Removes a principal's token; False when it had none."""
    _check_kind(kind)
    with engine.begin() as conn:
        done = conn.execute(_where(delete(credentials), kind, principal_id))
    return bool(done.rowcount)


def listing(engine: Engine, kind: str | None = None) -> list[tuple[str, str, datetime]]:
    """(kind, id, created_at) of every principal with a token, or of one kind."""
    t = credentials
    query = select(t.c.kind, t.c.id, t.c.created_at).order_by(t.c.kind, t.c.id)
    if kind is not None:
        _check_kind(kind)
        query = query.where(t.c.kind == kind)
    with engine.connect() as conn:
        return [(k, i, created) for k, i, created in conn.execute(query)]


def authenticate(engine: Engine, token: str, kinds: Iterable[str] = KINDS) -> Principal | None:
    """The principal a presented token belongs to, if it is of one of `kinds`; else None."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    presented = token_hash(token)
    t = credentials
    query = select(t.c.kind, t.c.id, t.c.token_hash, t.c.province).where(
        t.c.token_hash == presented
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or not hmac.compare_digest(row.token_hash, presented):
        return None
    return Principal(row.kind, row.id, row.province) if row.kind in set(kinds) else None


def _where(statement: _Filterable, kind: str, principal_id: str) -> _Filterable:
    return statement.where(credentials.c.kind == kind, credentials.c.id == principal_id)
