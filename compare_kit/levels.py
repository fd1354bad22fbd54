"""The levels of a categorical column: their text labels (numbers sorted as numbers, whole floats
without their '.0'), each row's code, and codes carried from one set of levels to another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare_kit.table_checks import is_text

__all__ = ["level_codes", "level_labels", "level_text", "recoded"]


def level_labels(series: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and sorted text labels of a categorical column (numbers sort as numbers)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.cat.remove_unused_categories()
        labels = tuple(level_text(c) for c in series.cat.categories)
        return series.cat.codes.to_numpy(), labels
    if is_text(series):
        text = series.astype(str)
        uniques = sorted(text.unique())
        index = {u: i for i, u in enumerate(uniques)}
        return text.map(index).to_numpy(dtype=int), tuple(uniques)
    uniques_num = np.unique(series.to_numpy())
    codes = np.searchsorted(uniques_num, series.to_numpy())
    return codes, tuple(level_text(u) for u in uniques_num)


def level_codes(series: pd.Series, labels: tuple[str, ...]) -> np.ndarray:
    """Each row's index in ``labels`` (the fitted rows' levels); -1 for a level not among them."""
    codes, own = level_labels(series)
    return recoded(codes, own, labels)


def recoded(codes: np.ndarray, own: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
    """Codes into ``own`` as codes into ``labels``; -1 for a level not among ``labels``."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index.get(label, -1) for label in own] + [-1], dtype=int)[codes]


def level_text(value: object) -> str:
    """A level's label: whole floats without their '.0' (so 1 and 1.0 are one level)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
