"""The names for JSON-shaped data: what orjson reads from a message and writes into one.

A result is a pydantic model (`clearing.core.models.results`) until it is serialised; from
there on — a result message, a statement, an alert, an API body — it is JSON. Where the shape is
fixed a `TypedDict` says it (`clearing.core.netting.Statement`); everywhere else these aliases:

- `JSONObject`: a JSON object built here or decoded from a message. Keys are strings; values
  are read by key and their type is the key's, so `Any` rather than a union to narrow at each
  read.
- `JSONMapping`: the same, only read (a `TypedDict` passes as one too).

Annotations only: nothing here validates or converts at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

JSONObject: TypeAlias = dict[str, Any]
JSONMapping: TypeAlias = Mapping[str, Any]
