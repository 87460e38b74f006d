"""Time in the stream: China-time days and seconds, the period a bundle spans, the timestamp
styles hospitals send, and the stream's clock."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from datetime import date
from random import Random

from clearing.core.periods import parse_period
from clearing.ops.simulate.weighted import WeightedTable

# Settlements by hour of day (China time): a morning peak, a lunch dip, a quiet night.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 10, 10, 10, 10, 6, 6, 9, 9, 9, 9, 5, 4, 3, 2, 2, 1)
HOUR_CUMULATIVE = tuple(itertools.accumulate(HOUR_WEIGHTS))
DAY = 86_400
CHINA_OFFSET = 8 * 3600


def second_of_day(fraction: float) -> int:
    """Map a uniform fraction of a day onto the hour profile, monotonically (order is kept)."""
    x = fraction * HOUR_CUMULATIVE[-1]
    hour = min(23, bisect.bisect_right(HOUR_CUMULATIVE, x))
    before = HOUR_CUMULATIVE[hour - 1] if hour else 0
    within = (x - before) / HOUR_WEIGHTS[hour]
    return hour * 3600 + min(3599, max(0, int(within * 3600)))


@dataclass(frozen=True, slots=True)
class Span:
    """The China-time days events are spread over: a month, or a whole year."""

    first_day: int
    days: int
    year: int


def make_span(period: str | None, year: int) -> Span:
    """The days of `period` (YYYY-MM), or of the whole `year`."""
    if period is None:
        first = date(year, 1, 1).toordinal()
        return Span(first, date(year + 1, 1, 1).toordinal() - first, year)
    y, m = parse_period(period)
    first = date(y, m, 1).toordinal()
    following = date(y + (m == 12), m % 12 + 1, 1).toordinal()
    return Span(first, following - first, y)


DATE_CACHE: dict[int, str] = {}


def day_text(ordinal: int) -> str:
    text = DATE_CACHE.get(ordinal)
    if text is None:
        text = DATE_CACHE[ordinal] = date.fromordinal(ordinal).isoformat()
    return text


def clock_text(local: int) -> str:
    """`HH:MM:SS` of a second count."""
    second = local % DAY
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def timestamp(local: int, style: str = "+08:00") -> str:
    """RFC 3339 text of a China-time instant (seconds since day 0 of the proleptic calendar),
    written in one of the equivalent styles hospitals send."""
    if style == "+08:00":
        return f"{day_text(local // DAY)}T{clock_text(local)}+08:00"
    if style == "frac":
        return f"{day_text(local // DAY)}T{clock_text(local)}.250+08:00"
    if style == "Z":
        utc = local - CHINA_OFFSET
        return f"{day_text(utc // DAY)}T{clock_text(utc)}.5Z"
    if style == "Z0":
        utc = local - CHINA_OFFSET
        return f"{day_text(utc // DAY)}T{clock_text(utc)}Z"
    if style == "+09:00":
        shifted = local + 3600
        return f"{day_text(shifted // DAY)}T{clock_text(shifted)}+09:00"
    shifted = local - 13 * 3600
    return f"{day_text(shifted // DAY)}T{clock_text(shifted)}-05:00"


TIMESTAMP_STYLES = ("+08:00", "frac", "Z", "Z0", "+09:00", "-05:00")
TIMESTAMP_STYLE_WEIGHTS = (940, 15, 20, 10, 10, 5)


class Clock:
    """The stream's China-time clock, which only moves forward: `now` is seconds since day 0 of
    the proleptic calendar."""

    def __init__(self, rng: Random, span: Span, steps: int) -> None:
        self.rng = rng
        self.span = span
        self.steps = steps
        self.now = span.first_day * DAY
        self.styles = WeightedTable.of(
            list(zip(TIMESTAMP_STYLES, TIMESTAMP_STYLE_WEIGHTS, strict=True))
        )

    @property
    def today(self) -> int:
        """The ordinal of the current China-time day."""
        return self.now // DAY

    def advance(self, step: int) -> None:
        """Move the clock to step `step` of `steps`, spread over the span's days."""
        x = (step + self.rng.random()) * self.span.days / self.steps
        day = min(self.span.days - 1, int(x))
        self.now = max(self.now, (self.span.first_day + day) * DAY + second_of_day(x - day))

    def settle_time(self) -> int:
        """Usually now; sometimes a late submission from earlier in the span."""
        if self.rng.random() < 0.004:
            return max(self.span.first_day * DAY, self.now - self.rng.randint(DAY, 15 * DAY))
        return self.now

    def settle_text(self, local: int) -> str:
        """`local` as a hospital writes it, in a randomly picked style."""
        return timestamp(local, self.styles.pick(self.rng))
