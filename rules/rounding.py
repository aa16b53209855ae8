"""Rounding for output only: every limit test is done on exact values before anything is rounded."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def rounded(value: Fraction | int | None, places: int) -> float | None:
    """Half-up rounding of an exact value for output only; None stays None."""
    if value is None:
        return None
    exact = (
        Decimal(value.numerator) / Decimal(value.denominator)
        if isinstance(value, Fraction)
        else Decimal(value)
    )
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
