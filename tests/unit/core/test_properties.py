"""Properties of pricing and netting that hold for any input (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import filing, item, raw, refdata, reversal, settlement

from clearing.core.netting import build_statement, check_transfers, net_positions
from clearing.core.pricer import Pricer
from clearing.core.pricing import Accumulator

CODES = ["A1", "A2", "B1", "B2", "C1", "ZZ9"]

items_st = st.lists(
    st.builds(
        lambda code, whole, frac, price: item(code, f"{whole}.{frac:04d}" if frac else str(whole),
                                              price),
        st.sampled_from(CODES),
        st.integers(0, 50),
        st.integers(0, 9999),
        st.integers(0, 2_000_000),
    ).filter(lambda i: i["quantity"] not in ("0", "0.0000")),
    min_size=1,
    max_size=8,
)

visit_st = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["inpatient", "outpatient", "chronic"]),
        "hospital_level": st.integers(1, 3),
        "emergency": st.booleans(),
        "items": items_st,
    }
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(visits=st.lists(visit_st, min_size=1, max_size=12), filed=st.booleans(),
       reverse=st.lists(st.integers(0, 11), max_size=4))
def test_priced_amounts_add_up_and_respect_the_cap(visits, filed, reverse):
    pricer = Pricer(refdata())
    if filed:
        pricer.process(raw(filing()))
    paid: dict[str, int] = {}
    priced_ids = []
    for n, visit in enumerate(visits):
        kind = visit["kind"]
        before = pricer.book.accumulator("P1", 2026, kind)
        result = pricer.process(raw(settlement(f"S{n}", **visit))).model_dump()
        if result["status"] != "priced":
            assert result["status"] == "rejected"
            assert pricer.book.accumulator("P1", 2026, kind) == before
            continue
        priced_ids.append(f"S{n}")
        total = result["total_fen"]
        assert total == sum(i["amount_fen"] for i in visit["items"])
        assert total == result["self_pay_fen"] + result["pre_self_pay_fen"] + result["eligible_fen"]
        assert result["personal_pay_fen"] == total - result["fund_pay_fen"]
        assert 0 <= result["deductible_fen"] <= result["eligible_fen"]
        assert 0 <= result["fund_pay_fen"] <= result["eligible_fen"] - result["deductible_fen"]
        cap = getattr(pricer.refdata.policies[("230000", "employee", 2026)], kind).annual_cap_fen
        assert result["fund_pay_fen"] <= max(0, cap - before.fund_paid)
        paid[kind] = paid.get(kind, 0) + result["fund_pay_fen"]
        assert pricer.book.accumulator("P1", 2026, kind).fund_paid == paid[kind]

    for attempt, index in enumerate(reverse):
        if index >= len(priced_ids):
            continue
        sid = priced_ids[index]
        entry = pricer.book.priced_entry(sid)
        before = pricer.book.accumulator("P1", 2026, entry.kind)
        result = pricer.process(raw(reversal(f"R{attempt}", sid))).model_dump()
        if entry.reversed:
            assert result["reasons"] == ["ALREADY_REVERSED"]
            continue
        assert result["status"] == "reversed"
        after = pricer.book.accumulator("P1", 2026, entry.kind)
        annual = entry.kind != "inpatient"
        assert after == Accumulator(
            max(0, before.fund_paid - entry.result.fund_pay_fen),
            max(0, before.deductible_used - (entry.result.deductible_fen if annual else 0)),
        )


PROVINCES = ["110000", "310000", "320000", "410000", "510000", "650000"]

result_st = st.builds(
    lambda status, n, payer, payee, fund, personal: {
        "status": status,
        "settlement_id": f"S{n}",
        "reversal_id": f"R{n}",
        "payer": payer,
        "payee": payee,
        "fund_pay_fen": fund if status == "priced" else -fund,
        "personal_pay_fen": personal if status == "priced" else -personal,
        "total_fen": (fund + personal) if status == "priced" else -(fund + personal),
    },
    st.sampled_from(["priced", "priced", "reversed", "rejected"]),
    st.integers(0, 10**6),
    st.sampled_from(PROVINCES),
    st.sampled_from(PROVINCES),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)


@settings(max_examples=300, deadline=None)
@given(results=st.lists(result_st, max_size=60))
def test_netting_positions_sum_to_zero_and_transfers_settle_them(results):
    statement = build_statement("2026-01", results)
    positions = statement["net_positions"]
    assert sum(positions.values()) == 0
    assert positions == net_positions(statement["obligations"])
    assert check_transfers(positions, statement["transfers"]) == []
    cleared = [r for r in results if r["status"] in ("priced", "reversed")]
    assert sum(o["settlements"] + o["reversals"] for o in statement["obligations"]) == len(cleared)
    pairs = [(o["payer"], o["payee"]) for o in statement["obligations"]]
    assert pairs == sorted(set(pairs))


@given(results=st.lists(result_st, min_size=1, max_size=30), data=st.data())
def test_digest_does_not_depend_on_order(results, data):
    shuffled = data.draw(st.permutations(results))
    assert build_statement("2026-01", results) == build_statement("2026-01", shuffled)
