"""Properties of one-stop settlement that hold for any input (hypothesis)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import filing, item, refdata, reversal, settlement
from support.tiers import assistance, tier_policy, tier_refdata

from clearing.core.parse import Parsed, Rejection, parse_event
from clearing.core.pricer import Pricer
from clearing.core.tiers import TierAccumulator

KINDS = ["inpatient", "outpatient", "chronic"]
CODES = ["A1", "A2", "B1", "B2", "C1", "ZZ9"]
SLOW = {"suppress_health_check": [HealthCheck.too_slow], "deadline": None}

items_st = st.lists(
    st.builds(
        lambda code, whole, frac, price: item(
            code, f"{whole}.{frac:04d}" if frac else str(whole), price
        ),
        st.sampled_from(CODES),
        st.integers(0, 20),
        st.integers(0, 9999),
        st.integers(0, 3_000_000),
    ).filter(lambda i: i["quantity"] not in ("0", "0.0000")),
    min_size=1,
    max_size=6,
)

visit_st = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(KINDS),
        "hospital_level": st.integers(1, 3),
        "emergency": st.booleans(),
        "admitted_on": st.dates(date(2025, 12, 1), date(2026, 2, 28)).map(str),
        "items": items_st,
    }
)


@st.composite
def critical_st(draw):
    uppers = sorted(draw(st.sets(st.integers(1, 5_000_000), max_size=3)))
    ratios = draw(st.lists(st.integers(0, 10000), min_size=len(uppers) + 1,
                           max_size=len(uppers) + 1))
    return {
        "kinds": draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True)),
        "annual_threshold_fen": draw(st.integers(0, 2_000_000)),
        "bands": [{"upto_fen": u, "ratio_bp": r} for u, r in zip([*uppers, None], ratios,
                                                                  strict=True)],
        "annual_cap_fen": draw(st.none() | st.integers(0, 3_000_000)),
    }


assistance_block_st = st.fixed_dictionaries(
    {
        "kinds": st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
        "ratio_bp": st.fixed_dictionaries(
            {"A": st.integers(0, 10000), "B": st.integers(0, 10000)}
        ),
        "annual_cap_fen": st.integers(0, 2_000_000),
    }
)

record_st = st.builds(
    lambda class_, region, start, days, person: assistance(
        "AS", class_, home_region=region, person_id=person, valid_from=str(start),
        valid_to=None if days is None else str(start + timedelta(days=days)),
    ),
    st.sampled_from(["A", "B"]),
    st.sampled_from(["230100", "230200", "230000", "110100", "410100"]),
    st.dates(date(2025, 10, 1), date(2026, 2, 28)),
    st.none() | st.integers(0, 90),
    st.sampled_from(["P1", "P1", "P2"]),
)

# What happens next: a settlement, an assistance record, or the reversal of a priced one.
step_st = st.one_of(
    visit_st.map(lambda v: ("settle", v)),
    record_st.map(lambda r: ("record", r)),
    st.integers(0, 15).map(lambda i: ("reverse", i)),
)


def isp_of(result: dict) -> int:
    return result["eligible_fen"] - result["fund_pay_fen"]


@settings(max_examples=150, **SLOW)
@given(
    critical=st.none() | critical_st(),
    aid=st.none() | assistance_block_st,
    filed=st.booleans(),
    steps=st.lists(step_st, min_size=1, max_size=16),
)
def test_tiers_add_up_stay_within_their_caps_and_reversals_restore_them(
    critical, aid, filed, steps
):
    policy = tier_policy(critical=critical, assistance=aid)
    other = tier_policy(region="410000")  # so that the tier fields are printed in any case
    pricer = Pricer(tier_refdata(policy, other))
    if filed:
        pricer.process(orjson.dumps(filing()))
    live: dict[str, tuple[int, int, int]] = {}  # settlement -> (counted, critical, assistance)
    priced_ids: list[str] = []
    for n, (what, arg) in enumerate(steps):
        before = pricer.book.tier_accumulator("P1", 2026)
        if what == "record":
            assert pricer.process(orjson.dumps({**arg, "assistance_id": f"AS{n}"})).status == (
                "registered"
            )
            continue
        if what == "reverse":
            if arg >= len(priced_ids):
                continue
            sid = priced_ids[arg]
            result = pricer.process(orjson.dumps(reversal(f"R{n}", sid))).model_dump()
            if sid not in live:
                assert result["reasons"] == ["ALREADY_REVERSED"]
                continue
            counted, critical_pay, assistance_pay = live.pop(sid)
            assert result["critical_pay_fen"] == -critical_pay
            assert result["assistance_pay_fen"] == -assistance_pay
            assert result["personal_pay_fen"] == result["total_fen"] - result["due_fen"]
            assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(
                max(0, before.burden - counted),
                max(0, before.critical_paid - critical_pay),
                max(0, before.assistance_paid - assistance_pay),
            )
            continue

        result = pricer.process(orjson.dumps(settlement(f"S{n}", **arg))).model_dump()
        if result["status"] != "priced":
            assert pricer.book.tier_accumulator("P1", 2026) == before
            continue
        kind = arg["kind"]
        critical_pay = result["critical_pay_fen"]
        assistance_pay = result["assistance_pay_fen"]
        assert result["due_fen"] == result["fund_pay_fen"] + critical_pay + assistance_pay
        assert result["personal_pay_fen"] == result["total_fen"] - result["due_fen"]
        assert 0 <= critical_pay <= isp_of(result)
        assert 0 <= assistance_pay <= isp_of(result) - critical_pay
        assert result["personal_pay_fen"] >= result["self_pay_fen"] + result["pre_self_pay_fen"]
        counted = 0
        if critical is None or kind not in critical["kinds"]:
            assert critical_pay == 0
        else:
            counted = isp_of(result)
            if critical["annual_cap_fen"] is not None:
                assert critical_pay <= max(0, critical["annual_cap_fen"] - before.critical_paid)
        if aid is None or kind not in aid["kinds"]:
            assert result["assistance_class"] is None
        if result["assistance_class"] is None:
            assert assistance_pay == 0
        else:
            assert assistance_pay <= max(0, aid["annual_cap_fen"] - before.assistance_paid)
        assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(
            before.burden + counted,
            before.critical_paid + critical_pay,
            before.assistance_paid + assistance_pay,
        )
        live[f"S{n}"] = (counted, critical_pay, assistance_pay)
        priced_ids.append(f"S{n}")

    # What the accumulators hold is exactly what the settlements not reversed brought.
    assert pricer.book.tier_accumulator("P1", 2026) == TierAccumulator(
        *(sum(parts) for parts in zip((0, 0, 0), *live.values(), strict=False))
    )


@settings(max_examples=60, **SLOW)
@given(
    visits=st.lists(visit_st, min_size=1, max_size=8),
    extra=visit_st,
    at=st.integers(0, 8),
    record=record_st,
)
def test_a_settlement_reversed_at_once_changes_nothing_after_it(visits, extra, at, record):
    """Priced and at once reversed, a settlement leaves every later one as if it never was."""

    def run(with_extra: bool) -> list[dict]:
        pricer = Pricer(tier_refdata())
        pricer.process(orjson.dumps(filing()))
        pricer.process(orjson.dumps(record))
        out = []
        for n, visit in enumerate(visits):
            if with_extra and n == min(at, len(visits) - 1):
                pricer.process(orjson.dumps(settlement("SX", **extra)))
                pricer.process(orjson.dumps(reversal("RX", "SX")))
            out.append(pricer.process(orjson.dumps(settlement(f"S{n}", **visit))).model_dump())
        return out

    assert run(True) == run(False)


@settings(max_examples=100, **SLOW)
@given(visits=st.lists(visit_st, min_size=1, max_size=8), record=record_st)
def test_without_blocks_the_tiers_are_zero_and_due_is_the_fund_pay(visits, record):
    # Heilongjiang's policy has neither block; another province's has both, so fields print.
    with_fields = Pricer(tier_refdata(tier_policy(critical=None, assistance=None),
                                      tier_policy(region="410000")))
    as_before = Pricer(refdata())
    for pricer in (with_fields, as_before):
        pricer.process(orjson.dumps(filing()))
        pricer.process(orjson.dumps(record))
    for n, visit in enumerate(visits):
        event = orjson.dumps(settlement(f"S{n}", **visit))
        ours = with_fields.process(event).model_dump(exclude_none=True)
        old = as_before.process(event).model_dump(exclude_none=True)
        if old["status"] != "priced":
            assert ours == old
            continue
        assert ours["critical_pay_fen"] == ours["assistance_pay_fen"] == 0
        assert ours["due_fen"] == ours["fund_pay_fen"]
        assert ours["assistance_class"] is None
        assert {k: v for k, v in ours.items() if k not in TIER_KEYS} == old
    assert with_fields.book.tier_accumulators == as_before.book.tier_accumulators == {}


TIER_KEYS = {"critical_pay_fen", "assistance_pay_fen", "due_fen", "assistance_class"}


# ---------------------------------------------------------------------------------------------
# Parsing assistance events

ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REGION = re.compile(r"[1-9][0-9]{5}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _not_a_date(value) -> bool:
    if not isinstance(value, str) or not DATE.fullmatch(value):
        return True
    try:
        date.fromisoformat(value)
    except ValueError:
        return True
    return False


json_st = st.one_of(
    # JSON values only: orjson writes an infinite float as null.
    st.none(), st.booleans(), st.integers(-10, 10**7),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=70), st.lists(st.integers(-10, 10), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-10, 10), max_size=2),
)
BAD = {
    "assistance_id": json_st.filter(lambda v: not (isinstance(v, str) and ID.fullmatch(v))),
    "person_id": json_st.filter(lambda v: not (isinstance(v, str) and ID.fullmatch(v))),
    "home_region": json_st.filter(lambda v: not (isinstance(v, str) and REGION.fullmatch(v))),
    "class": json_st.filter(lambda v: v not in ("A", "B")),
    "valid_from": json_st.filter(_not_a_date),
    "valid_to": json_st.filter(lambda v: v is not None and _not_a_date(v)),
    "schema_version": json_st.filter(lambda v: not (type(v) is int and v == 1)),
}


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(BAD)), data=st.data())
def test_malformed_assistance_fields_are_rejected_naming_the_field(field, data):
    value = data.draw(BAD[field])
    result = parse_event(orjson.dumps({**assistance(), field: value}))
    assert isinstance(result, Rejection), value
    assert field in result.error, (field, value, result.error)


@settings(max_examples=100, deadline=None)
@given(field=st.sampled_from(sorted(BAD)), extra=st.text(min_size=1, max_size=10))
def test_missing_and_unknown_assistance_fields_are_named(field, extra):
    event = assistance()
    del event[field]
    result = parse_event(orjson.dumps(event))
    assert isinstance(result, Rejection)
    assert field in result.error
    if extra not in assistance():
        result = parse_event(orjson.dumps({**assistance(), extra: 1}))
        assert isinstance(result, Rejection)
        assert extra in result.error


@settings(max_examples=100, deadline=None)
@given(start=st.dates(date(2000, 1, 1), date(2099, 12, 31)), days=st.integers(-400, 400),
       class_=st.sampled_from(["A", "B"]))
def test_valid_to_may_not_be_before_valid_from(start, days, class_):
    end = start + timedelta(days=days)
    result = parse_event(orjson.dumps(assistance(class_=class_, valid_from=str(start),
                                                 valid_to=str(end))))
    if days < 0:
        assert isinstance(result, Rejection)
        assert "valid_to" in result.error
    else:
        assert isinstance(result, Parsed)
        assert result.event.class_ == class_
