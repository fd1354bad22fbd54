"""Profile-likelihood intervals for the two SDs of a random-intercept model.

The model is ``y = X beta + u[g] + e`` with ``u ~ N(0, tau^2)`` and ``e ~ N(0, sigma^2)``.
With ``theta = tau / sigma`` (lme4's relative factor) the -2 (RE)ML criterion with the
fixed effects profiled out is (Bates et al. 2015, eq. 32 and 41)

    ML:    log|M(theta)|                 + n       log(2 pi sigma^2) + prss(theta) / sigma^2
    REML:  log|M(theta)| + log|S(theta)| + (n - p) log(2 pi sigma^2) + prss(theta) / sigma^2

where ``M`` is block diagonal with ``1 + theta^2 n_g`` per group and ``S = X' V^-1 X``
(scaled). This module evaluates it from per-group cross-products for many theta at
once (the same quantities as ``compare_kit.engines.lmm.LinearMixedModel``, whose
sigma-profiled deviance it reproduces; tested), and profiles each SD:

* ``tau``: for each value, the criterion minimised over sigma (theta = tau / sigma);
* ``sigma``: for each value, minimised over theta >= 0.

A 95% interval is the set where the profiled criterion lies within the chi-square(1)
0.95 quantile (3.841) of its minimum; an end that never crosses (the group SD at its
zero boundary) is 0. lme4's ``confint(method = "profile")`` profiles the ML criterion
even for a REML fit (lme4 1.1-31 gives the same interval for both); ``reml=False``
reproduces it (tested against lme4 to 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

_LOG_2PI = float(np.log(2 * np.pi))
CHI2_95 = float(stats.chi2.ppf(0.95, 1))


@dataclass(frozen=True)
class ProfileInterval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Profiles:
    """The (RE)ML estimates of tau and sigma with their profile intervals."""

    tau: ProfileInterval
    sigma: ProfileInterval
    reml: bool


class RandomInterceptCriterion:
    """-2 (RE)ML criterion of a random-intercept model as a function of (theta, sigma)."""

    def __init__(self, y: np.ndarray, x: np.ndarray, codes: np.ndarray, n_groups: int, reml: bool) -> None:
        y = np.asarray(y, dtype=float)
        x = np.asarray(x, dtype=float)
        self.n, self.p = x.shape
        self.reml = reml
        self.n_g = np.bincount(codes, minlength=n_groups).astype(float)  # Z'Z per group
        self.ztx = np.zeros((n_groups, self.p))
        np.add.at(self.ztx, codes, x)
        self.zty = np.bincount(codes, weights=y, minlength=n_groups)
        self.xtx = x.T @ x
        self.xty = x.T @ y
        self.yty = float(y @ y)
        self.dof = self.n - self.p if reml else self.n

    def parts(self, theta: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(log-determinant terms, penalised residual sum of squares) for each theta."""
        th = np.atleast_1d(np.asarray(theta, dtype=float))[:, None]  # (t, 1)
        m = 1.0 + th**2 * self.n_g[None, :]  # (t, g)
        lb = th[:, :, None] * self.ztx[None, :, :]  # (t, g, p): Lambda' Z'X
        lc = th * self.zty[None, :]  # (t, g)
        s = self.xtx[None] - np.einsum("tgp,tgq->tpq", lb / m[:, :, None], lb)
        r = self.xty[None] - np.einsum("tgp,tg->tp", lb, lc / m)
        beta = np.linalg.solve(s, r[:, :, None])[:, :, 0]
        d = lc - np.einsum("tgp,tp->tg", lb, beta)
        prss = (self.yty - 2 * beta @ self.xty + np.einsum("tp,pq,tq->t", beta, self.xtx, beta)
                - np.sum(d * d / m, axis=1))
        logdet = np.log(m).sum(axis=1)
        if self.reml:
            logdet = logdet + np.linalg.slogdet(s)[1]
        return logdet, prss

    def deviance(self, theta: np.ndarray | float, sigma: np.ndarray | float) -> np.ndarray:
        """The criterion at (theta, sigma) (broadcast over equal-length arrays)."""
        logdet, prss = self.parts(theta)
        s2 = np.asarray(sigma, dtype=float) ** 2
        return logdet + self.dof * (_LOG_2PI + np.log(s2)) + prss / s2

    def profiled_deviance(self, theta: np.ndarray | float) -> np.ndarray:
        """The criterion with sigma at its optimum, sigma^2 = prss / dof (lme4's profiled deviance)."""
        logdet, prss = self.parts(theta)
        return logdet + self.dof * (1 + _LOG_2PI + np.log(prss / self.dof))

    # ----------------------------------------------------------- estimates

    def optimum(self) -> tuple[float, float, float]:
        """(theta_hat, sigma_hat, minimum deviance); theta on [0, 20] by a grid then Brent."""
        grid = np.concatenate([[0.0], np.geomspace(1e-3, 20.0, 80)])
        values = self.profiled_deviance(grid)
        i = int(np.argmin(values))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = optimize.minimize_scalar(lambda t: float(self.profiled_deviance(t)[0]), bounds=(lo, hi),
                                       method="bounded", options={"xatol": 1e-10})
        if res.fun < values[i]:
            theta, best = float(res.x), float(res.fun)
        else:
            theta, best = float(grid[i]), float(values[i])
        if values[0] <= best:
            theta, best = 0.0, float(values[0])
        _, prss = self.parts(theta)
        return theta, float(np.sqrt(prss[0] / self.dof)), best

    def _min_over_sigma(self, tau: float) -> float:
        """Profile of tau: min over log sigma of the criterion at theta = tau / sigma."""
        def f(log_s: float) -> float:
            s = float(np.exp(log_s))
            return float(self.deviance(tau / s, s)[0])

        res = optimize.minimize_scalar(f, bounds=(np.log(self._sigma) - 3, np.log(self._sigma) + 3),
                                       method="bounded", options={"xatol": 1e-9})
        return float(res.fun)

    def _min_over_theta(self, sigma: float) -> float:
        """Profile of sigma: min over theta >= 0 of the criterion at this sigma."""
        logdet, prss = self.parts(self._grid)
        values = logdet + self.dof * (_LOG_2PI + 2 * np.log(sigma)) + prss / sigma**2
        i = int(np.argmin(values))
        lo, hi = self._grid[max(i - 1, 0)], self._grid[min(i + 1, len(self._grid) - 1)]
        res = optimize.minimize_scalar(lambda t: float(self.deviance(t, sigma)[0]), bounds=(lo, hi),
                                       method="bounded", options={"xatol": 1e-10})
        return float(min(res.fun, values[i]))

    def profiles(self, level: float = 0.95) -> Profiles:
        """Estimates and profile intervals of tau and sigma."""
        cut = float(stats.chi2.ppf(level, 1))
        theta, sigma, best = self.optimum()
        self._sigma = sigma
        self._grid = np.concatenate([[0.0], np.geomspace(1e-4, max(20.0, 4 * theta), 160)])
        tau = theta * sigma

        def excess_tau(t: float) -> float:
            return self._min_over_sigma(t) - best - cut

        def excess_sigma(s: float) -> float:
            return self._min_over_theta(s) - best - cut

        tau_low = 0.0 if tau <= 0 or excess_tau(0.0) <= 0 else _root(excess_tau, 0.0, tau)
        tau_high = _root(excess_tau, tau, _expand(excess_tau, tau, max(tau, 0.05 * sigma)))
        sigma_low = _root(excess_sigma, _shrink(excess_sigma, sigma), sigma)
        sigma_high = _root(excess_sigma, sigma, _expand(excess_sigma, sigma, 0.1 * sigma))
        return Profiles(ProfileInterval(tau, tau_low, tau_high),
                        ProfileInterval(sigma, sigma_low, sigma_high), self.reml)


def _expand(f, start: float, step: float) -> float:
    """A point above ``start`` where ``f`` is positive (doubling steps)."""
    hi = start + step
    for _ in range(60):
        if f(hi) > 0:
            return hi
        step *= 2
        hi = start + step
    raise RuntimeError("the profile never crossed the cut-off above the estimate")


def _shrink(f, start: float) -> float:
    lo = start / 2
    for _ in range(60):
        if f(lo) > 0:
            return lo
        lo /= 2
    raise RuntimeError("the profile never crossed the cut-off below the estimate")


def _root(f, a: float, b: float) -> float:
    return float(optimize.brentq(f, a, b, xtol=1e-10, rtol=1e-10))


def profile_intervals(y: np.ndarray, x: np.ndarray, codes: np.ndarray, n_groups: int, *, reml: bool = True,
                      level: float = 0.95) -> Profiles:
    """Estimates and profile-likelihood intervals of the group SD and the residual SD."""
    return RandomInterceptCriterion(y, x, codes, n_groups, reml).profiles(level)
