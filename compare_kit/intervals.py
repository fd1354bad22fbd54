"""Symmetric Wald intervals and OLS's residual degrees of freedom (re-exported by ``results``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from compare_kit.design import Design


def ols_residual_df(design: Design) -> int:
    """An OLS fit's residual degrees of freedom: rows less estimable coefficients (its t intervals')."""
    return design.n - design.x_estimable.shape[1]


def wald_interval(estimate: np.ndarray, std_error: np.ndarray, level: float,
                  df: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric interval ``estimate ± q * se``: q the normal quantile, or Student's t with ``df``
    degrees of freedom when given (OLS)."""
    from scipy.stats import norm, t

    q = norm.ppf(0.5 + level / 2) if df is None else t.ppf(0.5 + level / 2, df)
    return estimate - q * std_error, estimate + q * std_error
