"""Clearing periods: what a period is written as, and which results it clears.

A period is a calendar month of `settled_at` in UTC+08:00, written `YYYY-MM`. Priced and
reversed results are cleared (netted, posted, published); every other status is not.
"""

from __future__ import annotations

import re
from datetime import datetime

from clearing.core.models.types import CHINA_TZ

CLEARED = frozenset({"priced", "reversed"})
# One group, kept capturing: it is also the JSON Schemas' published `pattern`.
PERIOD_PATTERN = "[0-9]{4}-(0[1-9]|1[0-2])"
_PERIOD = re.compile(PERIOD_PATTERN)


def is_period(value: object) -> bool:
    return isinstance(value, str) and _PERIOD.fullmatch(value) is not None


def check_period(value: object) -> str:
    """The period itself; ValueError when it is not `YYYY-MM` with a month 01-12."""
    if not is_period(value):
        raise ValueError(f"a period is YYYY-MM, not {value!r}")
    return value  # type: ignore[return-value]


def parse_period(value: str) -> tuple[int, int]:
    """(year, month) of a period; ValueError when it is not one."""
    check_period(value)
    return int(value[:4]), int(value[5:])


def next_period(period: str) -> str:
    year, month = parse_period(period)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def period_end(period: str) -> datetime:
    """The first instant after the period, in China time."""
    year, month = parse_period(next_period(period))
    return datetime(year, month, 1, tzinfo=CHINA_TZ)
