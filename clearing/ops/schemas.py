"""`clearing schemas`: writes the published JSON Schemas, so province nodes and hospitals
validate before sending. `schemas/` in the repository holds the generated files; a test fails
when they are stale.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clearing.api import openapi
from clearing.core.schemas import generate, render


def write(directory: Path) -> list[Path]:
    """Every event, reference-data and result schema, and the submission API's OpenAPI."""
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "schemas", help="write the published JSON Schemas and the API's OpenAPI document"
    )
    parser.add_argument("--out", type=Path, default=Path("schemas"), help="output folder")
    parser.set_defaults(func=run)
