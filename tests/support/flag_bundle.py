"""A small bundle with every monitoring rule planted, built from `support.builders`.

Persons P1..P4 (P3 from Guangdong, P4 treated in Shanghai) each carry one person-level
pattern; hospital H9 has 20 settlements in 2026-01 of which 3 are reversed (15 % > 10 %:
HIGH_REVERSAL_RATE); P5..P8 are noise that raises nothing.
Events are in time order, keyed by person.
"""

from __future__ import annotations

import copy
from pathlib import Path

import orjson

from clearing.core.models.refdata import Catalog, Policy
from clearing.core.refdata import RefData
from support.builders import CATALOG, POLICY, filing, item, raw, refdata, reversal, settlement


def flag_events() -> list[dict]:
    events: list[dict] = []
    add = events.append
    # P1: overlapping stays at H1 and H2.
    add(
        settlement(
            "S1a",
            person_id="P1",
            hospital_id="H1",
            admitted_on="2026-01-05",
            settled_at="2026-01-12T10:00:00+08:00",
        )
    )
    add(
        settlement(
            "S1b",
            person_id="P1",
            hospital_id="H2",
            admitted_on="2026-01-08",
            settled_at="2026-01-10T10:00:00+08:00",
        )
    )
    # P2: an outpatient visit during an inpatient stay (filed, so it is priced).
    add(filing("F2", person_id="P2"))
    add(
        settlement(
            "S2a",
            person_id="P2",
            hospital_id="H1",
            admitted_on="2026-01-03",
            settled_at="2026-01-14T10:00:00+08:00",
        )
    )
    add(
        settlement(
            "S2b",
            person_id="P2",
            kind="outpatient",
            hospital_id="H3",
            admitted_on="2026-01-07",
            settled_at="2026-01-07T16:00:00+08:00",
            items=[item("A1", "1", 5000)],
        )
    )
    # P3: readmitted at the same hospital 4 days after discharge, same diagnosis category.
    add(
        settlement(
            "S3a",
            person_id="P3",
            hospital_id="H4",
            admitted_on="2026-01-02",
            settled_at="2026-01-06T10:00:00+08:00",
            diagnosis=["I21.0"],
            home_region="440100",
        )
    )
    add(
        settlement(
            "S3b",
            person_id="P3",
            hospital_id="H4",
            admitted_on="2026-01-10",
            settled_at="2026-01-16T10:00:00+08:00",
            diagnosis=["I21.4"],
            home_region="440100",
        )
    )
    # P4: the same bill under two settlement ids.
    for sid in ("S4a", "S4b"):
        add(
            settlement(
                sid,
                person_id="P4",
                hospital_id="H5",
                admitted_on="2026-01-20",
                settled_at="2026-01-24T10:00:00+08:00",
                hospital_region="310104",
                items=[item("A1", "2", 30000), item("B1", "1", 8000)],
            )
        )
    # H9: 20 settlements of 20 persons, 3 reversed; and a reversal of P1's S1b (which then
    # leaves P1's history).
    for n in range(20):
        add(
            settlement(
                f"S9-{n}",
                person_id=f"Q{n}",
                hospital_id="H9",
                admitted_on=f"2026-01-{1 + n:02d}",
                settled_at=f"2026-01-{2 + n:02d}T09:00:00+08:00",
                diagnosis=[f"J{n:02d}.1"],
            )
        )
    for n in (3, 7, 11):
        add(
            reversal(
                f"R9-{n}", f"S9-{n}", person_id=f"Q{n}", settled_at="2026-01-25T10:00:00+08:00"
            )
        )
    add(reversal("R1b", "S1b", person_id="P1", settled_at="2026-01-26T10:00:00+08:00"))
    # Noise: one ordinary stay each, and a later one in February.
    for n in range(5, 9):
        add(
            settlement(
                f"S{n}a",
                person_id=f"P{n}",
                hospital_id="H6",
                admitted_on="2026-01-02",
                settled_at="2026-01-04T10:00:00+08:00",
                diagnosis=["K35.8"],
            )
        )
        add(
            settlement(
                f"S{n}b",
                person_id=f"P{n}",
                hospital_id="H6",
                admitted_on="2026-02-20",
                settled_at="2026-02-24T10:00:00+08:00",
                diagnosis=["K35.8"],
            )
        )
    # P1 again after the reversal: overlaps S1a only (S1b is forgotten).
    add(
        settlement(
            "S1c",
            person_id="P1",
            hospital_id="H7",
            admitted_on="2026-01-09",
            settled_at="2026-01-27T10:00:00+08:00",
        )
    )
    return events  # fmt: skip


def flag_lines() -> list[bytes]:
    return [raw(e) for e in flag_events()]


def flag_refdata() -> RefData:
    """The builders' reference data, plus Guangdong's policy (P3's home) and Shanghai's
    catalog (P4's hospital), so that flags involve different provinces."""
    data = refdata()
    data.add_policy(Policy.model_validate({**copy.deepcopy(POLICY), "region": "440000"}))
    data.add_catalog(Catalog.model_validate({**CATALOG, "province": "310000"}))
    return data


def write_flag_bundle(directory: Path) -> tuple[Path, Path]:
    """The bundle as files, as `clearing flags` and the publisher read them: (refdata folder,
    events file)."""
    refdata_dir = directory / "refdata"
    (refdata_dir / "policies").mkdir(parents=True, exist_ok=True)
    (refdata_dir / "catalogs").mkdir(parents=True, exist_ok=True)
    for region in ("230000", "440000"):
        policy = {**copy.deepcopy(POLICY), "region": region}
        (refdata_dir / "policies" / f"{region}-employee-2026.json").write_bytes(
            orjson.dumps(policy)
        )
    for province in ("110000", "230000", "310000"):
        catalog = {**CATALOG, "province": province}
        (refdata_dir / "catalogs" / f"{province}-2026.json").write_bytes(orjson.dumps(catalog))
    events = directory / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in flag_lines()))
    return refdata_dir, events
