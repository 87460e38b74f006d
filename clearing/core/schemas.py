"""The published contract: the models' JSON Schemas, rendered the same way everywhere."""

from __future__ import annotations

import json

from pydantic import BaseModel, TypeAdapter

from clearing.core.jsonish import JSONObject
from clearing.core.models.events import Assistance, Filing, Reversal, Settlement
from clearing.core.models.flags import Flag
from clearing.core.models.refdata import Catalog, Policy
from clearing.core.models.results import Result

DOCUMENTS: dict[str, type[BaseModel] | TypeAdapter[Result] | TypeAdapter[Flag]] = {
    "settlement": Settlement,
    "reversal": Reversal,
    "filing": Filing,
    "assistance": Assistance,
    "policy": Policy,
    "catalog": Catalog,
    "result": TypeAdapter(Result),
    "flag": TypeAdapter(Flag),
}


def generate() -> dict[str, JSONObject]:
    """Every published schema by name."""
    out = {}
    for name, model in DOCUMENTS.items():
        if isinstance(model, TypeAdapter):
            schema = model.json_schema(mode="serialization")
        else:
            schema = model.model_json_schema(mode="validation")
        out[name] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return out


def render(schema: JSONObject) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
