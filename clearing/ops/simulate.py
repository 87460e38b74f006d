"""`clearing simulate`: a deterministic synthetic bundle shaped like national cross-province flows.

A bundle has the public sample's form: `refdata/policies/*.json`, `refdata/catalogs/*.json` and
`events.jsonl`. The events are mostly settlements that price cleanly, flowing from populous
origin provinces to the big treatment provinces, plus every kind of trouble the clearinghouse
must survive: unfiled visits, same-province claims, unknown and repeated reversals, exact and
conflicting duplicates, and malformed lines of many sorts.

Everything comes from `random.Random` instances seeded from the seed, so a seed names one bundle
byte for byte. Lines are written as they are made and the state kept is bounded (a pool of active
persons, small rings of recent settlements), so a million events need no more memory than a
thousand. Each line's intended outcome is known when it is made; `--intents` writes it beside the
events so that a pricing engine can be checked line by line.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from random import Random
from statistics import NormalDist
from typing import Any, TextIO

from clearing.core.models.events import Settlement
from clearing.core.models.types import province_of, quantity_e4
from clearing.core.periods import parse_period
from clearing.core.pricing import line_amount

# --- geography ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Province:
    """A GB/T 2260 province with its relative weight as origin and as destination of patients."""

    code: str
    name: str
    origin: int
    destination: int
    cities: int


# Origins lean on the populous inland provinces that send patients out; destinations on the
# provinces with the big hospitals (Beijing, Shanghai, the Yangtze delta, Guangdong) and on
# Hainan, where retirees from the north spend the winter.
PROVINCES: tuple[Province, ...] = (
    Province("110000", "Beijing", 10, 160, 1),
    Province("120000", "Tianjin", 8, 25, 1),
    Province("130000", "Hebei", 60, 15, 11),
    Province("140000", "Shanxi", 30, 6, 11),
    Province("150000", "Inner Mongolia", 30, 5, 12),
    Province("210000", "Liaoning", 35, 8, 14),
    Province("220000", "Jilin", 30, 4, 9),
    Province("230000", "Heilongjiang", 60, 4, 13),
    Province("310000", "Shanghai", 8, 150, 1),
    Province("320000", "Jiangsu", 30, 110, 13),
    Province("330000", "Zhejiang", 20, 110, 11),
    Province("340000", "Anhui", 80, 10, 16),
    Province("350000", "Fujian", 15, 15, 9),
    Province("360000", "Jiangxi", 55, 6, 11),
    Province("370000", "Shandong", 45, 20, 16),
    Province("410000", "Henan", 100, 12, 17),
    Province("420000", "Hubei", 50, 20, 13),
    Province("430000", "Hunan", 55, 12, 14),
    Province("440000", "Guangdong", 15, 100, 21),
    Province("450000", "Guangxi", 35, 15, 14),
    Province("460000", "Hainan", 5, 70, 4),
    Province("500000", "Chongqing", 30, 15, 2),
    Province("510000", "Sichuan", 70, 20, 21),
    Province("520000", "Guizhou", 35, 8, 9),
    Province("530000", "Yunnan", 25, 15, 16),
    Province("540000", "Tibet", 5, 2, 7),
    Province("610000", "Shaanxi", 25, 12, 10),
    Province("620000", "Gansu", 30, 4, 14),
    Province("630000", "Qinghai", 8, 3, 8),
    Province("640000", "Ningxia", 8, 3, 5),
    Province("650000", "Xinjiang", 20, 12, 14),
)

# Valid GB/T 2260 codes outside the 31 provinces (Taiwan, Hong Kong, Macao): no policy or
# catalog is ever published for them, which gives NO_POLICY / NO_CATALOG within any month.
NO_REFDATA_REGIONS = ("710000", "810000", "820000")

SCHEMES = ("employee", "resident")
KINDS = ("inpatient", "outpatient", "chronic")




def city_code(province: Province, city: int) -> str:
    """The code of the province's `city`-th prefecture (1-based)."""
    return f"{province.code[:2]}{city:02d}00"


# --- reference data -------------------------------------------------------------------------


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


def make_catalog(rng: Random, province: str, year: int, pool: Sequence[ItemCode]) -> dict:
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
    policy = json.loads(json.dumps(base))
    policy["region"] = city
    policy["inpatient"]["deductible_fen"]["3"] += rng.choice((10_000, 20_000))
    if rng.random() < 0.3:
        policy["outpatient_requires_filing"] = not policy["outpatient_requires_filing"]
    return policy


@dataclass(frozen=True, slots=True)
class RefIndex:
    """What the generator needs of the refdata to know each settlement's fate."""

    requires_filing: dict[tuple[str, str, int], bool]
    catalogs: frozenset[tuple[str, int]]

    def policy_requires_filing(self, home_region: str, scheme: str, year: int) -> bool | None:
        """The governing policy's filing rule, or None when no policy applies (NO_POLICY)."""
        exact = self.requires_filing.get((home_region, scheme, year))
        if exact is not None:
            return exact
        return self.requires_filing.get((province_of(home_region), scheme, year))


def make_refdata(seed: int, year: int) -> tuple[dict[str, dict], dict[str, dict], list[ItemCode]]:
    """Policies and catalogs by file name, and the code pool; they depend on the seed only."""
    rng = Random(f"clearing-simulate/{seed}/refdata")
    pool = make_code_pool(rng)
    policies: dict[str, dict] = {}
    for province in PROVINCES:
        for scheme in SCHEMES:
            policies[f"{province.code}-{scheme}-{year}.json"] = make_policy(
                rng, province.code, scheme, year
            )
    overridden = rng.sample(range(len(PROVINCES)), 15)
    for index in sorted(overridden):
        province, scheme = PROVINCES[index], rng.choice(SCHEMES)
        base = policies[f"{province.code}-{scheme}-{year}.json"]
        city = city_code(province, 1)
        policies[f"{city}-{scheme}-{year}.json"] = city_override(rng, base, city)
    catalogs = {f"{p.code}-{year}.json": make_catalog(rng, p.code, year, pool) for p in PROVINCES}
    return policies, catalogs, pool


def ref_index(policies: dict[str, dict], catalogs: dict[str, dict]) -> RefIndex:
    requires = {
        (p["region"], p["scheme"], p["year"]): p["outpatient_requires_filing"]
        for p in policies.values()
    }
    return RefIndex(requires, frozenset((c["province"], c["year"]) for c in catalogs.values()))


def write_refdata(out_dir: Path, policies: dict[str, dict], catalogs: dict[str, dict]) -> None:
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


# --- time -----------------------------------------------------------------------------------

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


# --- hospitals, persons, items --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hospital:
    """A designated hospital: its district, grade, and how dear it is (per mille of reference)."""

    hospital_id: str
    region: str
    level: int
    factor: int

    @property
    def province(self) -> str:
        return province_of(self.region)


def make_hospitals(
    rng: Random, province_code: str, count: int, capital_share: float
) -> list[Hospital]:
    """`count` hospitals of a province, mostly in its capital, each with a grade and price level."""
    hospitals = []
    for number in range(count):
        city = 1 if rng.random() < capital_share else rng.randint(2, 9)
        district = rng.randint(1, 12 if city == 1 else 5)
        region = f"{province_code[:2]}{city:02d}{district:02d}"
        level = rng.choices((3, 2, 1), weights=(45, 35, 20))[0]
        low, high = {3: (1000, 1200), 2: (900, 1050), 1: (800, 950)}[level]
        hospitals.append(Hospital(f"H{region}{number:03d}", region, level, rng.randint(low, high)))
    return hospitals


# Big hospitals draw the patients who travel across provinces.
LEVEL_PULL = {3: 3.0, 2: 1.5, 1: 1.0}


@dataclass(frozen=True, slots=True)
class Filing:
    """A registration for treatment in another province (异地就医备案), as dates by ordinal."""

    home_region: str
    treatment_province: str
    valid_from: int
    valid_to: int | None

    def covers(self, hospital_province: str, admitted: int) -> bool:
        if self.treatment_province != hospital_province or admitted < self.valid_from:
            return False
        return self.valid_to is None or admitted <= self.valid_to


@dataclass(slots=True)
class Person:
    """An insured person active in the stream, with the visits still to come."""

    person_id: str
    home_region: str
    scheme: str
    profile: str
    hospital: Hospital
    remaining: int
    filing: Filing | None


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of patient: why they are away from home and how they use care there."""

    filing_kind: str | None
    kind_weights: tuple[int, int, int]
    mean_extra_visits: float
    heavy: bool = False


PROFILES: dict[str, Profile] = {
    # Retirees living with their children or wintering in Hainan (异地安置).
    "settled": Profile("long_term", (28, 56, 16), 9.0),
    # Referred by a home hospital for treatment unavailable at home (转诊).
    "referral": Profile("referral", (78, 18, 4), 2.0),
    # Working or staying away for a while (临时外出).
    "temporary": Profile("temporary", (30, 60, 10), 4.0),
    # Cancer or dialysis patients with many costly admissions: they reach the annual caps.
    "heavy": Profile("referral", (62, 0, 38), 12.0, heavy=True),
    # Fell ill while travelling without filing: inpatient at a cut, outpatient usually refused.
    "unfiled": Profile(None, (58, 42, 0), 0.5),
}
FILED_PROFILE_WEIGHTS = {"settled": 40, "referral": 29, "temporary": 27, "heavy": 4}

DIAGNOSES = {
    "inpatient": (
        "C34.9",
        "S72.0",
        "I21.0",
        "J18.9",
        "K35.8",
        "I63.9",
        "C16.9",
        "C50.9",
        "M17.1",
        "K80.2",
        "I50.9",
        "O80.0",
        "N20.0",
        "C18.9",
        "J44.1",
    ),
    "outpatient": (
        "J06.9",
        "K29.7",
        "I10",
        "M54.5",
        "H52.1",
        "L30.9",
        "R51",
        "K30",
        "J02.9",
        "E11.9",
        "N39.0",
        "M17.1",
    ),
    "chronic": (
        "E11.9",
        "I10",
        "N18.5",
        "C34.9",
        "I25.1",
        "J44.9",
        "F20.9",
        "C50.9",
        "E11.900x001",
        "I10.x00x002",
    ),
    "heavy": ("C34.9", "C16.9", "C50.9", "C18.9", "C22.0", "N18.5", "C91.0"),
}

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
    "outpatient": {"XM0": 47, "XM1": 2, "YP0": 48, "YP1": 1.5, "ZZ0": 2},
    "chronic": {"XM0": 24, "XM1": 8, "YP0": 52, "YP1": 6, "ZZ0": 2},
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






@dataclass(frozen=True, slots=True)
class WeightedTable:
    """Values with cumulative weights, for `bisect` picks."""

    values: tuple
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[Any, float]]) -> WeightedTable:
        values = tuple(v for v, _ in pairs)
        return cls(values, tuple(itertools.accumulate(w for _, w in pairs)))

    def pick(self, rng: Random) -> Any:
        return self.values[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


def quantity_tables() -> dict[str, WeightedTable]:
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
    quantities: tuple[WeightedTable, ...]
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
        items = []
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
    "outpatient": "outpatient",
    "chronic": "chronic",
}


def quantity_key(kind: str, group: str) -> str:
    """Which quantity table an item is drawn from."""
    if kind == "outpatient":
        return "outpatient"
    if kind == "chronic" and group.startswith("YP"):
        return "chronic"
    return group[2]


def item_count(rng: Random, kind: str) -> int:
    """Line items of a visit: about 46 for a stay (the sample has 44), 1–9 for an outpatient
    visit; rarely a very long stay, up to the 2000-item limit."""
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


# --- outcomes -------------------------------------------------------------------------------


def expected_reasons(
    refs: RefIndex,
    *,
    kind: str,
    home_region: str,
    scheme: str,
    hospital_region: str,
    year: int,
    emergency: bool,
    covered: bool,
    mismatch: bool,
) -> list[str]:
    """The rejection reasons of pricing.md that a fresh, valid settlement will get."""
    reasons = []
    if mismatch:
        reasons.append("AMOUNT_MISMATCH")
    if province_of(home_region) == province_of(hospital_region):
        reasons.append("NOT_CROSS_PROVINCE")
    requires = refs.policy_requires_filing(home_region, scheme, year)
    if requires is None:
        reasons.append("NO_POLICY")
    if (province_of(hospital_region), year) not in refs.catalogs:
        reasons.append("NO_CATALOG")
    if kind != "inpatient" and requires and not emergency and not covered:
        reasons.append("NOT_FILED")
    return sorted(reasons)


@dataclass(slots=True)
class Intent:
    """What a line is meant to become when priced."""

    status: str
    reasons: list[str] = field(default_factory=list)
    kind: str | None = None
    filed: bool | None = None
    invalid: str | None = None
    detail: str | None = None

    def record(self, line: int) -> dict[str, Any]:
        out: dict[str, Any] = {"line": line, "status": self.status}
        for key in ("reasons", "kind", "filed", "invalid", "detail"):
            value = getattr(self, key)
            if value not in (None, []):
                out[key] = value
        return out


# --- malformed lines ------------------------------------------------------------------------

RAW = "@@raw@@"


def dump(event: Any) -> str:
    return json.dumps(event, ensure_ascii=False)


def dump_raw(event: dict[str, Any], raw: str) -> str:
    """The event as JSON with the one value set to `RAW` replaced by raw JSON text."""
    return dump(event).replace(f'"{RAW}"', raw, 1)


Mutation = Callable[[Random, dict[str, Any]], tuple[str, str]]


def m_unparseable(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    text = dump(event)
    if rng.random() < 0.5:
        cut = rng.randint(1, len(text) - 2)
        return text[:cut], f"truncated after {cut} characters"
    garbage = rng.choice(
        (
            "}{",
            "<settlement/>",
            "{'type': 'settlement'}",
            '{"type": "settlement",}',
            "\x00\x01",
            "settlement,S1,P1",
            '{"type": "settlement" "schema_version": 1}',
            '{"type": "filing", "schema_version": 1',
            "undefined",
        )
    )
    return garbage, f"not JSON: {garbage!r}"


def m_blank(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    text = rng.choice(("", "", "", "   ", "\t"))
    return text, "blank line"


def m_too_deep(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    depth = rng.randint(10_000, 20_000)
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth, f"arrays nested {depth} deep"
    head = '{"type": "settlement", "schema_version": 1, "settlement_id": '
    return head + '{"a": ' * depth + "1" + "}" * depth + "}", f"objects nested {depth} deep"


def m_not_object(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    text = rng.choice((dump([event]), '"settlement"', "42", "null", "true", "[]"))
    return text, f"top-level JSON is not an object: {text[:20]!r}"


def first_item(event: dict[str, Any]) -> dict[str, Any]:
    return event["items"][0]


def m_wrong_type(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(14)
    if variant == 0:
        event["hospital_level"] = str(event["hospital_level"])
        return dump(event), f"hospital_level is the string {event['hospital_level']!r}"
    if variant == 1:
        event["emergency"] = int(event["emergency"])
        return dump(event), "emergency is the integer 0/1, not a boolean"
    if variant == 2:
        event["hospital_level"] = float(event["hospital_level"])
        return dump(event), f"hospital_level is {event['hospital_level']!r}, not an integer"
    if variant == 3:
        item = first_item(event)
        item["unit_price_fen"] = str(item["unit_price_fen"])
        return dump(event), "unit_price_fen is a string"
    if variant == 4:
        item = first_item(event)
        item["amount_fen"] = float(item["amount_fen"])
        return dump(event), "amount_fen is a float"
    if variant == 5:
        item = first_item(event)
        raw = f"{item['unit_price_fen']}e0"
        item["unit_price_fen"] = RAW
        return dump_raw(event, raw), f"unit_price_fen written with an exponent ({raw})"
    if variant == 6:
        event["hospital_level"] = True
        return dump(event), "hospital_level is a boolean"
    if variant == 7:
        event["person_id"] = 12345
        return dump(event), "person_id is a number"
    if variant == 8:
        event["diagnosis"] = event["diagnosis"][0]
        return dump(event), "diagnosis is a string, not a list"
    if variant == 9:
        event["items"] = first_item(event)
        return dump(event), "items is an object, not a list"
    if variant == 10:
        event["emergency"] = "false"
        return dump(event), 'emergency is the string "false"'
    if variant == 11:
        first_item(event)["quantity"] = 1
        return dump(event), "quantity is a number, not a string"
    if variant == 12:
        event["kind"] = None
        return dump(event), "kind is null"
    text = dump(event)
    return text[:-1] + ', "hospital_level": "3"}', "hospital_level repeated, last value a string"


def m_unknown_field(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(3)
    if variant == 0:
        event["remark"] = "加急"
        return dump(event), "unknown field remark"
    if variant == 1:
        first_item(event)["discount_fen"] = 0
        return dump(event), "unknown item field discount_fen"
    event["Kind"] = event["kind"]
    return dump(event), "unknown field Kind (case matters)"


SETTLEMENT_FIELDS = tuple(Settlement.model_fields)


def m_missing_field(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    if rng.random() < 0.2:
        key = rng.choice(("code", "quantity", "unit_price_fen", "amount_fen"))
        del first_item(event)[key]
        return dump(event), f"item without {key}"
    key = rng.choice(SETTLEMENT_FIELDS)
    del event[key]
    return dump(event), f"missing field {key}"


BAD_IDS = ("bad id with spaces", "S" * 65, "", "S2026/0001", "Ｓ2026０001", "S-é-1", "S.1")


def m_bad_id(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(5)
    if variant == 0:
        event["settlement_id"] = rng.choice(BAD_IDS)
        return dump(event), f"settlement_id malformed: {event['settlement_id'][:20]!r}"
    if variant == 1:
        event["settlement_id"] += "\n"
        return dump(event), "settlement_id ends in a newline"
    if variant == 2:
        event["person_id"] = event["person_id"][:6] + "." + event["person_id"][6:]
        return dump(event), "person_id contains a dot"
    if variant == 3:
        event["hospital_id"] = event["hospital_id"][:4] + " " + event["hospital_id"][4:]
        return dump(event), "hospital_id contains a space"
    first_item(event)["code"] = "XM 00001"
    return dump(event), "item code contains a space"


BAD_REGIONS = ("060200", "11000", "1100000", "11000A", " 110000", "１１００００", "000000")


def m_bad_region(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    key = rng.choice(("home_region", "hospital_region"))
    event[key] = rng.choice(BAD_REGIONS)
    return dump(event), f"{key} malformed: {event[key]!r}"


def bad_timestamps(good: str) -> tuple[str, ...]:
    """Ways of getting RFC 3339 wrong, from a good `YYYY-MM-DDTHH:MM:SS+08:00` timestamp."""
    day, clock = good[:10], good[11:19]
    return (
        f"{day} {clock}+08:00",
        f"{day}T{clock[:5]}+08:00",
        f"{day}T{clock}",
        f"{day}T{clock}+0800",
        f"{day}t{clock}+08:00",
        f"{day[:5]}13{day[7:]}T{clock}+08:00",
        f"{day[:8]}32T{clock}+08:00",
        f"{day}T24{clock[2:]}+08:00",
        f"{day}T{clock}.+08:00",
        f"{day}T{clock}+8:00",
        day,
    )


def m_bad_timestamp(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    good = event["settled_at"]
    if rng.random() < 0.1:
        event["settled_at"] = 1_767_000_000
        return dump(event), "settled_at is a number"
    event["settled_at"] = rng.choice(bad_timestamps(good))
    return dump(event), f"settled_at malformed: {event['settled_at']!r}"


BAD_DATES = (
    "20260109",
    "2026-1-9",
    "2026-02-30",
    "2026/01/09",
    "2026-01-09T00:00:00+08:00",
    "2026-13-01",
    "09-01-2026",
    "",
)


def m_bad_date(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    event["admitted_on"] = rng.choice(BAD_DATES)
    return dump(event), f"admitted_on malformed: {event['admitted_on']!r}"


BAD_QUANTITIES = (
    "1.00001",
    "1e0",
    "+3",
    "0",
    "0.0000",
    "-1",
    "100000.0001",
    "100001",
    "1.",
    ".5",
    " 1",
    "１",
    "1,5",
    "",
)


def m_bad_quantity(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    item = rng.choice(event["items"])
    item["quantity"] = rng.choice(BAD_QUANTITIES)
    return dump(event), f"quantity malformed or out of range: {item['quantity']!r}"


def m_bad_enum(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    key, value = rng.choice(
        (
            ("kind", "inpatent"),
            ("kind", "Inpatient"),
            ("kind", "emergency"),
            ("scheme", "Employee"),
            ("scheme", "commercial"),
            ("type", "refund"),
            ("type", "Settlement"),
        )
    )
    event[key] = value
    return dump(event), f"{key} is not allowed: {value!r}"


def m_out_of_range(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(5)
    item = first_item(event)
    if variant == 0:
        event["hospital_level"] = rng.choice((0, 4))
        return dump(event), f"hospital_level {event['hospital_level']}"
    if variant == 1:
        item["unit_price_fen"] = -1
        return dump(event), "unit_price_fen negative"
    if variant == 2:
        item["unit_price_fen"] = 10**10 + 1
        return dump(event), "unit_price_fen above 10^10"
    if variant == 3:
        item["amount_fen"] = 10**12 + 1
        return dump(event), "amount_fen above 10^12"
    item["amount_fen"] = -item["amount_fen"] - 1
    return dump(event), "amount_fen negative"


def m_bad_schema_version(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    value = rng.choice((2, 0, "1", 1.0, True))
    event["schema_version"] = value
    return dump(event), f"schema_version {value!r} is not the integer 1"


def m_bad_diagnosis(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(4)
    if variant == 0:
        event["diagnosis"] = []
        return dump(event), "diagnosis empty"
    if variant == 1:
        event["diagnosis"] = ["C34.9000000000000"]
        return dump(event), "diagnosis code of 17 characters"
    if variant == 2:
        event["diagnosis"] = [""]
        return dump(event), "diagnosis code empty"
    event["diagnosis"] = [34.9]
    return dump(event), "diagnosis code is a number"


def m_bad_items(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    variant = rng.randrange(10)
    if variant < 6:
        event["items"] = []
        return dump(event), "no items"
    if variant < 9:
        event["items"][0] = "XM00001"
        return dump(event), "an item is a string"
    template = first_item(event)
    event["items"] = [template] * 2001
    return dump(event), "2001 items"


def filing_mutation(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    """Filing-specific faults: bad dates, a city as treatment province, a missing valid_to."""
    variant = rng.randrange(6)
    if variant == 0:
        event["treatment_province"] = event["treatment_province"][:2] + "0100"
        return dump(event), "treatment_province is a city, not a province"
    if variant == 1:
        del event["valid_to"]
        return dump(event), "filing without valid_to"
    if variant == 2:
        event["valid_to"] = day_text(date.fromisoformat(event["valid_from"]).toordinal() - 1)
        return dump(event), "valid_to before valid_from"
    if variant == 3:
        event["filing_kind"] = rng.choice(("permanent", "Temporary", ""))
        return dump(event), f"filing_kind {event['filing_kind']!r}"
    if variant == 4:
        event["valid_from"] = rng.choice(BAD_DATES)
        return dump(event), f"valid_from malformed: {event['valid_from']!r}"
    event["filing_id"] = "F" * 65
    return dump(event), "filing_id of 65 characters"


def reversal_mutation(rng: Random, event: dict[str, Any]) -> tuple[str, str]:
    """Reversal-specific faults: the reason's length in characters, a bad timestamp, a bad id."""
    variant = rng.randrange(5)
    if variant == 0:
        event["reason"] = ""
        return dump(event), "reason empty"
    if variant == 1:
        event["reason"] = "退" * 201
        return dump(event), "reason of 201 characters"
    if variant == 2:
        del event["reason"]
        return dump(event), "reversal without reason"
    if variant == 3:
        event["reversal_id"] = "R 1"
        return dump(event), "reversal_id contains a space"
    event["settled_at"] = rng.choice(bad_timestamps(event["settled_at"][:19] + "+08:00"))
    return dump(event), f"settled_at malformed: {event['settled_at']!r}"


# (tag, weight, mutation, the event it starts from)
MUTATIONS: tuple[tuple[str, int, Mutation, str], ...] = (
    ("unparseable", 8, m_unparseable, "settlement"),
    ("blank", 6, m_blank, "settlement"),
    ("too_deep", 1, m_too_deep, "settlement"),
    ("not_object", 3, m_not_object, "settlement"),
    ("wrong_type", 16, m_wrong_type, "settlement"),
    ("unknown_field", 6, m_unknown_field, "settlement"),
    ("missing_field", 7, m_missing_field, "settlement"),
    ("bad_id", 7, m_bad_id, "settlement"),
    ("bad_region", 6, m_bad_region, "settlement"),
    ("bad_timestamp", 8, m_bad_timestamp, "settlement"),
    ("bad_date", 5, m_bad_date, "settlement"),
    ("bad_quantity", 8, m_bad_quantity, "settlement"),
    ("bad_enum", 5, m_bad_enum, "settlement"),
    ("out_of_range", 5, m_out_of_range, "settlement"),
    ("bad_schema_version", 3, m_bad_schema_version, "settlement"),
    ("bad_diagnosis", 4, m_bad_diagnosis, "settlement"),
    ("bad_items", 3, m_bad_items, "settlement"),
    ("bad_filing", 6, filing_mutation, "filing"),
    ("bad_reversal", 5, reversal_mutation, "reversal"),
)


# --- the event stream -----------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """Shares of the kinds of line in the stream (each step writes exactly one line)."""

    filing: float = 0.095
    visit: float = 0.620
    new_unfiled: float = 0.070
    same_province: float = 0.022
    no_refdata: float = 0.004
    last_year: float = 0.002
    reversal: float = 0.013
    already_reversed: float = 0.0015
    unknown_reversal: float = 0.0035
    exact_duplicate: float = 0.010
    conflicting_duplicate: float = 0.006
    invalid: float = 0.046
    amount_mismatch: float = 0.006  # of settlements, on top of the above
    emergency: dict[str, float] = field(
        default_factory=lambda: {"inpatient": 0.08, "outpatient": 0.04, "chronic": 0.01}
    )


@dataclass
class BundleSummary:
    """What a bundle holds, by intended outcome: lines by status, rejected lines by their
    reasons (joined with `+`), invalid lines by fault, priced settlements by kind."""

    out_dir: Path
    events: int
    seed: int
    period: str | None
    year: int
    policies: int
    catalogs: int
    persons: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    rejections: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    priced_kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        statuses = " ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))
        rate = self.events / self.seconds if self.seconds else 0.0
        span = self.period or str(self.year)
        return (
            f"simulate: {self.events} events ({statuses}) over {span}, {self.persons} persons, "
            f"{self.policies} policies, {self.catalogs} catalogs in {self.out_dir} "
            f"[{self.seconds:.1f}s, {rate:,.0f} events/s]"
        )


PERSON_MASK = (1 << 48) - 1
PERSON_MULTIPLIER = 0x9E3779B97F4B  # odd, so multiplying by it permutes 48-bit numbers


class Simulator:
    """Writes one bundle's event stream; holds only bounded state."""

    def __init__(
        self,
        seed: int,
        events: int,
        span: Span,
        refs: RefIndex,
        pool: Sequence[ItemCode],
        mix: Mix,
        include_last_year: bool,
    ) -> None:
        self.rng = Random(f"clearing-simulate/{seed}/events")
        self.events = events
        self.span = span
        self.refs = refs
        self.mix = mix
        self.person_salt = self.rng.getrandbits(48)
        self.persons_made = 0
        self.settlements_made = 0
        self.reversals_made = 0
        self.hospitals = self.make_hospital_tables()
        self.foreign_hospitals = [
            Hospital(f"H{code[:2]}0101{n:03d}", f"{code[:2]}0101", 3, 1100)
            for n, code in enumerate(NO_REFDATA_REGIONS)
        ]
        self.origins = WeightedTable.of([(p, p.origin) for p in PROVINCES])
        self.destinations = WeightedTable.of([(p, p.destination) for p in PROVINCES])
        self.filed_profiles = WeightedTable.of(list(FILED_PROFILE_WEIGHTS.items()))
        self.draws = {mix: ItemDraw.of(pool, mix, kind) for mix, kind in MIX_KIND.items()}
        self.timestamp_styles = WeightedTable.of(
            list(zip(TIMESTAMP_STYLES, TIMESTAMP_STYLE_WEIGHTS, strict=True))
        )
        steps = [
            ("filing", mix.filing),
            ("visit", mix.visit),
            ("new_unfiled", mix.new_unfiled),
            ("same_province", mix.same_province),
            ("no_refdata", mix.no_refdata),
            ("last_year", mix.last_year if include_last_year else 0.0),
            ("reversal", mix.reversal),
            ("already_reversed", mix.already_reversed),
            ("unknown_reversal", mix.unknown_reversal),
            ("exact_duplicate", mix.exact_duplicate),
            ("conflicting_duplicate", mix.conflicting_duplicate),
            ("invalid", mix.invalid),
        ]
        self.steps = WeightedTable.of([(name, w) for name, w in steps if w > 0])
        self.mutations = WeightedTable.of([((t, m, base), w) for t, w, m, base in MUTATIONS])
        # Bounded state.
        self.pool_limit = max(16, min(50_000, events // 40))
        self.pool: list[Person] = []
        self.priced_by_month: dict[str, list[tuple[str, str]]] = {}
        self.reversed: deque[tuple[str, str]] = deque(maxlen=64)
        self.rejected: deque[tuple[str, str]] = deque(maxlen=64)
        self.recent_lines: deque[tuple[str, str]] = deque(maxlen=256)
        self.recent_priced: deque[str] = deque(maxlen=256)
        self.now = span.first_day * DAY

    def make_hospital_tables(self) -> dict[str, WeightedTable]:
        tables = {}
        for province in PROVINCES:
            count = max(6, min(60, province.destination // 2))
            capital_share = 1.0 if province.cities <= 2 else 0.7
            hospitals = make_hospitals(self.rng, province.code, count, capital_share)
            tables[province.code] = WeightedTable.of([(h, LEVEL_PULL[h.level]) for h in hospitals])
        return tables

    # -- people ----------------------------------------------------------------------------

    def new_person_id(self) -> str:
        self.persons_made += 1
        token = (self.persons_made * PERSON_MULTIPLIER & PERSON_MASK) ^ self.person_salt
        return f"P{token:012x}"

    def home_region(self, province: Province) -> str:
        """A city of the province (the capital more often), sometimes the province itself."""
        if self.rng.random() < 0.2:
            return province.code
        if province.cities == 1 or self.rng.random() < 0.3:
            return city_code(province, 1)
        return city_code(province, self.rng.randint(1, province.cities))

    def destination_for(self, home: Province) -> Province:
        while True:
            province = self.destinations.pick(self.rng)
            if province.code != home.code:
                return province

    def visits(self, mean_extra: float) -> int:
        """1 plus a geometric number of further visits with the given mean."""
        if mean_extra <= 0:
            return 1
        p = 1.0 / (1.0 + mean_extra)
        return 1 + int(math.log(1.0 - self.rng.random()) / math.log(1.0 - p))

    def make_person(self, profile_name: str) -> Person:
        home = self.origins.pick(self.rng)
        destination = self.destination_for(home)
        scheme = "employee" if self.rng.random() < 0.56 else "resident"
        profile = PROFILES[profile_name]
        return Person(
            self.new_person_id(),
            self.home_region(home),
            scheme,
            profile_name,
            self.hospitals[destination.code].pick(self.rng),
            self.visits(profile.mean_extra_visits),
            None,
        )

    def make_filing(self, person: Person, today: int) -> Filing:
        """When and for how long the person registered: long-term filings are often open-ended,
        referrals short; now and then a filing has already lapsed."""
        kind = PROFILES[person.profile].filing_kind
        rng = self.rng
        if kind == "long_term":
            valid_from = today - rng.randint(0, 700)
            valid_to = None if rng.random() < 0.7 else valid_from + rng.randint(700, 1100)
        elif kind == "referral":
            valid_from = today - rng.randint(0, 20)
            valid_to = valid_from + rng.randint(60, 180)
        else:
            valid_from = today - rng.randint(0, 60)
            valid_to = None if rng.random() < 0.2 else valid_from + rng.randint(90, 365)
        if valid_to is not None and rng.random() < 0.04:
            valid_to = today - rng.randint(1, 60)
            valid_from = min(valid_from, valid_to - 30)
        home = person.home_region
        filing_home = province_of(home) if rng.random() < 0.15 else home
        return Filing(filing_home, person.hospital.province, valid_from, valid_to)

    def add_to_pool(self, person: Person) -> None:
        if len(self.pool) >= self.pool_limit:
            self.pool[self.rng.randrange(len(self.pool))] = person
        else:
            self.pool.append(person)

    def take_visit(self) -> Person | None:
        """A random active person, who then has one visit fewer; None when nobody is active."""
        if not self.pool:
            return None
        index = self.rng.randrange(len(self.pool))
        person = self.pool[index]
        person.remaining -= 1
        if person.remaining <= 0:
            self.pool[index] = self.pool[-1]
            self.pool.pop()
        return person

    # -- time ------------------------------------------------------------------------------

    def advance(self, step: int) -> None:
        """Move the stream's clock to step `step` of `events`, spread over the span's days."""
        x = (step + self.rng.random()) * self.span.days / self.events
        day = min(self.span.days - 1, int(x))
        self.now = max(self.now, (self.span.first_day + day) * DAY + second_of_day(x - day))

    def settle_time(self) -> int:
        """Usually now; sometimes a late submission from earlier in the span."""
        if self.rng.random() < 0.004:
            return max(self.span.first_day * DAY, self.now - self.rng.randint(DAY, 15 * DAY))
        return self.now

    def settle_text(self, local: int) -> str:
        return timestamp(local, self.timestamp_styles.pick(self.rng))

    # -- settlements -----------------------------------------------------------------------

    def new_settlement_id(self, hospital: Hospital) -> str:
        self.settlements_made += 1
        return f"S{hospital.region}{self.settlements_made:010d}"

    def item_mix(self, kind: str, heavy: bool) -> str:
        """Which pick table a visit draws from: a fifth of the stays are surgical, and costly."""
        if kind != "inpatient":
            return kind
        if heavy:
            return "heavy"
        return "surgical" if self.rng.random() < 0.2 else "inpatient"

    def items(self, kind: str, heavy: bool, hospital: Hospital) -> list[dict[str, Any]]:
        draw = self.draws[self.item_mix(kind, heavy)]
        return draw.draw(self.rng, item_count(self.rng, kind), hospital.factor)

    def settlement(
        self, person: Person, kind: str, hospital: Hospital, local: int
    ) -> tuple[dict[str, Any], int, bool]:
        """A valid settlement event, its admission day, and whether it is an emergency."""
        rng = self.rng
        heavy = PROFILES[person.profile].heavy
        emergency = rng.random() < self.mix.emergency[kind]
        items = self.items(kind, heavy, hospital)
        day = local // DAY
        admitted = day - (
            min(90, len(items) // 5 + rng.randint(0, 4)) if kind == "inpatient" else 0
        )
        diagnoses = DIAGNOSES["heavy" if heavy else kind]
        diagnosis = [rng.choice(diagnoses)]
        if rng.random() < 0.15:
            diagnosis.append(rng.choice(DIAGNOSES[kind]))
        event = {
            "type": "settlement",
            "schema_version": 1,
            "settlement_id": self.new_settlement_id(hospital),
            "kind": kind,
            "person_id": person.person_id,
            "scheme": person.scheme,
            "home_region": person.home_region,
            "hospital_id": hospital.hospital_id,
            "hospital_region": hospital.region,
            "hospital_level": hospital.level,
            "emergency": emergency,
            "admitted_on": day_text(admitted),
            "settled_at": self.settle_text(local),
            "diagnosis": diagnosis,
            "items": items,
        }
        return event, admitted, emergency

    def pick_kind(self, person: Person) -> str:
        weights = PROFILES[person.profile].kind_weights
        return self.rng.choices(KINDS, weights=weights)[0]

    def visit_hospital(self, person: Person) -> Hospital:
        """The person's usual hospital; now and then another one, rarely in another province."""
        r = self.rng.random()
        if r < 0.75:
            return person.hospital
        home = province_of(person.home_region)
        if r < 0.97:
            return self.hospitals[person.hospital.province].pick(self.rng)
        while True:
            hospital = self.hospitals[self.destinations.pick(self.rng).code].pick(self.rng)
            if hospital.province != home:
                return hospital

    def settle(
        self, person: Person, kind: str, hospital: Hospital, local: int, mismatch: bool = False
    ) -> tuple[str, Intent]:
        """Write a settlement for the person and work out its fate."""
        event, admitted, emergency = self.settlement(person, kind, hospital, local)
        covered = person.filing is not None and person.filing.covers(hospital.province, admitted)
        if mismatch:
            item = self.rng.choice(event["items"])
            item["amount_fen"] += self.rng.choice((1, 1, 2, 10, 100, 1000))
        reasons = expected_reasons(
            self.refs,
            kind=kind,
            home_region=person.home_region,
            scheme=person.scheme,
            hospital_region=hospital.region,
            year=date.fromordinal(local // DAY).year,
            emergency=emergency,
            covered=covered,
            mismatch=mismatch,
        )
        line = dump(event)
        sid = event["settlement_id"]
        self.recent_lines.append(("settlement", line))
        if reasons:
            self.rejected.append((sid, person.person_id))
            return line, Intent("rejected", reasons, kind)
        month = day_text(local // DAY)[:7]
        bucket = self.priced_by_month.setdefault(month, [])
        if len(bucket) < 256:
            bucket.append((sid, person.person_id))
        else:
            bucket[self.rng.randrange(256)] = (sid, person.person_id)
        self.recent_priced.append(line)
        return line, Intent("priced", [], kind, filed=emergency or covered)

    def mismatch(self) -> bool:
        return self.rng.random() < self.mix.amount_mismatch

    # -- steps -----------------------------------------------------------------------------

    def step_filing(self) -> tuple[str, Intent]:
        profile = self.filed_profiles.pick(self.rng)
        person = self.make_person(profile)
        person.filing = self.make_filing(person, self.now // DAY)
        self.add_to_pool(person)
        filing = person.filing
        event = {
            "type": "filing",
            "schema_version": 1,
            "filing_id": f"F{person.person_id[1:]}{self.rng.randint(1, 9)}",
            "person_id": person.person_id,
            "home_region": filing.home_region,
            "treatment_province": filing.treatment_province,
            "filing_kind": PROFILES[profile].filing_kind,
            "valid_from": day_text(filing.valid_from),
            "valid_to": None if filing.valid_to is None else day_text(filing.valid_to),
        }
        return dump(event), Intent("filed")

    def step_visit(self) -> tuple[str, Intent]:
        person = self.take_visit()
        if person is None:
            return self.step_new_unfiled()
        kind = self.pick_kind(person)
        return self.settle(
            person, kind, self.visit_hospital(person), self.settle_time(), self.mismatch()
        )

    def step_new_unfiled(self) -> tuple[str, Intent]:
        person = self.make_person("unfiled")
        person.remaining -= 1
        if person.remaining > 0:
            self.add_to_pool(person)
        return self.settle(
            person, self.pick_kind(person), person.hospital, self.settle_time(), self.mismatch()
        )

    def step_same_province(self) -> tuple[str, Intent]:
        """A hospital claiming a local patient through the cross-province channel."""
        person = self.make_person("unfiled")
        province = self.destinations.pick(self.rng)
        person.home_region = self.home_region(province)
        hospital = self.hospitals[province.code].pick(self.rng)
        kind = self.rng.choices(KINDS, weights=(50, 45, 5))[0]
        return self.settle(person, kind, hospital, self.now)

    def step_no_refdata(self) -> tuple[str, Intent]:
        """A payer or a payee for which no refdata is ever published."""
        person = self.make_person("unfiled")
        if self.rng.random() < 0.5:
            person.home_region = self.rng.choice(NO_REFDATA_REGIONS)
            return self.settle(person, "inpatient", person.hospital, self.now)
        return self.settle(person, "inpatient", self.rng.choice(self.foreign_hospitals), self.now)

    def step_last_year(self) -> tuple[str, Intent]:
        """A late submission from last December, a year with no refdata in the bundle."""
        person = self.make_person("unfiled")
        last_december = date(self.span.year - 1, 12, 1).toordinal()
        local = (last_december + self.rng.randint(0, 30)) * DAY + second_of_day(self.rng.random())
        return self.settle(person, "inpatient", person.hospital, local)

    def reversal_event(self, settlement_id: str, person_id: str, region: str) -> dict[str, Any]:
        self.reversals_made += 1
        reason = self.rng.choice(
            (
                "refund requested",
                "退费",
                "billing error",
                "患者要求退费",
                "duplicate billing",
                "退" * 200,
            )
        )
        return {
            "type": "reversal",
            "schema_version": 1,
            "reversal_id": f"R{region}{self.reversals_made:010d}",
            "settlement_id": settlement_id,
            "person_id": person_id,
            "reason": reason,
            "settled_at": self.settle_text(self.now),
        }

    def choose_priced(self) -> tuple[list[tuple[str, str]], int] | None:
        """Where a priced, unreversed settlement is kept: mostly this month's bucket, sometimes
        an earlier month's, so that some reversals cross into a later period."""
        months = list(self.priced_by_month)
        if not months:
            return None
        month = months[-1] if self.rng.random() < 0.7 else self.rng.choice(months)
        bucket = self.priced_by_month[month] or self.priced_by_month[months[-1]]
        if not bucket:
            return None
        return bucket, self.rng.randrange(len(bucket))

    def take_priced(self) -> tuple[str, str] | None:
        """A priced, unreversed settlement, no longer offered for reversal."""
        chosen = self.choose_priced()
        if chosen is None:
            return None
        bucket, index = chosen
        target = bucket[index]
        bucket[index] = bucket[-1]
        bucket.pop()
        return target

    def step_reversal(self) -> tuple[str, Intent]:
        target = self.take_priced()
        if target is None:
            return self.step_visit()
        sid, pid = target
        line = dump(self.reversal_event(sid, pid, sid[1:7]))
        self.reversed.append(target)
        self.recent_lines.append(("reversal", line))
        return line, Intent("reversed")

    def step_already_reversed(self) -> tuple[str, Intent]:
        if not self.reversed:
            return self.step_visit()
        sid, pid = self.rng.choice(self.reversed)
        line = dump(self.reversal_event(sid, pid, sid[1:7]))
        self.recent_lines.append(("reversal", line))
        return line, Intent("rejected", ["ALREADY_REVERSED"])

    def step_unknown_reversal(self) -> tuple[str, Intent]:
        """A reversal of a settlement never priced for that person: made up, rejected, or
        priced for someone else."""
        r = self.rng.random()
        if r < 0.4 or not self.rejected:
            sid, pid = f"SX{self.rng.getrandbits(40):012x}", self.new_person_id()
        elif r < 0.7:
            sid, pid = self.rng.choice(self.rejected)
        else:
            chosen = self.choose_priced()
            if chosen is None:
                return self.step_visit()
            bucket, index = chosen
            sid, pid = bucket[index][0], self.new_person_id()
        region = sid[1:7] if sid[1:7].isdigit() else self.destinations.pick(self.rng).code
        line = dump(self.reversal_event(sid, pid, region))
        self.recent_lines.append(("reversal", line))
        return line, Intent("rejected", ["UNKNOWN_SETTLEMENT"])

    def step_exact_duplicate(self) -> tuple[str, Intent]:
        """A retransmission: the same line again, or the same object written differently."""
        if not self.recent_lines:
            return self.step_visit()
        _, line = self.rng.choice(self.recent_lines)
        if self.rng.random() < 0.2:
            line = json.dumps(
                json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
        return line, Intent("duplicate")

    def step_conflicting_duplicate(self) -> tuple[str, Intent]:
        """A resubmission under a used settlement_id with changed (still priceable) content."""
        if not self.recent_priced:
            return self.step_visit()
        event = json.loads(self.rng.choice(self.recent_priced))
        item = self.rng.choice(event["items"])
        old = item["quantity"]
        new = next(q for q in ("2", "3", "1") if q != old)
        item["quantity"] = new
        item["amount_fen"] = line_amount(quantity_e4(new), item["unit_price_fen"])
        return dump(event), Intent("rejected", ["DUPLICATE_CONFLICT"])

    def step_invalid(self) -> tuple[str, Intent]:
        tag, mutation, base = self.mutations.pick(self.rng)
        event = self.throwaway(base)
        line, detail = mutation(self.rng, event)
        return line, Intent("invalid", invalid=tag, detail=detail)

    def throwaway(self, base: str) -> dict[str, Any]:
        """A fresh valid event that no later line relies on, to be spoilt."""
        person = self.make_person("unfiled")
        if base == "filing":
            profile = self.filed_profiles.pick(self.rng)
            person.profile = profile
            filing = self.make_filing(person, self.now // DAY)
            return {
                "type": "filing",
                "schema_version": 1,
                "filing_id": f"F{person.person_id[1:]}0",
                "person_id": person.person_id,
                "home_region": filing.home_region,
                "treatment_province": filing.treatment_province,
                "filing_kind": PROFILES[profile].filing_kind,
                "valid_from": day_text(filing.valid_from),
                "valid_to": day_text(filing.valid_from + 180),
            }
        if base == "reversal":
            sid = self.new_settlement_id(person.hospital)
            return self.reversal_event(sid, person.person_id, person.hospital.region)
        kind = self.pick_kind(person)
        event, _, _ = self.settlement(person, kind, person.hospital, self.now)
        event["settled_at"] = timestamp(self.now)
        return event

    STEP_NAMES = (
        "filing",
        "visit",
        "new_unfiled",
        "same_province",
        "no_refdata",
        "last_year",
        "reversal",
        "already_reversed",
        "unknown_reversal",
        "exact_duplicate",
        "conflicting_duplicate",
        "invalid",
    )

    def lines(self) -> Iterator[tuple[str, Intent]]:
        handlers = {name: getattr(self, f"step_{name}") for name in self.STEP_NAMES}
        for step in range(self.events):
            self.advance(step)
            yield handlers[self.steps.pick(self.rng)]()


def generate_bundle(
    out_dir: Path,
    events: int,
    seed: int,
    period: str | None = None,
    year: int = 2026,
    intents: bool = False,
    mix: Mix | None = None,
) -> BundleSummary:
    """Write a bundle (refdata and `events.jsonl`, plus `intents.jsonl` when asked) to `out_dir`.

    With `period` (YYYY-MM) every settled_at falls in that China-time month and the refdata is
    for its year; otherwise events spread over `year`, with a few late submissions from the
    December before it.
    """
    started = time.perf_counter()
    if period is not None:
        year = parse_period(period)[0]
    out_dir = Path(out_dir)
    policies, catalogs, pool = make_refdata(seed, year)
    write_refdata(out_dir, policies, catalogs)
    simulator = Simulator(
        seed,
        events,
        make_span(period, year),
        ref_index(policies, catalogs),
        pool,
        mix or Mix(),
        include_last_year=period is None,
    )
    summary = BundleSummary(out_dir, events, seed, period, year, len(policies), len(catalogs))
    statuses: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    priced_kinds: Counter[str] = Counter()
    intents_path = out_dir / "intents.jsonl"
    with (
        open_text(out_dir / "events.jsonl") as out,
        open_text(intents_path) if intents else nullcontext() as intent_out,
    ):
        for number, (line, intent) in enumerate(simulator.lines(), start=1):
            out.write(line + "\n")
            statuses[intent.status] += 1
            if intent.reasons:
                rejections["+".join(intent.reasons)] += 1
            if intent.invalid:
                invalid[intent.invalid] += 1
            if intent.kind and intent.status == "priced":
                priced_kinds[intent.kind] += 1
            if intent_out is not None:
                intent_out.write(dump(intent.record(number)) + "\n")
    if not intents and intents_path.exists():
        intents_path.unlink()
    summary.persons = simulator.persons_made
    summary.statuses = dict(sorted(statuses.items()))
    summary.rejections = dict(sorted(rejections.items()))
    summary.invalid = dict(sorted(invalid.items()))
    summary.priced_kinds = dict(sorted(priced_kinds.items()))
    summary.seconds = time.perf_counter() - started
    return summary


def open_text(path: Path) -> TextIO:
    """A UTF-8 file written with `\n` line ends only, in large blocks."""
    return open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)


# --- command line ---------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a deterministic synthetic bundle (refdata + events.jsonl)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--events", type=int, default=10_000, help="lines to write (10000)")
    parser.add_argument("--seed", type=int, default=0, help="the bundle's seed (0)")
    parser.add_argument("--out", type=Path, required=True, help="bundle directory")
    parser.add_argument("--period", help="YYYY-MM: a national month, every settled_at in it")
    parser.add_argument("--year", type=int, default=None, help="year to spread over (2026)")
    parser.add_argument(
        "--intents",
        action="store_true",
        help="also write intents.jsonl: each line's intended outcome",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.events < 0:
        print("clearing simulate: --events must be >= 0", file=sys.stderr)
        return 2
    year = args.year if args.year is not None else 2026
    if args.period is not None:
        try:
            period_year = parse_period(args.period)[0]
        except ValueError as exc:
            print(f"clearing simulate: {exc}", file=sys.stderr)
            return 2
        if args.year is not None and args.year != period_year:
            print("clearing simulate: --year disagrees with --period", file=sys.stderr)
            return 2
        year = period_year
    summary = generate_bundle(args.out, args.events, args.seed, args.period, year, args.intents)
    print(summary.line(), file=sys.stderr)
    return 0
