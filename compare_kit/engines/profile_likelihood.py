"""Profile-likelihood intervals for the SDs of a mixed model's random effects and its residual SD.

lme4's ``confint(method = "profile")`` for every structure compare_kit's own engine fits: one SD is
held at a value, every other variance parameter and sigma is optimised, and the interval is the
set of values where the ML deviance stays within the chi-square(1) quantile of its minimum. lme4
profiles the ML deviance for REML fits too (lme4 1.1-31 gives the same intervals for both), and so
does this module. Written by hand: no Python library profiles mixed models.

The ML deviance at ``(theta, sigma)`` is ``log|L(theta)|^2 + n log(2 pi sigma^2) + pwrss(theta) / sigma^2``
(Bates et al. 2015, eq. 32): ``LinearMixedModel.ml_deviance``. An SD of a random coefficient
is ``sigma`` times the norm of its row of ``T``; holding it at ``v``, that row is ``(v / sigma)`` times
a free direction, so the other parameters move freely (bounds only on T's diagonal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from compare_kit.engines.lmm import FAILED_DEVIANCE, LinearMixedModel

SIGMA_RANGE = 20.0  # log sigma searched within this of its estimate (e^20: beyond any profile's reach)
MAX_DOUBLINGS = 40  # an upper end not crossed after the SD grew 2^40-fold is infinite


@dataclass(frozen=True)
class ProfiledSd:
    """One SD's profile interval: ``term`` is the index of the random term, ``coef`` the row of its
    ``T`` (both None for the residual SD)."""

    term: int | None
    coef: int | None
    estimate: float  # the ML estimate, where the profile has its minimum
    low: float
    high: float  # inf when the profile never rises high enough


class _Profile:
    """The profiled ML deviance of one SD, minus its minimum, as a function of that SD."""

    def __init__(self, model: LinearMixedModel, theta: np.ndarray, sigma: float, term: int | None,
                 coef: int | None) -> None:
        self.model, self.term, self.coef = model, term, coef
        self.base = self.model.ml_deviance(theta, sigma)
        if term is None:
            self.row = np.zeros(0, dtype=int)
        else:  # the entries of T's row ``coef``, and which of them is its diagonal
            entries = [(p, c) for p, (r, c) in zip(model.theta_positions(term), model.terms[term].theta_index,
                                                   strict=True) if r == coef]
            self.row = np.array([p for p, _ in entries])
            self.row_diagonal = [c for _, c in entries].index(coef)
        self.free = np.setdiff1d(np.arange(model.n_theta), self.row)
        self.estimate = sigma if term is None else sigma * float(np.linalg.norm(theta[self.row]))
        direction = theta[self.row] if self.row.size else np.zeros(0)
        if self.row.size and not np.any(direction):
            direction = np.eye(self.row.size)[self.row_diagonal]
        self.log_sigma = float(np.log(sigma))
        self.start = np.concatenate([theta[self.free], direction, [self.log_sigma] if term is not None else []])
        self.origin = self.start.copy()  # the ML optimum, a second start for every value
        self.sigma = sigma

    def _theta_sigma(self, z: np.ndarray, value: float) -> tuple[np.ndarray, float]:
        theta = np.empty(self.model.n_theta)
        theta[self.free] = z[:self.free.size]
        if self.term is None:
            return theta, value
        direction = z[self.free.size:self.free.size + self.row.size]
        sigma = float(np.exp(z[-1]))
        norm = float(np.linalg.norm(direction))
        unit = direction / norm if norm > 0 else np.eye(self.row.size)[self.row_diagonal]
        theta[self.row] = (value / sigma) * unit
        return theta, sigma

    def __call__(self, value: float) -> float:
        """Minimum over the other parameters of the deviance with this SD at ``value``, minus the base."""
        lower = self.model.lower
        bounds = [(0.0 if np.isfinite(lower[i]) else None, None) for i in self.free]
        if self.term is not None:
            bounds += [(0.0, None) if j == self.row_diagonal else (None, None) for j in range(self.row.size)]
            bounds += [(self.log_sigma - SIGMA_RANGE, self.log_sigma + SIGMA_RANGE)]
        origin = self.origin
        if self.term is None and value > 0:  # sigma held: the ML optimum's SDs kept, theta = SD / sigma
            origin = origin * (self.sigma / value)
        best = None
        # from where the last value ended (profiles move smoothly) and from the ML optimum: SLSQP can stall
        # on a bound from one start (measured: one OpenBLAS kernel's rounding sent sigma's end 2e-3 low)
        for start in (self.start, origin):
            res = optimize.minimize(lambda z: self.model.ml_deviance(*self._theta_sigma(z, value)), start,
                                    method="SLSQP", bounds=bounds, options={"ftol": 1e-12, "maxiter": 500})
            if best is None or res.fun < best.fun:
                best = res
        if best.fun < FAILED_DEVIANCE:
            self.start = best.x
        return float(best.fun) - self.base


def profile_intervals(model: LinearMixedModel, level: float = 0.95) -> list[ProfiledSd]:
    """Profile intervals of every random-effect SD (term by term, row by row) and of sigma.

    ``model`` must be the ML criterion (``reml=False``), as in lme4.
    """
    if model.reml:
        raise ValueError("profile intervals use the ML criterion: pass a LinearMixedModel with reml=False")
    optimum = model.optimize()
    theta = optimum.theta
    sigma = float(np.sqrt(model.sigma2(theta)))
    cutoff = float(stats.chi2.ppf(level, 1))
    targets = [(i, a) for i, t in enumerate(model.terms) for a in range(t.k)] + [(None, None)]
    out = []
    for term, coef in targets:
        profile = _Profile(model, theta, sigma, term, coef)
        out.append(ProfiledSd(term, coef, profile.estimate, _lower_end(profile, cutoff),
                              _upper_end(profile, cutoff)))
    return out


def _upper_end(profile: _Profile, cutoff: float) -> float:
    start = profile.start.copy()
    inside = profile.estimate
    step = max(profile.estimate, 1e-3 * max(profile.estimate, 1.0)) * 0.25
    for _ in range(MAX_DOUBLINGS):
        trial = inside + step
        if profile(trial) > cutoff:
            profile.start = start
            return float(optimize.brentq(lambda v: profile(v) - cutoff, inside, trial, xtol=1e-9, rtol=1e-10))
        inside, step = trial, step * 2
        start = profile.start.copy()
    return float("inf")


def _lower_end(profile: _Profile, cutoff: float) -> float:
    start = profile.start.copy()
    if profile.estimate == 0.0:
        return 0.0
    if profile.term is not None and profile(0.0) <= cutoff:
        profile.start = start
        return 0.0
    profile.start = start
    if profile.term is None:  # sigma: the deviance grows without bound as sigma -> 0
        outside = profile.estimate / 2
        while profile(outside) <= cutoff:
            outside /= 2
        profile.start = start
        return float(optimize.brentq(lambda v: profile(v) - cutoff, outside, profile.estimate, xtol=1e-9,
                                     rtol=1e-10))
    value = float(optimize.brentq(lambda v: profile(v) - cutoff, 0.0, profile.estimate, xtol=1e-9,
                                  rtol=1e-10))
    profile.start = start
    return value


__all__ = ["ProfiledSd", "profile_intervals"]
