"""Each line's intended outcome, known when the line is made.

`expected_reasons` is the generator's own reading of the rejection rules of pricing.md, for a
fresh valid settlement: it decides which later lines may refer back to the settlement (only
priced ones can be reversed), and the intents it yields are checked against the real pricer
in the tests, so it must stay independent of `clearing.core.pricing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearing.core.models.types import province_of
from clearing.ops.simulate.refdata import RefIndex


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
    reasons: list[str] = []
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


def expected_assistance_class(
    refs: RefIndex,
    *,
    kind: str,
    home_region: str,
    scheme: str,
    year: int,
    covering: str | None,
) -> str | None:
    """The `assistance_class` of tiers.md for a priced settlement: the class of the records
    covering it (`covering`), when the governing policy's assistance covers its kind."""
    if kind not in refs.assistance_kinds(home_region, scheme, year):
        return None
    return covering


@dataclass(slots=True)
class Intent:
    """What a line is meant to become when priced; for a priced settlement, also the class
    medical assistance applies with (None: it does not apply); on the line that completes a
    planted monitoring case, the case (`clearing.ops.simulate.plants`)."""

    status: str
    reasons: list[str] = field(default_factory=list)
    kind: str | None = None
    filed: bool | None = None
    invalid: str | None = None
    detail: str | None = None
    assistance_class: str | None = None
    plant: dict[str, Any] | None = None

    def record(self, line: int) -> dict[str, Any]:
        out: dict[str, Any] = {"line": line, "status": self.status}
        keys = ("reasons", "kind", "filed", "assistance_class", "invalid", "detail", "plant")
        for key in keys:
            value = getattr(self, key)
            if value not in (None, []):
                out[key] = value
        return out
