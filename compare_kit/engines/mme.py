"""Henderson's mixed-model equations at given variance parameters.

statsmodels estimates the variance parameters; this module solves, at those
values, for the GLS fixed effects and the BLUPs, and returns three kinds of
uncertainty that a reader of compare_kit needs side by side:

* ``cov_beta``: the fixed effects' covariance conditional on the variance
  parameters (what lme4 reports as standard errors);
* ``cond_var``: each BLUP's variance given the fixed effects (lme4's ``condVar``,
  statsmodels' ``random_effects_cov``);
* ``pev``: the prediction-error variance of each BLUP from the inverse of the
  whole mixed-model equations, which adds the uncertainty of the fixed effects.

With ``b = Lambda u`` and ``u ~ N(0, I)`` (lme4's parameterisation, valid at a
zero variance too) the equations are solved partition by partition: rows are
split into independent partitions (the levels of the outermost grouping
factor), so the work grows with the number of groups, not with its square.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from compare_kit.engines.lmm import lower_root


@dataclass(frozen=True)
class Partition:
    """The rows of one independent block and the random effects that live there."""

    rows: np.ndarray  # row indices
    z: np.ndarray  # len(rows) x q_j random-effects design
    lam: np.ndarray  # q_j x q_j relative Cholesky factor (b = lam @ u)
    effect_index: np.ndarray  # q_j global indices of these random effects


@dataclass(frozen=True)
class MMESolution:
    beta: np.ndarray
    cov_beta: np.ndarray
    b: np.ndarray  # all random effects, global order
    cond_var: list[np.ndarray]  # per partition q_j x q_j, given beta
    pev: list[np.ndarray]  # per partition q_j x q_j, Henderson's (beta estimated)
    cov_b_beta: list[np.ndarray]  # per partition q_j x p, estimation-error covariance
    partition_index: list[np.ndarray]  # per partition, the global indices of its effects


def solve_mme(y: np.ndarray, x: np.ndarray, partitions: list[Partition], sigma2: float,
              n_effects: int) -> MMESolution:
    """Solve the mixed-model equations at relative covariance ``lam lam'`` and residual ``sigma2``."""
    p = x.shape[1]
    s = x.T @ x
    r = x.T @ y
    cached = []
    for part in partitions:
        zl = part.z @ part.lam
        xj = x[part.rows]
        yj = y[part.rows]
        m = zl.T @ zl + np.eye(zl.shape[1])
        m_chol = linalg.cho_factor(m)
        bj = zl.T @ xj
        cj = zl.T @ yj
        m_inv_b = linalg.cho_solve(m_chol, bj)
        m_inv_c = linalg.cho_solve(m_chol, cj)
        s -= bj.T @ m_inv_b
        r -= bj.T @ m_inv_c
        cached.append((m_chol, m_inv_b, m_inv_c))
    s = (s + s.T) / 2
    s_inv = linalg.pinvh(s) if p else np.zeros((0, 0))
    beta = s_inv @ r
    b = np.zeros(n_effects)
    cond_var, pev, cov_b_beta = [], [], []
    for part, (m_chol, m_inv_b, m_inv_c) in zip(partitions, cached, strict=True):
        u = m_inv_c - m_inv_b @ beta
        b[part.effect_index] = part.lam @ u
        m_inv = linalg.cho_solve(m_chol, np.eye(m_chol[0].shape[0]))
        cond = part.lam @ m_inv @ part.lam.T
        extra = m_inv_b @ s_inv @ m_inv_b.T
        cond_var.append(sigma2 * cond)
        pev.append(sigma2 * (cond + part.lam @ extra @ part.lam.T))
        cov_b_beta.append(-sigma2 * part.lam @ m_inv_b @ s_inv)
    return MMESolution(beta, sigma2 * s_inv, b, cond_var, pev, cov_b_beta,
                       [p.effect_index for p in partitions])


def relative_factor(cov: np.ndarray) -> np.ndarray:
    """The lower-triangular ``L`` with ``L L' = cov``, also for singular ``cov`` (exact zeros stay zeros)."""
    return lower_root(np.atleast_2d(np.asarray(cov, dtype=float)))
