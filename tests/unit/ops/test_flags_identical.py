"""`clearing flags` over a generated bundle with every pattern planted prints, byte for byte,
what the rules as listed (every pair rule over every earlier settlement) print: the indexed
rules change the cost, never a flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearing.core import monitoring
from clearing.core.monitoring import Monitor
from clearing.core.pricer import Pricer
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.flags import flag_lines
from clearing.ops.simulate.bundle import generate_bundle


def flags_of(bundle: Path) -> bytes:
    lines = event_lines(bundle / "events.jsonl")
    return b"".join(flag_lines(Pricer(load_refdata(bundle / "refdata")), Monitor(), lines))


def test_flags_are_those_of_every_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_bundle(tmp_path, events=20_000, seed=13, period="2026-03")
    indexed = flags_of(tmp_path)
    monkeypatch.setattr(monitoring, "flags_for", monitoring.flags_by_pairs)
    listed = flags_of(tmp_path)
    rules = {line.split(b'"rule":"')[1].split(b'"')[0] for line in indexed.splitlines()}
    assert len(rules) == 5, rules
    assert indexed == listed
