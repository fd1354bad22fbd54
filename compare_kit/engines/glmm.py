"""compare_kit's own maximum-likelihood engine for generalized linear mixed models (GLMMs).

Written by hand because no Python library fits GLMMs by maximum likelihood: statsmodels'
``BinomialBayesMixedGLM`` and ``PoissonBayesMixedGLM`` are variational Bayes or MAP with priors,
with independent effects only, and the ML request (statsmodels#9154, PR #2516) never landed.

The method is lme4's ``glmer`` (Bates, Maechler, Bolker & Walker 2015, "Fitting linear
mixed-effects models using lme4", JSS 67(1); lme4's vignette "Computational methods"; lme4's
``src/external.cpp``: ``pwrssUpdate``, ``glmerLaplace``, ``glmerAGQ``) and MixedModels.jl's
``GeneralizedLinearMixedModel`` (Bates, Alday & Kokandakar):

* The random effects are ``b = Lambda_theta u`` with ``u ~ N(0, I)``; theta, the relative
  covariance factor's entries, is ``engines.lmm``'s (one lower-triangular ``T_j`` per random
  term, blocks ordered largest first, the blocked Cholesky of ``Lambda'Z'WZ Lambda + I``).
* PIRLS: for given theta (and beta), the conditional modes ``u`` minimise the penalised deviance
  ``sum_i d_i(y_i, mu_i) + ||u||^2``. Each step is ``engines.lmm``'s penalised least squares on
  rows weighted by the IRLS weights (``LinearMixedModel.modes``), halved while the penalised
  deviance rises, iterated to machine precision so the criterion is smooth.
* Laplace (``nagq=1``): ``-2 log L ~ -2 log p(y | u) + ||u||^2 + log|L_theta|^2`` at the modes, with
  the family's normalising constants (the binomial coefficients), lme4's
  ``glmResp::Laplace = ldL2 + sqrL + aic()``: the logLik equals ``logLik(glmer(...))``.
* Adaptive Gauss-Hermite quadrature (``nagq=N``, one grouping factor with one scalar effect):
  per level, N nodes centred on the mode and scaled by its conditional SD (``glmerAGQ``).
  lme4 drops the saturated model's log-likelihood from this deviance (its ``logLik`` is then not
  comparable with a glm's or the Laplace fit's); it is kept here, so every ``loglik`` is
  ``log p(y)`` and nAGQ = 1 and N compare directly.
* Two stages, as glmer: theta with beta inside PIRLS (lme4's ``nAGQ = 0``), then theta and beta
  jointly on the Laplace or quadrature deviance: the optimum is glmer's. Both on
  ``engines.bounded_search`` (SLSQP, theta's diagonal bounded by 0, exact zeros), with
  forward-difference gradients.

Standard errors are lme4's default (``vcov(use.hessian = TRUE)``): twice the inverse of the
finite-difference Hessian of the deviance in (theta, beta) (``engines.glmm_checks``).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from compare_kit.engines.bounded_search import FAILED_DEVIANCE, BoundedSearch
from compare_kit.engines.glmm_checks import (
    GRADIENT_TOLERANCE,
    VcovMethod,
    extreme_means,
    fixed_effect_covariance,
    health_messages,
    overdispersion_ratio,
    separated_columns,
)
from compare_kit.engines.glmm_family import GlmmFamily, Response
from compare_kit.engines.lmm import NUMERICAL_FAILURES, LinearMixedModel, ReTerm, one_blas_thread
from compare_kit.errors import FitError
from compare_kit.wording import count

PIRLS_STEP = 1e-7  # PIRLS stops one step after its relative step falls below this (quadratic convergence:
# the state is then exact to rounding, and the factor is taken at it)
PIRLS_MAXIT = 100
PIRLS_HALVINGS = 20  # lme4's maxstephalfit
PDEV_ROUNDING = 1e-11  # a step raising the penalised deviance by less than this (relative) is not halved: near the
# modes the deviance changes below its rounding, and halving there would stop PIRLS short of them
GRADIENT_STEP = 1e-7  # forward differences of the criterion (noise ~1e-12 / 1e-7 and curvature error ~1e-7 x H)
MAX_NAGQ = 100  # lme4's GHrule: ord < 101
BOUNDARY_TOLERANCE = 1e-4  # lme4's isSingular tolerance on theta's diagonal


class Stage(enum.Enum):
    """glmer's two stages: beta inside PIRLS (lme4's nAGQ = 0), or beta a parameter of the search."""

    BETA_IN_PIRLS = "theta, beta inside PIRLS"
    JOINT = "theta and beta"


@dataclass(frozen=True, eq=False)
class _State:
    """A point of PIRLS: spherical modes (every term's, flat), fixed effects, and what they give."""

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    pdev: float  # penalised deviance: sum of deviance residuals + ||u||^2


@dataclass(frozen=True, eq=False)
class Pirls:
    """PIRLS's end at one theta: the state and the weighted model factored at it."""

    state: _State
    weighted: LinearMixedModel  # the penalised least squares problem at the state's IRLS weights
    logdet: float  # log|L_theta|^2 at the state
    l_diag: np.ndarray  # first block's Cholesky diagonals (one per level for a scalar term)
    converged: bool


class PirlsFailure(ArithmeticError):
    """PIRLS could not lower the penalised deviance (step halving failed) or met a non-finite value."""


def quadrature_rule(nagq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes ``z`` and weights ``w`` for the standard normal, and ``log phi(z)`` (lme4's GHrule).

    Made exactly symmetric, as MixedModels.jl and lme4's current sources do (the middle node is exactly 0).
    """
    z, w = np.polynomial.hermite_e.hermegauss(nagq)
    w = w / w.sum()
    z, w = (z - z[::-1]) / 2, (w + w[::-1]) / 2
    return z, w, stats.norm.logpdf(z)


class GeneralizedMixedModel:
    """The Laplace or adaptive-quadrature deviance of a GLMM, lme4's way.

    Parameters
    ----------
    terms : list of ReTerm
        The random terms (theta follows their order, as in ``engines.lmm``).
    x : ndarray
        Full-rank fixed-effect matrix (n, p).
    response : Response
        The outcome with its family and offset.
    nagq : int
        1 for Laplace, more for adaptive Gauss-Hermite quadrature (one scalar random term only).
    """

    def __init__(self, terms: list[ReTerm], x: np.ndarray, response: Response, nagq: int = 1) -> None:
        self.terms = list(terms)
        self.x = np.asarray(x, dtype=float)
        self.response = response
        self.nagq = nagq
        self.structure = LinearMixedModel(response.y, self.x, self.terms, reml=False)  # theta's layout
        self.n, self.p = self.x.shape
        self.n_theta = self.structure.n_theta
        self.lower = np.concatenate([self.structure.lower, np.full(self.p, -np.inf)])
        self._u_sizes = np.cumsum([0] + [t.q for t in self.terms])
        self._warm: _State | None = None  # where the last PIRLS ended (the next one starts there)
        self._last: tuple[tuple[Stage, bytes], float] | None = None  # the last criterion evaluated
        self.evaluations = 0
        self.rule = quadrature_rule(nagq) if nagq > 1 else None

    # ----------------------------------------------------------- PIRLS
    def split_u(self, u: np.ndarray) -> list[np.ndarray]:
        """The flat modes as one (levels, k) array per term."""
        return [u[self._u_sizes[i]:self._u_sizes[i + 1]].reshape(t.n_levels, t.k) for i, t in enumerate(self.terms)]

    def effects(self, ts: list[np.ndarray], u: np.ndarray) -> list[np.ndarray]:
        """The random effects ``b = Lambda u``, one (levels, k) array per term."""
        return [part @ t.T for part, t in zip(self.split_u(u), ts, strict=True)]

    def _eta(self, ts: list[np.ndarray], u: np.ndarray, beta: np.ndarray) -> np.ndarray:
        eta = self.response.offset + self.x @ beta
        for term, b in zip(self.terms, self.effects(ts, u), strict=True):
            eta = eta + np.einsum("na,na->n", term.z, b[term.codes])
        return eta

    def _state(self, ts: list[np.ndarray], u: np.ndarray, beta: np.ndarray) -> _State:
        eta = self._eta(ts, u, beta)
        mu, _ = self.response.mean(eta)
        pdev = float(self.response.deviance_residuals(mu).sum() + u @ u)
        return _State(u, beta, eta, mu, pdev if np.isfinite(pdev) else np.inf)

    def _start(self, ts: list[np.ndarray], beta: np.ndarray | None) -> _State:
        if self._warm is not None:
            return self._state(ts, self._warm.u, self._warm.beta if beta is None else beta)
        u = np.zeros(int(self._u_sizes[-1]))
        if beta is not None:
            return self._state(ts, u, beta)
        eta = self.response.start()  # R's mustart, no beta yet: the first step accepts any proposal
        return _State(u, np.zeros(self.p), eta, self.response.mean(eta)[0], np.inf)

    def _weighted(self, state: _State) -> LinearMixedModel:
        """The penalised least squares problem of one IRLS step at ``state``."""
        w, z, _ = self.response.working(state.eta)
        sw = np.sqrt(w)
        return self.structure.reweighted(sw, sw * z)

    def pirls(self, theta: np.ndarray, beta: np.ndarray | None = None) -> Pirls:
        """The conditional modes at ``theta``: given ``beta``, or with beta found jointly (``beta=None``).

        Raises ``PirlsFailure`` when the penalised deviance cannot be lowered, and the numerical
        failures of ``engines.lmm`` when a factor does not exist.
        """
        theta = np.asarray(theta, dtype=float)
        ts = self.structure.ts(theta)
        state = self._start(ts, beta)
        done = False
        steps = 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            while True:
                weighted = self._weighted(state)
                factor = weighted.factor(theta)
                if done or steps == PIRLS_MAXIT:  # the factor is taken at the state returned
                    self._warm = state
                    return Pirls(state, weighted, factor.logdet, np.einsum("gii->gi", factor.l11)[:, 0], done)
                new_beta, parts = weighted.modes(factor, beta)
                new = self._halved(ts, state, np.concatenate([p.ravel() for p in parts]), new_beta)
                old = np.concatenate([state.u, state.beta])
                step = np.abs(np.concatenate([new.u, new.beta]) - old) / (1.0 + np.abs(old))
                done = bool(np.max(step, initial=0.0) < PIRLS_STEP) or new.pdev == state.pdev
                state = new
                steps += 1

    def _halved(self, ts: list[np.ndarray], state: _State, u: np.ndarray, beta: np.ndarray) -> _State:
        """The proposed step, halved toward ``state`` while the penalised deviance rises (lme4's step halving)."""
        new = self._state(ts, u, beta)
        slack = PDEV_ROUNDING * (1.0 + abs(state.pdev)) if np.isfinite(state.pdev) else 0.0
        for _ in range(PIRLS_HALVINGS):
            if new.pdev <= state.pdev + slack:
                return new
            new = self._state(ts, (state.u + new.u) / 2, (state.beta + new.beta) / 2)
        raise PirlsFailure(f"PIRLS step halving failed to lower the penalised deviance ({new.pdev:.6g})")

    # -------------------------------------------------------- deviance
    def laplace(self, theta: np.ndarray, beta: np.ndarray | None = None) -> tuple[float, Pirls]:
        """-2 log-likelihood by the Laplace approximation (``beta=None``: beta at the joint mode, stage 1)."""
        fit = self.pirls(theta, beta)
        s = fit.state
        return self.response.minus_two_loglik(s.mu) + float(s.u @ s.u) + fit.logdet, fit

    def quadrature(self, theta: np.ndarray, beta: np.ndarray) -> tuple[float, Pirls]:
        """-2 log-likelihood by adaptive Gauss-Hermite quadrature (one scalar random term; lme4's glmerAGQ,
        plus the saturated model's -2 log-likelihood that lme4 leaves out)."""
        fit = self.pirls(theta, beta)
        s = fit.state
        term = self.terms[0]
        z_nodes, w_nodes, ldnorm = self.rule
        dev0 = self.response.deviance_residuals(s.mu)
        devc0 = np.bincount(term.codes, weights=dev0, minlength=term.n_levels) + s.u ** 2
        sd = 1.0 / fit.l_diag
        scale = float(theta[0])
        eta_fixed = s.eta - term.z[:, 0] * scale * s.u[term.codes]
        mult = np.zeros(term.n_levels)
        for z, w, ld in zip(z_nodes, w_nodes, ldnorm, strict=True):
            if z == 0:
                mult += w
                continue
            u = s.u + z * sd
            mu, _ = self.response.mean(eta_fixed + term.z[:, 0] * scale * u[term.codes])
            devc = np.bincount(term.codes, weights=self.response.deviance_residuals(mu), minlength=term.n_levels)
            mult += np.exp(-0.5 * (devc + u ** 2 - devc0) - ld) * w / np.sqrt(2 * np.pi)
        saturated = self.response.minus_two_loglik(s.mu) - float(dev0.sum())
        return float(devc0.sum() + fit.logdet - 2.0 * np.log(mult).sum()) + saturated, fit

    def criterion(self, params: np.ndarray) -> float:
        """The deviance in (theta, beta) that the final stage minimises (``FAILED_DEVIANCE`` where undefined)."""
        params = np.asarray(params, dtype=float)
        theta, beta = params[:self.n_theta], params[self.n_theta:]
        deviance = self.quadrature if self.rule is not None else self.laplace
        return self._safe(Stage.JOINT, params, lambda: deviance(theta, beta)[0])

    def stage_one(self, theta: np.ndarray) -> float:
        """The deviance in theta with beta inside PIRLS (glmer's first stage)."""
        theta = np.asarray(theta, dtype=float)
        return self._safe(Stage.BETA_IN_PIRLS, theta, lambda: self.laplace(theta)[0])

    def _safe(self, stage: Stage, params: np.ndarray, evaluate: Callable[[], float]) -> float:
        key = (stage, params.tobytes())
        if self._last is not None and self._last[0] == key:  # SLSQP asks for the value, then the gradient, at x
            return self._last[1]
        self.evaluations += 1
        try:
            value = float(evaluate())
        except (*NUMERICAL_FAILURES, PirlsFailure):
            self._warm = None  # start the next PIRLS afresh
            value = FAILED_DEVIANCE
        value = value if np.isfinite(value) else FAILED_DEVIANCE
        self._last = (key, value)
        return value

    def search(self, stage: Stage) -> BoundedSearch:
        """The bounded search of ``stage``, with forward-difference gradients."""
        fun = self.stage_one if stage is Stage.BETA_IN_PIRLS else self.criterion
        lower = self.structure.lower if stage is Stage.BETA_IN_PIRLS else self.lower
        return BoundedSearch(fun, lower, jac=lambda v: forward_gradient(fun, v))


def forward_gradient(fun: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Forward differences of ``fun`` at ``x``, steps ``GRADIENT_STEP`` relative to each entry's size
    (the criterion is smooth to ~1e-12, so the gradient is good to ~1e-5)."""
    x = np.asarray(x, dtype=float)
    at_x = fun(x)
    grad = np.empty(len(x))
    for i in range(len(x)):
        h = GRADIENT_STEP * max(1.0, abs(x[i]))
        step = x.copy()
        step[i] += h
        grad[i] = (fun(step) - at_x) / h
    return grad


# ------------------------------------------------------------------ the fit


@dataclass(frozen=True)
class GlmmHealth:
    """What can weaken a GLMM fit, as numbers and plain sentences (``messages``, or ``describe`` with names)."""

    family: GlmmFamily
    converged: bool  # the search succeeded, PIRLS converged and lme4's scaled gradient is small
    scaled_gradient: float  # lme4's convergence check: max |H^-1/2 g| on the free parameters
    boundary: tuple[tuple[int, int], ...]  # (term, coefficient) with theta's diagonal below 1e-4 (lme4's isSingular)
    separated: tuple[int, ...]  # columns of x whose estimates run off (complete or quasi-complete separation)
    extreme_fitted: int  # rows whose fitted probability is within 1e-8 of 0 or 1 (a rate below 1e-8)
    overdispersion: float | None  # sum of squared Pearson residuals / (n - p - n_theta); None for 0/1 outcomes
    vcov_method: VcovMethod

    @property
    def messages(self) -> tuple[str, ...]:
        """The sentences, with x's columns and the random coefficients named by position."""
        return self.describe(lambda j: f"x column {j}", lambda t, a: f"random term {t + 1}, coefficient {a + 1}")

    def describe(self, column: Callable[[int], str], coefficient: Callable[[int, int], str],
                 overdispersion: bool = True) -> tuple[str, ...]:
        """The sentences, naming x's column ``j`` as ``column(j)`` and coefficient ``a`` of term ``t`` as
        ``coefficient(t, a)``; ``overdispersion=False`` leaves the Pearson ratio out (a model with an
        observation-level effect, whose conditional Pearson residuals say nothing of overdispersion)."""
        return health_messages(converged=self.converged, gradient=self.scaled_gradient,
                               boundary=[coefficient(t, a) for t, a in self.boundary],
                               separated=[column(j) for j in self.separated], extreme=self.extreme_fitted,
                               overdispersion=self.overdispersion if overdispersion else None, family=self.family,
                               rx_fallback=self.vcov_method is VcovMethod.RX)


@dataclass(frozen=True, eq=False)
class GlmmSolution:
    """A GLMM fitted by maximum likelihood; per-term tuples follow the terms' order."""

    family: GlmmFamily
    nagq: int
    theta: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    covariances: tuple[np.ndarray, ...]  # (k, k) per term: the random coefficients' covariance, T T'
    b: tuple[np.ndarray, ...]  # (levels, k) conditional modes
    cond_var: tuple[np.ndarray, ...]  # (levels, k, k) conditional variances given beta (lme4's condVar)
    # given theta, from the penalised least squares at the final IRLS weights (the linearised model):
    cov_beta_given_theta: np.ndarray  # lme4's vcov(use.hessian = FALSE)
    pev: tuple[np.ndarray, ...]  # (levels, k, k) Henderson's prediction-error variance (beta estimated too)
    cov_b_beta: tuple[np.ndarray, ...]  # (levels, k, p) each effect's error's covariance with beta's
    loglik: float  # log p(y), Laplace or quadrature (the saturated model's constant included for nagq > 1)
    saturated_loglik: float  # the saturated model's log p(y) (0 for 0/1 outcomes), which glmer's nAGQ > 1 drops
    deviance: float  # conditional deviance at the modes, sum of deviance residuals (lme4's deviance())
    nobs: int
    eta: np.ndarray  # linear predictor at the modes (offset included)
    fitted: np.ndarray  # the mean at the modes: a probability (bernoulli, binomial), an expected count (poisson)
    health: GlmmHealth
    evaluations: int
    seconds: float

    @property
    def se_beta(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cov_beta), 0, None))

    @property
    def sds(self) -> tuple[np.ndarray, ...]:
        return tuple(np.sqrt(np.clip(np.diag(c), 0, None)) for c in self.covariances)

    @property
    def correlations(self) -> tuple[np.ndarray, ...]:
        """(k, k) per term; NaN where an SD is zero."""
        out = []
        for cov, sd in zip(self.covariances, self.sds, strict=True):
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(np.where(np.outer(sd, sd) > 0, cov / np.outer(sd, sd), np.nan))
        return tuple(out)

    @property
    def df(self) -> int:
        """Parameters counted by lme4: fixed effects and theta."""
        return len(self.beta) + len(self.theta)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.df

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.nobs) * self.df

    @property
    def glmer_loglik(self) -> float:
        """``logLik(glmer(...))``: ``loglik``, less the saturated model's for nagq > 1 (as glmer's quadrature)."""
        return self.loglik if self.nagq == 1 else self.loglik - self.saturated_loglik


def fit_glmm(terms: list[ReTerm], x: np.ndarray, y: np.ndarray, family: GlmmFamily | str,
             trials: np.ndarray | None = None, offset: np.ndarray | None = None, nagq: int = 1) -> GlmmSolution:
    """Fit a GLMM by maximum likelihood, lme4's way (Laplace, or adaptive Gauss-Hermite with ``nagq > 1``).

    Parameters
    ----------
    terms : list of ReTerm
        The random terms (``engines.lmm.ReTerm``: level codes, Z columns, correlated or not).
    x : ndarray
        Full-rank fixed-effect matrix (n, p).
    y : ndarray
        0/1 (bernoulli), successes (binomial) or counts (poisson).
    family : GlmmFamily or str
    trials : ndarray, optional
        Binomial only: trials per row (successes + failures).
    offset : ndarray, optional
        Added to the linear predictor (``offset(log(exposure))``).
    nagq : int
        1: Laplace (glmer's default). N > 1: N-point adaptive Gauss-Hermite quadrature, for one
        grouping factor with one scalar random effect only, as glmer allows.
    """
    began = time.perf_counter()
    response = Response.of(family, y, trials, offset)
    x = _checked_x(x, response.n)
    _check_terms(terms, response.n, nagq)
    with one_blas_thread():
        model = GeneralizedMixedModel(list(terms), x, response, nagq)
        first = model.search(Stage.BETA_IN_PIRLS).minimize(model.structure.start(), np.zeros(model.n_theta, bool))
        theta1 = np.where(np.isfinite(model.structure.lower), np.maximum(first.x, 0.0), first.x)
        try:
            beta1 = model.laplace(theta1)[1].state.beta
        except (*NUMERICAL_FAILURES, PirlsFailure):
            raise FitError("the GLMM's penalised least squares could not be solved at any variance tried: the "
                           "fixed-effect columns may be on very different scales or nearly collinear; center or "
                           "rescale the numeric predictors") from None
        quarter = np.concatenate([theta1 / 4, beta1])
        optimum = model.search(Stage.JOINT).optimize((np.concatenate([theta1, beta1]), quarter))
        if not optimum.found:
            raise FitError("the GLMM's deviance could not be evaluated at its optimum")
        return _solution(model, optimum.theta, optimum.success, began)


def _checked_x(x: np.ndarray, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] != n:
        raise FitError(f"the fixed-effect matrix must have one row per outcome row ({n}), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise FitError("the fixed-effect matrix holds missing or infinite values")
    norms = np.linalg.norm(x, axis=0)
    if x.shape[1] and np.linalg.matrix_rank(x / np.where(norms > 0, norms, 1.0)) < x.shape[1]:
        raise FitError("the fixed-effect columns are linearly dependent; drop the aliased columns first")
    return x


def _check_terms(terms: list[ReTerm], n: int, nagq: int) -> None:
    if not terms:
        raise FitError("a GLMM needs at least one random term; without one it is a GLM")
    for t in terms:
        if len(t.codes) != n or t.z.shape[0] != n:
            raise FitError(f"every random term needs one row per outcome row ({n})")
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or not 1 <= nagq <= MAX_NAGQ:
        raise FitError(f"nagq must be a whole number from 1 (Laplace) to {MAX_NAGQ}, got {nagq!r}")
    if nagq > 1 and (len(terms) != 1 or terms[0].k != 1):
        shape = f"{count(len(terms), 'random term')}" + ("" if len(terms) != 1 else
                                                         f" with {count(terms[0].k, 'coefficient')}")
        raise FitError(f"adaptive Gauss-Hermite quadrature (nagq={nagq}) needs one grouping factor with one "
                       f"scalar random effect, as glmer's nAGQ > 1 does; this model has {shape}. Use nagq=1 "
                       "(the Laplace approximation)")


def _solution(model: GeneralizedMixedModel, params: np.ndarray, searched: bool, began: float) -> GlmmSolution:
    theta, beta = params[:model.n_theta], params[model.n_theta:]
    deviance = model.criterion(params)
    final = model.pirls(theta, beta)
    at_theta = final.weighted.solve(theta, sigma2=1.0)  # condVar and the RX covariance at the final weights
    cov, method, gradient = fixed_effect_covariance(model.criterion, params, model.lower, model.n_theta,
                                                    at_theta.cov_beta)
    ts = model.structure.ts(theta)
    s = final.state
    response = model.response
    boundary = tuple((i, a) for i, (term, t) in enumerate(zip(model.terms, ts, strict=True))
                     for a in range(term.k) if abs(t[a, a]) < BOUNDARY_TOLERANCE)
    separated = separated_columns(model.x, response)
    over = overdispersion_ratio(response, s.mu, model.p + model.n_theta)
    converged = searched and final.converged and gradient < GRADIENT_TOLERANCE
    health = GlmmHealth(response.family, converged, gradient, boundary, separated,
                        extreme_means(response.family, s.mu), over, method)
    minus_two = response.minus_two_loglik(s.mu)
    conditional_deviance = float(response.deviance_residuals(s.mu).sum())
    return GlmmSolution(
        family=response.family, nagq=model.nagq, theta=theta, beta=beta, cov_beta=cov,
        covariances=tuple(t @ t.T for t in ts), b=tuple(model.effects(ts, s.u)), cond_var=at_theta.cond_var,
        cov_beta_given_theta=at_theta.cov_beta, pev=at_theta.pev, cov_b_beta=at_theta.cov_b_beta,
        loglik=-0.5 * deviance, saturated_loglik=-0.5 * (minus_two - conditional_deviance),
        deviance=conditional_deviance, nobs=model.n, eta=s.eta, fitted=s.mu, health=health,
        evaluations=model.evaluations, seconds=time.perf_counter() - began)


__all__ = ["GeneralizedMixedModel", "GlmmFamily", "GlmmHealth", "GlmmSolution", "Pirls", "PirlsFailure",
           "VcovMethod", "fit_glmm", "quadrature_rule"]
