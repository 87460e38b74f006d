"""Money as the page shows it: yuan with the ¥ sign.

The page's JavaScript formats the same way (`yuan()` in static/dashboard.html); tests use this
function to say what the page must show.
"""

from __future__ import annotations

from clearing.core import money
from clearing.core.money import percent

__all__ = ["percent", "yuan"]


def yuan(fen: int) -> str:
    """`123456789` -> `¥1,234,567.89`; `-5` -> `-¥0.05`."""
    return money.yuan(fen, symbol="¥")
