"""Hand-written checks of the four event types, for the hot path.

Pydantic's strict validation of a settlement's ~23 items is most of what parsing costs. These
checks accept only what the models accept, field for field as `events.md` and
`clearing.core.models` say, and then build the very model objects validation would have built
(same values, fields set and private state). They only ever decide "valid": on anything they do
not accept they return None and the caller validates with pydantic, so every rejection and its
message still comes from the published models. `tests/unit/core/test_fastparse.py` proves both
agree on generated valid and malformed events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeGuard

from clearing.core.models.events import Assistance, Event, Filing, Reversal, Settlement
from clearing.core.models.types import (
    MAX_QUANTITY_E4,
    _check_date,
    _check_timestamp,
    quantity_e4,
)

# The patterns of `clearing.core.models.types`, matched whole (`fullmatch`, ASCII classes).
_id = re.compile(r"[A-Za-z0-9_-]{1,64}").fullmatch
_region = re.compile(r"[1-9][0-9]{5}").fullmatch
_province = re.compile(r"[1-9][0-9]0000").fullmatch
_quantity = re.compile(r"[0-9]+(\.[0-9]{1,4})?").fullmatch

_SETTLEMENT_KINDS = frozenset(("inpatient", "outpatient", "chronic"))
_SCHEMES = frozenset(("employee", "resident"))
_FILING_KINDS = frozenset(("long_term", "temporary", "referral"))
_CLASSES = frozenset(("A", "B"))
_MAX_UNIT_PRICE = 10**10
_MAX_AMOUNT = 10**12

# Values seen valid before, by value: item codes and quantities repeat across settlements.
# Bounded; when full, a miss is checked without being remembered.
_CACHE_LIMIT = 65_536
_codes: set[str] = set()
_quantities: dict[str, int] = {}

_set = object.__setattr__


def _is_id(value: Any) -> TypeGuard[str]:
    return type(value) is str and _id(value) is not None


def _is_code(value: Any) -> TypeGuard[str]:
    """An item's code: an id, most often one seen before."""
    if type(value) is not str:
        return False
    if value in _codes:
        return True
    if _id(value) is None:
        return False
    if len(_codes) < _CACHE_LIMIT:
        _codes.add(value)
    return True


def _is_region(value: Any) -> TypeGuard[str]:
    return type(value) is str and _region(value) is not None


@lru_cache(maxsize=8192)
def _date_ok(value: str) -> bool:
    try:
        _check_date(value)
    except ValueError:
        return False
    return True


def _is_date(value: Any) -> TypeGuard[str]:
    return type(value) is str and _date_ok(value)


# The commonest spelling, China time to the second: valid when its date is (no datetime).
_china_second = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\+08:00"
).fullmatch


def _is_timestamp(value: Any) -> TypeGuard[str]:
    if type(value) is not str:
        return False
    if _china_second(value) is not None and _date_ok(value[:10]):
        return True
    try:
        _check_timestamp(value)
    except ValueError:
        return False
    return True


def _is_version(value: Any) -> bool:
    return type(value) is int and value == 1


def _quantity_e4(value: Any) -> int:
    """The exact quantity of a valid quantity string, else 0 (never valid)."""
    if type(value) is not str:
        return 0
    exact = _quantities.get(value)
    if exact is not None:
        return exact
    if _quantity(value) is None:
        return 0
    exact = quantity_e4(value)
    if exact and len(_quantities) < _CACHE_LIMIT:  # only quantities > 0 are remembered
        _quantities[value] = exact
    return exact


def _construct(model: type[Event], values: dict[str, Any], private: dict[str, Any] | None) -> Any:
    """The model object validation builds from these already-checked values.

    What `model_construct` does, without its per-field defaults pass (every field is given).
    """
    event = model.__new__(model)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", set(values))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", private)
    return event


_ITEM_FIELDS = ("code", "quantity", "unit_price_fen", "amount_fen")


def _items(items: Any) -> tuple[list[dict[str, Any]], tuple[int, ...]] | None:
    """The items as validation returns them (their fields in order) and their exact
    quantities; None unless every item is valid.

    The hot loop of parsing: a code or quantity seen valid before is known by one look-up,
    and an item whose fields already come in order is kept as it is.
    """
    if type(items) is not list or not 1 <= len(items) <= 2000:
        return None
    out = items
    quantities = []
    codes = _codes
    known_quantities = _quantities
    index = -1
    try:
        for item in items:
            index += 1
            if type(item) is not dict:
                return None
            if tuple(item) != _ITEM_FIELDS:
                if len(item) != 4 or item.keys() != set(_ITEM_FIELDS):
                    return None
                if out is items:
                    out = list(items)
                out[index] = {name: item[name] for name in _ITEM_FIELDS}
            unit_price = item["unit_price_fen"]
            amount = item["amount_fen"]
            code = item["code"]
            if code not in codes and not _is_code(code):
                return None
            quantity = item["quantity"]
            exact = known_quantities.get(quantity) or _quantity_e4(quantity)
            if not (
                0 < exact <= MAX_QUANTITY_E4
                and type(unit_price) is int
                and 0 <= unit_price <= _MAX_UNIT_PRICE
                and type(amount) is int
                and 0 <= amount <= _MAX_AMOUNT
            ):
                return None
            quantities.append(exact)
    except TypeError:  # an unhashable code or quantity: not a string
        return None
    return (list(out) if out is items else out), tuple(quantities)


def _diagnosis(value: Any) -> list[str] | None:
    if type(value) is not list or not value:
        return None
    for code in value:
        if type(code) is not str or not 1 <= len(code) <= 16:
            return None
    return list(value)


def _settlement(obj: dict[str, Any]) -> Settlement | None:
    if len(obj) != 15:
        return None
    get = obj.get
    kind = get("kind")
    scheme = get("scheme")
    level = get("hospital_level")
    emergency = get("emergency")
    if not (
        _is_version(get("schema_version"))
        and _is_id(get("settlement_id"))
        and type(kind) is str
        and kind in _SETTLEMENT_KINDS
        and _is_id(get("person_id"))
        and type(scheme) is str
        and scheme in _SCHEMES
        and _is_region(get("home_region"))
        and _is_id(get("hospital_id"))
        and _is_region(get("hospital_region"))
        and type(level) is int
        and 1 <= level <= 3
        and type(emergency) is bool
        and _is_date(get("admitted_on"))
        and _is_timestamp(get("settled_at"))
    ):
        return None
    diagnosis = _diagnosis(get("diagnosis"))
    if diagnosis is None:
        return None
    items = _items(get("items"))
    if items is None:
        return None
    values = {
        "type": "settlement",
        "schema_version": 1,
        "settlement_id": obj["settlement_id"],
        "kind": kind,
        "person_id": obj["person_id"],
        "scheme": scheme,
        "home_region": obj["home_region"],
        "hospital_id": obj["hospital_id"],
        "hospital_region": obj["hospital_region"],
        "hospital_level": level,
        "emergency": emergency,
        "admitted_on": obj["admitted_on"],
        "settled_at": obj["settled_at"],
        "diagnosis": diagnosis,
        "items": items[0],
    }
    event: Settlement = _construct(Settlement, values, {"_quantities_e4": items[1]})
    return event


def _reversal(obj: dict[str, Any]) -> Reversal | None:
    if len(obj) != 7:
        return None
    get = obj.get
    reason = get("reason")
    if not (
        _is_version(get("schema_version"))
        and _is_id(get("reversal_id"))
        and _is_id(get("settlement_id"))
        and _is_id(get("person_id"))
        and type(reason) is str
        and 1 <= len(reason) <= 200
        and _is_timestamp(get("settled_at"))
    ):
        return None
    values = {
        "type": "reversal",
        "schema_version": 1,
        "reversal_id": obj["reversal_id"],
        "settlement_id": obj["settlement_id"],
        "person_id": obj["person_id"],
        "reason": reason,
        "settled_at": obj["settled_at"],
    }
    event: Reversal = _construct(Reversal, values, None)
    return event


def _validity(obj: dict[str, Any]) -> tuple[str, str | None] | None:
    """`valid_from` and `valid_to` (a date or null, never before `valid_from`), or None."""
    valid_from = obj.get("valid_from")
    valid_to = obj.get("valid_to", ...)
    if not _is_date(valid_from):
        return None
    if valid_to is not None and not (_is_date(valid_to) and valid_to >= valid_from):
        return None
    return valid_from, valid_to


def _filing(obj: dict[str, Any]) -> Filing | None:
    if len(obj) != 9:
        return None
    get = obj.get
    filing_kind = get("filing_kind")
    province = get("treatment_province")
    if not (
        _is_version(get("schema_version"))
        and _is_id(get("filing_id"))
        and _is_id(get("person_id"))
        and _is_region(get("home_region"))
        and type(province) is str
        and _province(province) is not None
        and type(filing_kind) is str
        and filing_kind in _FILING_KINDS
    ):
        return None
    validity = _validity(obj)
    if validity is None:
        return None
    values = {
        "type": "filing",
        "schema_version": 1,
        "filing_id": obj["filing_id"],
        "person_id": obj["person_id"],
        "home_region": obj["home_region"],
        "treatment_province": province,
        "filing_kind": filing_kind,
        "valid_from": validity[0],
        "valid_to": validity[1],
    }
    event: Filing = _construct(Filing, values, None)
    return event


def _assistance(obj: dict[str, Any]) -> Assistance | None:
    if len(obj) != 8:
        return None
    get = obj.get
    class_ = get("class")
    if not (
        _is_version(get("schema_version"))
        and _is_id(get("assistance_id"))
        and _is_id(get("person_id"))
        and _is_region(get("home_region"))
        and type(class_) is str
        and class_ in _CLASSES
    ):
        return None
    validity = _validity(obj)
    if validity is None:
        return None
    values = {
        "type": "assistance",
        "schema_version": 1,
        "assistance_id": obj["assistance_id"],
        "person_id": obj["person_id"],
        "home_region": obj["home_region"],
        "class_": class_,
        "valid_from": validity[0],
        "valid_to": validity[1],
    }
    event: Assistance = _construct(Assistance, values, None)
    return event


_CHECKS: dict[str, Callable[[dict[str, Any]], Event | None]] = {
    "settlement": _settlement,
    "reversal": _reversal,
    "filing": _filing,
    "assistance": _assistance,
}


def fast_event(obj: dict[str, Any]) -> Event | None:
    """The event of a decoded JSON object when it is certainly valid, else None (validate it
    with the models then: that gives the verdict and the message)."""
    kind = obj.get("type")
    check = _CHECKS.get(kind) if type(kind) is str else None
    return None if check is None else check(obj)
