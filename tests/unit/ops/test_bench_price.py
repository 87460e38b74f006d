"""`clearing bench price`: every figure it reports is there, measured, and the targets are the
hot-path issue's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_bench_price_reports_its_figures_and_the_targets(tmp_path: Path) -> None:
    out = tmp_path / "bench-price.json"
    done = subprocess.run(
        [sys.executable, "-m", "clearing.cli", "bench", "price", "--events", "300", "--rounds",
         "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    figures = json.loads(out.read_text())
    assert figures["events"] == 300
    assert figures["rounds"] == 2
    rate = figures["in_process_events_per_s"]
    assert 0 < rate["min"] <= rate["median"] <= rate["max"]
    assert figures["command_events_per_s"] > 0
    assert figures["mix"]["settlement"] > 0
    assert figures["target_in_process_events_per_s"] == 40_000
    assert figures["target_command_events_per_s"] == 25_000
    assert "40,000 events/s in-process, 25,000 for the whole command" in done.stdout
