"""The bundle's generated reference data: the national pool of item codes, each treating
province's catalog (就医地目录) and each home fund's policy (参保地政策)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from statistics import NormalDist
from typing import Any

from clearing.core.models.types import province_of
from clearing.ops.simulate.geography import PROVINCES, city_code
from clearing.ops.simulate.tiers import add_tiers, city_tiers

SCHEMES = ("employee", "resident")


@dataclass(frozen=True, slots=True)
class ItemCode:
    """One code of the national pool: its price tier, reference unit price and usual class."""

    code: str
    group: str
    ref_fen: int
    national_class: str


# (prefix, tier, how many, median reference price in fen, log-normal sigma). Tier 0 is cheap
# (common drugs, routine tests), 1 mid-priced, 2 expensive (surgery, implants, targeted drugs).
# `ZZ` codes are never in any catalog.
CODE_GROUPS: tuple[tuple[str, int, int, int, float], ...] = (
    ("XM", 0, 420, 2_000, 0.7),
    ("XM", 1, 220, 20_000, 0.6),
    ("XM", 2, 60, 300_000, 0.6),
    ("YP", 0, 480, 1_500, 0.8),
    ("YP", 1, 180, 15_000, 0.7),
    ("YP", 2, 40, 150_000, 0.7),
    ("HC", 1, 80, 30_000, 0.6),
    ("HC", 2, 70, 400_000, 0.6),
    ("ZZ", 0, 30, 3_000, 0.8),
    ("ZZ", 1, 20, 30_000, 0.7),
)

# The usual catalog class of a code by tier: dearer items are more often B (partly self-paid)
# or C (wholly self-paid).
CLASS_WEIGHTS_BY_TIER = {0: (70, 26, 4), 1: (55, 40, 5), 2: (45, 49, 6)}
B_SELFPAY_BP = (500, 500, 1000, 1000, 1500, 2000)


def group_prices(count: int, median: int, sigma: float) -> list[int]:
    """Log-normal reference prices at evenly spaced quantiles, so that every seed gets the same
    price distribution (a few random dear codes would otherwise swing the averages)."""
    normal = NormalDist()
    return [
        max(10, int(round(median * math.exp(sigma * normal.inv_cdf((i + 0.5) / count)), -1)))
        for i in range(count)
    ]


def make_code_pool(rng: Random) -> list[ItemCode]:
    """The national pool of item codes, numbered per prefix in a shuffled order."""
    pool: list[ItemCode] = []
    for prefix in ("XM", "YP", "HC", "ZZ"):
        slots: list[tuple[int, int]] = []
        for pfx, tier, count, median, sigma in CODE_GROUPS:
            if pfx == prefix:
                slots.extend((tier, price) for price in group_prices(count, median, sigma))
        rng.shuffle(slots)
        for number, (tier, ref) in enumerate(slots):
            klass = rng.choices("ABC", weights=CLASS_WEIGHTS_BY_TIER[tier])[0]
            pool.append(ItemCode(f"{prefix}{number:05d}", f"{prefix}{tier}", ref, klass))
    return pool


def catalog_entry(rng: Random, code: ItemCode) -> dict[str, Any] | None:
    """A province's entry for a code: mostly its national class, sometimes another, rarely none."""
    if code.group.startswith("ZZ") or rng.random() < 0.015:
        return None
    klass = code.national_class if rng.random() < 0.9 else rng.choice("AAABBC")
    entry: dict[str, Any] = {"class": klass}
    if klass == "B":
        entry["b_selfpay_bp"] = rng.choice(B_SELFPAY_BP)
    if klass != "C" and rng.random() < 0.12:
        entry["price_cap_fen"] = int(round(code.ref_fen * rng.uniform(0.95, 1.35), -1))
    return entry


def make_catalog(rng: Random, province: str, year: int, pool: Sequence[ItemCode]) -> dict[str, Any]:
    """The treating province's catalog (就医地目录) for a year."""
    items: dict[str, Any] = {}
    for code in pool:
        entry = catalog_entry(rng, code)
        if entry is not None:
            items[code.code] = entry
    return {"province": province, "year": year, "items": items}


def level_ratios(level3_bp: int) -> dict[str, int]:
    """Ratios by hospital level: smaller hospitals reimburse more, to steer patients to them."""
    return {"1": min(9800, level3_bp + 1000), "2": min(9800, level3_bp + 500), "3": level3_bp}


def inpatient_bands(level3_bp: int) -> list[dict[str, Any]]:
    """Three bands of rising ratio: up to 30,000 yuan, up to 100,000 yuan, and beyond."""
    return [
        {"upto_fen": 3_000_000, "ratio_bp": level_ratios(level3_bp)},
        {"upto_fen": 10_000_000, "ratio_bp": level_ratios(level3_bp + 300)},
        {"upto_fen": None, "ratio_bp": level_ratios(level3_bp + 600)},
    ]


def make_policy(rng: Random, region: str, scheme: str, year: int) -> dict[str, Any]:
    """A home fund's policy (参保地政策): employees are covered more generously than residents."""
    employee = scheme == "employee"
    if employee:
        deductible = {
            "1": rng.choice((20_000, 30_000, 40_000)),
            "2": rng.choice((50_000, 60_000, 80_000)),
            "3": rng.choice((90_000, 120_000, 130_000)),
        }
        level3, cap = (
            rng.choice((8000, 8500, 8800)),
            rng.choice((30_000_000, 40_000_000, 50_000_000)),
        )
    else:
        deductible = {
            "1": rng.choice((20_000, 25_000, 30_000)),
            "2": rng.choice((35_000, 40_000, 50_000)),
            "3": rng.choice((55_000, 70_000, 75_000)),
        }
        level3, cap = (
            rng.choice((5500, 6000, 6500)),
            rng.choice((15_000_000, 20_000_000, 25_000_000)),
        )
    return {
        "region": region,
        "scheme": scheme,
        "year": year,
        "unfiled_ratio_cut_bp": rng.choice((1000, 1500, 2000)),
        "outpatient_requires_filing": rng.random() < 0.85,
        "inpatient": {
            "deductible_fen": deductible,
            "bands": inpatient_bands(level3),
            "annual_cap_fen": cap,
        },
        "outpatient": {
            "annual_deductible_fen": rng.choice((0, 5_000, 10_000, 20_000)),
            "bands": [{"upto_fen": None, "ratio_bp": {"1": 8000, "2": 7000, "3": 6000}}],
            "annual_cap_fen": rng.choice((200_000, 500_000, 2_000_000)),
        },
        "chronic": {
            "annual_deductible_fen": rng.choice((0, 50_000, 100_000)),
            "bands": [{"upto_fen": None, "ratio_bp": {"1": 8500, "2": 8000, "3": 7500}}],
            "annual_cap_fen": rng.choice((1_000_000, 3_000_000, 6_000_000)),
        },
    }


def city_override(rng: Random, base: dict[str, Any], city: str) -> dict[str, Any]:
    """A provincial capital's own policy: the province's, with a dearer tertiary deductible and
    now and then the opposite filing rule, so that the exact-code lookup visibly matters."""
    policy: dict[str, Any] = json.loads(json.dumps(base))
    policy["region"] = city
    policy["inpatient"]["deductible_fen"]["3"] += rng.choice((10_000, 20_000))
    if rng.random() < 0.3:
        policy["outpatient_requires_filing"] = not policy["outpatient_requires_filing"]
    return policy


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """What the generator needs of one policy: its filing rule, and the kinds its medical
    assistance covers (none without an `assistance` block)."""

    requires_filing: bool
    assistance_kinds: frozenset[str]


@dataclass(frozen=True, slots=True)
class RefIndex:
    """What the generator needs of the refdata to know each settlement's fate."""

    policies: dict[tuple[str, str, int], PolicyFacts]
    catalogs: frozenset[tuple[str, int]]

    def policy(self, home_region: str, scheme: str, year: int) -> PolicyFacts | None:
        """The governing policy (the exact region's, else the province's), or None (NO_POLICY)."""
        exact = self.policies.get((home_region, scheme, year))
        if exact is not None:
            return exact
        return self.policies.get((province_of(home_region), scheme, year))

    def policy_requires_filing(self, home_region: str, scheme: str, year: int) -> bool | None:
        """The governing policy's filing rule, or None when no policy applies (NO_POLICY)."""
        policy = self.policy(home_region, scheme, year)
        return None if policy is None else policy.requires_filing

    def assistance_kinds(self, home_region: str, scheme: str, year: int) -> frozenset[str]:
        """The kinds the governing policy's medical assistance covers (none without one)."""
        policy = self.policy(home_region, scheme, year)
        return frozenset() if policy is None else policy.assistance_kinds


def make_refdata(
    seed: int, year: int
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[ItemCode]]:
    """Policies and catalogs by file name, and the code pool; they depend on the seed only.

    The tier blocks are drawn from a generator of their own, after each provincial policy; a
    capital's own policy copies its province's, blocks included."""
    rng = Random(f"clearing-simulate/{seed}/refdata")
    tiers_rng = Random(f"clearing-simulate/{seed}/tiers")
    pool = make_code_pool(rng)
    policies: dict[str, dict[str, Any]] = {}
    for province in PROVINCES:
        for scheme in SCHEMES:
            policy = make_policy(rng, province.code, scheme, year)
            add_tiers(tiers_rng, policy)
            policies[f"{province.code}-{scheme}-{year}.json"] = policy
    overridden = rng.sample(range(len(PROVINCES)), 15)
    for index in sorted(overridden):
        province, scheme = PROVINCES[index], rng.choice(SCHEMES)
        base = policies[f"{province.code}-{scheme}-{year}.json"]
        city = city_code(province, 1)
        override = city_override(rng, base, city)
        city_tiers(tiers_rng, override)
        policies[f"{city}-{scheme}-{year}.json"] = override
    catalogs = {f"{p.code}-{year}.json": make_catalog(rng, p.code, year, pool) for p in PROVINCES}
    return policies, catalogs, pool


def ref_index(policies: dict[str, dict[str, Any]], catalogs: dict[str, dict[str, Any]]) -> RefIndex:
    """What each policy says of filing and assistance, and the (province, year) of each catalog."""
    facts = {
        (p["region"], p["scheme"], p["year"]): PolicyFacts(
            p["outpatient_requires_filing"],
            frozenset(p["assistance"]["kinds"]) if "assistance" in p else frozenset(),
        )
        for p in policies.values()
    }
    return RefIndex(facts, frozenset((c["province"], c["year"]) for c in catalogs.values()))


def write_refdata(
    out_dir: Path, policies: dict[str, dict[str, Any]], catalogs: dict[str, dict[str, Any]]
) -> None:
    """The sample's layout and formatting: indented policies, one-line catalogs. Files left by an
    earlier bundle in the same place are removed: a stale policy would change the pricing."""
    policy_dir = out_dir / "refdata" / "policies"
    catalog_dir = out_dir / "refdata" / "catalogs"
    for folder in (policy_dir, catalog_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in sorted(folder.glob("*.json")):
            stale.unlink()
    for name, policy in policies.items():
        (policy_dir / name).write_text(json.dumps(policy, indent=1) + "\n", encoding="utf-8")
    for name, catalog in catalogs.items():
        (catalog_dir / name).write_text(json.dumps(catalog) + "\n", encoding="utf-8")
