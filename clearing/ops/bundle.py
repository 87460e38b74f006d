"""Reading a bundle from disk: its reference-data folder and its events file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from clearing.core.models.refdata import Catalog, Policy
from clearing.core.refdata import RefData, RefDataError, parse_document, refdata_from


def refdata_paths(directory: Path) -> list[tuple[Path, type[Policy] | type[Catalog]]]:
    """Every `policies/*.json` and `catalogs/*.json`, with the kind its folder promises."""
    policies = sorted((directory / "policies").glob("*.json"))
    catalogs = sorted((directory / "catalogs").glob("*.json"))
    if not policies and not catalogs:
        raise RefDataError(f"{directory}: no policies/*.json or catalogs/*.json found")
    return [(path, Policy) for path in policies] + [(path, Catalog) for path in catalogs]


def read_documents(directory: Path | str) -> Iterator[tuple[Path, bytes, Policy | Catalog]]:
    """(path, raw bytes, parsed document) of every reference-data file, checked by folder."""
    for path, expected in refdata_paths(Path(directory)):
        raw = path.read_bytes()
        doc = parse_document(raw, str(path))
        if not isinstance(doc, expected):
            raise RefDataError(f"{path}: is not a {expected.__name__.lower()}")
        yield path, raw, doc


def load_refdata(directory: Path | str) -> RefData:
    """The reference data of a bundle's refdata folder."""
    return refdata_from((str(path), doc) for path, _, doc in read_documents(directory))


def event_lines(path: Path) -> Iterator[bytes]:
    """Lines without their newline, as `clearing price` reads them (blank lines count)."""
    with open(path, "rb") as handle:
        for line in handle:
            yield line[:-1] if line.endswith(b"\n") else line
