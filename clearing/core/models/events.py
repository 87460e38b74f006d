"""The inbound events: settlement, reversal, filing (`events.md`) and assistance (`tiers.md`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, PrivateAttr, StringConstraints, model_validator
from typing_extensions import TypedDict

from clearing.core.models.types import (
    MAX_QUANTITY_E4,
    STRICT,
    DateStr,
    Id,
    Level,
    ProvinceCode,
    Quantity,
    Region,
    SchemaVersion,
    Timestamp,
    quantity_e4,
)

Diagnosis = Annotated[str, StringConstraints(min_length=1, max_length=16)]


class Item(TypedDict):
    """One line item of a settlement, priced by the treating province's catalog.

    A TypedDict rather than a model: settlements carry dozens of items, and validating them as
    plain dicts costs a third less.
    """

    __pydantic_config__ = STRICT  # type: ignore[misc]

    code: Id
    quantity: Quantity
    unit_price_fen: Annotated[int, Field(ge=0, le=10**10)]
    amount_fen: Annotated[int, Field(ge=0, le=10**12)]


class Settlement(BaseModel):
    """One settled visit, submitted by the treating hospital."""

    model_config = STRICT

    type: Literal["settlement"]
    schema_version: SchemaVersion
    settlement_id: Id
    kind: Literal["inpatient", "outpatient", "chronic"]
    person_id: Id
    scheme: Literal["employee", "resident"]
    home_region: Region
    hospital_id: Id
    hospital_region: Region
    hospital_level: Level
    emergency: bool
    admitted_on: DateStr
    settled_at: Timestamp
    diagnosis: Annotated[list[Diagnosis], Field(min_length=1)]
    items: Annotated[list[Item], Field(min_length=1, max_length=2000)]

    _quantities_e4: tuple[int, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _quantities_in_range(self) -> Settlement:
        """Exact quantities in ten-thousandths, checked once and kept for pricing."""
        quantities = tuple([quantity_e4(item["quantity"]) for item in self.items])
        if min(quantities) <= 0 or max(quantities) > MAX_QUANTITY_E4:
            index = next(i for i, q in enumerate(quantities) if not 0 < q <= MAX_QUANTITY_E4)
            raise ValueError(f"items.{index}.quantity: must be > 0 and at most 100000")
        self._quantities_e4 = quantities
        return self

    @property
    def quantities_e4(self) -> tuple[int, ...]:
        # Direct: this is the hot path. Pydantic types the private dict as optional (None for a
        # model without private attributes); this model has one.
        quantities: tuple[int, ...] = self.__pydantic_private__["_quantities_e4"]  # type: ignore[index]
        return quantities


class Reversal(BaseModel):
    """The hospital cancels (refunds) a whole earlier settlement."""

    model_config = STRICT

    type: Literal["reversal"]
    schema_version: SchemaVersion
    reversal_id: Id
    settlement_id: Id
    person_id: Id
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    settled_at: Timestamp


class Filing(BaseModel):
    """The insured person's registration for treatment in another province (异地就医备案)."""

    model_config = STRICT

    type: Literal["filing"]
    schema_version: SchemaVersion
    filing_id: Id
    person_id: Id
    home_region: Region
    treatment_province: ProvinceCode
    filing_kind: Literal["long_term", "temporary", "referral"]
    valid_from: DateStr
    valid_to: DateStr | None

    @model_validator(mode="after")
    def _valid_to_not_before_valid_from(self) -> Filing:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class Assistance(BaseModel):
    """The home province names a person eligible for medical assistance (救助对象认定).

    `class` is `A` (特困/低保, the higher rate) or `B`; like a filing, it takes effect for the
    events after it, and records are not deduplicated.
    """

    model_config = STRICT

    type: Literal["assistance"]
    schema_version: SchemaVersion
    assistance_id: Id
    person_id: Id
    home_region: Region
    class_: Annotated[Literal["A", "B"], Field(alias="class")]
    valid_from: DateStr
    valid_to: DateStr | None

    @model_validator(mode="after")
    def _valid_to_not_before_valid_from(self) -> Assistance:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


Event = Settlement | Reversal | Filing | Assistance
EVENT_MODELS: dict[str, type[Event]] = {
    "settlement": Settlement,
    "reversal": Reversal,
    "filing": Filing,
    "assistance": Assistance,
}
