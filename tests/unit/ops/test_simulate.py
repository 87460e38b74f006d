"""`clearing simulate`: deterministic, spec-true bundles whose lines end as intended."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from clearing.cli import main
from clearing.ops.simulate.bundle import generate_bundle
from clearing.ops.simulate.geography import PROVINCES

CHINA = timezone(timedelta(hours=8))
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REGION = re.compile(r"[1-9][0-9]{5}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
QUANTITY = re.compile(r"[0-9]+(\.[0-9]{1,4})?")
SETTLEMENT_KEYS = {
    "type",
    "schema_version",
    "settlement_id",
    "kind",
    "person_id",
    "scheme",
    "home_region",
    "hospital_id",
    "hospital_region",
    "hospital_level",
    "emergency",
    "admitted_on",
    "settled_at",
    "diagnosis",
    "items",
}
REVERSAL_KEYS = {
    "type",
    "schema_version",
    "reversal_id",
    "settlement_id",
    "person_id",
    "reason",
    "settled_at",
}
FILING_KEYS = {
    "type",
    "schema_version",
    "filing_id",
    "person_id",
    "home_region",
    "treatment_province",
    "filing_kind",
    "valid_from",
    "valid_to",
}
ASSISTANCE_KEYS = {
    "type",
    "schema_version",
    "assistance_id",
    "person_id",
    "home_region",
    "class",
    "valid_from",
    "valid_to",
}


# --- an independent reading of events.md, and of tiers.md's assistance event ----------------


def is_int(value: Any) -> bool:
    return type(value) is int


def is_id(value: Any) -> bool:
    return isinstance(value, str) and ID.fullmatch(value) is not None


def is_region(value: Any) -> bool:
    return isinstance(value, str) and REGION.fullmatch(value) is not None


def is_date(value: Any) -> bool:
    if not isinstance(value, str) or DATE.fullmatch(value) is None:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def item_problems(item: Any) -> list[str]:
    if not isinstance(item, dict) or set(item) != {
        "code",
        "quantity",
        "unit_price_fen",
        "amount_fen",
    }:
        return ["item shape"]
    problems = []
    if not is_id(item["code"]):
        problems.append("code")
    q = item["quantity"]
    if not isinstance(q, str) or QUANTITY.fullmatch(q) is None or not 0 < Decimal(q) <= 100_000:
        problems.append("quantity")
    if not is_int(item["unit_price_fen"]) or not 0 <= item["unit_price_fen"] <= 10**10:
        problems.append("unit_price_fen")
    if not is_int(item["amount_fen"]) or not 0 <= item["amount_fen"] <= 10**12:
        problems.append("amount_fen")
    return problems


def settlement_problems(event: dict) -> list[str]:
    if set(event) != SETTLEMENT_KEYS:
        return ["fields"]
    checks = {
        "settlement_id": is_id(event["settlement_id"]),
        "kind": event["kind"] in ("inpatient", "outpatient", "chronic"),
        "person_id": is_id(event["person_id"]),
        "scheme": event["scheme"] in ("employee", "resident"),
        "home_region": is_region(event["home_region"]),
        "hospital_id": is_id(event["hospital_id"]),
        "hospital_region": is_region(event["hospital_region"]),
        "hospital_level": event["hospital_level"] in (1, 2, 3) and is_int(event["hospital_level"]),
        "emergency": isinstance(event["emergency"], bool),
        "admitted_on": is_date(event["admitted_on"]),
        "settled_at": instant(event["settled_at"]) is not None,
        "diagnosis": isinstance(event["diagnosis"], list)
        and len(event["diagnosis"]) >= 1
        and all(isinstance(d, str) and 1 <= len(d) <= 16 for d in event["diagnosis"]),
        "items": isinstance(event["items"], list) and 1 <= len(event["items"]) <= 2000,
    }
    problems = [name for name, ok in checks.items() if not ok]
    if checks["items"]:
        problems += [p for item in event["items"] for p in item_problems(item)]
    return problems


def reversal_problems(event: dict) -> list[str]:
    if set(event) != REVERSAL_KEYS:
        return ["fields"]
    checks = {
        "ids": all(is_id(event[k]) for k in ("reversal_id", "settlement_id", "person_id")),
        "reason": isinstance(event["reason"], str) and 1 <= len(event["reason"]) <= 200,
        "settled_at": instant(event["settled_at"]) is not None,
    }
    return [name for name, ok in checks.items() if not ok]


def filing_problems(event: dict) -> list[str]:
    if set(event) != FILING_KEYS:
        return ["fields"]
    province = event["treatment_province"]
    checks = {
        "ids": is_id(event["filing_id"]) and is_id(event["person_id"]),
        "home_region": is_region(event["home_region"]),
        "treatment_province": is_region(province) and province.endswith("0000"),
        "filing_kind": event["filing_kind"] in ("long_term", "temporary", "referral"),
        "valid_from": is_date(event["valid_from"]),
        "valid_to": event["valid_to"] is None
        or (is_date(event["valid_to"]) and event["valid_to"] >= event["valid_from"]),
    }
    return [name for name, ok in checks.items() if not ok]


def assistance_problems(event: dict[str, Any]) -> list[str]:
    if set(event) != ASSISTANCE_KEYS:
        return ["fields"]
    checks = {
        "ids": is_id(event["assistance_id"]) and is_id(event["person_id"]),
        "home_region": is_region(event["home_region"]),
        "class": event["class"] in ("A", "B") and isinstance(event["class"], str),
        "valid_from": is_date(event["valid_from"]),
        "valid_to": event["valid_to"] is None
        or (is_date(event["valid_to"]) and event["valid_to"] >= event["valid_from"]),
    }
    return [name for name, ok in checks.items() if not ok]


def spec_problems(raw: bytes) -> list[str]:
    """Why a line is not a valid event per events.md (empty when it is valid)."""
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):
        return ["not JSON"]
    if not isinstance(event, dict):
        return ["not an object"]
    if event.get("schema_version") != 1 or not is_int(event.get("schema_version")):
        return ["schema_version"]
    check = {
        "settlement": settlement_problems,
        "reversal": reversal_problems,
        "filing": filing_problems,
        "assistance": assistance_problems,
    }.get(event.get("type"))
    return ["type"] if check is None else check(event)


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- fixtures -------------------------------------------------------------------------------


def bundle_lines(out: Path) -> list[tuple[bytes, dict]]:
    events = (out / "events.jsonl").read_bytes().split(b"\n")
    assert events[-1] == b"", "events.jsonl ends with a newline"
    intents = [json.loads(line) for line in (out / "intents.jsonl").read_text().splitlines()]
    assert len(events) - 1 == len(intents)
    return list(zip(events[:-1], intents, strict=True))


@pytest.fixture(scope="module")
def year_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("year")
    generate_bundle(out, 4000, seed=3, intents=True)
    return out


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- the generator alone --------------------------------------------------------------------


def test_a_seed_names_one_bundle_byte_for_byte(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_bundle(a, 1500, seed=42)
    generate_bundle(b, 1500, seed=42)
    generate_bundle(c, 1500, seed=43)
    assert files_of(a) == files_of(b)
    assert (a / "events.jsonl").read_bytes() != (c / "events.jsonl").read_bytes()
    assert files_of(a / "refdata") != files_of(c / "refdata")


def test_regenerating_in_place_leaves_no_stale_refdata(tmp_path):
    generate_bundle(tmp_path, 50, seed=1)
    generate_bundle(tmp_path, 50, seed=2)
    fresh = tmp_path / "fresh"
    generate_bundle(fresh, 50, seed=2)
    assert files_of(tmp_path / "refdata") == files_of(fresh / "refdata")


def test_layout_has_every_province_and_scheme(year_bundle):
    policies = {
        p.name: json.loads(p.read_text()) for p in (year_bundle / "refdata/policies").iterdir()
    }
    catalogs = {
        p.name: json.loads(p.read_text()) for p in (year_bundle / "refdata/catalogs").iterdir()
    }
    codes = [p.code for p in PROVINCES]
    assert len(codes) == 31 and len(set(codes)) == 31
    for code in codes:
        for scheme in ("employee", "resident"):
            assert f"{code}-{scheme}-2026.json" in policies
        assert f"{code}-2026.json" in catalogs
    assert len(catalogs) == 31
    cities = [name for name in policies if name[2:6] != "0000"]
    assert 5 <= len(cities) <= 20
    for name, policy in policies.items():
        assert name == f"{policy['region']}-{policy['scheme']}-{policy['year']}.json"
        assert policy["inpatient"]["bands"][-1]["upto_fen"] is None
    for name, catalog in catalogs.items():
        assert name == f"{catalog['province']}-{catalog['year']}.json"
        entries = catalog["items"].values()
        assert {e["class"] for e in entries} == {"A", "B", "C"}
        assert all(("b_selfpay_bp" in e) == (e["class"] == "B") for e in entries)
        assert any("price_cap_fen" in e for e in entries)
        assert not any("price_cap_fen" in e for e in entries if e["class"] == "C")


def test_valid_lines_follow_the_spec_and_invalid_lines_do_not(year_bundle):
    catalogued = set(
        json.loads((year_bundle / "refdata/catalogs/110000-2026.json").read_text())["items"]
    )
    uncatalogued = 0
    for raw, intent in bundle_lines(year_bundle):
        problems = spec_problems(raw)
        if intent["status"] == "invalid":
            assert problems, (intent, raw[:200])
            continue
        assert not problems, (problems, intent, raw[:200])
        event = json.loads(raw)
        if event["type"] != "settlement":
            continue
        exact = all(
            item["amount_fen"] == round_half_up(Decimal(item["quantity"]) * item["unit_price_fen"])
            for item in event["items"]
        )
        assert exact != ("AMOUNT_MISMATCH" in intent.get("reasons", [])), intent
        uncatalogued += sum(item["code"] not in catalogued for item in event["items"])
    assert uncatalogued > 0


def test_ids_are_unique_and_filings_come_before_their_persons_settlements(year_bundle):
    settlement_ids: Counter[str] = Counter()
    filed: set[str] = set()
    assisted: set[str] = set()
    for raw, intent in bundle_lines(year_bundle):
        if intent["status"] == "invalid":
            continue
        event = json.loads(raw)
        if event["type"] == "filing":
            filed.add(event["person_id"])
        elif event["type"] == "assistance":
            assisted.add(event["person_id"])
        elif event["type"] == "settlement" and intent["status"] == "priced" and intent["filed"]:
            assert event["emergency"] or event["person_id"] in filed
        if intent.get("assistance_class") is not None:
            assert event["person_id"] in assisted
        first_submission = intent.get("reasons") != ["DUPLICATE_CONFLICT"]
        if event["type"] == "settlement" and intent["status"] != "duplicate" and first_submission:
            settlement_ids[event["settlement_id"]] += 1
    assert max(settlement_ids.values()) == 1


def test_proportions_are_roughly_those_of_the_sample(year_bundle):
    intents = [intent for _, intent in bundle_lines(year_bundle)]
    statuses = Counter(i["status"] for i in intents)
    share = {status: count / len(intents) for status, count in statuses.items()}
    assert 0.035 <= share["invalid"] <= 0.06
    assert 0.07 <= share["filed"] <= 0.14
    assert share["priced"] >= 0.65
    assert 0.005 <= share["duplicate"] <= 0.02
    assert 0.005 <= share["reversed"] <= 0.03
    assert 0.003 <= share["registered"] <= 0.012
    classes = Counter(i.get("assistance_class") for i in intents if i["status"] == "priced")
    assert classes["A"] > 0 and classes["B"] > 0 and classes[None] > 0.9 * sum(classes.values())
    reasons = Counter(r for i in intents for r in i.get("reasons", []))
    assert set(reasons) == {
        "AMOUNT_MISMATCH",
        "NOT_CROSS_PROVINCE",
        "NO_POLICY",
        "NO_CATALOG",
        "NOT_FILED",
        "DUPLICATE_CONFLICT",
        "UNKNOWN_SETTLEMENT",
        "ALREADY_REVERSED",
    }
    assert reasons["NOT_FILED"] > reasons["NOT_CROSS_PROVINCE"] > reasons["AMOUNT_MISMATCH"]
    kinds = Counter(i["kind"] for i in intents if i["status"] == "priced")
    assert kinds["inpatient"] > kinds["chronic"] and kinds["outpatient"] > kinds["chronic"] > 0
    assert len({i["invalid"] for i in intents if i["status"] == "invalid"}) >= 15


def test_flows_go_to_the_big_treatment_provinces(year_bundle):
    payees: Counter[str] = Counter()
    for raw, intent in bundle_lines(year_bundle):
        if intent["status"] == "priced":
            payees[json.loads(raw)["hospital_region"][:2]] += 1
    top = {code for code, _ in payees.most_common(6)}
    assert len(top & {"11", "31", "32", "33", "44", "46"}) >= 5


@pytest.mark.parametrize("period", ["2026-02", "2026-12", "2025-01"])
def test_period_confines_settled_at_to_that_china_month(tmp_path, period):
    summary = generate_bundle(tmp_path, 1500, seed=9, period=period, intents=True)
    assert summary.year == int(period[:4])
    assert (tmp_path / f"refdata/catalogs/110000-{period[:4]}.json").exists()
    months: Counter[str] = Counter()
    for raw, intent in bundle_lines(tmp_path):
        if intent["status"] == "invalid":
            continue
        event = json.loads(raw)
        if event["type"] in ("settlement", "reversal"):
            months[instant(event["settled_at"]).astimezone(CHINA).strftime("%Y-%m")] += 1
    assert set(months) == {period}
    assert months[period] > 1000


def test_a_year_spread_covers_every_month_and_a_few_late_arrivals(year_bundle):
    months: Counter[str] = Counter()
    for raw, intent in bundle_lines(year_bundle):
        if intent["status"] != "invalid" and json.loads(raw)["type"] == "settlement":
            months[instant(json.loads(raw)["settled_at"]).astimezone(CHINA).strftime("%Y-%m")] += 1
    assert {f"2026-{m:02d}" for m in range(1, 13)} <= set(months)
    assert set(months) - {f"2026-{m:02d}" for m in range(1, 13)} <= {"2025-12"}
    assert min(months[f"2026-{m:02d}"] for m in range(1, 13)) > 150


def test_cli_writes_a_bundle_and_a_summary(tmp_path, capsys):
    assert (
        main(
            ["simulate", "--events", "300", "--seed", "5", "--year", "2027", "--out", str(tmp_path)]
        )
        == 0
    )
    assert "300 events" in capsys.readouterr().err
    assert len((tmp_path / "events.jsonl").read_bytes().split(b"\n")) == 301
    assert (tmp_path / "refdata/policies/650000-resident-2027.json").exists()
    assert not (tmp_path / "intents.jsonl").exists()
    assert main(["simulate", "--events", "5", "--period", "2026-13", "--out", str(tmp_path)]) == 2
    assert (
        main(
            [
                "simulate",
                "--events",
                "5",
                "--period",
                "2026-01",
                "--year",
                "2025",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )


# --- against the pricing engine -------------------------------------------------------------


def price(bundle: Path) -> list[dict]:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "clearing.cli",
            "price",
            "--refdata",
            str(bundle / "refdata"),
            str(bundle / "events.jsonl"),
        ],
        capture_output=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.fixture(scope="module")
def priced_bundle(year_bundle) -> list[tuple[dict, dict]]:
    pytest.importorskip("clearing.ops.offline")
    results = price(year_bundle)
    return list(zip(results, [i for _, i in bundle_lines(year_bundle)], strict=True))


def test_the_engine_gives_every_line_its_intended_outcome(priced_bundle):
    for result, intent in priced_bundle:
        assert result["status"] == intent["status"], (result, intent)
        assert result.get("reasons", []) == intent.get("reasons", []), (result, intent)
        if result["status"] == "priced":
            assert result["filed"] == intent["filed"], (result, intent)
            assert result["assistance_class"] == intent.get("assistance_class"), (result, intent)
    statuses = {result["status"] for result, _ in priced_bundle}
    assert statuses == {
        "priced",
        "rejected",
        "duplicate",
        "invalid",
        "reversed",
        "filed",
        "registered",
    }
    assert any(r.get("cap_reached") for r, _ in priced_bundle)


def test_amounts_are_calibrated_to_public_figures(priced_bundle):
    totals: dict[str, list[int]] = {"inpatient": [], "outpatient": [], "chronic": []}
    fund = Counter()
    for result, intent in priced_bundle:
        if result["status"] == "priced":
            totals[intent["kind"]].append(result["total_fen"])
            fund[intent["kind"]] += result["fund_pay_fen"]
    inpatient = totals["inpatient"]
    assert 1_900_000 <= sum(inpatient) / len(inpatient) <= 2_900_000
    assert 0.52 <= fund["inpatient"] / sum(inpatient) <= 0.62
    assert 18_000 <= sum(totals["outpatient"]) / len(totals["outpatient"]) <= 35_000
    assert 40_000 <= sum(totals["chronic"]) / len(totals["chronic"]) <= 200_000
