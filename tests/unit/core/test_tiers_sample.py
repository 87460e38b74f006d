"""The one-stop settlement sample bundle (`cases/tiers/`) through `clearing price` and
`clearing clear`, exactly as the user runs them: every line, every field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import paths

from clearing.core.netting import check_transfers

CASES = paths.CASES / "tiers"
PERIOD = "2026-11"


def clearing(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clearing.cli", *args], capture_output=True, check=False
    )


def expected_results() -> list[dict]:
    return [json.loads(line) for line in (CASES / "priced.jsonl").read_text().splitlines()]


def fields_of(raw: bytes) -> set[str]:
    """The field names of an event line, its items' included (none when it is not JSON)."""
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        return set()
    if not isinstance(event, dict):
        return set()
    items = event.get("items") if isinstance(event.get("items"), list) else []
    return set(event) | {key for i in items if isinstance(i, dict) for key in i}


@pytest.fixture(scope="module")
def priced(tmp_path_factory) -> Path:
    run = clearing("price", "--refdata", str(CASES / "refdata"), str(CASES / "events.jsonl"))
    assert run.returncode == 0, run.stderr.decode()
    path = tmp_path_factory.mktemp("tiers") / "priced.jsonl"
    path.write_bytes(run.stdout)
    return path


def test_every_result_matches_the_expected_line(priced):
    got = [json.loads(line) for line in priced.read_text().splitlines()]
    expected = expected_results()
    events = (CASES / "events.jsonl").read_bytes().split(b"\n")
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        if theirs["status"] == "invalid":
            # The wording of an error is free; it must name the problem's field.
            assert ours["status"] == "invalid", (theirs, ours)
            assert ours["line"] == theirs["line"]
            assert ours["error"]
            named = theirs["error"].split()[0]
            if named in fields_of(events[theirs["line"] - 1]):
                assert named in ours["error"], (theirs, ours)
        else:
            assert ours == theirs


def test_the_sample_exercises_every_tier(priced):
    """A guard on the sample itself: the comparison above covers each rule of tiers.md."""
    got = [json.loads(line) for line in priced.read_text().splitlines()]
    statuses = {r["status"] for r in got}
    assert {"registered", "priced", "reversed"} <= statuses
    cleared = [r for r in got if r["status"] == "priced"]
    assert any(r["critical_pay_fen"] > 0 for r in cleared)
    assert any(r["assistance_pay_fen"] > 0 for r in cleared)
    assert {r["assistance_class"] for r in cleared} >= {"A", None}
    for r in got:
        if r["status"] in ("priced", "reversed"):
            tiers = r["critical_pay_fen"] + r["assistance_pay_fen"]
            assert r["due_fen"] == r["fund_pay_fen"] + tiers
            assert r["personal_pay_fen"] == r["total_fen"] - r["due_fen"]


def test_statement_matches_the_expected(priced):
    run = clearing("clear", "--period", PERIOD, str(priced))
    assert run.returncode == 0, run.stderr.decode()
    ours = json.loads(run.stdout)
    theirs = json.loads((CASES / f"statement-{PERIOD}.json").read_text())
    assert ours["period"] == theirs["period"]
    assert ours["obligations"] == theirs["obligations"]
    assert ours["net_positions"] == theirs["net_positions"]
    # Transfers are one valid answer: any list that obeys clearing.md is as right.
    assert check_transfers(ours["net_positions"], ours["transfers"]) == []
    assert check_transfers(theirs["net_positions"], theirs["transfers"]) == []


def test_clearing_the_expected_results_gives_the_expected_statement():
    """`clearing clear` on the expected priced.jsonl itself: netting alone, on due_fen."""
    run = clearing("clear", "--period", PERIOD, str(CASES / "priced.jsonl"))
    assert run.returncode == 0, run.stderr.decode()
    ours = json.loads(run.stdout)
    theirs = json.loads((CASES / f"statement-{PERIOD}.json").read_text())
    assert ours["obligations"] == theirs["obligations"]
    assert ours["net_positions"] == theirs["net_positions"]
