"""Who may send what (`authority.md`): the principal a channel established, checked against the
event it carries.

The principal travels beside the event, never in it: the gate names the province whose inbound
topic an event came from, the submission API the hospital whose token it took, and an event
written to the events topic with no principal is an operator's. Pure: the caller supplies the
priced settlement a reversal names and, for routing only, where a hospital lies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from clearing.core.models.events import Event, Filing, Reversal, Settlement
from clearing.core.models.results import Priced, Rejected
from clearing.core.models.types import province_of
from clearing.core.provinces import PROVINCES

Kind = Literal["operator", "province", "hospital", "unknown"]
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent an event. `unknown` is a header no channel writes: it may send nothing."""

    kind: Kind
    id: str = ""
    # The province a hospital lies in, when its credential names it.
    province: str | None = None

    @property
    def header(self) -> str:
        """The `principal` header's value: `operator`, `province:<code>`, `hospital:<id>`, or
        `hospital:<id>@<province>` for a hospital whose province is known."""
        if self.kind == "operator":
            return self.kind
        if self.kind == "hospital" and self.province is not None:
            return f"hospital:{self.id}@{self.province}"
        return f"{self.kind}:{self.id}"


OPERATOR = Principal("operator")


def province(code: str) -> Principal:
    return Principal("province", code)


def hospital(hospital_id: str, province: str | None = None) -> Principal:
    return Principal("hospital", hospital_id, province)


def principal_of(header: bytes | str | None) -> Principal:
    """The principal a `principal` header names; none is an operator (only trusted writers
    reach the events topic). A value no channel writes fails closed, as `unknown`."""
    if header is None:
        return OPERATOR
    text = header.decode("utf-8", "replace") if isinstance(header, bytes) else header
    if text == "operator":
        return OPERATOR
    kind, _, ident = text.partition(":")
    if kind == "province" and ident in PROVINCES:
        return province(ident)
    if kind == "hospital":
        hospital_id, at, where = ident.partition("@")
        if _ID.fullmatch(hospital_id) and (not at or where in PROVINCES):
            return hospital(hospital_id, where or None)
    return Principal("unknown", text[:80])


def may_send(principal: Principal, event: Event, named: Priced | None) -> bool:
    """The table of `authority.md`. `named` is the priced settlement a reversal names (None
    when it is not priced: then this rule does not judge it, pricing answers
    UNKNOWN_SETTLEMENT whoever sent it)."""
    kind, ident = principal.kind, principal.id
    if kind == "operator":
        return True
    if isinstance(event, Settlement):
        if kind == "hospital":
            return event.hospital_id == ident
        return kind == "province" and province_of(event.hospital_region) == ident
    if isinstance(event, Reversal):
        if named is None:
            return kind in ("hospital", "province")
        if kind == "hospital":
            return named.hospital_id == ident
        return kind == "province" and named.payee == ident
    # A filing or an assistance record: its home province's.
    return kind == "province" and province_of(event.home_region) == ident


def not_authorized(event: Event) -> Rejected:
    """The rejection of an event its principal may not send, naming the event's own id."""
    if isinstance(event, Settlement):
        return Rejected(settlement_id=event.settlement_id, reasons=["NOT_AUTHORIZED"])
    if isinstance(event, Reversal):
        return Rejected(
            settlement_id=event.settlement_id,
            reversal_id=event.reversal_id,
            reasons=["NOT_AUTHORIZED"],
        )
    if isinstance(event, Filing):
        return Rejected(filing_id=event.filing_id, reasons=["NOT_AUTHORIZED"])
    return Rejected(assistance_id=event.assistance_id, reasons=["NOT_AUTHORIZED"])


def check(principal: Principal | None, event: Event, named: Priced | None) -> Rejected | None:
    """None when the principal may send the event (None is an operator), else its
    `NOT_AUTHORIZED` rejection."""
    if principal is None or may_send(principal, event, named):
        return None
    return not_authorized(event)


def home_province(
    principal: Principal, hospital_province: Callable[[str], str | None]
) -> str | None:
    """The province a principal belongs to, whose feed gets its `NOT_AUTHORIZED` results: a
    province its own, a hospital the one it lies in (when known); operators have no feed."""
    if principal.kind == "province":
        return principal.id
    if principal.kind == "hospital":
        found = principal.province or hospital_province(principal.id)
        return found if found in PROVINCES else None
    return None
