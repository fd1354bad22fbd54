"""Stateful transforms: what a fit's own rows fix for ``center()``, ``scale()`` and ``poly()``.

New rows (cross-validation folds, predictions) are put on the fitted rows' scale with this state, as
formulaic and R's ``predict`` do. ``poly(x, k)`` is R's orthogonal polynomial basis: the three-term
recurrence of ``stats::poly`` with the training rows' centres ``alpha`` and squared norms ``norm2``,
written here because neither numpy nor scipy keeps a basis for new data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compare_kit.errors import DataError


@dataclass(frozen=True)
class PolyBasis:
    """R's ``poly(x, degree)`` coefficients: ``alpha`` (degree values) and ``norm2`` (degree + 2)."""

    alpha: tuple[float, ...]
    norm2: tuple[float, ...]

    @property
    def degree(self) -> int:
        return len(self.alpha)

    @classmethod
    def fit(cls, values: np.ndarray, degree: int, column: str) -> PolyBasis:
        """The basis of ``values``; a ``DataError`` unless there are more distinct values than ``degree``."""
        distinct = len(np.unique(values))
        if degree >= distinct:
            raise DataError(f"poly({column}, {degree}) needs more than {degree} distinct values of {column!r}, "
                            f"which has {distinct}; use a lower degree")
        alpha: list[float] = []
        norm2 = [1.0, float(len(values))]
        previous, current = np.zeros_like(values), np.ones_like(values)
        for k in range(degree):
            alpha.append(float(np.sum(values * current**2) / norm2[-1]))
            step = norm2[-1] / norm2[-2] if k > 0 else 0.0
            previous, current = current, (values - alpha[-1]) * current - step * previous
            norm2.append(float(np.sum(current**2)))
        spread = float(np.var(values))  # p_k is monic of degree k: its squared norm is of order n spread^k
        relative = [norm2[k + 1] / (len(values) * spread**k) for k in range(1, degree + 1)]
        if not (np.all(np.isfinite(relative)) and min(relative) > 1e-10):
            raise DataError(f"poly({column}, {degree}) is numerically degenerate for {column!r} (its values "
                            "are too few or too extreme for this degree); use a lower degree or rescale the column")
        return cls(tuple(alpha), tuple(norm2))

    def columns(self, values: np.ndarray) -> np.ndarray:
        """The basis evaluated at ``values``: one column per degree 1..degree (n x degree)."""
        out = np.empty((len(values), self.degree))
        previous, current = np.zeros_like(values, dtype=float), np.ones_like(values, dtype=float)
        for k in range(self.degree):
            step = self.norm2[k + 1] / self.norm2[k] if k > 0 else 0.0
            previous, current = current, (values - self.alpha[k]) * current - step * previous
            out[:, k] = current / np.sqrt(self.norm2[k + 2])
        return out


@dataclass(frozen=True)
class TransformState:
    """Learnt on a fit's rows and reused on new ones: the centre of each centred or scaled column, the
    SD of each scaled one, the basis of each ``poly(column, degree)``, and the levels of each factor
    (sorted as its indicator columns are)."""

    means: dict[str, float] = field(default_factory=dict)
    sds: dict[str, float] = field(default_factory=dict)
    polys: dict[tuple[str, int], PolyBasis] = field(default_factory=dict)
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
