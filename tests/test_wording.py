"""The grammar of counts and ranges (compare_kit.wording)."""

from __future__ import annotations

import pytest

from compare_kit.wording import count, size_range


@pytest.mark.parametrize(("n", "text"), [(0, "0 rows"), (1, "1 row"), (1.0, "1 row"), (2, "2 rows"),
                                         (2.5, "2.5 rows"), (12000, "12000 rows")])
def test_count_agrees_in_number(n, text):
    assert count(n, "row") == text


def test_count_takes_an_irregular_plural():
    assert count(1, "quantity", "quantities") == "1 quantity"
    assert count(3, "quantity", "quantities") == "3 quantities"


@pytest.mark.parametrize(("low", "high", "text"), [(10, 10, "10 rows each"), (1, 1, "1 row each"),
                                                   (1, 10, "from 1 to 10 rows each"),
                                                   (3, 7, "from 3 to 7 rows each")])
def test_size_range_says_one_size_once(low, high, text):
    assert size_range(low, high, "row") == text
