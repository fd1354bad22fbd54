"""The profiled (RE)ML criterion of a one-grouping-factor mixed model, vectorised over groups.

lme4's formulation (Bates et al. 2015, eq. 34 and 41): with relative covariance
factor ``Lambda(theta)`` and per-group cross-products precomputed once, one
evaluation costs a few batched k-by-k factorisations, whatever the number of
rows. compare_kit uses it for two things statsmodels does not do well:

* good starting values: the criterion's optimum, found in milliseconds, starts
  MixedLM next to its answer, so statsmodels' own optimizer needs few steps;
* a second, independent optimizer: statsmodels' optimum is checked against this
  one, and a disagreement is flagged on the result instead of passing silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

_LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """Per-group Z'Z, Z'X, Z'y and the totals X'X, X'y, y'y."""

    ztz: np.ndarray  # (groups, k, k)
    ztx: np.ndarray  # (groups, k, p)
    zty: np.ndarray  # (groups, k)
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    n: int

    @classmethod
    def build(cls, y: np.ndarray, x: np.ndarray, z: np.ndarray, codes: np.ndarray,
              n_groups: int) -> CrossProducts:
        k, p = z.shape[1], x.shape[1]
        ztz = np.zeros((n_groups, k, k))
        ztx = np.zeros((n_groups, k, p))
        zty = np.zeros((n_groups, k))
        np.add.at(ztz, codes, z[:, :, None] * z[:, None, :])
        np.add.at(ztx, codes, z[:, :, None] * x[:, None, :])
        np.add.at(zty, codes, z * y[:, None])
        return cls(ztz, ztx, zty, x.T @ x, x.T @ y, float(y @ y), len(y))


@dataclass(frozen=True)
class Block:
    """Random coefficients ``start:start+size`` of the group; correlated or independent."""

    start: int
    size: int
    correlated: bool


class ProfiledCriterion:
    """-2 log-likelihood (ML) or -2 REML criterion as a function of theta, beta and sigma profiled out."""

    def __init__(self, cp: CrossProducts, blocks: list[Block], reml: bool) -> None:
        self.cp = cp
        self.blocks = blocks
        self.reml = reml
        self.k = cp.ztz.shape[1]
        self.p = cp.xtx.shape[0]
        self._index: list[tuple[int, int]] = []
        for b in blocks:
            for i in range(b.size):
                for j in (range(i + 1) if b.correlated else (i,)):
                    self._index.append((b.start + i, b.start + j))
        self.lower = np.array([0.0 if r == c else -np.inf for r, c in self._index])

    @property
    def n_theta(self) -> int:
        return len(self._index)

    def lam(self, theta: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.k, self.k))
        for value, (r, c) in zip(theta, self._index, strict=True):
            lam[r, c] = value
        return lam

    def theta_of(self, relative_cov: np.ndarray) -> np.ndarray:
        """theta whose Lambda Lambda' is ``relative_cov`` (its Cholesky factor, block by block)."""
        lam = np.zeros((self.k, self.k))
        for b in self.blocks:
            sub = relative_cov[b.start:b.start + b.size, b.start:b.start + b.size]
            if not b.correlated:
                sub = np.diag(np.diag(sub))
            values, vectors = np.linalg.eigh((sub + sub.T) / 2)
            safe = vectors @ np.diag(np.clip(values, 1e-10, None)) @ vectors.T
            lam[b.start:b.start + b.size, b.start:b.start + b.size] = np.linalg.cholesky(safe)
        return np.array([lam[r, c] for r, c in self._index])

    def deviance(self, theta: np.ndarray) -> float:
        cp = self.cp
        lam = self.lam(theta)
        m = np.einsum("ba,gbc,cd->gad", lam, cp.ztz, lam) + np.eye(self.k)
        chol = np.linalg.cholesky(m)
        lb = np.einsum("ba,gbp->gap", lam, cp.ztx)  # Lambda' Z'X per group
        lc = np.einsum("ba,gb->ga", lam, cp.zty)  # Lambda' Z'y per group
        w_b = np.linalg.solve(m, lb)
        w_c = np.linalg.solve(m, lc[:, :, None])[:, :, 0]
        s = cp.xtx - np.einsum("gkp,gkq->pq", lb, w_b)
        r = cp.xty - np.einsum("gkp,gk->p", lb, w_c)
        beta = np.linalg.solve(s, r)
        d = lc - np.einsum("gkp,p->gk", lb, beta)
        w = w_c - np.einsum("gkp,p->gk", w_b, beta)
        prss = cp.yty - 2 * beta @ cp.xty + beta @ cp.xtx @ beta - float(np.einsum("gk,gk->", d, w))
        logdet_m = 2.0 * float(np.log(np.einsum("gii->gi", chol)).sum())
        if self.reml:
            dof = cp.n - self.p
            logdet_s = float(np.linalg.slogdet(s)[1])
            return logdet_m + logdet_s + dof * (1 + _LOG_2PI + np.log(prss / dof))
        return logdet_m + cp.n * (1 + _LOG_2PI + np.log(prss / cp.n))

    def loglik(self, theta: np.ndarray) -> float:
        return -0.5 * self.deviance(theta)

    def optimize(self, start: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Bounded search (theta's diagonal >= 0, as in lme4) by SLSQP from ``start``; when that
        ends on the zero bound, again from ``start / 4``, and the better end wins.

        Measured on the radon models: SLSQP needs as many evaluations as L-BFGS-B but
        costs a third of the time (L-BFGS-B's own overhead dominates a 0.4 ms
        criterion); from Lambda = I a first step can land on the zero bound of a
        random-intercept SD and stop there (the model with a county-level predictor),
        hence the second start.
        """
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in self.lower]
        on_diagonal = np.isfinite(self.lower)
        best = None
        for begin in (start, start / 4):
            res = optimize.minimize(self._safe_deviance, begin, method="SLSQP", bounds=bounds,
                                    options={"ftol": 1e-12, "maxiter": 500})
            if best is None or res.fun < best.fun:
                best = res
            if not np.any(best.x[on_diagonal] <= 1e-8):
                break
        return best.x, float(best.fun), bool(best.success)

    def _safe_deviance(self, theta: np.ndarray) -> float:
        try:
            value = self.deviance(theta)
        except np.linalg.LinAlgError:
            return 1e300
        return value if np.isfinite(value) else 1e300
