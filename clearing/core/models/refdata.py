"""Reference data published by bureaus: the home fund's policy, the treating province's catalog."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from clearing.core.models.types import STRICT, BasisPoints, Fen, Id, ProvinceCode, Region

Year = Annotated[int, Field(ge=1900, le=9999)]


class ByLevel(BaseModel):
    """A value for each hospital level, keyed "1", "2", "3" as in the published documents."""

    model_config = STRICT

    level_1: Annotated[int, Field(ge=0, alias="1")]
    level_2: Annotated[int, Field(ge=0, alias="2")]
    level_3: Annotated[int, Field(ge=0, alias="3")]

    def at(self, level: int) -> int:
        return (self.level_1, self.level_2, self.level_3)[level - 1]


class RatiosByLevel(ByLevel):
    level_1: Annotated[int, Field(ge=0, le=10000, alias="1")]
    level_2: Annotated[int, Field(ge=0, le=10000, alias="2")]
    level_3: Annotated[int, Field(ge=0, le=10000, alias="3")]


class Band(BaseModel):
    model_config = STRICT

    upto_fen: Fen | None
    ratio_bp: RatiosByLevel


def _check_bands(bands: Sequence[Band | CriticalBand]) -> None:
    if bands[-1].upto_fen is not None:
        raise ValueError("the last band must have upto_fen null")
    uppers = [b.upto_fen for b in bands[:-1] if b.upto_fen is not None]
    if len(uppers) < len(bands) - 1:
        raise ValueError("only the last band may have upto_fen null")
    if any(a >= b for a, b in zip(uppers, uppers[1:], strict=False)):
        raise ValueError("bands must have strictly rising upto_fen")


class InpatientBlock(BaseModel):
    model_config = STRICT

    deductible_fen: ByLevel
    bands: Annotated[list[Band], Field(min_length=1)]
    annual_cap_fen: Fen

    @model_validator(mode="after")
    def _bands(self) -> InpatientBlock:
        _check_bands(self.bands)
        return self


class AnnualBlock(BaseModel):
    model_config = STRICT

    annual_deductible_fen: Fen
    bands: Annotated[list[Band], Field(min_length=1)]
    annual_cap_fen: Fen

    @model_validator(mode="after")
    def _bands(self) -> AnnualBlock:
        _check_bands(self.bands)
        return self


Kind = Literal["inpatient", "outpatient", "chronic"]


def _check_kinds(kinds: Sequence[str]) -> None:
    if len(set(kinds)) != len(kinds):
        raise ValueError("kinds must be distinct")


class CriticalBand(BaseModel):
    """A band of serious-illness insurance: one ratio, whatever the hospital level."""

    model_config = STRICT

    upto_fen: Fen | None
    ratio_bp: BasisPoints


class CriticalBlock(BaseModel):
    """Serious-illness insurance (大病保险) on the in-scope burden above an annual threshold."""

    model_config = STRICT

    kinds: Annotated[list[Kind], Field(min_length=1)]
    annual_threshold_fen: Fen
    bands: Annotated[list[CriticalBand], Field(min_length=1)]
    annual_cap_fen: Fen | None  # null: no cap

    @model_validator(mode="after")
    def _kinds_and_bands(self) -> CriticalBlock:
        _check_kinds(self.kinds)
        _check_bands(self.bands)
        return self


class AssistanceRatios(BaseModel):
    """The medical-assistance ratio of each class, keyed exactly "A" and "B"."""

    model_config = STRICT

    class_a: Annotated[BasisPoints, Field(alias="A")]
    class_b: Annotated[BasisPoints, Field(alias="B")]

    def of(self, class_: str) -> int:
        return self.class_a if class_ == "A" else self.class_b


class AssistanceBlock(BaseModel):
    """Medical assistance (医疗救助) for eligible persons on what is still left to them."""

    model_config = STRICT

    kinds: Annotated[list[Kind], Field(min_length=1)]
    ratio_bp: AssistanceRatios
    annual_cap_fen: Fen

    @model_validator(mode="after")
    def _kinds(self) -> AssistanceBlock:
        _check_kinds(self.kinds)
        return self


class Policy(BaseModel):
    """The home fund's rules, one per (region, scheme, year).

    `critical` and `assistance` (`tiers.md`) are optional: a block that is absent (or null)
    pays nothing and accrues nothing.
    """

    model_config = STRICT

    region: Region
    scheme: Literal["employee", "resident"]
    year: Year
    unfiled_ratio_cut_bp: BasisPoints
    outpatient_requires_filing: bool
    inpatient: InpatientBlock
    outpatient: AnnualBlock
    chronic: AnnualBlock
    critical: CriticalBlock | None = None
    assistance: AssistanceBlock | None = None

    @property
    def has_tiers(self) -> bool:
        return self.critical is not None or self.assistance is not None


class CatalogEntry(BaseModel):
    model_config = STRICT

    class_: Annotated[Literal["A", "B", "C"], Field(alias="class")]
    b_selfpay_bp: BasisPoints | None = None
    price_cap_fen: Fen | None = None

    @model_validator(mode="after")
    def _fields_of_class(self) -> CatalogEntry:
        if self.class_ == "B" and self.b_selfpay_bp is None:
            raise ValueError("a class B entry needs b_selfpay_bp")
        if self.class_ != "B" and self.b_selfpay_bp is not None:
            raise ValueError("only a class B entry has b_selfpay_bp")
        if self.class_ == "C" and self.price_cap_fen is not None:
            raise ValueError("a class C entry has no price_cap_fen")
        return self


class Catalog(BaseModel):
    """The treating province's list, one per (province, year)."""

    model_config = STRICT

    province: ProvinceCode
    year: Year
    items: dict[Id, CatalogEntry]
