"""Each rule of pricing.md on hand-worked numbers (policy and catalog in support/builders.py)."""

from __future__ import annotations

import pytest
from support.builders import filing, item, raw, refdata, reversal, settlement

from clearing.core.pricer import Pricer
from clearing.core.pricing import Accumulator, round_half_up


def run(*events: dict | bytes, pricer: Pricer | None = None, **policy) -> list[dict]:
    pricer = pricer or Pricer(refdata(**policy))
    out = []
    for event in events:
        data = event if isinstance(event, bytes) else raw(event)
        out.append(pricer.process(data).model_dump(exclude_none=True))
    return out


def test_round_half_up_is_exact_at_halves():
    assert round_half_up(5, 10) == 1
    assert round_half_up(4, 10) == 0
    assert round_half_up(15, 10) == 2
    assert round_half_up(25, 10) == 3
    assert round_half_up(10**30 + 5, 10) == 10**29 + 1


def test_inpatient_bands_deductible_and_classes_filed():
    items = [
        item("A1", "2", 1500000),  # A: 3,000,000 eligible
        item("B1", "1", 1000000),  # B 10 %: 100,000 pre-self-pay, 900,000 eligible
        item("C1", "1", 50000),  # C: self pay
        item("ZZ9", "1", 10000),  # not in catalog: self pay
    ]
    [_, result] = run(filing(), settlement(items=items))
    assert result == {
        "status": "priced",
        "settlement_id": "S1",
        "period": "2026-01",
        "payer": "230000",
        "payee": "110000",
        "hospital_id": "H1",
        "filed": True,
        "total_fen": 4060000,
        "self_pay_fen": 60000,
        "pre_self_pay_fen": 100000,
        "eligible_fen": 3900000,
        "deductible_fen": 120000,  # level 3, per admission
        # 3,780,000 reimbursable: 3,000,000 x 85 % + 780,000 x 91 %
        "fund_pay_fen": 2550000 + 709800,
        "personal_pay_fen": 4060000 - 3259800,
        "cap_reached": False,
    }


def test_unfiled_inpatient_takes_the_ratio_cut_in_every_band():
    items = [item("A1", "2", 1500000), item("B1", "1", 1000000)]
    [result] = run(settlement(items=items))
    assert result["filed"] is False
    # 3,780,000 reimbursable: 3,000,000 x (85 - 15) % + 780,000 x (91 - 15) %
    assert result["fund_pay_fen"] == 2100000 + 592800


def test_ratio_cut_never_goes_below_zero():
    [result] = run(settlement(items=[item("A1", "1", 500000)]), unfiled_ratio_cut_bp=9900)
    assert result["status"] == "priced"
    assert result["fund_pay_fen"] == 0


def test_price_cap_and_b_class_with_half_up_rounding():
    # 1.5 x 1,333 = 1,999.5 -> 2,000; capped at 1.5 x 1,000 = 1,500, 500 over the cap;
    # B 20 % of 1,500 = 300 pre-self-pay; 1,200 eligible.
    [_, result] = run(filing(), settlement(items=[item("B2", "1.5", 1333)]))
    assert result["total_fen"] == 2000
    assert result["self_pay_fen"] == 500
    assert result["pre_self_pay_fen"] == 300
    assert result["eligible_fen"] == 1200
    assert result["deductible_fen"] == 1200
    assert result["fund_pay_fen"] == 0


def test_unit_price_at_the_cap_is_not_capped():
    [_, result] = run(filing(), settlement(items=[item("A2", "3", 500)]))
    assert result["self_pay_fen"] == 0
    assert result["eligible_fen"] == 1500


def outpatient(sid: str, amount: int, **fields) -> dict:
    return settlement(
        sid, kind="outpatient", hospital_level=1, items=[item("A1", "1", amount)], **fields
    )


def test_outpatient_deductible_is_per_year_and_reversal_gives_it_back():
    pricer = Pricer(refdata())
    results = run(
        filing(),
        outpatient("S1", 15000),  # deductible 15,000 of 20,000
        outpatient("S2", 10000),  # 5,000 left: fund 80 % of 5,000
        outpatient("S3", 10000),  # none left: fund 80 % of 10,000
        reversal("R2", "S2"),
        outpatient("S4", 10000),  # S2's 5,000 back: fund 80 % of 5,000
        pricer=pricer,
    )
    assert [r.get("deductible_fen") for r in results[1:]] == [15000, 5000, 0, -5000, 5000]
    assert [r.get("fund_pay_fen") for r in results[1:]] == [0, 4000, 8000, -4000, 4000]
    assert pricer.book.accumulator("P1", 2026, "outpatient") == Accumulator(
        fund_paid=8000 + 4000, deductible_used=20000
    )


def test_annual_cap_limits_the_fund_and_flags_it():
    results = run(
        filing(),
        outpatient("S1", 620000),  # deductible 20,000; 80 % of 600,000 = 480,000
        outpatient("S2", 100000),  # 80,000 due, 20,000 of the 500,000 cap left
        outpatient("S3", 100000),  # cap exhausted
    )
    assert [r["fund_pay_fen"] for r in results[1:]] == [480000, 20000, 0]
    assert [r["cap_reached"] for r in results[1:]] == [False, True, True]
    assert results[2]["personal_pay_fen"] == 80000


def test_accumulators_are_per_kind_and_year():
    pricer = Pricer(refdata())
    policy_2027 = refdata(year=2027).policies[("230000", "employee", 2027)]
    pricer.refdata.add_policy(policy_2027)
    catalog = next(iter(pricer.refdata.catalogs.values()))
    pricer.refdata.add_catalog(catalog.model_copy(update={"year": 2027}))
    results = run(
        filing(),
        outpatient("S1", 20000),  # uses the whole 2026 outpatient deductible
        settlement("S2", kind="chronic", hospital_level=1, items=[item("A1", "1", 60000)]),
        outpatient("S3", 20000, admitted_on="2027-01-05", settled_at="2027-01-05T10:00:00+08:00"),
        pricer=pricer,
    )
    assert results[1]["deductible_fen"] == 20000
    assert results[2]["deductible_fen"] == 50000  # chronic has its own
    assert results[2]["fund_pay_fen"] == 8500
    assert results[3]["deductible_fen"] == 20000  # a new year starts again


def test_year_and_period_follow_china_time():
    event = settlement(settled_at="2025-12-31T17:30:00Z")  # 2026-01-01 01:30 in UTC+08:00
    [result] = run(event)
    assert result["status"] == "priced"
    assert result["period"] == "2026-01"


def test_city_policy_overrides_the_province():
    data = refdata()
    data.add_policy(
        refdata(region="230100", unfiled_ratio_cut_bp=0).policies[("230100", "employee", 2026)]
    )
    pricer = Pricer(data)
    items = [item("A1", "1", 1120000)]  # 1,000,000 above the level-3 deductible
    [city] = run(settlement("S1", home_region="230100", items=items), pricer=pricer)
    [province] = run(settlement("S2", home_region="230200", items=items), pricer=pricer)
    assert city["fund_pay_fen"] == 850000  # no cut for the unfiled in the city's policy
    assert province["fund_pay_fen"] == 700000


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"hospital_region": "230200"}, ["NOT_CROSS_PROVINCE"]),
        ({"settled_at": "2027-02-01T10:00:00+08:00"}, ["NO_CATALOG", "NO_POLICY"]),
        ({"scheme": "resident"}, ["NO_POLICY"]),
        ({"hospital_region": "120101"}, ["NO_CATALOG"]),
        ({"kind": "outpatient"}, ["NOT_FILED"]),
        ({"kind": "chronic"}, ["NOT_FILED"]),
        ({"items": [item("A1", "1.5", 333, 499)]}, ["AMOUNT_MISMATCH"]),
        (
            {"kind": "outpatient", "hospital_region": "230200", "items": [item("A1", "1", 1, 2)]},
            ["AMOUNT_MISMATCH", "NOT_CROSS_PROVINCE", "NOT_FILED"],
        ),
    ],
)
def test_rejections_list_every_reason_sorted(changes, reasons):
    [result] = run(settlement(**changes))
    assert result == {"status": "rejected", "settlement_id": "S1", "reasons": reasons}


def test_amount_rounds_half_up_not_to_even():
    # 0.5 x 5 = 2.5 -> 3 (banker's rounding would give 2)
    [_, result] = run(filing(), settlement(items=[item("A1", "0.5", 5, 3)]))
    assert result["status"] == "priced"


def test_outpatient_without_filing_requirement_is_priced_with_the_cut():
    [result] = run(settlement(kind="outpatient"), outpatient_requires_filing=False)
    assert result["status"] == "priced"
    assert result["filed"] is False


def test_emergency_counts_as_filed():
    [result] = run(settlement(kind="outpatient", emergency=True))
    assert result["status"] == "priced"
    assert result["filed"] is True


@pytest.mark.parametrize(
    ("filing_changes", "covered"),
    [
        ({}, True),
        ({"home_region": "230000"}, True),  # any region of the same home province
        ({"home_region": "220100"}, False),
        ({"person_id": "P2"}, False),
        ({"treatment_province": "310000"}, False),
        ({"valid_from": "2026-01-11"}, False),
        ({"valid_to": "2026-01-09"}, False),
        ({"valid_to": "2026-01-10"}, True),
        ({"valid_from": "2026-01-10", "valid_to": "2026-01-10"}, True),
    ],
)
def test_filing_coverage(filing_changes, covered):
    [filed, result] = run(filing(**filing_changes), settlement(kind="outpatient"))
    assert filed == {"status": "filed", "filing_id": "F1"}
    assert (result["status"] == "priced") is covered


def test_filing_takes_effect_only_for_later_events():
    results = run(
        settlement("S1", kind="outpatient"), filing(), settlement("S2", kind="outpatient")
    )
    assert [r["status"] for r in results] == ["rejected", "filed", "priced"]


def test_duplicates_compare_parsed_objects():
    event = settlement()
    reordered = b'{"settlement_id":"S1",' + raw(event)[1:].replace(b'"settlement_id":"S1",', b"")
    changed = settlement(hospital_level=2)
    results = run(event, reordered, changed, event)
    assert [r["status"] for r in results] == ["priced", "duplicate", "rejected", "duplicate"]
    assert results[1] == {"status": "duplicate", "settlement_id": "S1"}
    assert results[2]["reasons"] == ["DUPLICATE_CONFLICT"]


def test_repeated_key_last_value_counts():
    twice = raw(settlement())[:-1] + b',"hospital_level":2}'
    [first, second] = run(settlement(hospital_level=2), twice)
    assert first["status"] == "priced"
    assert second["status"] == "duplicate"


def test_rejected_settlement_keeps_its_id_and_invalid_reserves_none():
    rejected = settlement("S1", kind="outpatient")
    results = run(
        rejected,
        filing(),
        rejected,  # the same content again: a duplicate, even though now it would be filed
        settlement("S1", kind="inpatient"),  # other content under the taken id
        {"type": "settlement", "schema_version": 1, "settlement_id": "S9"},  # invalid
        settlement("S9"),
    )
    assert [r["status"] for r in results] == [
        "rejected",
        "filed",
        "duplicate",
        "rejected",
        "invalid",
        "priced",
    ]
    assert results[3]["reasons"] == ["DUPLICATE_CONFLICT"]


def test_reversal_negates_the_original_in_its_own_period():
    results = run(
        filing(),
        settlement(items=[item("A1", "1", 500000)]),
        reversal(settled_at="2026-02-01T00:30:00+08:00"),
    )
    priced, reversed_ = results[1], results[2]
    assert reversed_["status"] == "reversed"
    assert reversed_["reversal_id"] == "R1"
    assert reversed_["period"] == "2026-02"
    for name in ("total_fen", "eligible_fen", "deductible_fen", "fund_pay_fen"):
        assert reversed_[name] == -priced[name]
    assert "cap_reached" not in reversed_


def test_reversal_rejections_and_duplicates():
    results = run(
        settlement("S1"),
        reversal("R0", "S404"),
        reversal("R1", "S1", person_id="P2"),
        reversal("R2", "S1"),
        reversal("R2", "S1"),
        reversal("R2", "S1", reason="changed"),
        reversal("R3", "S1"),
        settlement("S5", hospital_region="230200"),
        reversal("R5", "S5"),
    )
    assert [r["status"] for r in results] == [
        "priced",
        "rejected",
        "rejected",
        "reversed",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]
    reasons = [r.get("reasons") for r in results]
    assert reasons[1] == ["UNKNOWN_SETTLEMENT"]
    assert reasons[2] == ["UNKNOWN_SETTLEMENT"]
    assert results[4] == {"status": "duplicate", "reversal_id": "R2", "settlement_id": "S1"}
    assert reasons[5] == ["DUPLICATE_CONFLICT"]
    assert reasons[6] == ["ALREADY_REVERSED"]
    assert reasons[8] == ["UNKNOWN_SETTLEMENT"]  # a rejected settlement cannot be reversed
    assert results[5]["reversal_id"] == "R2"


def test_reversal_never_takes_accumulators_below_zero():
    pricer = Pricer(refdata())
    run(filing(), outpatient("S1", 30000), pricer=pricer)
    pricer.book.accumulators[("P1", 2026, "outpatient")] = Accumulator(0, 0)
    run(reversal("R1", "S1"), pricer=pricer)
    assert pricer.book.accumulator("P1", 2026, "outpatient") == Accumulator(0, 0)
