"""Counts and ranges in words, with the right number: ``1 row``, ``3 rows``, ``10 rows each``.

One place for the grammar of every message and page that states a count, so that none says
"1 rows", "from 10 to 10 rows each" or "(1 workers)".
"""

from __future__ import annotations


def count(n: float, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it needs: ``count(1, "row")`` -> ``"1 row"``.

    Whole numbers are written without a decimal point; the plural is ``singular + "s"`` unless given.
    """
    value = float(n)
    number = f"{int(value)}" if value.is_integer() else f"{value:g}"
    return f"{number} {singular if value == 1 else (plural or singular + 's')}"


def size_range(low: float, high: float, singular: str, plural: str | None = None) -> str:
    """``"from 3 to 10 rows each"``, or ``"10 rows each"`` when every size is the same."""
    if float(low) == float(high):
        return f"{count(high, singular, plural)} each"
    noun = plural or singular + "s"
    return f"from {count(low, singular, plural).split(' ')[0]} to {count(high, noun, noun)} each"


__all__ = ["count", "size_range"]
