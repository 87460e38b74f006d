"""One-stop settlement (`tiers.md`): serious-illness insurance and medical assistance.

After the basic fund's `fund_pay` (`pricing.md`), two more home-side payers may stand behind
the settlement: serious-illness insurance (大病保险) on the in-scope burden the basic fund left
to the patient beyond an annual threshold, then medical assistance (医疗救助) for eligible
persons on what is still left. Pure functions of the policy, the settlement, the person-year's
tier accumulator and the person's assistance records; `pricing` turns them into a result and
effects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from clearing.core.exact import share
from clearing.core.models.events import Assistance, Settlement
from clearing.core.models.refdata import CriticalBlock, Policy
from clearing.core.models.types import province_of


@dataclass(frozen=True, slots=True)
class TierAccumulator:
    """Per (person_id, year) — whatever the kind, scheme or home region.

    The counted burden (the `isp` serious-illness insurance has counted), the serious-illness
    pay and the assistance pay of the person this year.
    """

    burden: int = 0
    critical_paid: int = 0
    assistance_paid: int = 0


@dataclass(frozen=True, slots=True)
class TierAmounts:
    """What the tiers pay on one settlement, and what it adds to the counted burden."""

    isp: int  # eligible − fund_pay: the in-scope part the basic fund left to the patient
    counted: int  # isp when serious-illness insurance applies (it is counted), else 0
    critical_pay: int
    assistance_pay: int
    # The class assistance applied with, None when it did not.
    assistance_class: Literal["A", "B"] | None


NO_TIERS = TierAmounts(0, 0, 0, 0, None)


def covering_class(s: Settlement, records: Iterable[Assistance]) -> Literal["A", "B"] | None:
    """The class of the assistance records that cover the settlement: `A` over `B`.

    A record covers it when it has the same person, its home region lies in the settlement's
    home province, and `valid_from <= admitted_on <= valid_to` (open-ended when null).
    """
    home = province_of(s.home_region)
    classes = {
        r.class_
        for r in records
        if r.person_id == s.person_id
        and province_of(r.home_region) == home
        and r.valid_from <= s.admitted_on
        and (r.valid_to is None or s.admitted_on <= r.valid_to)
    }
    if "A" in classes:
        return "A"
    return "B" if "B" in classes else None


def critical_share(block: CriticalBlock, burden: int, isp: int) -> int:
    """Serious-illness insurance on this settlement's burden, before the annual cap.

    In cumulative terms: of the burden above the threshold, this settlement brings the slice
    `lo..hi`; band *i* covers cumulative amounts above the previous band's `upto_fen` (0 for
    the first) up to its own (no limit when null), and pays its ratio of its part of the slice.
    """
    threshold = block.annual_threshold_fen
    lo = max(0, burden - threshold)
    hi = max(0, burden + isp - threshold)
    critical = 0
    lower = 0
    for band in block.bands:
        upper = band.upto_fen
        top = hi if upper is None else min(hi, upper)
        critical += share(max(0, top - max(lo, lower)), band.ratio_bp)
        if upper is None or upper >= hi:
            break
        lower = upper
    return critical


def price_tiers(
    policy: Policy,
    s: Settlement,
    eligible: int,
    fund_pay: int,
    acc: TierAccumulator,
    records: Iterable[Assistance],
) -> TierAmounts:
    """Serious-illness insurance, then medical assistance, after the basic fund's `fund_pay`."""
    isp = eligible - fund_pay

    critical_pay = counted = 0
    critical = policy.critical
    if critical is not None and s.kind in critical.kinds:
        amount = critical_share(critical, acc.burden, isp)
        cap = critical.annual_cap_fen
        critical_pay = amount if cap is None else min(amount, max(0, cap - acc.critical_paid))
        counted = isp

    assistance_pay = 0
    class_: Literal["A", "B"] | None = None
    aid = policy.assistance
    if aid is not None and s.kind in aid.kinds:
        class_ = covering_class(s, records)
        if class_ is not None:
            amount = share(isp - critical_pay, aid.ratio_bp.of(class_))
            assistance_pay = min(amount, max(0, aid.annual_cap_fen - acc.assistance_paid))

    return TierAmounts(isp, counted, critical_pay, assistance_pay, class_)
