"""The fuzzer's findings, each pinned by its smallest input: a clear error or a right answer, never an
exception from inside a library or a silently wrong number."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.data import parse_csv_text
from compare_kit.errors import DataError

REFUSED = [
    ("y ~ x", {"y": [1.0, 2.0, 3.0, 5.0], "x": [1, 2, 3, 4j]}, "holds complex numbers"),
    ("y ~ x", {"y": [1.0, 2.0, 3.0, 5.0], "x": [1, (1, 2), 2, 3]},
     "containers, not single values: '(1, 2)' (row 2)"),
    ("y ~ x", {"y": [1.0, 2.0, 3.0, 5.0], "x": ["a", [1, 2], "b", "a"]}, "containers, not single values"),
    ("y ~ 1 + (1 | g)", {"y": [1.0, 2.0, 3.0, 5.0, 4.0, 2.0], "g": ["a", "a", "", "", "b", "b"]},
     "'g' has empty labels: '' (row 3), in 2 rows"),
    ("y ~ `(Intercept)`", {"y": [-1.2, 2.9, 2.9, 4.0], "(Intercept)": [1.0, 2, 3, 5]},
     "the name of the intercept"),
    ("y ~ gb + C(g)", {"y": [1.0, 2, 3, 5], "gb": [1.0, 2, 5, 3], "g": list("abab")},
     "two model columns would both be called 'gb'"),
    ("y ~ `a:b` + a:b", {"y": [1.0, 2, 3, 5, 2], "a:b": [1.0, 2, 5, 3, 1], "a": [1.0, 3, 4, 3, 2],
                         "b": [2.0, 1, 4, 3, 1]}, "both be called 'a:b'"),
    ("y ~ 1 + (0 + Observation | Residual)", {"y": [1.0, 2, 3, 5, 2, 3], "Observation": [1.0, 2, 5, 3, 1, 2],
                                               "Residual": list("aabbcc")}, "may not be called 'Residual'"),
    ("y ~ x", {"y": [1.0, 2, 3, 4, 2, 1, 0, 5], "x": [1, 2, 3, 1e308, 5, 1, 2, 3]},
     "too large to fit reliably"),
    ("y ~ 1 + (1 | g)", {"y": [0.0] * 7 + [1e-300], "g": list("aabbccdd")}, "too small to fit reliably"),
    ("y ~ x + (1 | g)", {"y": [1.0, 2, 3, 4, 5, 6, 7, 9], "x": [1.0, 2, 3, 4, 5, 6, 7, 9],
                         "g": list("aabbccdd")}, "the fixed effects fit 'y' exactly"),
    ("y ~ x", {"y": [1.0, 2.0, 3.0], "x": [None, None, None]}, "no rows are left"),
    # x near 2^63 varying in its last bits: the random slope's equations were singular, and a
    # LinAlgError escaped the engine
    ("y ~ I(x^2) + (1 + I(-x) | g)", {"y": [0.3, -1.2, 0.8, 2.0, -0.4, 1.1, 0.2, -0.9, 0.5, 1.4, -0.7, 0.1],
                                       "x": [9.223372036854775e18 + 2048.0 * (i % 2) for i in range(12)],
                                       "g": list("aaabbbcccddd")}, "'I(x^2)' is constant in floating point"),
    ("y ~ 1 + (1 + x | g)", {"y": [0.3, -1.2, 0.8, 2.0, -0.4, 1.1, 0.2, -0.9, 0.5, 1.4, -0.7, 0.1],
                             "x": [9.223372036854775e18 + 2048.0 * (i % 2) for i in range(12)],
                             "g": list("aaabbbcccddd")}, "random-effect column of (1 + x | g) 'x' is constant"),
    ("y ~ I(x^2) + (1 | g)", {"y": [1.0, 2, 3, 5, 4, 2, 3, 1], "x": [1e30, 2e30, 3e30, 1e30, 2e30, 3e30, 1e30, 2e30],
                              "g": list("aabbccdd")}, "'I(x^2)' holds values too large to fit reliably"),
    ("y ~ 1 + (1 | g)", {"y": [1e12 + 1e-3 * (i % 3) for i in range(8)], "g": list("aabbccdd")},
     "the response 'y' is constant in floating point"),
]


@pytest.mark.parametrize(("formula", "table", "phrase"), REFUSED)
@pytest.mark.parametrize("mixedlm", [True, False])
def test_inputs_a_model_cannot_use_are_refused_clearly(formula, table, phrase, mixedlm):
    with pytest.raises(DataError, match=re.escape(phrase)):
        ck.fit_frequentist(ck.ModelSpec.from_formula(formula), pd.DataFrame(table), mixedlm=mixedlm)


def test_a_column_labelled_by_a_number_is_found_by_its_text():
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ `0`"),
                             pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], 0: [1.0, 2.0, 5.0, 3.0]}))
    assert list(fit.table("fixed")["term"]) == ["(Intercept)", "0"]


def test_least_squares_on_columns_of_very_different_sizes():
    """x's last value is -2^63 + 1: on the raw columns the solver dropped a direction (intercept 4.7e-38)."""
    x = np.array([1.0, 2, 3, -9223372036854775807])
    y = np.array([1.0, 2, 3, 4])
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ x"), pd.DataFrame({"y": y, "x": x}))
    expected = np.linalg.lstsq(np.column_stack([np.ones(4), x / np.abs(x).max()]), y, rcond=None)[0]
    fixed = fit.table("fixed").set_index("term")["estimate"]
    assert fixed["(Intercept)"] == pytest.approx(expected[0], rel=1e-9)
    assert fixed["x"] == pytest.approx(expected[1] / np.abs(x).max(), rel=1e-9)


def test_csv_edge_cases():
    with pytest.raises(DataError, match="no header row"):
        parse_csv_text('"\n')
    big = parse_csv_text("h\n1e308\n")["h"]
    assert big.dtype == float and big.iloc[0] == 1e308  # never wrapped into a negative int64
    assert parse_csv_text("h\n9007199254740992\n")["h"].dtype == np.int64  # 2^53: still exact
