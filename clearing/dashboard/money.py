"""Yuan from integer fen, with thousands separators, without ever going through a float.

The page's JavaScript formats the same way (`yuan()` in static/dashboard.html); tests use this
function to say what the page must show.
"""

from __future__ import annotations


def yuan(fen: int) -> str:
    """`123456789` -> `¥1,234,567.89`; `-5` -> `-¥0.05`."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"an amount is an integer number of fen, not {fen!r}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def percent(basis_points: int | None) -> str:
    """`7000` -> `70.00 %`; None (no prepayment) -> `—`."""
    if basis_points is None:
        return "—"
    whole, rest = divmod(basis_points, 100)
    return f"{whole:,}.{rest:02d} %"
