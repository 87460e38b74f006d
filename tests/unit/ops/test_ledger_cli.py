"""The ledger's commands end to end, as the README's offline cycle uses them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from support.ledger import priced, sample_statement
from support.paths import CASES, ROOT

from clearing.cli import main
from clearing.core.netting import check_transfers
from clearing.store.db import head_revision


def run(capsys, command: str, *more: str) -> tuple[int, str, str]:
    """Runs `clearing COMMAND MORE...` in-process: (exit status, stdout, stderr)."""
    status = main([*command.split(), *more])
    out, err = capsys.readouterr()
    return status, out, err


def test_offline_cycle(db_url, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)  # no broker: issue only
    db = ("--db", db_url)
    status, out, _ = run(capsys, "ledger-load --results", str(CASES / "priced.jsonl"), *db)
    assert status == 0
    counts = json.loads(out)
    assert (counts["results"], counts["recorded"], counts["ignored"]) == (522, 347, 175)
    status, out, _ = run(capsys, "import-results --results", str(CASES / "priced.jsonl"), *db)
    assert json.loads(out)["replayed"] == 347

    status, _, err = run(capsys, "period issue 2026-01", *db)
    assert status == 1 and "close it before issuing" in err
    status, out, _ = run(capsys, "period close 2026-01", *db)
    assert (status, out.strip()) == (0, "closed 2026-01: 33 results (0 late)")
    status, out, _ = run(capsys, "period close 2026-01", *db)
    assert (status, out.strip()) == (0, "2026-01 is already closed; nothing changed")
    status, out, err = run(capsys, "period issue 2026-01", *db)
    assert status == 0 and "issued sha256" in err
    assert "not published: no broker configured" in err
    issued = json.loads(out)

    status, out, _ = run(capsys, "statement --period 2026-01", *db)
    statement = json.loads(out)
    assert statement == issued
    expected = sample_statement("2026-01")
    assert statement["obligations"] == expected["obligations"]
    assert statement["net_positions"] == expected["net_positions"]
    assert check_transfers(statement["net_positions"], statement["transfers"]) == []
    status, out, _ = run(capsys, "statement --period 2026-01 --format table", *db)
    assert "21,120.10" in out  # 150000 -> 420000: 2112010 fen
    assert "-39,070.46" in out  # 410000's net position

    status, out, _ = run(capsys, "period status", *db)
    assert status == 0 and "2026-01  issued" in out
    status, out, _ = run(capsys, "period status 2026-02 --format json", *db)
    assert json.loads(out)[0]["state"] == "open"

    status, out, _ = run(capsys, "reconcile confirm --period 2026-01 --province 410000", *db)
    assert json.loads(out)["obligations"] == 3
    lines = tmp_path / "lines.txt"
    lines.write_text("S|S-NOT-OURS|5\n", encoding="utf-8")
    dispute = "reconcile dispute --period 2026-01 --province 150000 --payer 150000 --payee 420000"
    status, out, _ = run(
        capsys, dispute, "--digest", "0" * 64, "--fund-pay-fen", "5", "--lines", str(lines), *db
    )
    answer = json.loads(out)
    assert status == 0 and answer["missing_here"] == ["S|S-NOT-OURS"]
    assert len(answer["missing_there"]) == 3
    lines.write_text("not a line\n", encoding="utf-8")
    status, _, err = run(
        capsys, dispute, "--digest", "x", "--fund-pay-fen", "5", "--lines", str(lines), *db
    )
    assert status == 2 and "not digest lines" in err

    status, out, _ = run(capsys, "prepayment deposit --province 410000 --amount-fen 123456789", *db)
    assert out.strip() == "410000: prepayment 1,234,567.89 yuan (123456789 fen)"
    status, out, _ = run(capsys, "prepayment show", *db)
    assert "1,234,567.89" in out
    status, out, _ = run(capsys, "prepayment alert-share --bp 8000", *db)
    assert out.strip() == "alert share: 8000 bp (80.00 %)"
    status, out, _ = run(capsys, "prepayment alerts --limit 2", *db)
    assert len(out.splitlines()) == 2

    status, out, _ = run(capsys, "db upgrade", *db)
    assert status == 0 and f"revision {head_revision()}" in out
    status, out, _ = run(capsys, "db current", *db)
    assert "up to date" in out


def test_hospitals_batch(db_url, capsys, tmp_path):
    results = tmp_path / "results.jsonl"
    rows = [
        priced("S1", fund=100, hospital_id="HA", settled_at="2026-01-10T10:00:00+08:00"),
        priced("S2", fund=200, hospital_id="HA", settled_at="2026-01-10T11:00:00+08:00"),
    ]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert run(capsys, "ledger-load --results", str(results), "--db", db_url)[0] == 0
    status, out, _ = run(capsys, "reconcile hospitals --day 2026-01-10 --db", db_url)
    (line,) = out.splitlines()
    assert json.loads(line)["fund_pay_fen"] == 300 and json.loads(line)["count"] == 2
    status, out, _ = run(capsys, "reconcile hospitals --day 2026-01-10 --format table --db", db_url)
    assert "HA" in out and "3.00" in out


def test_conflicting_results_file_is_refused(db_url, capsys, tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text(
        json.dumps(priced("S1", fund=1)) + "\n" + json.dumps(priced("S1", fund=2)) + "\n",
        encoding="utf-8",
    )
    status, _, err = run(capsys, "ledger-load --results", str(results), "--db", db_url)
    assert status == 1 and "S:S1: already recorded with other content" in err


def test_unreachable_database_is_a_clear_error(capsys):
    url = "postgresql://nobody:secret@127.0.0.1:9/nothing?connect_timeout=2"
    status, _, err = run(capsys, "period status --db", url)
    assert status == 1 and "127.0.0.1:9" in err and "secret" not in err


@pytest.mark.parametrize("command", ["url", "status"])
def test_postgres_script_without_a_cluster(tmp_path, command):
    env = {**os.environ, "CLEARING_HOME": str(tmp_path), "PGPORT": "5999"}
    script = str(ROOT / "deploy" / "postgres.sh")
    done = subprocess.run(
        [script, command], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    if command == "url":  # for people: never the password
        assert done.returncode == 0
        assert done.stdout == "postgresql+psycopg://clearing_app:***@127.0.0.1:5999/clearing\n"
    else:
        assert done.returncode == 3 and "not running" in done.stderr
