"""The line items of a visit: which codes, in what quantities, at what prices, and how many."""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from clearing.core.models.types import quantity_e4
from clearing.ops.simulate.refdata import ItemCode
from clearing.ops.simulate.weighted import WeightedTable

# How items of each kind of visit are drawn: weight per code group (prefix + tier).
PICK_WEIGHTS: dict[str, dict[str, float]] = {
    "inpatient": {
        "XM0": 31,
        "XM1": 17,
        "XM2": 3.1,
        "YP0": 31,
        "YP1": 15,
        "YP2": 3.0,
        "HC1": 2.0,
        "HC2": 1.3,
        "ZZ0": 1.0,
        "ZZ1": 0.3,
    },
    "surgical": {
        "XM0": 26,
        "XM1": 17,
        "XM2": 9.0,
        "YP0": 26,
        "YP1": 15,
        "YP2": 4.5,
        "HC1": 4.0,
        "HC2": 6.5,
        "ZZ0": 1.0,
        "ZZ1": 0.5,
    },
    "heavy": {
        "XM0": 26,
        "XM1": 16,
        "XM2": 4.0,
        "YP0": 24,
        "YP1": 16,
        "YP2": 8.0,
        "HC1": 3.0,
        "HC2": 2.0,
        "ZZ0": 1.0,
        "ZZ1": 0.5,
    },
    # Repeated costly stays (chemotherapy, transplant): much surgery, implants, dear drugs.
    "catastrophic": {
        "XM0": 16,
        "XM1": 12,
        "XM2": 20,
        "YP0": 14,
        "YP1": 10,
        "YP2": 20,
        "HC1": 2.0,
        "HC2": 6.0,
        "ZZ0": 1.0,
        "ZZ1": 0.5,
    },
    "outpatient": {"XM0": 47, "XM1": 2, "YP0": 48, "YP1": 1.5, "ZZ0": 2},
    "chronic": {"XM0": 24, "XM1": 8, "YP0": 52, "YP1": 6, "ZZ0": 2},
    # Outpatient targeted drugs and their monitoring between costly stays.
    "targeted": {"XM0": 20, "XM1": 12, "YP0": 30, "YP1": 14, "YP2": 22, "ZZ0": 2},
}

# (quantity text, weight) by tier; outpatient visits take less, chronic drugs are dispensed for
# up to a month.
QUANTITIES: dict[str, tuple[tuple[str, int], ...]] = {
    "0": (
        ("1", 30),
        ("2", 14),
        ("3", 14),
        ("10", 14),
        ("0.5", 10),
        ("1.25", 10),
        ("5", 4),
        ("20", 2),
        ("0.3333", 1),
        ("7", 1),
    ),
    "1": (("1", 62), ("2", 14), ("3", 8), ("0.5", 6), ("1.25", 5), ("5", 3), ("10", 2)),
    "2": (("1", 92), ("2", 6), ("0.5", 2)),
    "outpatient": (("1", 50), ("2", 20), ("3", 10), ("0.5", 10), ("1.25", 5), ("5", 3), ("10", 2)),
    "chronic": (("1", 30), ("2", 20), ("3", 15), ("7", 15), ("14", 10), ("28", 5), ("30", 5)),
}


# A quantity as written and scaled by 10^4.
Quantity = tuple[str, int]


def quantity_tables() -> dict[str, WeightedTable[Quantity]]:
    return {
        key: WeightedTable.of([((text, quantity_e4(text)), w) for text, w in pairs])
        for key, pairs in QUANTITIES.items()
    }


@dataclass(frozen=True, slots=True)
class ItemDraw:
    """One visit type's item mix laid out flat for the hot loop: per code its text, reference
    price and quantity table, with cumulative pick weights."""

    codes: tuple[str, ...]
    refs: tuple[int, ...]
    quantities: tuple[WeightedTable[Quantity], ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pool: Sequence[ItemCode], mix: str, kind: str) -> ItemDraw:
        """Codes weighted so that each group gets the mix's share whatever its size."""
        weights = PICK_WEIGHTS[mix]
        sizes = Counter(code.group for code in pool)
        chosen = [code for code in pool if code.group in weights]
        tables = quantity_tables()
        return cls(
            tuple(code.code for code in chosen),
            tuple(code.ref_fen for code in chosen),
            tuple(tables[quantity_key(kind, code.group)] for code in chosen),
            tuple(itertools.accumulate(weights[c.group] / sizes[c.group] for c in chosen)),
        )

    def draw(self, rng: Random, count: int, factor: int) -> list[dict[str, Any]]:
        """`count` items priced at a hospital charging `factor` per mille of reference."""
        rnd, bisect_right = rng.random, bisect.bisect_right
        cumulative, total = self.cumulative, self.cumulative[-1]
        items: list[dict[str, Any]] = []
        for _ in range(count):
            i = bisect_right(cumulative, rnd() * total)
            table = self.quantities[i]
            text, scaled = table.values[
                bisect_right(table.cumulative, rnd() * table.cumulative[-1])
            ]
            unit = (self.refs[i] * factor + 500) // 1000
            items.append(
                {
                    "code": self.codes[i],
                    "quantity": text,
                    "unit_price_fen": unit,
                    "amount_fen": (scaled * unit + 5_000) // 10_000,
                }
            )
        return items


MIX_KIND = {
    "inpatient": "inpatient",
    "surgical": "inpatient",
    "heavy": "inpatient",
    "catastrophic": "inpatient",
    "outpatient": "outpatient",
    "chronic": "chronic",
    "targeted": "chronic",
}


def quantity_key(kind: str, group: str) -> str:
    """Which quantity table an item is drawn from: chronic drugs are dispensed for weeks, but
    the dear ones (tier 2) a pack at a time."""
    if kind == "outpatient":
        return "outpatient"
    if kind == "chronic" and group.startswith("YP") and group[2] != "2":
        return "chronic"
    return group[2]


def item_count(rng: Random, kind: str, mix: str) -> int:
    """Line items of a visit: about 46 for a stay (the sample has 44), 1–9 for an outpatient
    visit; rarely a very long stay, up to the 2000-item limit. A catastrophic stay (a
    transplant, intensive chemotherapy) runs to weeks, with 40–120 items."""
    if mix == "catastrophic":
        return rng.randint(40, 120)
    if kind != "inpatient":
        return rng.randint(1, 9) if kind == "outpatient" else rng.randint(2, 9)
    r = rng.random()
    if r < 0.04:
        return rng.randint(1, 3)
    if r < 0.996:
        return rng.randint(12, 80)
    if r < 0.9996:
        return rng.randint(150, 600)
    return rng.randint(1900, 2000)
