"""Yuan from integer fen, with thousands separators, never through a float."""

from __future__ import annotations


def yuan(fen: int, symbol: str = "") -> str:
    """`123456789` -> `1,234,567.89`; with `symbol="¥"`, `-5` -> `-¥0.05`."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"an amount is an integer number of fen, not {fen!r}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{symbol}{whole:,}.{cents:02d}"


def percent(basis_points: int | None) -> str:
    """`7000` -> `70.00 %`; None (no prepayment) -> `—`."""
    if basis_points is None:
        return "—"
    whole, rest = divmod(basis_points, 100)
    return f"{whole:,}.{rest:02d} %"
