"""Reference data and events for the one-stop settlement tests (`tiers.md`).

The policy is support/builders.py's (230000, employee, 2026) with the two blocks added; a
settlement there is inpatient at a level-3 hospital, so (filed) its basic fund pays 85 % of
the eligible amount above the 120,000 deductible up to 3,000,000, and 91 % above.
"""

from __future__ import annotations

import copy

from clearing.core.models.refdata import Catalog, Policy
from clearing.core.refdata import RefData
from support.builders import CATALOG, POLICY

CRITICAL = {
    "kinds": ["inpatient", "chronic"],
    "annual_threshold_fen": 300000,
    "bands": [
        {"upto_fen": 500000, "ratio_bp": 5000},
        {"upto_fen": 1500000, "ratio_bp": 6000},
        {"upto_fen": None, "ratio_bp": 7500},
    ],
    "annual_cap_fen": 800000,
}

ASSISTANCE = {
    "kinds": ["inpatient"],
    "ratio_bp": {"A": 9000, "B": 6000},
    "annual_cap_fen": 500000,
}

_ABSENT = object()


def tier_policy(critical=_ABSENT, assistance=_ABSENT, **changes) -> dict:
    """The policy document with the blocks (None leaves a block out)."""
    policy = copy.deepcopy(POLICY)
    policy.update(changes)
    for name, block, default in (
        ("critical", critical, CRITICAL),
        ("assistance", assistance, ASSISTANCE),
    ):
        chosen = default if block is _ABSENT else block
        if chosen is not None:
            policy[name] = copy.deepcopy(chosen)
    return policy


def tier_refdata(*policies: dict) -> RefData:
    """Reference data of the given policy documents (default: one with both blocks)."""
    data = RefData()
    for policy in policies or (tier_policy(),):
        data.add_policy(Policy.model_validate(policy))
    data.add_catalog(Catalog.model_validate(CATALOG))
    data.add_catalog(Catalog.model_validate({**CATALOG, "province": "230000"}))
    return data


def assistance(aid: str = "AS1", class_: str = "A", **fields) -> dict:
    event = {
        "type": "assistance",
        "schema_version": 1,
        "assistance_id": aid,
        "person_id": "P1",
        "home_region": "230100",
        "class": class_,
        "valid_from": "2025-01-01",
        "valid_to": None,
    }
    event.update(fields)
    return event
