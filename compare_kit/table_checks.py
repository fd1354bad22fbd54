"""Checks of a user's table against a model spec, cell by cell, before any matrix is built.

Every problem is a ``DataError`` that names the column, the offending values and their rows, and
what would work; a text column the model reads as a plain predictor becomes categorical, with a note.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from compare_kit.data import separator_hint
from compare_kit.errors import DataError
from compare_kit.family import Family
from compare_kit.spec import ModelSpec, Variable


def closest_columns(name: str, columns: list[str]) -> list[str]:
    """Up to three existing column names that look like ``name``."""
    lowered = {c.lower(): c for c in columns}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    return [lowered[h] for h in hits]


def check_columns(spec: ModelSpec, data: pd.DataFrame) -> None:
    columns = [str(c) for c in data.columns]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise DataError(f"the table has duplicated column names: {', '.join(dupes)}; "
                        "rename them so that each column has one name")
    for name in spec.columns:
        if name not in columns:
            hint = closest_columns(name, columns)
            hint_text = (f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint
                         else f"; the table's columns are: {', '.join(columns[:20])}")
            raise DataError(f"the formula uses the column {name!r}, which is not in the table{hint_text}")


def _numeric_roles(spec: ModelSpec) -> dict[str, Variable]:
    """The columns the formula reads as numbers (no ``C()``), each with its first variable: the outcome's
    (but a bernoulli response, which may be text), the predictors' and the offset's."""
    roles: dict[str, Variable] = {}
    outcome = () if spec.family is Family.BERNOULLI else spec.outcome_variables
    offset = (spec.offset.variable,) if spec.offset is not None else ()
    for v in outcome + spec.variables[1:] + offset:
        if not v.categorical:
            for column in v.columns:
                roles.setdefault(column, v)
    return roles


def _offending(values: pd.Series) -> str:
    """Up to five distinct values, each with its first row (counted from 1, as data rows below a CSV's
    header), and how many rows hold such values."""
    first = values.astype(str).str.strip().drop_duplicates()
    shown = ", ".join(f"{v!r} (row {i + 1})" for i, v in first.iloc[:5].items())
    more = f" and {len(first) - 5} other value(s)" if len(first) > 5 else ""
    return shown + more + (f", in {len(values)} rows" if len(values) > 1 else "")


def check_text_where_numbers_are_read(spec: ModelSpec, data: pd.DataFrame) -> tuple[str, ...]:
    """A text column where the formula reads numbers: typos, footer rows and thousands separators or
    decimal commas are refused with the offending values; a column of text used as a plain predictor
    is categorical, as in R, with a note naming its levels."""
    notes = []
    for column, var in _numeric_roles(spec).items():
        series = data[column]
        if not is_text(series) or series.isna().all():
            continue  # a column with no values: its rows are dropped, and said so
        present = series.dropna().reset_index(drop=True).set_axis(np.flatnonzero(series.notna()))
        text = present.astype(str)
        hints = text.map(separator_hint)
        numberlike = text.map(looks_numeric) | hints.notna()
        bad = present[~numberlike]
        mostly_numbers = len(present) and numberlike.mean() > 0.5
        response = var in spec.outcome_variables
        if response or not var.as_is or mostly_numbers:
            if hints.notna().any():
                first = hints.dropna()
                raise DataError(f"the column {column!r} holds numbers the table cannot read: "
                                f"{first.iloc[0]} ({int(hints.notna().sum())} value(s), first in row "
                                f"{first.index[0] + 1})")
            if len(bad) == 0:
                continue  # numbers kept as text (e.g. '007'): the checks after dropping rows say what to do
            if response:
                what = f"the response {column!r} must be numeric"
                advice = ("fix or remove those rows (a footer or notes row, say)" if mostly_numbers else
                          "the outcome must be a number in every row; for a yes/no outcome give "
                          "family='bernoulli' and the level that counts as a success (--family bernoulli "
                          "--success Y; success = \"Y\" in a study file)")
            elif not var.as_is:
                offset = spec.offset is not None and var == spec.offset.variable
                label = spec.offset.label if offset else var.label
                what = f"{label} reads {column!r} as numbers"
                advice = "fix or remove those rows" if mostly_numbers else f"{label} cannot apply to text"
            else:
                what = f"the predictor {column!r} is mostly numbers"
                advice = f"fix those values, or write C({column}) if its values are categories"
            raise DataError(f"{what}, but it holds text: {_offending(bad)}; {advice}")
        levels = sorted(text.unique())
        shown = ", ".join(levels[:8]) + (f" and {len(levels) - 8} more" if len(levels) > 8 else "")
        notes.append(f"{column!r} holds text, so it is a categorical predictor with {len(levels)} levels "
                     f"({shown}); write C({column}) to say so")
    return tuple(notes)


def is_text(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def looks_numeric(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


# the largest magnitude, and the smallest non-zero one, a model column may hold: squares and cross
# products of such values stay finite and normal in float64 (beyond, a table is refused: rescale it)
LARGEST = 1e50
SMALLEST = 1e-50
RESERVED_GROUPS = frozenset({"Residual"})  # the residual's own group name in the tidy tables
RESERVED_COLUMNS = frozenset({"(Intercept)"})


def with_text_labels(data: pd.DataFrame) -> pd.DataFrame:
    """The table with every column label as text (a formula names columns by text)."""
    if all(isinstance(c, str) for c in data.columns):
        return data
    return data.rename(columns=str)


def check_cells(spec: ModelSpec, data: pd.DataFrame) -> None:
    """Cells a model cannot use: lists or other containers, complex numbers, values too large or too
    small for float64 arithmetic, empty group labels; and names the tidy tables reserve."""
    for name in spec.columns:
        if name in RESERVED_COLUMNS:
            raise DataError(f"a column may not be called {name!r}: that is the name of the intercept; "
                            "rename the column")
    for r in spec.random:
        if r.group in RESERVED_GROUPS:
            raise DataError(f"a grouping factor may not be called {r.group!r}: the residual SD is reported "
                            "under that name; rename the column")
    groups = {g for r in spec.random for g in r.grouping}
    for column in spec.columns:
        series = data[column].reset_index(drop=True)  # rows counted by position, whatever the index
        if series.dtype == object:
            nested = series[series.map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray))]
            if len(nested):
                raise DataError(f"the column {column!r} holds containers, not single values: "
                                f"{_offending(nested)}; give each cell one value")
        complex_cells = series.dtype == object and series.map(lambda v: isinstance(v, complex)).any()
        if pd.api.types.is_complex_dtype(series) or complex_cells:
            raise DataError(f"the column {column!r} holds complex numbers; compare_kit models real numbers")
        if column in groups and is_text(series):
            empty = series[series.map(lambda v: isinstance(v, str) and not v.strip())]
            if len(empty):
                raise DataError(f"the grouping column {column!r} has empty labels: {_offending(empty)}; give "
                                "those groups a name, or leave the cells missing to drop the rows")
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            check_magnitudes(f"the column {column!r}", series.to_numpy(dtype=float),
                             "rescale it, e.g. express it in other units")


def check_magnitudes(what: str, values: np.ndarray, remedy: str) -> None:
    """Raise a DataError when a finite value's magnitude lies outside ``SMALLEST`` .. ``LARGEST``."""
    size = np.abs(values[np.isfinite(values)])
    bad = (size > LARGEST) | ((size > 0) & (size < SMALLEST))
    if bad.any():
        sample = float(size[bad][0])
        raise DataError(f"{what} holds values too {'large' if sample > 1 else 'small'} to fit reliably (e.g. "
                        f"{sample:.3g}; compare_kit takes magnitudes from {SMALLEST:g} to {LARGEST:g}): "
                        f"{remedy}")

