"""Where the tests find the repository and the shared sample, wherever the test files sit.

- `ROOT`: the repository (the directory holding pyproject.toml);
- `SHARED`: the shared material, `$CLEARING_SHARED` when set, else `shared/` beside the
  repository; `CASES`: its sample bundle (events, refdata, priced results, statements);
- `SCHEMAS`: the committed JSON Schemas and OpenAPI document.
"""

from __future__ import annotations

import os
from pathlib import Path


def _repository() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise RuntimeError(f"no pyproject.toml above {__file__}")


ROOT = _repository()
SHARED = Path(os.environ.get("CLEARING_SHARED") or ROOT.parent / "shared")
CASES = SHARED / "cases"
SCHEMAS = ROOT / "schemas"
