"""What a test does when a service it needs is missing.

A missing service skips its tests on a developer's machine but fails them under CI=true:
a green CI run must mean the integration tests really ran.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: integration tests may not be skipped)", pytrace=False)
    pytest.skip(reason)
