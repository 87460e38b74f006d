"""The public sample bundle through the offline commands, exactly as the user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import CASES

from clearing.core.netting import check_transfers


def clearing(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clearing.cli", *args], input=stdin, capture_output=True, check=False
    )


@pytest.fixture(scope="module")
def priced(tmp_path_factory) -> Path:
    run = clearing("price", "--refdata", str(CASES / "refdata"), str(CASES / "events.jsonl"))
    assert run.returncode == 0, run.stderr.decode()
    path = tmp_path_factory.mktemp("sample") / "priced.jsonl"
    path.write_bytes(run.stdout)
    return path


def test_every_result_matches_the_expected_line(priced):
    got = [json.loads(line) for line in priced.read_text().splitlines()]
    expected = [json.loads(line) for line in (CASES / "priced.jsonl").read_text().splitlines()]
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        if theirs["status"] == "invalid":
            assert ours["status"] == "invalid"
            assert ours["line"] == theirs["line"]
            assert ours["error"]
        else:
            assert ours == theirs


def test_invalid_errors_name_the_field(priced):
    expected = [json.loads(line) for line in (CASES / "priced.jsonl").read_text().splitlines()]
    got = [json.loads(line) for line in priced.read_text().splitlines()]
    for ours, theirs in zip(got, expected, strict=True):
        if theirs["status"] != "invalid":
            continue
        if not theirs["error"].startswith(("not JSON", "unknown")):
            field = theirs["error"].split()[0]
            assert field in ours["error"], (theirs, ours)


def test_statement_matches_the_expected(priced):
    run = clearing("clear", "--period", "2026-01", str(priced))
    assert run.returncode == 0, run.stderr.decode()
    ours = json.loads(run.stdout)
    theirs = json.loads((CASES / "statement-2026-01.json").read_text())
    assert ours["period"] == theirs["period"]
    assert ours["obligations"] == theirs["obligations"]
    assert ours["net_positions"] == theirs["net_positions"]
    assert check_transfers(ours["net_positions"], ours["transfers"]) == []


def test_price_reads_stdin_and_keeps_blank_lines():
    events = (CASES / "events.jsonl").read_bytes().splitlines()[:3]
    stdin = b"\n".join([events[0], b"", events[1], b"{bad", events[2]]) + b"\n"
    run = clearing("price", "--refdata", str(CASES / "refdata"), stdin=stdin)
    assert run.returncode == 0
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["status"] for r in results] == ["filed", "invalid", "filed", "invalid", "filed"]
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5]


def test_bad_refdata_is_a_clear_error(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "x.json").write_text('{"region": "230000", "scheme": "employee"}')
    run = clearing("price", "--refdata", str(tmp_path), stdin=b"")
    assert run.returncode == 2
    assert b"x.json" in run.stderr and b"year" in run.stderr


def test_clear_rejects_a_bad_period(priced):
    run = clearing("clear", "--period", "2026-13", str(priced))
    assert run.returncode == 2
    assert b"YYYY-MM" in run.stderr


def test_two_documents_for_the_same_policy_are_an_error(tmp_path):
    (tmp_path / "policies").mkdir()
    policy = (CASES / "refdata" / "policies" / "110000-employee-2026.json").read_bytes()
    (tmp_path / "policies" / "a.json").write_bytes(policy)
    (tmp_path / "policies" / "b.json").write_bytes(policy)
    run = clearing("price", "--refdata", str(tmp_path), stdin=b"")
    assert run.returncode == 2
    assert b"b.json" in run.stderr and b"a.json" in run.stderr
