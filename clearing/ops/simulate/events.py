"""Valid events as the stream writes them: settlements with their items and diagnoses,
filings, medical-assistance records, and reversals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from clearing.ops.simulate.clock import DAY, Clock, day_text
from clearing.ops.simulate.geography import Hospital
from clearing.ops.simulate.ids import Ids
from clearing.ops.simulate.items import MIX_KIND, ItemDraw, item_count
from clearing.ops.simulate.people import PROFILES, Aid, Filing, Person, Profile
from clearing.ops.simulate.refdata import ItemCode

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

REVERSAL_REASONS = (
    "refund requested",
    "退费",
    "billing error",
    "患者要求退费",
    "duplicate billing",
    "退" * 200,
)


def filing_event(
    filing_id: str, person_id: str, filing: Filing, filing_kind: str | None, valid_to: int | None
) -> dict[str, Any]:
    return {
        "type": "filing",
        "schema_version": 1,
        "filing_id": filing_id,
        "person_id": person_id,
        "home_region": filing.home_region,
        "treatment_province": filing.treatment_province,
        "filing_kind": filing_kind,
        "valid_from": day_text(filing.valid_from),
        "valid_to": None if valid_to is None else day_text(valid_to),
    }


def assistance_event(assistance_id: str, person_id: str, aid: Aid) -> dict[str, Any]:
    return {
        "type": "assistance",
        "schema_version": 1,
        "assistance_id": assistance_id,
        "person_id": person_id,
        "home_region": aid.home_region,
        "class": aid.klass,
        "valid_from": day_text(aid.valid_from),
        "valid_to": None if aid.valid_to is None else day_text(aid.valid_to),
    }


@dataclass(frozen=True, slots=True)
class Shape:
    """What a planted settlement fixes instead of drawing: the admission (or visit) day, the
    first diagnosis code, the items."""

    admitted: int | None = None
    diagnosis: str | None = None
    items: list[dict[str, Any]] | None = None


class EventFactory:
    """Makes settlements and reversals, drawing on the stream's generator and clock."""

    def __init__(
        self,
        rng: Random,
        ids: Ids,
        clock: Clock,
        pool: Sequence[ItemCode],
        emergency: dict[str, float],
    ) -> None:
        self.rng = rng
        self.ids = ids
        self.clock = clock
        self.emergency = emergency
        self.draws = {mix: ItemDraw.of(pool, mix, kind) for mix, kind in MIX_KIND.items()}

    def item_mix(self, kind: str, profile: Profile) -> str:
        """Which pick table a visit draws from: the patient's own mix for a stay or chronic
        care, else a fifth of the ordinary stays are surgical, and costly."""
        if kind == "chronic":
            return profile.chronic_mix
        if kind != "inpatient":
            return kind
        if profile.inpatient_mix is not None:
            return profile.inpatient_mix
        return "surgical" if self.rng.random() < 0.2 else "inpatient"

    def items(self, kind: str, profile: Profile, hospital: Hospital) -> list[dict[str, Any]]:
        mix = self.item_mix(kind, profile)
        return self.draws[mix].draw(self.rng, item_count(self.rng, kind, mix), hospital.factor)

    def settlement(
        self,
        person: Person,
        kind: str,
        hospital: Hospital,
        local: int,
        shape: Shape | None = None,
    ) -> tuple[dict[str, Any], int, bool]:
        """A valid settlement event, its admission day, and whether it is an emergency; what
        `shape` gives (admission day, diagnosis, items) replaces what would be drawn."""
        rng = self.rng
        shape = shape or Shape()
        profile = PROFILES[person.profile]
        heavy = profile.heavy
        emergency = rng.random() < self.emergency[kind]
        items = self.items(kind, profile, hospital) if shape.items is None else shape.items
        day = local // DAY
        admitted = day - (
            min(90, len(items) // 5 + rng.randint(0, 4)) if kind == "inpatient" else 0
        )
        if shape.admitted is not None:
            admitted = shape.admitted
        elif person.last_day is not None and person.last_day <= day:
            admitted = max(admitted, person.last_day)
        diagnoses = DIAGNOSES["heavy" if heavy else kind]
        diagnosis = [rng.choice(diagnoses)]
        if rng.random() < 0.15:
            diagnosis.append(rng.choice(DIAGNOSES[kind]))
        if shape.diagnosis is not None:
            diagnosis[0] = shape.diagnosis
        event: dict[str, Any] = {
            "type": "settlement",
            "schema_version": 1,
            "settlement_id": self.ids.settlement(hospital.region),
            "kind": kind,
            "person_id": person.person_id,
            "scheme": person.scheme,
            "home_region": person.home_region,
            "hospital_id": hospital.hospital_id,
            "hospital_region": hospital.region,
            "hospital_level": hospital.level,
            "emergency": emergency,
            "admitted_on": day_text(admitted),
            "settled_at": self.clock.settle_text(local),
            "diagnosis": diagnosis,
            "items": items,
        }
        return event, admitted, emergency

    def reversal(self, settlement_id: str, person_id: str, region: str) -> dict[str, Any]:
        """A valid reversal of the settlement, stamped now."""
        reversal_id = self.ids.reversal(region)
        reason = self.rng.choice(REVERSAL_REASONS)
        return {
            "type": "reversal",
            "schema_version": 1,
            "reversal_id": reversal_id,
            "settlement_id": settlement_id,
            "person_id": person_id,
            "reason": reason,
            "settled_at": self.clock.settle_text(self.clock.now),
        }
