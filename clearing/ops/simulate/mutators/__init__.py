"""Malformed-input mutators: each spoils a fresh valid event into an invalid line and says how.

A mutator takes the stream's generator and the event (which it may change) and returns the line
and a description of the fault.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any

from clearing.ops.simulate.mutators.assistance import assistance_mutation
from clearing.ops.simulate.mutators.fields import (
    m_bad_enum,
    m_bad_id,
    m_bad_region,
    m_bad_schema_version,
    m_missing_field,
    m_out_of_range,
    m_unknown_field,
    m_wrong_type,
)
from clearing.ops.simulate.mutators.filing_reversal import filing_mutation, reversal_mutation
from clearing.ops.simulate.mutators.syntax import m_blank, m_not_object, m_too_deep, m_unparseable
from clearing.ops.simulate.mutators.values import (
    m_bad_date,
    m_bad_diagnosis,
    m_bad_items,
    m_bad_quantity,
    m_bad_timestamp,
)

Mutation = Callable[[Random, dict[str, Any]], tuple[str, str]]

# (tag, weight, mutation, the event it starts from)
MUTATIONS: tuple[tuple[str, int, Mutation, str], ...] = (
    ("unparseable", 8, m_unparseable, "settlement"),
    ("blank", 6, m_blank, "settlement"),
    ("too_deep", 1, m_too_deep, "settlement"),
    ("not_object", 3, m_not_object, "settlement"),
    ("wrong_type", 16, m_wrong_type, "settlement"),
    ("unknown_field", 6, m_unknown_field, "settlement"),
    ("missing_field", 7, m_missing_field, "settlement"),
    ("bad_id", 7, m_bad_id, "settlement"),
    ("bad_region", 6, m_bad_region, "settlement"),
    ("bad_timestamp", 8, m_bad_timestamp, "settlement"),
    ("bad_date", 5, m_bad_date, "settlement"),
    ("bad_quantity", 8, m_bad_quantity, "settlement"),
    ("bad_enum", 5, m_bad_enum, "settlement"),
    ("out_of_range", 5, m_out_of_range, "settlement"),
    ("bad_schema_version", 3, m_bad_schema_version, "settlement"),
    ("bad_diagnosis", 4, m_bad_diagnosis, "settlement"),
    ("bad_items", 3, m_bad_items, "settlement"),
    ("bad_filing", 6, filing_mutation, "filing"),
    ("bad_reversal", 5, reversal_mutation, "reversal"),
    ("bad_assistance", 4, assistance_mutation, "assistance"),
)
