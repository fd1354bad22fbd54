"""The bounded search of compare_kit's mixed-model engines: the boundary is a bound, and it is found exactly.

The variance parameters' diagonal entries (theta's, in lme4's parametrisation) are bounded below
by 0 and searched by SLSQP, so a variance at zero is found, not approached. Entries left next to
the bound are then tried at exactly 0 (``BoundedSearch.snap_to_bound``): the same data give the
same zeros whatever the BLAS kernel. Used by ``engines.lmm`` (theta) and ``engines.glmm``
(theta and the fixed effects, which are unbounded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

NEAR_BOUND = 1e-3  # a diagonal theta below this is tried at exactly 0
SNAP_TOLERANCE = 1e-6  # deviance units: the bound is taken when it is no worse than this
FTOL = 1e-12  # SLSQP's stopping rule on the deviance (1e-10 saves 20-30% of the steps, but stopped early on a
# flat start: a zero slope variance took the intercept's to 0 too, tests/engines/test_lmm.py)
FAILED_DEVIANCE = 1e300  # the criterion's value where it does not exist (the optimiser steps away)


@dataclass(frozen=True)
class Optimum:
    """Where the bounded search ended."""

    theta: np.ndarray  # the parameters searched (the GLMM engine's: theta, then the fixed effects)
    deviance: float
    success: bool
    evaluations: int
    at_bound: tuple[int, ...]  # indices held at exactly 0

    @property
    def loglik(self) -> float:
        return -0.5 * self.deviance

    @property
    def found(self) -> bool:
        """False when the criterion could not be evaluated at any point tried."""
        return bool(self.deviance < FAILED_DEVIANCE)


class BoundedSearch:
    """SLSQP on ``fun`` with the lower bounds ``lower`` (0 on theta's diagonal, ``-inf`` elsewhere).

    Parameters
    ----------
    fun : callable
        The criterion, ``FAILED_DEVIANCE`` where it does not exist (never raises).
    lower : ndarray
        One bound per parameter; the finite ones (0) are the boundary that is snapped to.
    jac : callable, optional
        The criterion's gradient; by default SLSQP's forward differences.
    """

    def __init__(self, fun: Callable[[np.ndarray], float], lower: np.ndarray,
                 jac: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.fun = fun
        self.lower = np.asarray(lower, dtype=float)
        self.jac = jac
        self.bounded = np.isfinite(self.lower)

    def optimize(self, origins: Sequence[np.ndarray]) -> Optimum:
        """The bounded optimum, from the first origin and from each next one while the best end is near the bound.

        Each bounded entry then left within ``NEAR_BOUND`` of 0 is tried at exactly 0, the rest
        re-optimised with it held there, and kept at 0 when the criterion is no worse by
        ``SNAP_TOLERANCE`` (``snap_to_bound``).
        """
        if not len(origins):
            raise ValueError("the bounded search needs at least one origin")
        best = None
        evaluations = 0
        for origin in origins:
            res = self.minimize(np.asarray(origin, dtype=float), np.zeros(len(self.lower), dtype=bool))
            evaluations += int(res.nfev)
            if best is None or res.fun < best.fun:
                best = res
            if not np.any(best.x[self.bounded] < NEAR_BOUND):
                break
        x = np.where(self.bounded, np.maximum(best.x, 0.0), best.x)
        snapped = self.snap_to_bound(x)
        return Optimum(snapped.theta, snapped.deviance, bool(best.success), evaluations + snapped.evaluations,
                       snapped.at_bound)

    def minimize(self, start: np.ndarray, held: np.ndarray) -> optimize.OptimizeResult:
        """SLSQP from ``start`` with the entries ``held`` fixed at 0."""
        bounds = [(0.0, 0.0) if h else (lo if np.isfinite(lo) else None, None)
                  for lo, h in zip(self.lower, held, strict=True)]
        start = np.where(held, 0.0, start)
        return optimize.minimize(self.fun, start, method="SLSQP", jac=self.jac, bounds=bounds,
                                 options={"ftol": FTOL, "maxiter": 500})

    def snap_to_bound(self, x: np.ndarray) -> Optimum:
        """Put near-zero bounded entries of ``x`` at exactly 0 where the criterion allows it.

        Candidates are the bounded entries below ``NEAR_BOUND``. All of them are held at 0
        and the other entries re-optimised; if that is no worse than ``x`` by
        ``SNAP_TOLERANCE`` it is taken, else the candidates are tried one at a time.
        """
        x = np.asarray(x, dtype=float).copy()
        base = self.fun(x)
        candidates = np.flatnonzero(self.bounded & (x < NEAR_BOUND) & (x != 0.0))
        evaluations = 1
        groups = [candidates] + ([np.array([c]) for c in candidates] if len(candidates) > 1 else [])
        for group in groups:
            if not len(group):
                continue
            held = np.zeros(len(x), dtype=bool)
            held[group] = True
            held |= self.bounded & (x == 0.0)
            trial = x.copy()
            trial[held] = 0.0
            if held.all():
                value = self.fun(trial)
            else:
                res = self.minimize(trial, held)
                evaluations += int(res.nfev)
                trial = np.where(held, 0.0, res.x)
                trial = np.where(self.bounded, np.maximum(trial, 0.0), trial)
                value = self.fun(trial)
            if value <= base + SNAP_TOLERANCE:
                x, base = trial, value
                if len(group) == len(candidates):
                    break
        at_bound = tuple(int(i) for i in np.flatnonzero(self.bounded & (x == 0.0)))
        return Optimum(x, base, True, evaluations, at_bound)


__all__ = ["FAILED_DEVIANCE", "FTOL", "NEAR_BOUND", "SNAP_TOLERANCE", "BoundedSearch", "Optimum"]
