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
* ``health_messages``: what weakens a fit, in plain sentences, with the columns and random
  coefficients named as the caller names them (the engine: by position; a fit of a spec: by name).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

import numpy as np
from scipy import linalg, optimize

from compare_kit.engines.bounded_search import FAILED_DEVIANCE
from compare_kit.engines.glmm_family import GlmmFamily, Response
from compare_kit.wording import count

HESSIAN_STEP = 1e-4  # lme4's deriv12 delta
SEPARATION_MARGIN = 1e-6  # the linear program's optimum above this (unit-scaled columns) is separation
SEPARATED_ENTRY = 1e-7  # a direction's entry above this names its column
GRADIENT_TOLERANCE = 2e-3  # lme4's check.conv.grad tolerance on the scaled gradient
EXTREME_MEAN = 1e-8  # a fitted probability this close to 0 or 1 (a rate below it) is numerically extreme
OVERDISPERSED = 1.5  # a Pearson ratio above this is a warning (Bolker's GLMM FAQ: about 1 without overdispersion)


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


def overdispersion_ratio(response: Response, mu: np.ndarray, n_params: int) -> float | None:
    """Sum of squared Pearson residuals at the (conditional) means over ``nobs - n_params`` (NaN without df);
    None for 0/1 outcomes (bernoulli, or binomial with one trial per row), where it says nothing."""
    if response.family is GlmmFamily.BERNOULLI or (response.family is GlmmFamily.BINOMIAL
                                                   and bool(np.all(response.weights <= 1))):
        return None
    df = response.n - n_params
    return float(np.sum(response.pearson(mu) ** 2) / df) if df > 0 else float("nan")


def extreme_means(family: GlmmFamily, mu: np.ndarray) -> int:
    """Rows whose fitted probability is within ``EXTREME_MEAN`` of 0 or 1 (a rate: below it)."""
    near = mu < EXTREME_MEAN if family is GlmmFamily.POISSON else (mu < EXTREME_MEAN) | (mu > 1 - EXTREME_MEAN)
    return int(np.sum(near))


def overdispersion_words(ratio: float, family: GlmmFamily) -> str:
    """The Pearson overdispersion ratio as a sentence: the number, what it says, and what to do above 1."""
    expected = "Poisson" if family is GlmmFamily.POISSON else "binomial"
    if ratio > OVERDISPERSED:
        return (f"Pearson overdispersion ratio {ratio:.2f} (> 1: more spread than {expected}; the standard errors "
                "are too small. Consider an observation-level random effect, (1 | row) with a column row "
                "numbering the rows)")
    return (f"Pearson overdispersion ratio {ratio:.2f} (squared Pearson residuals over their degrees of freedom: "
            f"about 1 when the outcome spreads as a {expected} one; compare_kit warns above {OVERDISPERSED})")


def health_messages(*, converged: bool, gradient: float, boundary: Sequence[str], separated: Sequence[str],
                    extreme: int, overdispersion: float | None, family: GlmmFamily,
                    rx_fallback: bool) -> tuple[str, ...]:
    """What weakens a GLM or GLMM fit, one sentence each.

    ``boundary`` names the random coefficients whose SD is at zero, ``separated`` the fixed-effect
    columns whose estimates run off; ``overdispersion`` (None for 0/1 outcomes) gives a sentence
    only above ``OVERDISPERSED``; ``gradient`` is lme4's scaled gradient (NaN: not checked).
    """
    out = []
    if not converged:
        check = (f" (lme4's scaled gradient {gradient:.2g}; glmer warns above {GRADIENT_TOLERANCE})"
                 if np.isfinite(gradient) else "")
        out.append(f"the search did not converge{check}: the estimates are the best found and may be wrong")
    out += [f"{name}: SD at (or next to) zero, a singular fit" for name in boundary]
    if separated:
        out.append(f"separation: the estimates of {', '.join(separated)} run off to infinity (some combination "
                   "of them predicts every outcome in the rows it touches); their estimates and standard errors "
                   "mean nothing")
    if extreme:
        at = "0" if family is GlmmFamily.POISSON else "0 or 1"
        out.append(f"{count(extreme, 'row')} with a fitted mean numerically at {at}")
    if overdispersion is not None and overdispersion > OVERDISPERSED:
        out.append(overdispersion_words(overdispersion, family))
    if rx_fallback:
        out.append("the finite-difference Hessian is not positive definite: fixed-effect standard errors are "
                   "conditional on the variance parameters (lme4's fallback)")
    return tuple(out)


__all__ = ["EXTREME_MEAN", "GRADIENT_TOLERANCE", "OVERDISPERSED", "VcovMethod", "deriv12", "extreme_means",
           "fixed_effect_covariance", "health_messages", "overdispersion_ratio", "overdispersion_words",
           "separated_columns"]
