"""The fund-safety cases `clearing simulate` plants, checked against `clearing flags`.

A one-month bundle: every planted case raises its flag (the rule and the settlement ids, or
the period and the hospital), no near miss is named by any flag, every rule raises some, and
the cases are rare.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clearing.ops.simulate.bundle import generate_bundle

EVENTS = 20_000
SEED = 11
PERIOD = "2026-03"
RULES = {
    "OVERLAPPING_STAYS",
    "OUTPATIENT_DURING_STAY",
    "QUICK_READMISSION",
    "DUPLICATE_BILLING",
    "HIGH_REVERSAL_RATE",
}

Json = dict[str, Any]


@dataclass(frozen=True)
class Bundle:
    intents: list[Json]
    flags: list[Json]

    def plants(self, case: str) -> list[Json]:
        return [i["plant"] for i in self.intents if i.get("plant", {}).get("case") == case]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("flags-bundle")
    generate_bundle(out, EVENTS, seed=SEED, period=PERIOD, intents=True)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "clearing.cli",
            "flags",
            "--refdata",
            str(out / "refdata"),
            str(out / "events.jsonl"),
        ],
        capture_output=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    assert len((out / "events.jsonl").read_bytes().splitlines()) == EVENTS
    intents = [json.loads(line) for line in (out / "intents.jsonl").read_text().splitlines()]
    return Bundle(intents, [json.loads(line) for line in run.stdout.splitlines()])


def test_every_planted_case_raises_its_flag(bundle: Bundle) -> None:
    raised = {(f["rule"], tuple(f["settlement_ids"])) for f in bundle.flags if "person_id" in f}
    hospitals = {
        (f["period"], f["hospital_id"]) for f in bundle.flags if f["rule"] == "HIGH_REVERSAL_RATE"
    }
    planted = bundle.plants("flag")
    assert {p["rule"] for p in planted} == RULES
    for plant in planted:
        if plant["rule"] == "HIGH_REVERSAL_RATE":
            assert (plant["period"], plant["hospital_id"]) in hospitals, plant
        else:
            assert (plant["rule"], tuple(plant["settlement_ids"])) in raised, plant


def test_no_near_miss_is_flagged(bundle: Bundle) -> None:
    named = {sid for f in bundle.flags for sid in f.get("settlement_ids", [])}
    near_misses = bundle.plants("near_miss")
    assert {p["rule"] for p in near_misses} == RULES - {"HIGH_REVERSAL_RATE"}
    for plant in near_misses:
        assert len(plant["settlement_ids"]) == 2
        assert not named & set(plant["settlement_ids"]), plant


def test_every_rule_raises_flags(bundle: Bundle) -> None:
    assert set(Counter(f["rule"] for f in bundle.flags)) == RULES


def test_the_cases_are_rare_and_the_reversing_hospitals_qualify(bundle: Bundle) -> None:
    priced = sum(i["status"] == "priced" for i in bundle.intents)
    pairs = Counter(
        (p["case"], p["rule"]) for p in bundle.plants("flag") + bundle.plants("near_miss")
    )
    for (case, rule), count in pairs.items():
        if rule != "HIGH_REVERSAL_RATE":
            assert 0.0005 * priced <= count <= 0.005 * priced, (case, rule, count)
    rogues = {
        (p["period"], p["hospital_id"])
        for p in bundle.plants("flag")
        if p["rule"] == "HIGH_REVERSAL_RATE"
    }
    assert 1 <= len(rogues) <= 2
    for flag in bundle.flags:
        if (flag.get("period"), flag.get("hospital_id")) in rogues:
            evidence = flag["evidence"]
            assert evidence["settlements"] >= 20
            assert 0.15 <= evidence["reversals"] / evidence["settlements"] <= 0.30, evidence


def test_a_planted_case_is_its_own_persons(bundle: Bundle) -> None:
    """The settlements of a case are named by its own flag only, never paired elsewhere."""
    planted = {
        sid: plant["rule"]
        for plant in bundle.plants("flag")
        for sid in plant.get("settlement_ids", [])
    }
    for flag in bundle.flags:
        ids = flag.get("settlement_ids", [])
        if any(sid in planted for sid in ids):
            assert all(planted.get(sid) == flag["rule"] for sid in ids), flag


def test_the_planted_cases_are_the_same_for_a_seed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        generate_bundle(out, 3000, seed=SEED, period=PERIOD, intents=True)
    for name in ("events.jsonl", "intents.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert len((a / "events.jsonl").read_bytes().splitlines()) == 3000
    assert b'"plant"' in (a / "intents.jsonl").read_bytes()
