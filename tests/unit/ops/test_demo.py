"""The demo's statement summary: the split of what the home provinces owe, by payer; and the
bundle's monitoring flags by rule."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from clearing.core.monitoring import Monitor
from clearing.core.pricer import Pricer
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.demo import (
    RULES,
    PayerSplit,
    describe,
    describe_flags,
    describe_split,
    flag_counts,
)
from clearing.ops.flags import flag_lines
from clearing.ops.simulate.bundle import generate_bundle


def obligation(payer: str, payee: str, fund: int, **tiers: int) -> dict[str, Any]:
    """An obligation as a statement prints it; the tier fields only when given."""
    total = fund + sum(tiers.values()) + 10_000
    return {
        "payer": payer,
        "payee": payee,
        "settlements": 2,
        "reversals": 0,
        "total_fen": total,
        "fund_pay_fen": fund,
        **tiers,
        "personal_pay_fen": total - tiers.get("due_fen", fund),
        "digest": "0" * 64,
    }


def statement(*obligations: dict[str, Any]) -> dict[str, Any]:
    return {
        "period": "2026-01",
        "obligations": list(obligations),
        "net_positions": {"110000": 100, "410000": -100},
        "transfers": [{"from": "410000", "to": "110000", "amount_fen": 100}],
    }


TIERED = (
    obligation(
        "410000",
        "310000",
        123_456_789,
        critical_pay_fen=2_000_050,
        assistance_pay_fen=30_001,
        due_fen=125_486_840,
    ),
    obligation(
        "230000",
        "460000",
        1_000,
        critical_pay_fen=0,
        assistance_pay_fen=0,
        due_fen=1_000,
    ),
    obligation(
        "340000",
        "320000",
        -5_000,
        critical_pay_fen=-700,
        assistance_pay_fen=-300,
        due_fen=-6_000,
    ),
)


def test_the_split_sums_each_payer_over_the_obligations() -> None:
    split = PayerSplit.of(TIERED)
    assert split == PayerSplit(123_452_789, 1_999_350, 29_701, 125_481_840)
    assert split.due_fen == split.fund_pay_fen + split.critical_pay_fen + split.assistance_pay_fen


def test_without_tiers_the_tiers_are_zero_and_the_fund_pay_is_due() -> None:
    plain = (obligation("410000", "310000", 50_000), obligation("230000", "460000", 7))
    assert PayerSplit.of(plain) == PayerSplit(50_007, 0, 0, 50_007)
    assert PayerSplit.of(()) == PayerSplit(0, 0, 0, 0)


def test_the_split_is_printed_in_yuan_aligned() -> None:
    lines = describe_split(PayerSplit(123_452_789, 1_999_350, 29_701, 125_481_840))
    assert lines[0] == "  owed by the home provinces, by payer:"
    assert [line.split()[-2] for line in lines[1:]] == [
        "1,234,527.89",
        "19,993.50",
        "297.01",
        "1,254,818.40",
    ]
    assert lines[1].lstrip().startswith("basic fund")
    assert lines[2].lstrip().startswith("serious-illness insurance")
    assert lines[3].lstrip().startswith("medical assistance")
    assert lines[4].lstrip().startswith("total due")
    assert len({len(line) for line in lines[1:]}) == 1  # the amounts end in one column
    assert all(line.endswith(" yuan") for line in lines[1:])


def test_the_statement_summary_carries_the_split() -> None:
    text = describe(statement(*TIERED), top=2)
    split = describe_split(PayerSplit.of(TIERED))
    start = text.index(split[0])
    assert text[start : start + len(split)] == split
    assert any(line.startswith("Top 2 province pairs by amount due") for line in text)
    # The pairs are ranked by what is due, the tiers included.
    assert "1,254,868.40 yuan" in text[text.index(split[-1]) + 3]
    assert text[-1].endswith("gross payments of 1,254,878.40 yuan.")


def test_a_statement_without_tiers_is_summarised_as_before() -> None:
    text = describe(statement(obligation("410000", "310000", 50_000)))
    split = describe_split(PayerSplit(50_000, 0, 0, 50_000))
    assert text[text.index(split[0]) : text.index(split[0]) + len(split)] == split
    assert split[2].split()[-2] == "0.00" and split[4].split()[-2] == "500.00"


def test_the_flags_are_printed_by_rule_every_rule_listed() -> None:
    lines = describe_flags({"QUICK_READMISSION": 1_234, "HIGH_REVERSAL_RATE": 2})
    assert lines[0].startswith("Fund-safety monitoring: 1,236 flags")
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert list(rows) == list(RULES)
    assert rows == {
        "OVERLAPPING_STAYS": "0",
        "OUTPATIENT_DURING_STAY": "0",
        "QUICK_READMISSION": "1,234",
        "DUPLICATE_BILLING": "0",
        "HIGH_REVERSAL_RATE": "2",
    }
    assert len({len(line) for line in lines[1:]}) == 1  # the counts end in one column


def test_the_flag_counts_are_those_of_clearing_flags(tmp_path: Path) -> None:
    generate_bundle(tmp_path, 3000, seed=5, period="2026-02")
    counts = flag_counts(tmp_path / "refdata", tmp_path / "events.jsonl")
    pricer, monitor = Pricer(load_refdata(tmp_path / "refdata")), Monitor()
    expected = Counter(
        orjson.loads(line)["rule"]
        for line in flag_lines(pricer, monitor, event_lines(tmp_path / "events.jsonl"))
    )
    assert counts == expected and sum(counts.values()) > 0
    assert describe_flags(counts)[0].startswith(f"Fund-safety monitoring: {sum(counts.values()):,}")


def test_the_served_demo_hands_over_a_viewer_token_in_a_private_file(tmp_path: Path) -> None:
    import os
    import stat

    from clearing import auth
    from clearing.ops.demo import viewer_token_file
    from clearing.store.db import make_engine

    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    stale = tmp_path / "viewer.token"
    stale.write_text("left by an older run\n")
    os.chmod(stale, 0o644)
    umask = os.umask(0o077)  # as the demo runs (`private_state`)
    try:
        first = viewer_token_file(db, tmp_path).read_text().strip()
        path = viewer_token_file(db, tmp_path)  # served again: a new token, the old one gone
    finally:
        os.umask(umask)
    token = path.read_text().strip()
    assert path == stale and stat.S_IMODE(path.stat().st_mode) == 0o600
    engine = make_engine(db)
    try:
        assert auth.authenticate(engine, token) == auth.Principal("viewer", "demo")
        assert auth.authenticate(engine, first) is None
    finally:
        engine.dispose()
