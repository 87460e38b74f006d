"""`clearing bench stream` on a few hundred events: it runs and reports every figure (the
figures themselves are not judged here; speed is measured by the benchmark, not by tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clearing.ops.workers import free_port

pytestmark = pytest.mark.kafka


def test_bench_stream_reports_every_figure(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    command = [
        sys.executable, "-m", "clearing.cli", "bench", "stream",
        "--events", "120", "--rounds", "2", "--warmup", "40",
        "--rates", "100", "200", "--rate-seconds", "0.5",
        "--workers", "1", "--web-port", str(free_port()),
        "--timeout", "180", "--json", str(out),
    ]  # fmt: skip
    env = dict(os.environ, KAFKA_BOOTSTRAP=kafka_bootstrap, CLEARING_HOME=str(tmp_path / "home"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "raw Kafka pass-through" in done.stdout

    figures = json.loads(out.read_text())
    assert figures["workers"] == 1
    assert figures["rounds"] == 2
    for name in ("sustained_events_per_s", "raw_passthrough_events_per_s"):
        assert set(figures[name]) == {"median", "min", "max"}
        assert figures[name]["median"] > 0
    assert figures["ratio_to_raw"] > 0
    assert set(figures["latency_at_max"]) == {"p50_ms", "p95_ms", "p99_ms"}
    assert [r["offered_per_s"] for r in figures["latency_at_rate"]] == [100.0, 200.0]
    for phase in figures["latency_at_rate"] + figures["rounds_detail"]["pipeline"]:
        assert phase["p50_ms"] <= phase["p95_ms"] <= phase["p99_ms"] <= phase["max_ms"]
        assert phase["events_per_s"] > 0
    assert len(figures["rounds_detail"]["raw"]) == 2
    assert figures["published_to"] == "inbound topics (gate)"
    assert figures["worker_cpu_us_per_event"] > 0
    assert all(isinstance(r["held"], bool) for r in figures["latency_at_rate"])
