"""Fund-safety monitoring (clearing.core.monitoring): each rule and each of its boundaries.

The events are support/builders.py's: person P1 (home 230100), hospitals in 110105 (Beijing),
inpatient at a level-3 hospital unless said otherwise, one class A item of 100,000 fen. A
filing covers P1's outpatient visits. `stay` settles at 10:00 China time on its discharge
date; `visit` at noon on its visit date.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from support.builders import CATALOG, POLICY, filing, item, refdata, reversal, settlement

from clearing.core.models.events import Settlement
from clearing.core.models.flags import Flag
from clearing.core.models.refdata import Policy
from clearing.core.models.results import Priced
from clearing.core.monitoring import (
    HospitalCount,
    Monitor,
    MonitorSettings,
    PersonHistory,
    Seen,
    flags_by_pairs,
    flags_for,
    items_key,
    monitor_event,
    period_close_flags,
    seen_of,
)
from clearing.core.pricer import Pricer
from clearing.core.refdata import RefData

Event = dict[str, Any]


def stay(sid: str, admitted: str, discharged: str, hospital: str = "H1", **fields: Any) -> Event:
    fields.setdefault("settled_at", f"{discharged}T10:00:00+08:00")
    return settlement(sid, admitted_on=admitted, hospital_id=hospital, **fields)


def visit(
    sid: str, on: str, hospital: str = "H1", kind: str = "outpatient", **fields: Any
) -> Event:
    fields.setdefault("settled_at", f"{on}T12:00:00+08:00")
    return settlement(sid, kind=kind, admitted_on=on, hospital_id=hospital, **fields)


def two_homes() -> RefData:
    """builders.refdata() with a policy for Beijing (110000) residents too."""
    data = refdata()
    data.add_policy(Policy.model_validate({**POLICY, "region": "110000"}))
    return data


def run(
    *events: Event,
    settings: MonitorSettings | None = None,
    data: RefData | None = None,
    refused: int = 0,
) -> list[dict[str, Any]]:
    """The flags of the events after P1's filing, then of every period closing, as dicts.

    Every event must be priced, reversed or a duplicate, but `refused` of them (rejected)."""
    pricer = Pricer(data or refdata())
    monitor = Monitor(settings or MonitorSettings())
    out: list[Flag] = []
    statuses = []
    for event in (filing(), *events):
        parsed, result = pricer.process_event(orjson.dumps(event))
        statuses.append(result.status)
        out.extend(monitor.observe(parsed, result))
    assert statuses.count("rejected") == refused, statuses
    assert "invalid" not in statuses, statuses
    for period in monitor.periods():
        out.extend(monitor.close_period(period))
    return [flag.model_dump() for flag in out]


def ids(flags: list[dict[str, Any]]) -> list[str]:
    return [flag["flag_id"] for flag in flags]


def side(
    sid: str,
    admitted: str,
    discharged: str | None,
    hospital: str = "H1",
    kind: str = "inpatient",
    diagnosis: str = "K35.8",
    total: int = 100000,
) -> dict[str, Any]:
    return {
        "settlement_id": sid,
        "kind": kind,
        "hospital_id": hospital,
        "admitted_on": admitted,
        "discharged": discharged,
        "diagnosis": diagnosis,
        "total_fen": total,
    }


# ---------------------------------------------------------------------------------------------
# 1. OVERLAPPING_STAYS


def test_a_transfer_on_the_same_day_does_not_overlap_whichever_comes_first() -> None:
    before, after = (
        stay("S1", "2026-01-01", "2026-01-10"),
        stay("S2", "2026-01-10", "2026-01-15", "H2"),
    )
    assert run(before, after) == []
    assert run(after, before) == []


def test_stays_overlapping_by_one_day_at_two_hospitals() -> None:
    flags = run(
        stay("S1", "2026-01-01", "2026-01-10"), stay("S2", "2026-01-09", "2026-01-15", "H2")
    )
    assert flags == [
        {
            "type": "flag",
            "schema_version": 1,
            "flag_id": "OVERLAPPING_STAYS:S1:S2",
            "rule": "OVERLAPPING_STAYS",
            "person_id": "P1",
            "settlement_ids": ["S1", "S2"],
            "period": "2026-01",
            "hospital_ids": ["H1", "H2"],
            "payers": ["230000"],
            "payees": ["110000"],
            "evidence": {
                "earlier": side("S1", "2026-01-01", "2026-01-10"),
                "later": side("S2", "2026-01-09", "2026-01-15", "H2"),
                "overlap_days": 1,
            },
        }
    ]


def test_a_stay_inside_another_overlaps_whichever_comes_first() -> None:
    long, short = (
        stay("S1", "2026-01-01", "2026-01-20"),
        stay("S2", "2026-01-05", "2026-01-08", "H2"),
    )
    assert ids(run(long, short)) == ["OVERLAPPING_STAYS:S1:S2"]
    assert run(long, short)[0]["evidence"]["overlap_days"] == 3
    assert ids(run(short, long)) == ["OVERLAPPING_STAYS:S2:S1"]


def test_overlapping_stays_at_the_same_hospital_are_not_this_rule() -> None:
    assert run(stay("S1", "2026-01-01", "2026-01-10"), stay("S2", "2026-01-05", "2026-01-12")) == []


def test_the_discharge_date_is_the_china_date_of_settled_at() -> None:
    # 2026-01-09T17:00Z is 2026-01-10 01:00 in UTC+08:00: the first stay ends on the 10th.
    first = stay("S1", "2026-01-01", "2026-01-09", settled_at="2026-01-09T17:00:00Z")
    flags = run(first, stay("S2", "2026-01-09", "2026-01-15", "H2"))
    assert ids(flags) == ["OVERLAPPING_STAYS:S1:S2"]
    assert flags[0]["evidence"]["earlier"]["discharged"] == "2026-01-10"


# ---------------------------------------------------------------------------------------------
# 2. OUTPATIENT_DURING_STAY


@pytest.mark.parametrize(
    ("on", "flagged"),
    [
        ("2026-01-09", False),
        ("2026-01-10", False),  # the admission day
        ("2026-01-11", True),  # the day after admission
        ("2026-01-14", True),
        ("2026-01-15", False),  # the discharge day
    ],
)
def test_a_visit_strictly_between_admission_and_discharge(on: str, flagged: bool) -> None:
    flags = run(stay("S1", "2026-01-10", "2026-01-15"), visit("S2", on, "H2"))
    assert ids(flags) == (["OUTPATIENT_DURING_STAY:S1:S2"] if flagged else [])


def test_a_visit_processed_before_the_stay() -> None:
    flags = run(
        visit("S1", "2026-01-11", "H2", kind="chronic"), stay("S2", "2026-01-10", "2026-01-15")
    )
    assert flags == [
        {
            "type": "flag",
            "schema_version": 1,
            "flag_id": "OUTPATIENT_DURING_STAY:S1:S2",
            "rule": "OUTPATIENT_DURING_STAY",
            "person_id": "P1",
            "settlement_ids": ["S1", "S2"],
            "period": "2026-01",
            "hospital_ids": ["H1", "H2"],
            "payers": ["230000"],
            "payees": ["110000"],
            "evidence": {
                "earlier": side("S1", "2026-01-11", None, "H2", kind="chronic"),
                "later": side("S2", "2026-01-10", "2026-01-15"),
                "days_after_admission": 1,
            },
        }
    ]


def test_two_visits_or_two_stays_are_not_this_rule() -> None:
    assert run(visit("S1", "2026-01-11"), visit("S2", "2026-01-11", "H2")) == []
    assert ids(
        run(stay("S1", "2026-01-01", "2026-01-20"), stay("S2", "2026-01-05", "2026-01-08", "H2"))
    ) == ["OVERLAPPING_STAYS:S1:S2"]


# ---------------------------------------------------------------------------------------------
# 3. QUICK_READMISSION


def readmission(admitted: str, hospital: str = "H1", diagnosis: str = "K35.1") -> list[Event]:
    first = stay("S1", "2026-01-01", "2026-01-05", diagnosis=["K35.8", "E11.9"])
    return [first, stay("S2", admitted, "2026-01-28", hospital, diagnosis=[diagnosis])]


def test_readmission_on_day_15_flags() -> None:
    flags = run(*readmission("2026-01-20"))
    assert ids(flags) == ["QUICK_READMISSION:S1:S2"]
    assert flags[0]["evidence"] == {
        "earlier": side("S1", "2026-01-01", "2026-01-05"),
        "later": side("S2", "2026-01-20", "2026-01-28", diagnosis="K35.1"),
        "days_between": 15,
        "diagnosis_category": "K35",
    }
    assert flags[0]["hospital_ids"] == ["H1"]


def test_readmission_on_the_discharge_day_flags() -> None:
    assert ids(run(*readmission("2026-01-05"))) == ["QUICK_READMISSION:S1:S2"]


@pytest.mark.parametrize(
    ("admitted", "hospital", "diagnosis"),
    [
        ("2026-01-21", "H1", "K35.1"),  # day 16
        ("2026-01-04", "H1", "K35.1"),  # -1 day: admitted again before the discharge
        ("2026-01-10", "H1", "K36"),  # another diagnosis category
        ("2026-01-10", "H2", "K35.1"),  # another hospital
    ],
)
def test_no_readmission_flag(admitted: str, hospital: str, diagnosis: str) -> None:
    assert run(*readmission(admitted, hospital, diagnosis)) == []


def test_readmission_days_is_a_setting() -> None:
    assert ids(run(*readmission("2026-01-21"), settings=MonitorSettings(readmission_days=16))) == [
        "QUICK_READMISSION:S1:S2"
    ]


def test_a_readmission_processed_before_the_first_stay_does_not_flag() -> None:
    """The rule pairs `s` with an *earlier* inpatient settlement `o`."""
    first, second = readmission("2026-01-10")
    assert run(second, first) == []


# ---------------------------------------------------------------------------------------------
# 4. DUPLICATE_BILLING

ITEMS = [item("A1", "2", 1500), item("B1", "1", 3000), item("A1", "2", 1500)]


def test_the_same_items_in_another_order_are_a_duplicate() -> None:
    again = [ITEMS[1], ITEMS[0], ITEMS[2]]
    flags = run(visit("S1", "2026-01-11", items=ITEMS), visit("S2", "2026-01-11", items=again))
    assert flags == [
        {
            "type": "flag",
            "schema_version": 1,
            "flag_id": "DUPLICATE_BILLING:S1:S2",
            "rule": "DUPLICATE_BILLING",
            "person_id": "P1",
            "settlement_ids": ["S1", "S2"],
            "period": "2026-01",
            "hospital_ids": ["H1"],
            "payers": ["230000"],
            "payees": ["110000"],
            "evidence": {
                "earlier": side("S1", "2026-01-11", None, kind="outpatient", total=9000),
                "later": side("S2", "2026-01-11", None, kind="outpatient", total=9000),
                "items": 3,
            },
        }
    ]


def test_quantities_are_compared_as_numbers() -> None:
    again = [item("A1", "2.0", 1500), item("B1", "1.0000", 3000), item("A1", "2.00", 1500)]
    flags = run(visit("S1", "2026-01-11", items=ITEMS), visit("S2", "2026-01-11", items=again))
    assert ids(flags) == ["DUPLICATE_BILLING:S1:S2"]


@pytest.mark.parametrize(
    "changes",
    [
        {"items": [item("A1", "3", 1500), ITEMS[1], ITEMS[2]]},  # another quantity
        {"items": [item("A1", "2", 1600), ITEMS[1], ITEMS[2]]},  # another unit price
        {"items": ITEMS[:2]},  # one line fewer: another multiset
        {"admitted_on": "2026-01-12", "settled_at": "2026-01-12T12:00:00+08:00"},
        {"hospital_id": "H2"},
        {"kind": "chronic"},
    ],
)
def test_not_a_duplicate(changes: dict[str, Any]) -> None:
    second = {**visit("S2", "2026-01-11", items=ITEMS), **changes}
    assert run(visit("S1", "2026-01-11", items=ITEMS), second) == []


def test_the_same_settlement_id_again_is_a_duplicate_event_not_a_flag() -> None:
    first = visit("S1", "2026-01-11", items=ITEMS)
    resent = {**first, "settled_at": "2026-01-11T13:00:00+08:00"}  # other content: rejected
    assert run(first, first, resent, refused=1) == []


def test_duplicate_inpatient_settlements() -> None:
    first, second = stay("S1", "2026-01-01", "2026-01-05"), stay("S2", "2026-01-01", "2026-01-05")
    assert ids(run(first, second)) == ["DUPLICATE_BILLING:S1:S2"]


# ---------------------------------------------------------------------------------------------
# Which settlements count, and the order of the flags


def test_a_reversed_earlier_settlement_no_longer_counts() -> None:
    first, second = (
        stay("S1", "2026-01-01", "2026-01-10"),
        stay("S2", "2026-01-09", "2026-01-15", "H2"),
    )
    assert run(first, reversal("R1", "S1"), second) == []
    # A flag raised before the reversal stays raised.
    assert ids(run(first, second, reversal("R1", "S1"))) == ["OVERLAPPING_STAYS:S1:S2"]


def test_rejected_settlements_and_refused_reversals_do_not_count() -> None:
    first = stay("S1", "2026-01-01", "2026-01-10")
    not_cross = stay("S0", "2026-01-01", "2026-01-10", "H0", hospital_region="230102")
    second = stay("S2", "2026-01-09", "2026-01-15", "H2")
    assert run(not_cross, second, refused=1) == []  # S0 was rejected (NOT_CROSS_PROVINCE)
    wrong_person = reversal("R1", "S1", person_id="P2")  # UNKNOWN_SETTLEMENT: S1 still counts
    assert ids(run(first, wrong_person, second, refused=1)) == ["OVERLAPPING_STAYS:S1:S2"]


def test_other_people_do_not_count() -> None:
    other = stay("S2", "2026-01-09", "2026-01-15", "H2", person_id="P2")
    assert run(stay("S1", "2026-01-01", "2026-01-10"), other) == []


def test_flags_of_one_settlement_by_rule_then_by_processing_order() -> None:
    flags = run(
        stay("S1", "2026-01-01", "2026-01-10", "H1"),
        visit("S2", "2026-01-12", "H4"),
        stay("S3", "2026-01-02", "2026-01-06", "H3"),
        stay("S4", "2026-01-05", "2026-01-20", "H2"),
    )
    assert ids(flags) == [
        "OVERLAPPING_STAYS:S1:S3",
        "OVERLAPPING_STAYS:S1:S4",
        "OVERLAPPING_STAYS:S3:S4",
        "OUTPATIENT_DURING_STAY:S2:S4",
    ]
    assert flags[1]["hospital_ids"] == ["H1", "H2"]


def test_payers_and_payees_are_the_sorted_provinces_of_both() -> None:
    first = stay("S1", "2026-01-01", "2026-01-10", home_region="230100")
    second = stay(
        "S2", "2026-01-09", "2026-02-03", "H2", home_region="110105", hospital_region="230102"
    )
    (flag,) = run(first, second, data=two_homes())
    assert (flag["payers"], flag["payees"], flag["period"]) == (
        ["110000", "230000"],
        ["110000", "230000"],
        "2026-02",
    )


# ---------------------------------------------------------------------------------------------
# 5. HIGH_REVERSAL_RATE


def hospital_month(
    settlements: int, reversals: int, reversed_on: str = "2026-01-20"
) -> list[Event]:
    events = [
        stay(f"S{n}", "2026-01-02", "2026-01-05", person_id=f"P{n}") for n in range(settlements)
    ]
    events += [
        reversal(f"R{n}", f"S{n}", person_id=f"P{n}", settled_at=f"{reversed_on}T10:00:00+08:00")
        for n in range(reversals)
    ]
    return events


def test_exactly_ten_percent_reversed_does_not_flag() -> None:
    assert run(*hospital_month(20, 2)) == []


def test_more_than_ten_percent_reversed_flags_at_the_close() -> None:
    assert run(*hospital_month(20, 3)) == [
        {
            "type": "flag",
            "schema_version": 1,
            "flag_id": "HIGH_REVERSAL_RATE:2026-01:H1",
            "rule": "HIGH_REVERSAL_RATE",
            "hospital_id": "H1",
            "period": "2026-01",
            "hospital_ids": ["H1"],
            "payers": ["230000"],
            "payees": ["110000"],
            "evidence": {
                "settlements": 20,
                "reversals": 3,
                "min_settlements": 20,
                "max_reversal_rate_bp": 1000,
            },
        }
    ]


def test_nineteen_settlements_are_too_few() -> None:
    assert run(*hospital_month(19, 10)) == []


def test_a_reversal_counts_in_the_period_of_its_own_settled_at() -> None:
    # The January settlements reversed in February: January has no reversals, February no
    # settlements.
    assert run(*hospital_month(20, 5, reversed_on="2026-02-03")) == []
    february = [stay(f"F{n}", "2026-02-01", "2026-02-02", person_id=f"Q{n}") for n in range(20)]
    flags = run(*hospital_month(20, 3, reversed_on="2026-02-03"), *february)
    assert ids(flags) == ["HIGH_REVERSAL_RATE:2026-02:H1"]
    assert flags[0]["evidence"]["settlements"] == 20


def test_period_close_flags_over_counts() -> None:
    counts = {
        "H9": HospitalCount(20, 3, frozenset({"230000", "120000"}), frozenset({"110000"})),
        "H1": HospitalCount(40, 5, frozenset({"230000"}), frozenset({"110000"})),
        "H5": HospitalCount(40, 4, frozenset({"230000"}), frozenset({"110000"})),
        "H2": HospitalCount(19, 19, frozenset({"230000"}), frozenset({"110000"})),
    }
    flags = [flag.model_dump() for flag in period_close_flags(counts, "2026-03")]
    assert ids(flags) == ["HIGH_REVERSAL_RATE:2026-03:H1", "HIGH_REVERSAL_RATE:2026-03:H9"]
    assert flags[1]["payers"] == ["120000", "230000"]
    strict = MonitorSettings(min_settlements=10, max_reversal_rate_bp=500)
    assert len(period_close_flags(counts, "2026-03", strict)) == 4


def test_a_period_closes_once() -> None:
    pricer, monitor = Pricer(refdata()), Monitor()
    for event in hospital_month(20, 3):
        monitor.observe(*pricer.process_event(orjson.dumps(event)))
    assert monitor.periods() == ["2026-01"]
    assert len(monitor.close_period("2026-01")) == 1
    assert monitor.periods() == []
    assert monitor.close_period("2026-01") == []


# ---------------------------------------------------------------------------------------------
# The pure parts


def parsed(event: Event) -> Settlement:
    return Settlement.model_validate(event)


def priced(event: Event) -> Priced:
    result = Pricer(refdata()).process(orjson.dumps(event))
    assert isinstance(result, Priced)
    return result


def test_items_key_is_a_multiset_with_exact_quantities() -> None:
    a = parsed(visit("S1", "2026-01-11", items=ITEMS))
    b = parsed(visit("S2", "2026-01-11", items=[ITEMS[2], ITEMS[1], item("A1", "2.0", 1500)]))
    c = parsed(visit("S3", "2026-01-11", items=ITEMS[1:]))
    assert items_key(a) == items_key(b)
    assert items_key(a).key == (("A1", 20000, 1500), ("A1", 20000, 1500), ("B1", 10000, 3000))
    assert items_key(b).lines[1] == ("B1", 10000, 3000)  # kept in the order billed
    assert items_key(a) != items_key(c)
    assert hash(items_key(a)) == hash(items_key(b))
    lines = items_key(b).lines
    assert json.loads(json.dumps(lines)) == [list(line) for line in lines]


def test_flags_for_never_pairs_a_settlement_with_itself() -> None:
    event = stay("S1", "2026-01-01", "2026-01-05")
    seen = seen_of(parsed(event), priced(event))
    assert flags_for(PersonHistory("P1", (seen,)), seen) == []


def test_monitor_event_reads_the_book_and_returns_its_effects() -> None:
    first, second = (
        stay("S1", "2026-01-01", "2026-01-10"),
        stay("S2", "2026-01-09", "2026-01-15", "H2"),
    )
    monitor = Monitor()
    monitor.observe(parsed(first), priced(first))
    before = (dict(monitor.histories), {p: dict(h) for p, h in monitor.counts.items()})
    observation = monitor_event(parsed(second), priced(second), monitor)
    assert (dict(monitor.histories), {p: dict(h) for p, h in monitor.counts.items()}) == before
    assert [flag.flag_id for flag in observation.flags] == ["OVERLAPPING_STAYS:S1:S2"]
    monitor.apply(observation.effects)
    assert [o.settlement_id for o in monitor.history_of("P1").settlements] == ["S1", "S2"]
    assert monitor.counts["2026-01"]["H2"] == HospitalCount(
        1, 0, frozenset({"230000"}), frozenset({"110000"})
    )


def test_history_forgets_a_reversed_settlement() -> None:
    event = stay("S1", "2026-01-01", "2026-01-05")
    seen = seen_of(parsed(event), priced(event))
    history = PersonHistory("P1").remember(seen)
    assert history.settlements == (seen,)
    assert history.forget("S1") == PersonHistory("P1")
    assert history.forget("S9") == history


def test_every_flag_is_valid_against_its_model() -> None:
    flags = run(
        stay("S1", "2026-01-01", "2026-01-10"),
        stay("S2", "2026-01-09", "2026-01-15", "H2"),
        visit("S3", "2026-01-05", "H2", items=ITEMS),
        visit("S4", "2026-01-05", "H2", items=ITEMS),
        stay("S5", "2026-01-20", "2026-01-22"),
    ) + run(*hospital_month(20, 3))
    assert [flag["rule"] for flag in flags] == [
        "OVERLAPPING_STAYS",
        "OUTPATIENT_DURING_STAY",
        "OUTPATIENT_DURING_STAY",
        "DUPLICATE_BILLING",
        "QUICK_READMISSION",
        "HIGH_REVERSAL_RATE",
    ]
    adapter: TypeAdapter[Flag] = TypeAdapter(Flag)
    for flag in flags:
        assert adapter.validate_python(flag).model_dump() == flag
        assert flag["flag_id"].startswith(flag["rule"] + ":")


# ---------------------------------------------------------------------------------------------
# `clearing flags`


def write_refdata(directory: Path) -> Path:
    (directory / "policies").mkdir(parents=True)
    (directory / "catalogs").mkdir()
    (directory / "policies" / "230000-employee-2026.json").write_bytes(orjson.dumps(POLICY))
    for province in ("110000", "230000"):
        catalog = {**CATALOG, "province": province}
        (directory / "catalogs" / f"{province}-2026.json").write_bytes(orjson.dumps(catalog))
    return directory


CLI_EVENTS = [
    filing(),
    stay("S1", "2026-01-01", "2026-01-10"),
    stay("S2", "2026-01-09", "2026-01-12", "H2", diagnosis=["J18.9"]),
    visit("S3", "2026-01-05", "H2", items=ITEMS),
    stay("S4", "2026-01-20", "2026-01-22", diagnosis=["K35.1"]),
    visit("S5", "2026-01-05", "H2", items=[ITEMS[2], item("B1", "1.0", 3000), ITEMS[0]]),
    reversal("R1", "S5"),
    visit("S3", "2026-01-05", "H2", items=ITEMS),  # a duplicate event: no effect
]


def cli_expected() -> list[dict[str, Any]]:
    s1 = side("S1", "2026-01-01", "2026-01-10")
    s3 = side("S3", "2026-01-05", None, "H2", kind="outpatient", total=6000 + 3000)
    s5 = {**s3, "settlement_id": "S5"}

    def pair(
        rule: str, first: str, second: str, hospitals: list[str], **evidence: Any
    ) -> dict[str, Any]:
        return {
            "type": "flag",
            "schema_version": 1,
            "flag_id": f"{rule}:{first}:{second}",
            "rule": rule,
            "person_id": "P1",
            "settlement_ids": [first, second],
            "period": "2026-01",
            "hospital_ids": hospitals,
            "payers": ["230000"],
            "payees": ["110000"],
            "evidence": evidence,
        }

    return [
        pair(
            "OVERLAPPING_STAYS",
            "S1",
            "S2",
            ["H1", "H2"],
            earlier=s1,
            later=side("S2", "2026-01-09", "2026-01-12", "H2", diagnosis="J18.9"),
            overlap_days=1,
        ),
        pair(
            "OUTPATIENT_DURING_STAY",
            "S1",
            "S3",
            ["H1", "H2"],
            earlier=s1,
            later=s3,
            days_after_admission=4,
        ),
        pair(
            "QUICK_READMISSION",
            "S1",
            "S4",
            ["H1"],
            earlier=s1,
            later=side("S4", "2026-01-20", "2026-01-22", diagnosis="K35.1"),
            days_between=10,
            diagnosis_category="K35",
        ),
        pair(
            "OUTPATIENT_DURING_STAY",
            "S1",
            "S5",
            ["H1", "H2"],
            earlier=s1,
            later=s5,
            days_after_admission=4,
        ),
        pair("DUPLICATE_BILLING", "S3", "S5", ["H2"], earlier=s3, later=s5, items=3),
        {
            "type": "flag",
            "schema_version": 1,
            "flag_id": "HIGH_REVERSAL_RATE:2026-01:H2",
            "rule": "HIGH_REVERSAL_RATE",
            "hospital_id": "H2",
            "period": "2026-01",
            "hospital_ids": ["H2"],
            "payers": ["230000"],
            "payees": ["110000"],
            "evidence": {
                "settlements": 3,
                "reversals": 1,
                "min_settlements": 3,
                "max_reversal_rate_bp": 1000,
            },
        },
    ]


def clearing(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "clearing.cli", *args], input=stdin, capture_output=True, check=False
    )


def test_flags_command_prints_every_flag_in_the_order_raised(tmp_path: Path) -> None:
    refdata_dir = write_refdata(tmp_path / "refdata")
    lines = [orjson.dumps(event) for event in CLI_EVENTS]
    lines.insert(3, b"{not json")  # an invalid line: priced as invalid, no flag
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    args = ("flags", "--refdata", str(refdata_dir), "--min-settlements", "3")
    run_file = clearing(*args, str(events))
    assert run_file.returncode == 0, run_file.stderr.decode()
    assert run_file.stdout.splitlines() == [orjson.dumps(flag) for flag in cli_expected()]
    run_stdin = clearing(*args, stdin=events.read_bytes())
    assert run_stdin.returncode == 0, run_stdin.stderr.decode()
    assert run_stdin.stdout == run_file.stdout
    # With the default 20 settlements, H2's three are too few.
    run_defaults = clearing("flags", "--refdata", str(refdata_dir), str(events))
    assert run_defaults.stdout.splitlines() == run_file.stdout.splitlines()[:-1]


def test_flags_command_bad_refdata_is_a_clear_error(tmp_path: Path) -> None:
    run_bad = clearing("flags", "--refdata", str(tmp_path), stdin=b"")
    assert run_bad.returncode == 2
    assert run_bad.stderr.startswith(b"clearing flags: ")


# ---------------------------------------------------------------------------------------------
# The indexed rules against the rules as listed


DAYS = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 1, 12))
SEEN = st.builds(
    lambda n, kind, hospital, admitted, length, diagnosis, items: Seen(
        f"S{n}",
        kind,
        hospital,
        admitted,
        admitted + timedelta(days=length),
        diagnosis,
        items,
        "2026-01",
        "230000",
        "110000",
        100_000,
    ),
    st.integers(0, 30),
    st.sampled_from(["inpatient", "outpatient", "chronic"]),
    st.sampled_from(["H1", "H2"]),
    DAYS,
    st.integers(-2, 18),  # a stay may be settled before its admission date
    st.sampled_from(["K35.8", "K35.1", "J18.0"]),
    st.sampled_from([(("A1", 10000, 1500),), (("A1", 10000, 1500), ("B1", 20000, 3000))]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(SEEN, max_size=25), SEEN, st.lists(st.integers(0, 30), max_size=4))
def test_the_indexes_raise_what_every_pair_raises(
    earlier: list[Seen], new: Seen, reversed_: list[int]
) -> None:
    history = PersonHistory("P1")
    for seen in earlier:
        history = history.remember(seen)
    for n in reversed_:
        history = history.forget(f"S{n}")
    assert history == PersonHistory("P1", history.settlements)
    for days in (0, 15):
        rules = MonitorSettings(readmission_days=days)
        assert flags_for(history, new, rules) == flags_by_pairs(history, new, rules)
