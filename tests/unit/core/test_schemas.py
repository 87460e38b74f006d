"""The published JSON Schemas are generated from the models and kept in step with them."""

from __future__ import annotations

import json

from support.paths import SCHEMAS

from clearing.core.schemas import generate, render


def test_committed_schemas_are_current():
    for name, schema in generate().items():
        path = SCHEMAS / f"{name}.schema.json"
        assert path.exists(), f"{path.name} missing: run `clearing schemas`"
        assert path.read_text(encoding="utf-8") == render(schema), (
            f"{path.name} is stale: run `clearing schemas`"
        )


def test_schemas_carry_the_syntax_rules():
    settlement = json.loads((SCHEMAS / "settlement.schema.json").read_text())
    assert settlement["additionalProperties"] is False
    props = settlement["properties"]
    assert props["settlement_id"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    assert "pattern" in props["settled_at"]
    assert props["hospital_level"]["maximum"] == 3
    assert set(settlement["required"]) >= {"settlement_id", "items", "settled_at"}


def test_schemas_command_writes_every_schema_and_the_openapi_document(tmp_path):
    from clearing.api.openapi import generate as generate_openapi
    from clearing.cli import main

    assert main(["schemas", "--out", str(tmp_path)]) == 0
    for name, schema in generate().items():
        assert (tmp_path / f"{name}.schema.json").read_text(encoding="utf-8") == render(schema)
    openapi = (tmp_path / "openapi.json").read_text(encoding="utf-8")
    assert openapi == render(generate_openapi())
