"""Publishing the models as JSON Schemas, so province nodes and hospitals validate before sending.

`schemas/` in the repository holds the generated files; a test fails when they are stale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from clearing.models.events import Filing, Reversal, Settlement
from clearing.models.refdata import Catalog, Policy
from clearing.models.results import Result

DOCUMENTS: dict[str, type[BaseModel] | TypeAdapter] = {
    "settlement": Settlement,
    "reversal": Reversal,
    "filing": Filing,
    "policy": Policy,
    "catalog": Catalog,
    "result": TypeAdapter(Result),
}


def generate() -> dict[str, dict]:
    """Every published schema by name."""
    out = {}
    for name, model in DOCUMENTS.items():
        if isinstance(model, TypeAdapter):
            schema = model.json_schema(mode="serialization")
        else:
            schema = model.model_json_schema(mode="validation")
        out[name] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return out


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    """Every event, reference-data and result schema, and the submission API's OpenAPI."""
    from clearing.api import openapi

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / f"{name}.schema.json"
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    written.append(openapi.write(directory / "openapi.json"))
    return written


def run(args: argparse.Namespace) -> int:
    for path in write(args.out):
        print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schemas", help="write the published JSON Schemas and the API's OpenAPI document"
    )
    parser.add_argument("--out", type=Path, default=Path("schemas"), help="output folder")
    parser.set_defaults(func=run)
