"""Property: however results are batched and replayed, the ledger's positions and statement are
the netting of the distinct results, and replays change nothing."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.ledger import priced, reversal

from clearing.core.netting import build_statement

PROVINCES = ("110000", "310000", "410000", "440000", "650000")
YEARS = itertools.count(2100)  # each example clears its own periods in the shared database


@st.composite
def histories(draw):
    """(year, results, batches): priced results over three months of a fresh year, some
    reversed later, cut into batches that also replay earlier results."""
    year = next(YEARS)
    results = []
    for index in range(draw(st.integers(1, 25))):
        payer, payee = draw(st.permutations(PROVINCES))[:2]
        results.append(
            priced(
                f"S{year}-{index}",
                payer=payer,
                payee=payee,
                fund=draw(st.integers(0, 10**8)),
                period=f"{year}-0{draw(st.integers(1, 3))}",
                hospital_id=f"H{payee[:2]}{draw(st.integers(1, 3))}",
            )
        )
    for original in draw(st.lists(st.sampled_from(results), unique_by=id)):
        month = draw(st.integers(int(original["period"][-1]), 3))
        rid = "R" + original["settlement_id"][1:]
        results.append(reversal(original, rid, period=f"{year}-0{month}"))
    cuts = sorted(draw(st.sets(st.integers(1, len(results)), max_size=5)))
    batches = [
        results[a:b] + draw(st.lists(st.sampled_from(results[:b]), max_size=3))
        for a, b in itertools.pairwise([0, *cuts, len(results)])
        if a < b
    ]
    return year, results, batches


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_batching_and_replays_do_not_change_the_books(ledger, history):
    year, results, batches = history
    for batch in batches:
        actions = {o.action for o in ledger.record_results(batch)}
        assert actions <= {"recorded", "replayed"}
    for month in (1, 2, 3):
        period = f"{year}-0{month}"
        netted = build_statement(period, [r for r in results if r["period"] == period])
        booked = ledger.running_positions(period)
        assert {p: v for p, v in booked.items() if v} == {
            p: v for p, v in netted["net_positions"].items() if v
        }
    period = f"{year}-01"
    ledger.close_period(period, force=True)
    expected = build_statement(period, [r for r in results if r["period"] == period])
    assert ledger.issue_period(period).statement == expected
