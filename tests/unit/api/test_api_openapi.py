"""The API's OpenAPI document: generated from the models, committed copy current, refs whole."""

from __future__ import annotations

import json

from support.paths import SCHEMAS

from clearing.api.openapi import REF, generate
from clearing.core.models.events import Reversal, Settlement
from clearing.core.models.results import Priced
from clearing.core.schemas import render

COMMITTED = SCHEMAS / "openapi.json"


def refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_committed_copy_is_current() -> None:
    assert COMMITTED.exists(), "schemas/openapi.json missing: run `clearing openapi`"
    assert COMMITTED.read_text(encoding="utf-8") == render(generate()), (
        "schemas/openapi.json is stale: run `clearing openapi`"
    )


def test_every_reference_resolves() -> None:
    document = generate()
    for ref in refs(document):
        node = document
        assert ref.startswith("#/"), ref
        for part in ref[2:].split("/"):
            assert part in node, ref
            node = node[part]


def test_request_and_response_schemas_are_the_models() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    for model in (Settlement, Reversal):
        own = model.model_json_schema(ref_template=REF)
        own.pop("$defs", None)
        assert schemas[model.__name__] == own
    assert set(Priced.model_fields) <= set(schemas["Priced"]["properties"])
    paths = document["paths"]
    body = paths["/v1/settlements"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Settlement"}
    for path, item in paths.items():
        for operation in item.values():
            codes = set(operation["responses"])
            if path == "/v1/openapi.json":
                assert operation["security"] == []
            elif operation["operationId"].startswith("submit_"):
                assert codes >= {"200", "201", "202", "400", "401", "403", "409", "413"}
            elif operation["operationId"] == "trial_settlement":
                assert codes >= {"200", "400", "401", "403", "413"}
                assert "201" not in codes and "409" not in codes  # nothing is taken
            else:
                assert codes >= {"200", "202", "401", "404"}
