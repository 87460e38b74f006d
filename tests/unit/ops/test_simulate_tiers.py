"""A generated bundle with one-stop settlement (`tiers.md`), priced by `clearing price`.

The policies carry serious-illness insurance and medical assistance, a few percent of persons
are named for assistance, and the bundle's costly care crosses the thresholds and the caps.
Every line ends as its intent says, and the tier amounts of every priced and reversed result
are recomputed here from tiers.md alone, accumulators and reversals included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from clearing.ops.simulate.bundle import generate_bundle

EVENTS = 20_000
SEED = 7
CHINA = timezone(timedelta(hours=8))
YUAN = 100

Json = dict[str, Any]
PolicyKey = tuple[str, str, int]
PersonYear = tuple[str, int]


@dataclass(frozen=True)
class Line:
    """One line of the bundle: the event (None when it is not a JSON object), what the
    generator meant it to become, and what the engine made of it."""

    event: Json | None
    intent: Json
    result: Json


@dataclass(frozen=True)
class Bundle:
    policies: dict[PolicyKey, Json]
    lines: list[Line]


def parse_object(raw: bytes) -> Json | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("tiers-bundle")
    generate_bundle(out, EVENTS, seed=SEED, intents=True)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "clearing.cli",
            "price",
            "--refdata",
            str(out / "refdata"),
            str(out / "events.jsonl"),
        ],
        capture_output=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    raws = (out / "events.jsonl").read_bytes().split(b"\n")
    assert raws.pop() == b""
    intents = [json.loads(line) for line in (out / "intents.jsonl").read_text().splitlines()]
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(raws) == len(intents) == len(results) == EVENTS
    policies: dict[PolicyKey, Json] = {}
    for path in sorted((out / "refdata" / "policies").glob("*.json")):
        policy = json.loads(path.read_text())
        policies[(policy["region"], policy["scheme"], policy["year"])] = policy
    lines = [
        Line(parse_object(raw), intent, result)
        for raw, intent, result in zip(raws, intents, results, strict=True)
    ]
    return Bundle(policies, lines)


# --- tiers.md, read independently of clearing.core ------------------------------------------


def province(region: str) -> str:
    return region[:2] + "0000"


def governing_policy(bundle: Bundle, settlement: Json) -> Json:
    year = china_year(settlement["settled_at"])
    key = (settlement["home_region"], settlement["scheme"], year)
    policy = bundle.policies.get(key) or bundle.policies.get((province(key[0]), key[1], year))
    assert policy is not None, "a priced settlement has a policy"
    return policy


def china_year(timestamp: str) -> int:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(CHINA).year


def share(amount: int, ratio_bp: int) -> int:
    """round_half_up(amount × ratio_bp / 10000) of a non-negative amount, exactly."""
    return (amount * ratio_bp + 5_000) // 10_000


def critical_before_cap(block: Json, burden: int, isp: int) -> int:
    threshold = block["annual_threshold_fen"]
    lo, hi = max(0, burden - threshold), max(0, burden + isp - threshold)
    total, lower = 0, 0
    for band in block["bands"]:
        upper: int | None = band["upto_fen"]
        top = hi if upper is None else min(hi, upper)
        total += share(max(0, top - max(lo, lower)), band["ratio_bp"])
        if upper is None:
            break
        lower = upper
    return total


@dataclass
class Accumulator:
    """Per (person_id, year): the counted burden, the serious-illness pay, the assistance pay."""

    burden: int = 0
    critical: int = 0
    assistance: int = 0


@dataclass(frozen=True)
class Tiers:
    """What the tiers pay on one priced settlement, by the spec."""

    isp: int
    counted: int
    critical_pay: int
    critical_uncapped: int
    assistance_pay: int
    assistance_uncapped: int


@dataclass(frozen=True)
class Booked:
    """A priced settlement as a reversal finds it."""

    slot: PersonYear
    tiers: Tiers
    result: Json


@dataclass
class Recomputation:
    priced: list[tuple[Line, Tiers]] = field(default_factory=list)
    yearly: dict[PersonYear, Accumulator] = field(default_factory=dict)
    caps: dict[PersonYear, int | None] = field(default_factory=dict)


def price_tiers(policy: Json, kind: str, isp: int, acc: Accumulator, klass: str | None) -> Tiers:
    critical_pay = critical_uncapped = counted = 0
    critical = policy.get("critical")
    if critical is not None and kind in critical["kinds"]:
        critical_uncapped = critical_before_cap(critical, acc.burden, isp)
        cap = critical["annual_cap_fen"]
        critical_pay = (
            critical_uncapped if cap is None else min(critical_uncapped, max(0, cap - acc.critical))
        )
        counted = isp
    assistance_pay = assistance_uncapped = 0
    aid = policy.get("assistance")
    if aid is not None and kind in aid["kinds"] and klass is not None:
        assistance_uncapped = share(isp - critical_pay, aid["ratio_bp"][klass])
        assistance_pay = min(assistance_uncapped, max(0, aid["annual_cap_fen"] - acc.assistance))
    return Tiers(isp, counted, critical_pay, critical_uncapped, assistance_pay, assistance_uncapped)


def recompute(bundle: Bundle) -> Recomputation:
    """Walk the results in order, checking each priced and reversed one's tier fields."""
    out = Recomputation()
    accumulators: dict[PersonYear, Accumulator] = {}
    booked: dict[str, Booked] = {}
    for line in bundle.lines:
        result, event = line.result, line.event
        if result["status"] == "priced":
            assert event is not None
            slot = (event["person_id"], china_year(event["settled_at"]))
            acc = accumulators.setdefault(slot, Accumulator())
            policy = governing_policy(bundle, event)
            isp = result["eligible_fen"] - result["fund_pay_fen"]
            tiers = price_tiers(policy, event["kind"], isp, acc, result["assistance_class"])
            assert result["critical_pay_fen"] == tiers.critical_pay, (result, tiers, acc)
            assert result["assistance_pay_fen"] == tiers.assistance_pay, (result, tiers, acc)
            due = result["fund_pay_fen"] + tiers.critical_pay + tiers.assistance_pay
            assert result["due_fen"] == due
            assert result["personal_pay_fen"] == result["total_fen"] - due
            acc.burden += tiers.counted
            acc.critical += tiers.critical_pay
            acc.assistance += tiers.assistance_pay
            booked[result["settlement_id"]] = Booked(slot, tiers, result)
            out.priced.append((line, tiers))
            critical = policy.get("critical")
            if critical is not None and event["kind"] in critical["kinds"]:
                out.caps[slot] = critical["annual_cap_fen"]
        elif result["status"] == "reversed":
            original = booked.pop(result["settlement_id"])
            for key in ("critical_pay_fen", "assistance_pay_fen", "due_fen", "personal_pay_fen"):
                assert result[key] == -original.result[key], (result, original.result)
            acc = accumulators[original.slot]
            acc.burden = max(0, acc.burden - original.tiers.counted)
            acc.critical = max(0, acc.critical - original.tiers.critical_pay)
            acc.assistance = max(0, acc.assistance - original.tiers.assistance_pay)
    out.yearly = accumulators
    return out


@pytest.fixture(scope="module")
def recomputed(bundle: Bundle) -> Recomputation:
    return recompute(bundle)


# --- the tests ------------------------------------------------------------------------------


def test_every_line_ends_as_its_intent_says(bundle: Bundle) -> None:
    for line in bundle.lines:
        result, intent = line.result, line.intent
        assert result["status"] == intent["status"], (result, intent)
        assert result.get("reasons", []) == intent.get("reasons", []), (result, intent)
        if result["status"] == "priced":
            assert result["filed"] == intent["filed"], (result, intent)
            assert result["assistance_class"] == intent.get("assistance_class"), (result, intent)
        if result["status"] == "registered":
            assert line.event is not None
            assert result["assistance_id"] == line.event["assistance_id"]


def test_tier_amounts_follow_the_spec_line_by_line(bundle: Bundle) -> None:
    recomputation = recompute(bundle)  # asserts each priced and reversed result on the way
    priced = [line for line in bundle.lines if line.result["status"] == "priced"]
    assert len(recomputation.priced) == len(priced) > EVENTS // 2


def test_serious_illness_insurance_pays_and_reaches_its_cap(recomputed: Recomputation) -> None:
    paying = [tiers for _, tiers in recomputed.priced if tiers.critical_pay > 0]
    assert len(paying) >= 200
    kinds = Counter(line.intent["kind"] for line, tiers in recomputed.priced if tiers.critical_pay)
    assert kinds["inpatient"] > kinds["chronic"] > 0
    capped = [t for _, t in recomputed.priced if t.critical_pay < t.critical_uncapped]
    assert capped, "some settlement's serious-illness pay is cut by the annual cap"
    at_cap = [
        slot
        for slot, acc in recomputed.yearly.items()
        if recomputed.caps.get(slot) is not None and acc.critical == recomputed.caps[slot]
    ]
    assert at_cap, "some person's yearly serious-illness pay equals the cap"


def test_medical_assistance_pays_by_class_and_reaches_its_cap(recomputed: Recomputation) -> None:
    paying = [line for line, tiers in recomputed.priced if tiers.assistance_pay > 0]
    assert len(paying) >= 30
    assert {line.result["assistance_class"] for line in paying} == {"A", "B"}
    capped = [t for _, t in recomputed.priced if t.assistance_pay < t.assistance_uncapped]
    assert capped, "some settlement's assistance pay is cut by the annual cap"


def test_assistance_records_come_from_the_home_province_before_settlements(
    bundle: Bundle,
) -> None:
    registered: list[Json] = []
    for line in bundle.lines:
        if line.result["status"] == "registered":
            assert line.event is not None and line.event["type"] == "assistance"
            registered.append(line.event)
    assert 0.003 * EVENTS <= len(registered) <= 0.012 * EVENTS
    assert {event["class"] for event in registered} == {"A", "B"}
    assert any(event["valid_to"] is None for event in registered)
    records: dict[str, list[Json]] = {}
    for record in registered:
        records.setdefault(record["person_id"], []).append(record)
    seen: set[str] = set()
    uncovered = 0
    for line in bundle.lines:
        event, result = line.event, line.result
        if result["status"] == "registered":
            assert event is not None
            seen.add(event["person_id"])
        if result["status"] != "priced":
            continue
        assert event is not None
        person = event["person_id"]
        if result["assistance_class"] is not None:
            assert person in seen, "the record comes before the settlement it covers"
        for record in records.get(person, []):
            assert province(record["home_region"]) == province(event["home_region"])
        policy_aid = governing_policy(bundle, event).get("assistance")
        covered_kind = policy_aid is not None and event["kind"] in policy_aid["kinds"]
        if person in seen and covered_kind and result["assistance_class"] is None:
            uncovered += 1  # admitted outside every window of the person's records
    assert uncovered > 0


def test_some_records_have_lapsed_when_they_are_sent(bundle: Bundle) -> None:
    """A record's window is relative to when it is sent: some have already ended."""
    lapsed = 0
    last_day: date | None = None
    for line in bundle.lines:
        event = line.event
        if event is None or line.result["status"] == "invalid":
            continue
        if event["type"] in ("settlement", "reversal"):
            settled = datetime.fromisoformat(event["settled_at"].replace("Z", "+00:00"))
            last_day = settled.astimezone(CHINA).date()
        elif event["type"] == "assistance" and event["valid_to"] and last_day is not None:
            lapsed += date.fromisoformat(event["valid_to"]) < last_day
    assert lapsed > 0


def test_malformed_assistance_lines_are_invalid(bundle: Bundle) -> None:
    faults = [line for line in bundle.lines if line.intent.get("invalid") == "bad_assistance"]
    assert len(faults) >= 10
    assert all(line.result["status"] == "invalid" for line in faults)
    assert len({line.intent["detail"].split(":")[0] for line in faults}) >= 5


def test_most_resident_and_many_employee_policies_have_realistic_blocks(bundle: Bundle) -> None:
    provincial = {k: p for k, p in bundle.policies.items() if k[0].endswith("0000")}
    for scheme, critical_share, assistance_share in (
        ("resident", 0.7, 0.6),
        ("employee", 0.3, 0.2),
    ):
        of_scheme = [p for k, p in provincial.items() if k[1] == scheme]
        assert sum("critical" in p for p in of_scheme) >= critical_share * len(of_scheme)
        assert sum("assistance" in p for p in of_scheme) >= assistance_share * len(of_scheme)
    caps: set[int | None] = set()
    for policy in bundle.policies.values():
        critical = policy.get("critical")
        if critical is not None:
            assert 10_000 * YUAN <= critical["annual_threshold_fen"] <= 25_000 * YUAN
            ratios = [band["ratio_bp"] for band in critical["bands"]]
            assert 5000 <= ratios[0] <= 7000 and ratios == sorted(ratios) and ratios[-1] > ratios[0]
            assert critical["bands"][-2]["upto_fen"] == 100_000 * YUAN
            cap = critical["annual_cap_fen"]
            assert cap is None or 300_000 * YUAN <= cap <= 600_000 * YUAN
            caps.add(cap)
            assert "inpatient" in critical["kinds"]
        aid = policy.get("assistance")
        if aid is not None:
            assert 7000 <= aid["ratio_bp"]["A"] <= 9000
            assert 5000 <= aid["ratio_bp"]["B"] <= 7000
            assert 30_000 * YUAN <= aid["annual_cap_fen"] <= 100_000 * YUAN
    assert None in caps and len(caps) >= 3
