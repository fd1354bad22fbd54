"""Rows a fit has not seen, in that fit's terms: the fixed columns and group codes a prediction needs.

New rows reuse the fitted design's transform state (the centre and scale of the fitted rows), its
fixed-effect columns and its group levels. A level of a grouping factor the fit never saw gets no
group effect, so its prediction is the population's, as in statsmodels' and Bambi's predictions.
A row that lacks a value the model needs, holds a level of a categorical predictor the fit never
saw, or whose offset is not a finite number, cannot be predicted (NaN). The outcome's columns (the
response, both sides of ``cbind()``) are not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare_kit.design import Design, is_factor, level_text, model_columns
from compare_kit.errors import DataError
from compare_kit.expressions import evaluate


@dataclass(frozen=True, eq=False)
class NewRows:
    """The fitted design's columns for new rows; rows that cannot be predicted are all-zero and marked."""

    x: pd.DataFrame  # the fitted design's fixed-effect columns
    z: tuple[pd.DataFrame, ...]  # per grouping block, its random-effect columns
    codes: tuple[np.ndarray, ...]  # per block, the index of each row's level in the fitted levels; -1: unseen
    usable: np.ndarray  # per row: every value the model needs is there, and every level is known
    offset: np.ndarray | None = None  # the formula's offset(...) per row (0 where not usable); None without one

    @property
    def n(self) -> int:
        return len(self.usable)


def new_rows(design: Design, data: pd.DataFrame) -> NewRows:
    """``data``'s rows in ``design``'s terms (see the module docstring); the response is not needed."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"new data must be a pandas DataFrame, got {type(data).__name__}")
    spec = design.spec
    needed = [c for c in spec.columns if c not in spec.response_columns]  # the parser keeps them out of the rest
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise DataError(f"the new rows need the column(s) {', '.join(repr(c) for c in missing)}, which the "
                        "model uses")
    frame = data.reset_index(drop=True)
    usable = frame[needed].notna().all(axis=1).to_numpy().copy()
    for column in _categorical_predictors(design):
        known = set(design.state.levels[column])
        usable &= frame[column].map(level_text).isin(known).to_numpy()
    columns = model_columns(design, frame.loc[usable, needed])
    x = _spread(columns.x, usable)
    z = tuple(_spread(part, usable) for part in columns.z)
    codes = []
    for code in columns.codes:
        spread = np.full(len(frame), -1)
        spread[usable] = code
        codes.append(spread)
    offset = None
    if spec.offset is not None:  # an offset that is not a finite number (log(0), text) cannot be predicted from
        values = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float) for c in spec.offset.columns}
        with np.errstate(all="ignore"):
            offset = np.broadcast_to(evaluate(spec.offset.expression, values.__getitem__), (len(frame),)).copy()
        usable = usable & np.isfinite(offset)
        offset[~usable] = 0.0
    return NewRows(x, z, tuple(codes), usable, offset)


def _categorical_predictors(design: Design) -> list[str]:
    """Categorical columns inside fixed or random terms (not grouping factors): a new level has no column."""
    spec = design.spec
    return list(dict.fromkeys(v.column for v in spec.variables[1:] if is_factor(v, design.categorical)))


def _spread(part: pd.DataFrame, usable: np.ndarray) -> pd.DataFrame:
    """The usable rows' values in place among all rows; the other rows all zero."""
    out = np.zeros((len(usable), part.shape[1]))
    out[usable] = part.to_numpy(dtype=float)
    return pd.DataFrame(out, columns=part.columns)
