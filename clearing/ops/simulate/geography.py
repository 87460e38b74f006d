"""Where patients come from and where they are treated: provinces, cities and hospitals."""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from clearing.core.models.types import province_of
from clearing.ops.simulate.weighted import WeightedTable


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


def city_code(province: Province, city: int) -> str:
    """The code of the province's `city`-th prefecture (1-based)."""
    return f"{province.code[:2]}{city:02d}00"


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
    hospitals: list[Hospital] = []
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


class Atlas:
    """The provinces weighted as origins and as destinations, each province's hospitals
    weighted by their pull, and a hospital in each region that never has refdata."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.hospitals = self.make_hospital_tables()
        self.foreign_hospitals = [
            Hospital(f"H{code[:2]}0101{n:03d}", f"{code[:2]}0101", 3, 1100)
            for n, code in enumerate(NO_REFDATA_REGIONS)
        ]
        self.origins = WeightedTable.of([(p, p.origin) for p in PROVINCES])
        self.destinations = WeightedTable.of([(p, p.destination) for p in PROVINCES])

    def make_hospital_tables(self) -> dict[str, WeightedTable[Hospital]]:
        tables: dict[str, WeightedTable[Hospital]] = {}
        for province in PROVINCES:
            count = max(6, min(60, province.destination // 2))
            capital_share = 1.0 if province.cities <= 2 else 0.7
            hospitals = make_hospitals(self.rng, province.code, count, capital_share)
            tables[province.code] = WeightedTable.of([(h, LEVEL_PULL[h.level]) for h in hospitals])
        return tables

    def origin(self) -> Province:
        return self.origins.pick(self.rng)

    def destination(self) -> Province:
        return self.destinations.pick(self.rng)

    def destination_for(self, home: Province) -> Province:
        """A destination other than the home province."""
        while True:
            province = self.destination()
            if province.code != home.code:
                return province

    def hospital_in(self, province_code: str) -> Hospital:
        return self.hospitals[province_code].pick(self.rng)

    def foreign_hospital(self) -> Hospital:
        """A hospital in a region for which no refdata is ever published."""
        return self.rng.choice(self.foreign_hospitals)
