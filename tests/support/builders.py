"""Small reference data and events for hand-worked pricing tests."""

from __future__ import annotations

import copy

import orjson

from clearing.core.models.refdata import Catalog, Policy
from clearing.core.refdata import RefData

POLICY = {
    "region": "230000",
    "scheme": "employee",
    "year": 2026,
    "unfiled_ratio_cut_bp": 1500,
    "outpatient_requires_filing": True,
    "inpatient": {
        "deductible_fen": {"1": 30000, "2": 60000, "3": 120000},
        "bands": [
            {"upto_fen": 3000000, "ratio_bp": {"1": 9500, "2": 9000, "3": 8500}},
            {"upto_fen": None, "ratio_bp": {"1": 9800, "2": 9500, "3": 9100}},
        ],
        "annual_cap_fen": 40000000,
    },
    "outpatient": {
        "annual_deductible_fen": 20000,
        "bands": [{"upto_fen": None, "ratio_bp": {"1": 8000, "2": 7000, "3": 6000}}],
        "annual_cap_fen": 500000,
    },
    "chronic": {
        "annual_deductible_fen": 50000,
        "bands": [{"upto_fen": None, "ratio_bp": {"1": 8500, "2": 8000, "3": 7500}}],
        "annual_cap_fen": 3000000,
    },
}

CATALOG = {
    "province": "110000",
    "year": 2026,
    "items": {
        "A1": {"class": "A"},
        "A2": {"class": "A", "price_cap_fen": 500},
        "B1": {"class": "B", "b_selfpay_bp": 1000},
        "B2": {"class": "B", "b_selfpay_bp": 2000, "price_cap_fen": 1000},
        "C1": {"class": "C"},
    },
}


def refdata(**policy_changes) -> RefData:
    data = RefData()
    policy = copy.deepcopy(POLICY)
    policy.update(policy_changes)
    data.add_policy(Policy.model_validate(policy))
    data.add_catalog(Catalog.model_validate(CATALOG))
    data.add_catalog(Catalog.model_validate({**CATALOG, "province": "230000"}))
    return data


def item(code: str, quantity: str, unit_price_fen: int, amount_fen: int | None = None) -> dict:
    from clearing.core.models.types import quantity_e4
    from clearing.core.pricing import line_amount

    if amount_fen is None:
        amount_fen = line_amount(quantity_e4(quantity), unit_price_fen)
    return {
        "code": code,
        "quantity": quantity,
        "unit_price_fen": unit_price_fen,
        "amount_fen": amount_fen,
    }


def settlement(sid: str = "S1", items: list[dict] | None = None, **fields) -> dict:
    event = {
        "type": "settlement",
        "schema_version": 1,
        "settlement_id": sid,
        "kind": "inpatient",
        "person_id": "P1",
        "scheme": "employee",
        "home_region": "230100",
        "hospital_id": "H1",
        "hospital_region": "110105",
        "hospital_level": 3,
        "emergency": False,
        "admitted_on": "2026-01-10",
        "settled_at": "2026-01-15T10:00:00+08:00",
        "diagnosis": ["K35.8"],
        "items": items if items is not None else [item("A1", "1", 100000)],
    }
    event.update(fields)
    return event


def reversal(rid: str = "R1", sid: str = "S1", **fields) -> dict:
    event = {
        "type": "reversal",
        "schema_version": 1,
        "reversal_id": rid,
        "settlement_id": sid,
        "person_id": "P1",
        "reason": "refund",
        "settled_at": "2026-01-20T10:00:00+08:00",
    }
    event.update(fields)
    return event


def filing(fid: str = "F1", **fields) -> dict:
    event = {
        "type": "filing",
        "schema_version": 1,
        "filing_id": fid,
        "person_id": "P1",
        "home_region": "230100",
        "treatment_province": "110000",
        "filing_kind": "long_term",
        "valid_from": "2025-01-01",
        "valid_to": None,
    }
    event.update(fields)
    return event


def raw(event: dict) -> bytes:
    return orjson.dumps(event)
