"""Two writers racing on the same keys while an operator closes the period: every result is
recorded exactly once, none lands in the closed period after its close, and the books agree."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from support.ledger import priced

from clearing.ledger import periods
from clearing.ledger.store import Ledger
from clearing.store.schema import results

BATCHES = 15
PER_BATCH = 8


def batch(number: int) -> list[dict]:
    payers = ("410000", "650000", "310000")
    return [
        priced(f"S{number}-{j}", payer=payers[j % 3], payee="110000", fund=100 + j)
        for j in range(PER_BATCH)
    ]


def test_racing_writers_and_a_close(db_url):
    with Ledger(db_url) as first, Ledger(db_url) as second:
        failures: list[BaseException] = []
        half_done = threading.Event()

        def write(ledger: Ledger) -> None:
            try:
                for number in range(BATCHES):
                    ledger.record_results(batch(number))  # both writers send the same keys
                    if number == BATCHES // 2:
                        half_done.set()
            except BaseException as exc:  # reported below, so the test cannot pass silently
                failures.append(exc)

        def close() -> None:
            try:
                half_done.wait(timeout=60)
                first.close_period("2026-01")
            except BaseException as exc:
                failures.append(exc)

        threads = [
            threading.Thread(target=write, args=(first,)),
            threading.Thread(target=write, args=(second,)),
            threading.Thread(target=close),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert failures == []

        with first.transaction() as conn:
            counts = dict(
                conn.execute(
                    select(results.c.clearing_period, func.count()).group_by(
                        results.c.clearing_period
                    )
                ).all()
            )
            periods.check_totals(conn, "2026-01")
            periods.check_totals(conn, "2026-02")
        assert sum(counts.values()) == BATCHES * PER_BATCH  # each key exactly once
        assert counts["2026-01"] >= (BATCHES // 2 + 1) * PER_BATCH
        assert first.period_status("2026-01")[0].state == "closed"
        if "2026-02" in counts:
            assert first.period_status("2026-02")[0].late_results == counts["2026-02"]
        issued = first.issue_period("2026-01")
        assert sum(o["settlements"] for o in issued.statement["obligations"]) == counts["2026-01"]
