"""Field types shared by events and reference data, exactly as `events.md` writes their syntax."""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta, timezone
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

CHINA_TZ = timezone(timedelta(hours=8), "UTC+08:00")

# Strict: "3" is not 3, 1 is not true; unknown fields are errors; parsed events never change.
STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{5}$")]
ProvinceCode = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]0000$")]
SchemaVersion = Annotated[int, Field(ge=1, le=1)]
Level = Annotated[int, Field(ge=1, le=3)]
Fen = Annotated[int, Field(ge=0)]
BasisPoints = Annotated[int, Field(ge=0, le=10000)]

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]{1,4})?")
MAX_QUANTITY_E4 = 100_000 * 10_000


def _check_date(value: str) -> str:
    if not _DATE.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a calendar date") from None
    return value


def _check_timestamp(value: str) -> str:
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with seconds and an offset")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a valid timestamp") from None
    offset = moment.utcoffset()
    if offset is None or abs(offset) >= timedelta(hours=24):
        raise ValueError("has an invalid offset")
    return value


@functools.lru_cache(maxsize=8192)
def quantity_e4(value: str) -> int:
    """A decimal quantity string as an exact integer number of ten-thousandths.

    Cached: settlements repeat a small set of quantities ("1", "2", "0.5", ...)."""
    if "." not in value:
        return int(value) * 10_000
    whole, frac = value.split(".")
    return int(whole) * 10_000 + int(frac) * _FRACTION_SCALE[len(frac)]


_FRACTION_SCALE = (0, 1000, 100, 10, 1)


DateStr = Annotated[
    str,
    Field(json_schema_extra={"format": "date", "pattern": f"^{_DATE.pattern}$"}),
    AfterValidator(_check_date),
]
Timestamp = Annotated[
    str,
    Field(json_schema_extra={"format": "date-time", "pattern": f"^{_TIMESTAMP.pattern}$"}),
    AfterValidator(_check_timestamp),
]
# The syntax is checked here; the range (> 0, at most 100000) by the settlement, which keeps
# the exact values for pricing.
Quantity = Annotated[str, StringConstraints(pattern=f"^{_QUANTITY.pattern}$")]


def china_time(timestamp: str) -> datetime:
    """A validated timestamp in the clearing calendar's time zone (UTC+08:00)."""
    return datetime.fromisoformat(timestamp).astimezone(CHINA_TZ)


def province_of(region: str) -> str:
    """The province code of a region code: its first two digits followed by 0000."""
    return region[:2] + "0000"
