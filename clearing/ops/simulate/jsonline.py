"""How the bundle writes a JSON line."""

from __future__ import annotations

import json
from typing import Any


def dump(event: Any) -> str:
    return json.dumps(event, ensure_ascii=False)
