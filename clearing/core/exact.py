"""Exact money arithmetic: integer fen and basis points, halves rounded up, never a float."""

from __future__ import annotations


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves up (both non-negative)."""
    return (2 * numerator + denominator) // (2 * denominator)


def line_amount(quantity_e4: int, unit_price_fen: int) -> int:
    """round_half_up(quantity × unit price), exactly, with the quantity in ten-thousandths."""
    return (quantity_e4 * unit_price_fen * 2 + 10_000) // 20_000


def share(amount: int, ratio_bp: int) -> int:
    """round_half_up(amount × ratio_bp / 10000)."""
    return round_half_up(amount * ratio_bp, 10_000)
