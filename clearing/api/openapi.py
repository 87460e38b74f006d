"""The API's OpenAPI 3.1 document, generated from the same pydantic models that judge events
and shape results, so the document cannot drift from the code.

`schemas/openapi.json` in the repository is a generated copy; a test fails when it is stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from clearing.api.config import MAX_BODY_BYTES
from clearing.core.jsonish import JSONObject
from clearing.core.models.events import Reversal, Settlement
from clearing.core.models.results import Invalid, Priced, Rejected, Reversed
from clearing.core.schemas import render

REF = "#/components/schemas/{model}"
ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"


class FieldErrorBody(BaseModel):
    """One invalid field: its dotted path (`items.2.quantity`; empty for the whole event)."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer; `fields` names each invalid field (400) or the offending one."""

    error: str
    fields: list[FieldErrorBody] | None = None
    result: JSONObject | None = None


class Pending(BaseModel):
    """Accepted; the result is not there yet: poll the `Location`."""

    status: Literal["pending"]
    settlement_id: str | None = None
    reversal_id: str | None = None


MODELS: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
    (Settlement, "validation"),
    (Reversal, "validation"),
    (Priced, "serialization"),
    (Reversed, "serialization"),
    (Rejected, "serialization"),
    (Invalid, "serialization"),
    (Pending, "serialization"),
    (ErrorBody, "serialization"),
]


def _ref(name: str) -> JSONObject:
    return {"$ref": REF.format(model=name)}


def _one_of(*names: str) -> JSONObject:
    return {
        "oneOf": [_ref(n) for n in names],
        "discriminator": {
            "propertyName": "status",
            "mapping": {n.lower(): REF.format(model=n) for n in names},
        },
    }


def _json(schema: JSONObject, description: str, headers: JSONObject | None = None) -> JSONObject:
    out: JSONObject = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        out["headers"] = headers
    return out


def _error(description: str) -> JSONObject:
    return _json(_ref("ErrorBody"), description)


LOCATION = {"Location": {"description": "where to read the result", "schema": {"type": "string"}}}

ERRORS = {
    "BadRequest": "not JSON, not an object, or not a valid event: `fields` names every field",
    "Unauthorized": "no bearer token, or an unknown or revoked one",
    "Forbidden": "the event belongs to another hospital",
    "NotFound": "no such result for this hospital (another hospital's is not revealed)",
    "Conflict": "the id was already used with other content",
    "TooLarge": f"the body is larger than the limit ({MAX_BODY_BYTES} bytes by default)",
    "Unavailable": "the broker did not acknowledge the event: retry with the same content",
}


def _submit(kind: str, model: str, results: JSONObject) -> JSONObject:
    return {
        "post": {
            "operationId": f"submit_{kind}",
            "summary": f"Submit a {kind} (events.md); accepted once per {kind}_id",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(model)}},
            },
            "responses": {
                "200": _json(results, "the same id and content again: the original result"),
                "201": _json(results, "accepted and processed: the result", LOCATION),
                "202": _json(_ref("Pending"), "accepted; the result is not there yet", LOCATION),
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "409": {"$ref": "#/components/responses/Conflict"},
                "413": {"$ref": "#/components/responses/TooLarge"},
                "503": {"$ref": "#/components/responses/Unavailable"},
            },
        }
    }


def _trial(results: JSONObject) -> JSONObject:
    trial: JSONObject = {
        "allOf": [
            results,
            {
                "type": "object",
                "properties": {"trial": {"const": True}},
                "required": ["trial"],
            },
        ]
    }
    return {
        "post": {
            "operationId": "trial_settlement",
            "summary": (
                "Price a settlement now without settling it (tiers.md, trial pricing): "
                "nothing is changed, published or recorded; its settlement_id is not checked "
                "against ids already taken"
            ),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Settlement")}},
            },
            "responses": {
                "200": _json(trial, "the result the settlement would get now, `trial: true`"),
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "413": {"$ref": "#/components/responses/TooLarge"},
                "503": _error("trial pricing is not available on this server"),
            },
        }
    }


def _read(kind: str, results: JSONObject) -> JSONObject:
    return {
        "get": {
            "operationId": f"get_{kind}",
            "summary": f"The result of a {kind} this hospital submitted",
            "parameters": [
                {
                    "name": f"{kind}_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": ID_PATTERN},
                }
            ],
            "responses": {
                "200": _json(results, "the result"),
                "202": _json(_ref("Pending"), "accepted; the result is not there yet", LOCATION),
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        }
    }


def generate() -> JSONObject:
    """The whole document."""
    _, defs = models_json_schema(MODELS, ref_template=REF)
    for name in ("Priced", "Reversed", "Rejected", "Invalid", "Pending"):
        # Always present in an answer (a default in the model), and the discriminator.
        required = defs["$defs"][name].setdefault("required", [])
        if "status" not in required:
            required.insert(0, "status")
    settlement_result = _one_of("Priced", "Rejected", "Invalid")
    reversal_result = _one_of("Reversed", "Rejected", "Invalid")
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Clearinghouse submission API",
            "version": "1",
            "description": (
                "Hospitals submit settlements and reversals (events.md) and read their "
                "results (pricing.md). Each hospital authenticates with its own bearer "
                "token and sees only its own events. Every answer is JSON."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/v1/settlements": _submit("settlement", "Settlement", settlement_result),
            "/v1/settlements/trial": _trial(settlement_result),
            "/v1/reversals": _submit("reversal", "Reversal", reversal_result),
            "/v1/settlements/{settlement_id}": _read("settlement", settlement_result),
            "/v1/reversals/{reversal_id}": _read("reversal", reversal_result),
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
                }
            },
        },
        "components": {
            "schemas": defs["$defs"],
            "responses": {name: _error(text) for name, text in ERRORS.items()},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(generate()), encoding="utf-8")
    return path
