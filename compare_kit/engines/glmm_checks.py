"""The GLMM engine's checks and standard errors: lme4's finite-difference Hessian, separation, overdispersion.

* ``fixed_effect_covariance``: lme4's default ``vcov(use.hessian = TRUE)``: the fixed effects'
  block of ``2 H^-1``, H the central-difference Hessian of the deviance in (theta, beta) at the
  optimum (lme4's ``deriv12``, step 1e-4), falling back, as lme4 does, to the covariance given
  theta (``RX``) when that is not positive definite; and lme4's convergence check on the same
  derivatives (``checkConv``: the gradient scaled by the Hessian's Cholesky factor).
* ``separated_columns``: complete or quasi-complete separation in the fixed effects, by Konis's
  linear program (Konis 2007, the method of R's detectseparation): a direction of the
  coefficients along which no row's likelihood falls and some row's rises, so the maximum lies
  at infinity whatever the random effects do.
* ``overdispersion_ratio``: the sum of squared Pearson residuals over the residual degrees of
  freedom (Bolker's GLMM FAQ; about 1 without overdispersion).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import numpy as np
from scipy import linalg, optimize

from compare_kit.engines.bounded_search import FAILED_DEVIANCE
from compare_kit.engines.glmm_family import GlmmFamily, Response

HESSIAN_STEP = 1e-4  # lme4's deriv12 delta
SEPARATION_MARGIN = 1e-6  # the linear program's optimum above this (unit-scaled columns) is separation
SEPARATED_ENTRY = 1e-7  # a direction's entry above this names its column


class VcovMethod(enum.Enum):
    """Where the fixed effects' covariance came from."""

    HESSIAN = "finite-difference Hessian of the deviance in (theta, beta) (lme4's use.hessian = TRUE)"
    RX = "conditional on theta, from the penalised least squares factor (lme4's RX fallback)"


def deriv12(fun: Callable[[np.ndarray], float], x: np.ndarray, fx: float,
            delta: float = HESSIAN_STEP) -> tuple[np.ndarray, np.ndarray]:
    """lme4's ``deriv12``: central-difference gradient and Hessian of ``fun`` at ``x`` (no bounds)."""
    n = len(x)
    grad, hess = np.empty(n), np.empty((n, n))

    def at(*steps: tuple[int, float]) -> float:
        point = x.copy()
        for i, h in steps:
            point[i] += h
        return fun(point)

    for j in range(n):
        up, down = at((j, delta)), at((j, -delta))
        hess[j, j] = (up - 2 * fx + down) / delta ** 2
        grad[j] = (up - down) / (2 * delta)
        for i in range(j):
            hess[i, j] = hess[j, i] = (at((i, delta), (j, delta)) - at((i, delta), (j, -delta))
                                       - at((i, -delta), (j, delta)) + at((i, -delta), (j, -delta))) / (2 * delta) ** 2
    return grad, hess


def fixed_effect_covariance(fun: Callable[[np.ndarray], float], params: np.ndarray, lower: np.ndarray,
                            n_theta: int, cov_rx: np.ndarray) -> tuple[np.ndarray, VcovMethod, float]:
    """The fixed effects' covariance (lme4's default) and lme4's scaled gradient at the optimum ``params``.

    Parameters
    ----------
    fun : callable
        The deviance in (theta, beta).
    lower : ndarray
        The bounds; parameters on them are left out of the convergence check (lme4 skips the
        check at a singular fit).
    cov_rx : ndarray
        The covariance given theta, used when the Hessian's is not positive definite.
    """
    params = np.asarray(params, dtype=float)

    def defined(point: np.ndarray) -> float:  # NaN where the deviance does not exist: no Hessian from it
        value = fun(point)
        return value if value < FAILED_DEVIANCE else float("nan")

    grad, hess = deriv12(defined, params, defined(params))
    cov, method = cov_rx, VcovMethod.RX
    if np.all(np.isfinite(hess)):
        try:
            full = 2.0 * linalg.inv(hess)
            block = full[n_theta:, n_theta:]
            block = (block + block.T) / 2
            if len(block) == 0 or np.linalg.eigvalsh(block).min() > 0:
                cov, method = block, VcovMethod.HESSIAN
        except (np.linalg.LinAlgError, ValueError):
            pass
    free = ~(np.isfinite(lower) & (params <= lower))
    return cov, method, _scaled_gradient(grad[free], hess[np.ix_(free, free)])


def _scaled_gradient(grad: np.ndarray, hess: np.ndarray) -> float:
    """lme4's checkConv: max over parameters of min(|R^-1 g|, |g|) with H = R'R (|g| where H is not positive)."""
    if not len(grad):
        return 0.0
    if not np.all(np.isfinite(grad)):
        return float("inf")
    try:
        scaled = linalg.solve_triangular(linalg.cholesky(hess), grad, lower=False)
    except (np.linalg.LinAlgError, ValueError):
        return float(np.max(np.abs(grad)))
    return float(np.max(np.minimum(np.abs(scaled), np.abs(grad))))


def separated_columns(x: np.ndarray, response: Response) -> tuple[int, ...]:
    """Columns of ``x`` whose estimates run off to infinity (separation), by Konis's linear programs.

    Rows with only successes (only failures, zero counts) want ``x_i d`` up (down); rows with
    both, and positive counts, hold it at 0. A direction ``d`` in [-1, 1]^p meeting every row's
    wish with a positive total margin is one along which the likelihood rises forever; a column
    runs off when some such direction moves it (two more programs per column, as detectseparation
    reports infinite estimates).
    """
    keep = response.weights > 0
    x = np.asarray(x, dtype=float)[keep]
    if x.shape[1] == 0:
        return ()
    y = response.y[keep]
    scale = np.max(np.abs(x), axis=0)
    x = x / np.where(scale > 0, scale, 1.0)
    if response.family is GlmmFamily.POISSON:
        sign = np.where(y == 0, -1.0, 0.0)
    else:
        sign = np.where(y >= 1, 1.0, np.where(y <= 0, -1.0, 0.0))
    signed = x[sign != 0] * sign[sign != 0, None]
    held = x[sign == 0]
    if not len(signed):
        return ()

    def best(objective: np.ndarray) -> float:
        """The largest ``objective @ d`` over the directions that no row's likelihood falls along."""
        res = optimize.linprog(-objective, A_ub=-signed, b_ub=np.zeros(len(signed)),
                               A_eq=held if len(held) else None, b_eq=np.zeros(len(held)) if len(held) else None,
                               bounds=[(-1.0, 1.0)] * x.shape[1], method="highs")
        return -float(res.fun) if res.status == 0 else 0.0

    if best(signed.sum(axis=0)) <= SEPARATION_MARGIN:
        return ()
    unit = np.eye(x.shape[1])
    return tuple(j for j in range(x.shape[1]) if max(best(unit[j]), best(-unit[j])) > SEPARATED_ENTRY)


def overdispersion_ratio(response: Response, mu: np.ndarray, n_params: int) -> float:
    """Sum of squared Pearson residuals at the conditional means over ``nobs - n_params`` (NaN without df)."""
    df = response.n - n_params
    return float(np.sum(response.pearson(mu) ** 2) / df) if df > 0 else float("nan")


__all__ = ["VcovMethod", "deriv12", "fixed_effect_covariance", "overdispersion_ratio", "separated_columns"]
