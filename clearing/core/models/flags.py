"""The flags of fund-safety monitoring (智能监控), one model per rule.

A flag points operators at settlements worth a look; it never moves money and never refuses
a patient. A person-level flag names the two settlements of the pair, the earlier processed
first; the hospital-level flag (`HIGH_REVERSAL_RATE`) names a hospital and its counts instead.
Every field is always printed (`discharged` is null for an outpatient or chronic visit).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from clearing.core.models.events import Diagnosis
from clearing.core.models.results import Period
from clearing.core.models.types import DateStr, Id, ProvinceCode, SchemaVersion

# STRICT, and the defaulted fields (`type`, `schema_version`, `rule`) required in the schema:
# a flag always carries them.
FLAG_CONFIG = ConfigDict(
    strict=True, extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
)

FlagId = Annotated[
    str,
    Field(
        pattern=r"^[A-Z_]+:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$",
        description="`<rule>:<earlier settlement_id>:<later settlement_id>`, or "
        "`<rule>:<period>:<hospital_id>` for a hospital-level rule",
    ),
]
Kind = Literal["inpatient", "outpatient", "chronic"]
Provinces = Annotated[list[ProvinceCode], Field(min_length=1)]


class FlaggedSettlement(BaseModel):
    """What the rules read of one settlement of the pair."""

    model_config = FLAG_CONFIG

    settlement_id: Id
    kind: Kind
    hospital_id: Id
    admitted_on: Annotated[DateStr, Field(description="admission date, or the visit date")]
    discharged: Annotated[
        DateStr | None,
        Field(description="inpatient: the date of settled_at in UTC+08:00; else null"),
    ]
    diagnosis: Annotated[Diagnosis, Field(description="the first diagnosis code")]
    total_fen: int


class _PairEvidence(BaseModel):
    model_config = FLAG_CONFIG

    earlier: FlaggedSettlement
    later: FlaggedSettlement


class OverlapEvidence(_PairEvidence):
    overlap_days: Annotated[
        int, Field(description="min(discharged) − max(admitted_on) of the two stays")
    ]


class OutpatientDuringStayEvidence(_PairEvidence):
    days_after_admission: Annotated[
        int, Field(ge=1, description="visit date − admission date of the stay")
    ]


class ReadmissionEvidence(_PairEvidence):
    days_between: Annotated[
        int, Field(ge=0, description="admission of the later stay − discharge of the earlier")
    ]
    diagnosis_category: Annotated[
        str, Field(description="the first three characters of the first diagnosis code")
    ]


class DuplicateBillingEvidence(_PairEvidence):
    items: Annotated[int, Field(ge=1, description="line items of each, matched one to one")]


class ReversalRateEvidence(BaseModel):
    model_config = FLAG_CONFIG

    settlements: Annotated[int, Field(ge=0, description="priced settlements in the period")]
    reversals: Annotated[int, Field(ge=0, description="reversals in the period")]
    min_settlements: int
    max_reversal_rate_bp: int


class _PersonFlag(BaseModel):
    model_config = FLAG_CONFIG

    type: Literal["flag"] = "flag"
    schema_version: SchemaVersion = 1
    flag_id: FlagId
    rule: str
    person_id: Id
    settlement_ids: Annotated[
        list[Id], Field(min_length=2, max_length=2, description="[earlier, later] processed")
    ]
    period: Annotated[Period, Field(description="the later settlement's period")]
    hospital_ids: Annotated[list[Id], Field(min_length=1)]
    payers: Provinces
    payees: Provinces
    evidence: BaseModel


class OverlappingStays(_PersonFlag):
    """Two inpatient stays of one person at different hospitals overlap."""

    rule: Literal["OVERLAPPING_STAYS"] = "OVERLAPPING_STAYS"
    evidence: OverlapEvidence


class OutpatientDuringStay(_PersonFlag):
    """An outpatient or chronic visit strictly inside an inpatient stay of the same person."""

    rule: Literal["OUTPATIENT_DURING_STAY"] = "OUTPATIENT_DURING_STAY"
    evidence: OutpatientDuringStayEvidence


class QuickReadmission(_PersonFlag):
    """Readmitted to the same hospital soon after discharge, for the same diagnosis category."""

    rule: Literal["QUICK_READMISSION"] = "QUICK_READMISSION"
    evidence: ReadmissionEvidence


class DuplicateBilling(_PersonFlag):
    """The same visit billed twice under two settlement ids."""

    rule: Literal["DUPLICATE_BILLING"] = "DUPLICATE_BILLING"
    evidence: DuplicateBillingEvidence


class HighReversalRate(BaseModel):
    """A hospital reversed more than the allowed share of its settlements in a period."""

    model_config = FLAG_CONFIG

    type: Literal["flag"] = "flag"
    schema_version: SchemaVersion = 1
    flag_id: FlagId
    rule: Literal["HIGH_REVERSAL_RATE"] = "HIGH_REVERSAL_RATE"
    hospital_id: Id
    period: Period
    hospital_ids: Annotated[list[Id], Field(min_length=1, max_length=1)]
    payers: Provinces
    payees: Provinces
    evidence: ReversalRateEvidence


PersonFlag = OverlappingStays | OutpatientDuringStay | QuickReadmission | DuplicateBilling
Flag = Annotated[
    OverlappingStays
    | OutpatientDuringStay
    | QuickReadmission
    | DuplicateBilling
    | HighReversalRate,
    Field(discriminator="rule"),
]
