"""The one-stop settlement blocks of the generated policies (`tiers.md`): serious-illness
insurance (大病保险) and medical assistance (医疗救助).

Most resident schemes and many employee schemes have them. A serious-illness threshold is set
from the province's rural per-capita disposable income (the base most provinces use for the
resident scheme), within 10,000–25,000 yuan; its bands pay 50–70 % and more above 100,000
yuan; its annual cap is 300,000–600,000 yuan, or none. Medical assistance pays class A
(特困/低保) 70–90 % and class B 50–70 % of what is left, up to 30,000–100,000 yuan a year.

These draws come from a generator of their own, so that the rest of the refdata is the same
with or without them.
"""

from __future__ import annotations

from random import Random
from typing import Any

# Rural per-capita disposable income by province, in yuan (2023, rounded to hundreds).
RURAL_INCOME_YUAN: dict[str, int] = {
    "110000": 37_400,
    "120000": 30_900,
    "130000": 20_700,
    "140000": 17_700,
    "150000": 21_200,
    "210000": 21_500,
    "220000": 19_500,
    "230000": 19_800,
    "310000": 43_000,
    "320000": 30_500,
    "330000": 40_300,
    "340000": 21_100,
    "350000": 26_700,
    "360000": 21_400,
    "370000": 23_800,
    "410000": 20_100,
    "420000": 21_300,
    "430000": 20_900,
    "440000": 25_100,
    "450000": 18_700,
    "460000": 20_700,
    "500000": 20_800,
    "510000": 20_000,
    "520000": 14_800,
    "530000": 16_400,
    "540000": 19_900,
    "610000": 17_000,
    "620000": 13_000,
    "630000": 15_600,
    "640000": 17_800,
    "650000": 17_900,
}

# Which schemes have the blocks: (critical, assistance) shares by scheme.
BLOCK_SHARES: dict[str, tuple[float, float]] = {
    "resident": (0.87, 0.80),
    "employee": (0.55, 0.40),
}

THRESHOLD_MIN_YUAN = 10_000
THRESHOLD_MAX_YUAN = 25_000
YUAN = 100
HIGH_BAND_FROM_FEN = 100_000 * YUAN  # the bands pay more above 100,000 yuan
MIDDLE_BAND_FROM_FEN = 50_000 * YUAN

# (kinds, weight): mostly inpatient and outpatient chronic care, as the blocks usually are.
KIND_CHOICES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("inpatient", "chronic"), 70),
    (("chronic", "inpatient"), 8),
    (("inpatient",), 15),
    (("inpatient", "chronic", "outpatient"), 7),
)
CRITICAL_CAPS_FEN: tuple[int | None, ...] = (
    30_000_000,
    30_000_000,
    40_000_000,
    40_000_000,
    50_000_000,
    60_000_000,
    None,
)
ASSISTANCE_CAPS_FEN = (3_000_000, 5_000_000, 5_000_000, 8_000_000, 10_000_000)


def pick_kinds(rng: Random) -> list[str]:
    choices = [kinds for kinds, _ in KIND_CHOICES]
    return list(rng.choices(choices, weights=[weight for _, weight in KIND_CHOICES])[0])


def threshold_fen(rng: Random, province: str, scheme: str) -> int:
    """About the province's rural per-capita income (60–100 % of it for residents, 80–120 % for
    employees), in steps of 500 yuan, within 10,000–25,000 yuan."""
    low, high = (60, 100) if scheme == "resident" else (80, 120)
    yuan = RURAL_INCOME_YUAN[province] * rng.randint(low, high) // 100
    yuan = (yuan + 250) // 500 * 500
    return min(THRESHOLD_MAX_YUAN, max(THRESHOLD_MIN_YUAN, yuan)) * YUAN


def critical_block(rng: Random, province: str, scheme: str) -> dict[str, Any]:
    """Serious-illness insurance: two bands split at 100,000 yuan, sometimes a third from
    50,000 yuan, each paying more than the one before."""
    low = rng.choice((5000, 5500, 6000, 6500, 7000))
    high = min(8000, low + rng.choice((500, 1000, 1500)))
    bands: list[dict[str, Any]]
    if rng.random() < 0.3:
        middle = (low + high) // 2 // 50 * 50
        bands = [
            {"upto_fen": MIDDLE_BAND_FROM_FEN, "ratio_bp": low},
            {"upto_fen": HIGH_BAND_FROM_FEN, "ratio_bp": middle},
            {"upto_fen": None, "ratio_bp": high},
        ]
    else:
        bands = [
            {"upto_fen": HIGH_BAND_FROM_FEN, "ratio_bp": low},
            {"upto_fen": None, "ratio_bp": high},
        ]
    return {
        "kinds": pick_kinds(rng),
        "annual_threshold_fen": threshold_fen(rng, province, scheme),
        "bands": bands,
        "annual_cap_fen": rng.choice(CRITICAL_CAPS_FEN),
    }


def assistance_block(rng: Random) -> dict[str, Any]:
    """Medical assistance: class A at 70–90 %, class B at 50–70 % and below class A."""
    ratio_a = rng.choice((7000, 7500, 8000, 8500, 9000))
    ratio_b = min(ratio_a - 1000, rng.choice((5000, 5500, 6000, 6500, 7000)))
    return {
        "kinds": pick_kinds(rng),
        "ratio_bp": {"A": ratio_a, "B": ratio_b},
        "annual_cap_fen": rng.choice(ASSISTANCE_CAPS_FEN),
    }


def add_tiers(rng: Random, policy: dict[str, Any]) -> None:
    """Give a provincial policy its blocks, or not, by its scheme's shares."""
    province, scheme = policy["region"], policy["scheme"]
    critical_share, assistance_share = BLOCK_SHARES[scheme]
    if rng.random() < critical_share:
        policy["critical"] = critical_block(rng, province, scheme)
    if rng.random() < assistance_share:
        policy["assistance"] = assistance_block(rng)


def city_tiers(rng: Random, policy: dict[str, Any]) -> None:
    """A capital's own policy (a copy of its province's) sometimes sets a higher threshold:
    incomes are higher there."""
    critical = policy.get("critical")
    if critical is not None and rng.random() < 0.5:
        raised = critical["annual_threshold_fen"] + rng.choice((1_000, 2_000, 3_000)) * YUAN
        critical["annual_threshold_fen"] = min(THRESHOLD_MAX_YUAN * YUAN, raised)
