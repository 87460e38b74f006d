"""Each rule of tiers.md on hand-worked numbers (policy and catalog in support/tiers.py).

Filed inpatient settlements at a level-3 hospital, one class A item of amount X:
X = 1,000,000: fund 85 % of 880,000 = 748,000, isp 252,000;
X = 2,000,000: fund 85 % of 1,880,000 = 1,598,000, isp 402,000;
X = 10,000,000: fund 85 % of 3,000,000 + 91 % of 6,880,000 = 8,810,800, isp 1,189,200.
The serious-illness threshold is 300,000, its bands 50 % up to 500,000, 60 % up to
1,500,000 and 75 % beyond (amounts above the threshold), its cap 800,000; assistance pays
90 % (A) or 60 % (B) of what is left, up to 500,000 a year, for inpatient settlements only.
"""

from __future__ import annotations

import orjson
import pytest
from support.builders import CATALOG, filing, item, refdata, reversal, settlement
from support.tiers import ASSISTANCE, CRITICAL, assistance, tier_policy, tier_refdata

from clearing.core.models.refdata import Catalog, CriticalBlock
from clearing.core.netting import build_statement, digest
from clearing.core.pricer import Pricer
from clearing.core.refdata import RefDataError, parse_document
from clearing.core.tiers import TierAccumulator, critical_share


def priced(*events: dict, pricer: Pricer | None = None, **blocks) -> list[dict]:
    """Results of the events after a filing, as `clearing price` prints them (without line)."""
    pricer = pricer or Pricer(tier_refdata(tier_policy(**blocks)))
    out = [pricer.process(orjson.dumps(filing())).model_dump(exclude_none=True)]
    for event in events:
        out.append(pricer.process(orjson.dumps(event)).model_dump(exclude_none=True))
    return out[1:]


def inpatient(sid: str, amount: int, **fields) -> dict:
    return settlement(sid, items=[item("A1", "1", amount)], **fields)


def tiers_of(result: dict) -> tuple:
    return (
        result["critical_pay_fen"],
        result["assistance_pay_fen"],
        result["due_fen"],
        result["personal_pay_fen"],
        result["assistance_class"],
    )


# ---------------------------------------------------------------------------------------------
# Serious-illness insurance


def test_threshold_crossed_inside_one_settlement():
    pricer = Pricer(tier_refdata())
    first, second = priced(inpatient("S1", 1000000), inpatient("S2", 1000000), pricer=pricer)
    # S1: burden 252,000, below the threshold: nothing paid, but counted.
    assert tiers_of(first) == (0, 0, 748000, 252000, None)
    # S2: burden 252,000 -> 504,000 crosses 300,000: 204,000 above it, 50 % = 102,000.
    assert tiers_of(second) == (102000, 0, 748000 + 102000, 1000000 - 850000, None)
    assert second["fund_pay_fen"] == 748000
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(504000, 102000, 0)


def test_whole_priced_result_with_tiers():
    [result] = priced(inpatient("S1", 2000000))
    assert result == {
        "status": "priced",
        "settlement_id": "S1",
        "period": "2026-01",
        "payer": "230000",
        "payee": "110000",
        "hospital_id": "H1",
        "filed": True,
        "total_fen": 2000000,
        "self_pay_fen": 0,
        "pre_self_pay_fen": 0,
        "eligible_fen": 2000000,
        "deductible_fen": 120000,
        "fund_pay_fen": 1598000,
        # isp 402,000: 102,000 above the threshold at 50 %
        "critical_pay_fen": 51000,
        "assistance_pay_fen": 0,
        "due_fen": 1649000,
        "personal_pay_fen": 351000,
        "cap_reached": False,
        "assistance_class": None,
    }


def test_crossing_band_boundaries_in_cumulative_terms():
    pricer = Pricer(tier_refdata(tier_policy(critical={**CRITICAL, "annual_cap_fen": None})))
    first, second = priced(inpatient("S1", 10000000), inpatient("S2", 10000000), pricer=pricer)
    # S1: 0 .. 889,200 above the threshold: 500,000 x 50 % + 389,200 x 60 %.
    assert first["critical_pay_fen"] == 250000 + 233520
    # S2: 889,200 .. 2,078,400: 610,800 x 60 % (to 1,500,000) + 578,400 x 75 %.
    assert second["critical_pay_fen"] == 366480 + 433800
    assert second["due_fen"] == 8810800 + 800280
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(2378400, 1283800, 0)


def test_each_band_is_rounded_half_up_on_its_own():
    block = CriticalBlock.model_validate(
        {
            "kinds": ["inpatient"],
            "annual_threshold_fen": 100,
            "bands": [
                {"upto_fen": 10, "ratio_bp": 5000},
                {"upto_fen": 20, "ratio_bp": 2500},
                {"upto_fen": None, "ratio_bp": 10000},
            ],
            "annual_cap_fen": None,
        }
    )
    # burden 95 -> 125: 0 .. 25 above the threshold: 10 x 50 % + 10 x 25 % (2.5 -> 3) + 5.
    assert critical_share(block, 95, 30) == 5 + 3 + 5
    # Below the threshold, or nothing new: nothing.
    assert critical_share(block, 0, 100) == 0
    assert critical_share(block, 200, 0) == 0
    # Above the last bound: only the open band, 100 %.
    assert critical_share(block, 1000, 7) == 7


def test_critical_cap_reached():
    results = priced(inpatient("S1", 10000000), inpatient("S2", 10000000), inpatient("S3", 1000000))
    # S1 483,520; S2 would be 800,280 but only 800,000 - 483,520 of the cap is left; S3 none.
    assert [r["critical_pay_fen"] for r in results] == [483520, 316480, 0]
    assert [r["due_fen"] for r in results] == [8810800 + 483520, 8810800 + 316480, 748000]
    assert all(r["cap_reached"] is False for r in results)  # the basic fund's cap only


def test_critical_cap_null_is_no_cap():
    critical = {**CRITICAL, "annual_cap_fen": None}
    results = priced(
        inpatient("S1", 10000000),
        inpatient("S2", 10000000),
        inpatient("S3", 1000000),
        critical=critical,
    )
    # S3: burden 2,378,400 -> 2,630,400, all in the 75 % band: 252,000 x 75 %.
    assert [r["critical_pay_fen"] for r in results] == [483520, 800280, 189000]


def test_kind_not_in_kinds_pays_and_counts_nothing():
    pricer = Pricer(tier_refdata())
    outpatient = settlement(
        "S1", kind="outpatient", items=[item("A1", "1", 100000)], admitted_on="2026-01-11"
    )
    chronic = settlement("S2", kind="chronic", items=[item("A1", "1", 1000000)])
    out, chron, inp = priced(
        outpatient, chronic, inpatient("S3", 1000000), pricer=_with_record(pricer, "A")
    )
    # Outpatient is in neither block's kinds: no tiers, no burden, no class despite the record.
    assert out["fund_pay_fen"] == 48000  # 60 % of 100,000 - 20,000
    assert tiers_of(out) == (0, 0, 48000, 52000, None)
    # Chronic: counted for serious illness (287,500, below the threshold), but assistance is
    # for inpatient settlements only.
    assert chron["fund_pay_fen"] == 712500  # 75 % of 1,000,000 - 50,000
    assert tiers_of(chron) == (0, 0, 712500, 287500, None)
    # Inpatient: burden 287,500 -> 539,500: 239,500 above the threshold at 50 % = 119,750;
    # assistance A on 252,000 - 119,750 = 132,250: 119,025.
    assert tiers_of(inp) == (119750, 119025, 748000 + 119750 + 119025, 13225, "A")
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(539500, 119750, 119025)


def _with_record(pricer: Pricer, class_: str, **fields) -> Pricer:
    result = pricer.process(orjson.dumps(assistance(f"AS{class_}", class_, **fields)))
    assert result.model_dump() == {
        "line": None,
        "source": None,
        "status": "registered",
        "assistance_id": f"AS{class_}",
    }
    return pricer


# ---------------------------------------------------------------------------------------------
# Medical assistance


@pytest.mark.parametrize("order", [("B", "A"), ("A", "B")])
def test_class_a_wins_over_b_when_both_cover(order):
    pricer = Pricer(tier_refdata())
    for class_ in order:
        _with_record(pricer, class_)
    [result] = priced(inpatient("S1", 2000000), pricer=pricer)
    # isp 402,000, serious illness 51,000: 90 % of the 351,000 left.
    assert tiers_of(result) == (51000, 315900, 1598000 + 51000 + 315900, 35100, "A")


def test_class_b_alone():
    pricer = _with_record(Pricer(tier_refdata()), "B")
    [result] = priced(inpatient("S1", 2000000), pricer=pricer)
    assert tiers_of(result) == (51000, 210600, 1598000 + 51000 + 210600, 140400, "B")


def test_assistance_annual_cap():
    pricer = _with_record(Pricer(tier_refdata()), "A")
    results = priced(
        inpatient("S1", 2000000), inpatient("S2", 2000000), inpatient("S3", 2000000), pricer=pricer
    )
    # S1: 90 % of 351,000. S2: burden 402,000 -> 804,000, serious illness 398,000 x 50 % +
    # 4,000 x 60 % = 201,400; 90 % of 200,600 = 180,540. S3: serious illness 402,000 x 60 % =
    # 241,200; 90 % of 160,800 = 144,720, but 500,000 - 315,900 - 180,540 = 3,560 is left.
    assert [r["critical_pay_fen"] for r in results] == [51000, 201400, 241200]
    assert [r["assistance_pay_fen"] for r in results] == [315900, 180540, 3560]
    assert results[2]["assistance_class"] == "A"  # it applied, though the cap took it all
    assert pricer.book.tier_accumulator("P1", 2026).assistance_paid == 500000


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "covers"),
    [
        ("2025-01-01", "2025-12-31", False),  # expired before admission
        ("2026-01-11", None, False),  # not yet valid
        ("2025-01-01", "2026-01-10", True),  # valid_to is the admission day
        ("2026-01-10", "2026-01-10", True),
        ("2025-01-01", None, True),  # open-ended
    ],
)
def test_record_dates_against_admission(valid_from, valid_to, covers):
    pricer = _with_record(Pricer(tier_refdata()), "A", valid_from=valid_from, valid_to=valid_to)
    [result] = priced(inpatient("S1", 2000000, settled_at="2026-03-01T10:00:00+08:00"),
                      pricer=pricer)
    assert result["assistance_class"] == ("A" if covers else None)
    assert result["assistance_pay_fen"] == (315900 if covers else 0)


@pytest.mark.parametrize(
    ("home_region", "covers"),
    [("110100", False), ("110000", False), ("230000", True), ("230200", True)],
)
def test_record_of_another_province_does_not_cover(home_region, covers):
    pricer = _with_record(Pricer(tier_refdata()), "A", home_region=home_region)
    [result] = priced(inpatient("S1", 2000000), pricer=pricer)
    assert result["assistance_class"] == ("A" if covers else None)


def test_record_of_another_person_does_not_cover():
    pricer = _with_record(Pricer(tier_refdata()), "A", person_id="P2")
    [result] = priced(inpatient("S1", 2000000), pricer=pricer)
    assert result["assistance_class"] is None


def test_records_are_not_deduplicated():
    pricer = Pricer(tier_refdata())
    record = orjson.dumps(assistance("AS1", "B"))
    assert [pricer.process(record).status for _ in range(2)] == ["registered", "registered"]
    assert len(pricer.book.assistance_of("P1")) == 2


def test_accumulators_are_per_person_and_year_whatever_the_scheme_or_home_region():
    data = tier_refdata(
        tier_policy(), tier_policy(scheme="resident"), tier_policy(region="230200"),
        tier_policy(year=2027),
    )
    data.add_catalog(Catalog.model_validate({**CATALOG, "year": 2027}))
    pricer = Pricer(data)
    results = priced(
        inpatient("S1", 1000000),
        inpatient("S2", 1000000, scheme="resident"),
        inpatient("S3", 1000000, home_region="230200", settled_at="2026-02-05T10:00:00+08:00"),
        inpatient("S4", 1000000, settled_at="2027-01-05T10:00:00+08:00"),
        pricer=pricer,
    )
    # S2 is P1's second settlement of 2026 whatever the scheme: burden 252,000 -> 504,000;
    # S3 the third, whatever the home region: 504,000 -> 756,000, 252,000 x 50 %.
    # S4 is the first of 2027 (the year of settled_at): below the threshold again.
    assert [r["critical_pay_fen"] for r in results] == [0, 102000, 126000, 0]
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(756000, 228000, 0)
    assert pricer.book.tier_accumulator("P1", 2027) == TierAccumulator(252000, 0, 0)


# ---------------------------------------------------------------------------------------------
# Reversals


def test_reversal_restores_every_accumulator():
    pricer = _with_record(Pricer(tier_refdata()), "A")
    first, back, again = priced(
        inpatient("S1", 2000000), reversal("R1", "S1"), inpatient("S2", 2000000), pricer=pricer
    )
    assert tiers_of(first) == (51000, 315900, 1964900, 35100, "A")
    assert back["status"] == "reversed"
    assert (back["critical_pay_fen"], back["assistance_pay_fen"], back["due_fen"]) == (
        -51000,
        -315900,
        -1964900,
    )
    assert back["personal_pay_fen"] == -35100 == back["total_fen"] - back["due_fen"]
    assert "assistance_class" not in back
    # S2 is priced as if S1 had never counted.
    assert tiers_of(again) == tiers_of(first)
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(402000, 51000, 315900)


def test_reversal_takes_back_isp_only_when_it_was_counted():
    pricer = Pricer(tier_refdata())
    outpatient = settlement("S2", kind="outpatient", items=[item("A1", "1", 100000)])
    priced(inpatient("S1", 2000000), outpatient, reversal("R2", "S2"), pricer=pricer)
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(402000, 51000, 0)
    priced(reversal("R1", "S1"), pricer=pricer)
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(0, 0, 0)


def test_reversal_never_takes_an_accumulator_below_zero():
    pricer = _with_record(Pricer(tier_refdata()), "A")
    priced(inpatient("S1", 2000000), pricer=pricer)
    pricer.book.tier_accumulators[("P1", 2026)] = TierAccumulator(1000, 1000, 1000)
    priced(reversal("R1", "S1"), pricer=pricer)
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(0, 0, 0)


def test_rejected_settlements_change_no_tier_accumulator():
    pricer = Pricer(tier_refdata())
    [result] = priced(inpatient("S1", 2000000, hospital_region="230105"), pricer=pricer)
    assert result["reasons"] == ["NOT_CROSS_PROVINCE"]
    assert pricer.book.tier_accumulators == {}


# ---------------------------------------------------------------------------------------------
# Which results carry the tier fields


def test_reference_data_without_tiers_prints_results_as_before():
    pricer = Pricer(refdata())
    [result, back] = priced(inpatient("S1", 2000000), reversal("R1", "S1"), pricer=pricer)
    for name in ("critical_pay_fen", "assistance_pay_fen", "due_fen", "assistance_class"):
        assert name not in result and name not in back
    assert result["personal_pay_fen"] == 2000000 - 1598000
    # An assistance record still registers; it pays nothing without a block.
    assert pricer.process(orjson.dumps(assistance())).status == "registered"
    [later] = priced(inpatient("S2", 2000000), pricer=pricer)
    assert "due_fen" not in later
    assert pricer.book.tier_accumulators == {}


def test_a_policy_without_blocks_among_tier_policies_prints_zero_tiers():
    other = tier_policy(region="110000")  # Beijing's fund has both blocks
    plain = tier_policy(critical=None, assistance=None)  # Heilongjiang's has neither
    pricer = _with_record(Pricer(tier_refdata(other, plain)), "A")
    [result] = priced(inpatient("S1", 2000000), pricer=pricer)
    assert tiers_of(result) == (0, 0, 1598000, 402000, None)
    assert pricer.book.tier_accumulators == {}


# ---------------------------------------------------------------------------------------------
# Clearing on due_fen


def test_obligations_sum_the_tiers_and_net_on_due():
    results = [
        {"status": "priced", "settlement_id": "S1", "payer": "230000", "payee": "110000",
         "total_fen": 1000, "fund_pay_fen": 500, "critical_pay_fen": 100,
         "assistance_pay_fen": 50, "due_fen": 650, "personal_pay_fen": 350},
        {"status": "reversed", "reversal_id": "R1", "settlement_id": "S0", "payer": "230000",
         "payee": "110000", "total_fen": -100, "fund_pay_fen": -40, "critical_pay_fen": -10,
         "assistance_pay_fen": 0, "due_fen": -50, "personal_pay_fen": -50},
        {"status": "priced", "settlement_id": "S2", "payer": "110000", "payee": "310000",
         "total_fen": 300, "fund_pay_fen": 200, "critical_pay_fen": 0,
         "assistance_pay_fen": 30, "due_fen": 230, "personal_pay_fen": 70},
    ]
    statement = build_statement("2026-01", results)
    assert statement["obligations"] == [
        {"payer": "110000", "payee": "310000", "settlements": 1, "reversals": 0,
         "total_fen": 300, "fund_pay_fen": 200, "critical_pay_fen": 0,
         "assistance_pay_fen": 30, "due_fen": 230, "personal_pay_fen": 70,
         "digest": digest(["S|S2|230"])},
        {"payer": "230000", "payee": "110000", "settlements": 1, "reversals": 1,
         "total_fen": 900, "fund_pay_fen": 460, "critical_pay_fen": 90,
         "assistance_pay_fen": 50, "due_fen": 600, "personal_pay_fen": 300,
         "digest": digest(["S|S1|650", "R|R1|-50"])},
    ]
    assert statement["net_positions"] == {"110000": 600 - 230, "230000": -600, "310000": 230}
    assert statement["transfers"] == [
        {"from": "230000", "to": "110000", "amount_fen": 370},
        {"from": "230000", "to": "310000", "amount_fen": 230},
    ]


def test_statement_without_tier_fields_is_as_before():
    results = [
        {"status": "priced", "settlement_id": "S1", "payer": "230000", "payee": "110000",
         "total_fen": 1000, "fund_pay_fen": 500, "personal_pay_fen": 500},
    ]
    [ob] = build_statement("2026-01", results)["obligations"]
    assert set(ob) == {"payer", "payee", "settlements", "reversals", "total_fen",
                       "fund_pay_fen", "personal_pay_fen", "digest"}
    assert ob["digest"] == digest(["S|S1|500"])


# ---------------------------------------------------------------------------------------------
# Policy blocks: validation


def policy_error(**blocks) -> str:
    raw = orjson.dumps(tier_policy(**blocks))
    with pytest.raises(RefDataError) as caught:
        parse_document(raw, "p.json")
    return str(caught.value)


@pytest.mark.parametrize(
    ("blocks", "field"),
    [
        ({"critical": {**CRITICAL, "kinds": []}}, "critical.kinds"),
        ({"critical": {**CRITICAL, "kinds": ["inpatient", "inpatient"]}}, "distinct"),
        ({"critical": {**CRITICAL, "kinds": ["dental"]}}, "critical.kinds.0"),
        ({"critical": {**CRITICAL, "annual_threshold_fen": -1}}, "annual_threshold_fen"),
        ({"critical": {**CRITICAL, "annual_cap_fen": -1}}, "critical.annual_cap_fen"),
        ({"critical": {k: v for k, v in CRITICAL.items() if k != "annual_cap_fen"}},
         "critical.annual_cap_fen"),
        ({"critical": {**CRITICAL, "bands": []}}, "critical.bands"),
        ({"critical": {**CRITICAL, "bands": [{"upto_fen": 5, "ratio_bp": 5000}]}}, "null"),
        ({"critical": {**CRITICAL, "bands": [{"upto_fen": 5, "ratio_bp": 5000},
                                              {"upto_fen": 5, "ratio_bp": 5000},
                                              {"upto_fen": None, "ratio_bp": 5000}]}},
         "strictly rising"),
        ({"critical": {**CRITICAL, "bands": [{"upto_fen": None, "ratio_bp": 10001}]}},
         "ratio_bp"),
        ({"critical": {**CRITICAL, "bands": [{"upto_fen": None,
                                              "ratio_bp": {"1": 1, "2": 1, "3": 1}}]}},
         "ratio_bp"),
        ({"critical": {**CRITICAL, "extra": 1}}, "critical.extra"),
        ({"assistance": {**ASSISTANCE, "kinds": []}}, "assistance.kinds"),
        ({"assistance": {**ASSISTANCE, "kinds": ["chronic", "chronic"]}}, "distinct"),
        ({"assistance": {**ASSISTANCE, "ratio_bp": {"A": 9000}}}, "assistance.ratio_bp.B"),
        ({"assistance": {**ASSISTANCE, "ratio_bp": {"A": 1, "B": 1, "C": 1}}},
         "assistance.ratio_bp.C"),
        ({"assistance": {**ASSISTANCE, "ratio_bp": {"A": 10001, "B": 1}}},
         "assistance.ratio_bp.A"),
        ({"assistance": {**ASSISTANCE, "ratio_bp": 9000}}, "assistance.ratio_bp"),
        ({"assistance": {**ASSISTANCE, "annual_cap_fen": None}}, "assistance.annual_cap_fen"),
        ({"assistance": {**ASSISTANCE, "annual_cap_fen": -5}}, "assistance.annual_cap_fen"),
        ({"assistance": {**ASSISTANCE, "annual_cap_fen": 5.0}}, "assistance.annual_cap_fen"),
    ],
)
def test_policy_blocks_are_validated(blocks, field):
    error = policy_error(**blocks)
    assert error.startswith("p.json: ")
    assert field in error, error


@pytest.mark.parametrize("left_out", [("critical",), ("assistance",), ("critical", "assistance")])
def test_policy_blocks_are_optional_absent_or_null(left_out):
    absent = tier_policy(**dict.fromkeys(left_out))
    null = {**tier_policy(), **dict.fromkeys(left_out)}
    for document in (absent, null):
        policy = parse_document(orjson.dumps(document), "p.json")
        assert all(getattr(policy, name) is None for name in left_out)
        assert policy.has_tiers is (len(left_out) == 1)
