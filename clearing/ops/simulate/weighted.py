"""Weighted random picks: values with cumulative weights, picked by bisection."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WeightedTable(Generic[T]):
    """Values with cumulative weights, for `bisect` picks."""

    values: tuple[T, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[T, float]]) -> WeightedTable[T]:
        values = tuple(v for v, _ in pairs)
        return cls(values, tuple(itertools.accumulate(w for _, w in pairs)))

    def pick(self, rng: Random) -> T:
        return self.values[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]
