"""The frequentist engine: OLS without random terms; for mixed models, compare_kit's own profiled
(RE)ML engine (``lmm``) beside statsmodels MixedLM (``mixedlm``).

compare_kit's engine optimises lme4's criterion first, for every structure. Where MixedLM can fit
the model at reasonable cost (``mixedlm.obstacle``), MixedLM is fitted from that optimum and its
variance parameters are the reported fit (engine ``statsmodels``), checked against the engine's;
elsewhere, or with ``mixedlm=False``, the engine's own optimum is reported (engine
``compare_kit``) and the result says why MixedLM was not used. Either way the fixed effects,
conditional modes and their uncertainties are read off the engine's factor at the reported
variance parameters, which is what lme4 reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm

from compare_kit.design import INTERCEPT, Design, build_design
from compare_kit.engines import mixedlm
from compare_kit.engines.lmm import (
    NUMERICAL_FAILURES,
    LinearMixedModel,
    LmmSolution,
    Optimum,
    lower_root,
    one_blas_thread,
)
from compare_kit.engines.glmm import MAX_NAGQ
from compare_kit.engines.glmm_fit import fit_generalized, re_terms
from compare_kit.engines.mixedlm import DEFAULT_OPTIMIZERS
from compare_kit.engines.profile_likelihood import profile_intervals
from compare_kit.engines.tidy_rows import (
    aliased_note,
    effect_uncertainty,
    fixed_rows,
    group_rows,
    ran_pars_rows,
    row,
)
from compare_kit.errors import DataError, FitError, SpecError
from compare_kit.family import Family
from compare_kit.results import (
    OLS_METHOD,
    RESIDUAL_GROUP,
    RESIDUAL_TERM,
    Effect,
    EngineName,
    FitStats,
    FrequentistFit,
    Health,
    MixedState,
    make_estimates,
    ols_residual_df,
    sd_term,
    validate_estimates,
)
from compare_kit.outcomes import FitSide, check_fit_available
from compare_kit.spec import ModelSpec

Method = Literal["REML", "ML"]
BOUNDARY_TOLERANCE = 1e-4  # lme4's isSingular tolerance on the relative Cholesky factor
CONVERGENCE_GAP = 1e-6  # log-likelihood a small step may still gain at a maximum
_ENGINE = EngineName.STATSMODELS


def fit_frequentist(spec: ModelSpec, data: pd.DataFrame, method: Method = "REML",
                    conf_level: float = 0.95,
                    optimizers: tuple[str, ...] = DEFAULT_OPTIMIZERS,
                    information_criteria: bool = True, mixedlm: bool = True,
                    progress: Callable[[str], None] | None = None, profile: bool = False,
                    nagq: int = 1) -> FrequentistFit:
    """Fit ``spec`` to ``data``: OLS without random terms, else a mixed model by REML or ML; for the
    bernoulli, binomial and poisson families a GLM (statsmodels) or a GLMM (compare_kit's engine, glmer's
    method) by maximum likelihood.

    Parameters
    ----------
    method : {"REML", "ML"}
        Gaussian models only. A GLM or GLMM is always fitted by ML (REML is not defined for them), so
        ``method`` is ignored there; the fit's ``method`` says how it was fitted: ``ML`` (a GLM),
        ``Laplace`` or ``AGQ(nagq=N)`` (a GLMM).
    optimizers : tuple of str
        MixedLM's optimizers, tried in turn (Gaussian mixed models).
    information_criteria : bool
        A REML fit also refits by ML for AIC and BIC unless False (cross-validation folds).
    mixedlm : bool
        Fit statsmodels MixedLM beside compare_kit's engine where it can fit the model, and report
        its estimates; False reports compare_kit's engine alone (faster; the same optimum). GLMMs are
        compare_kit's engine's alone (no Python library fits them by ML).
    progress : callable, optional
        Called with a line of text every few seconds while compare_kit's engine searches (long Gaussian fits).
    profile : bool
        Give every SD row of a mixed model (random-effect SDs, residual SD) a profile-likelihood interval,
        lme4's ``confint(method = "profile")``, in ``conf_low``/``conf_high``, with the method in
        ``note``. Off by default: it refits the model about ten times per SD (see
        ``FrequentistFit.profile_intervals`` for the intervals alone). Gaussian models only, for now.
    nagq : int
        GLMMs: 1 (the default) is the Laplace approximation, glmer's default; N from 2 to 100 is N-point
        adaptive Gauss-Hermite quadrature (glmer's ``nAGQ``), for one grouping factor with one scalar
        random effect, as glmer allows (a clear ``FitError`` otherwise). Other models take only 1.
    """
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"spec must be a ModelSpec (use ModelSpec.from_formula), got {type(spec).__name__}")
    method_text = str(method).upper()
    if method_text not in ("REML", "ML"):
        raise FitError(f"method must be 'REML' or 'ML', got {method!r}")
    if not 0 < conf_level < 1:
        raise FitError(f"conf_level must lie strictly between 0 and 1, got {conf_level}")
    unknown = [o for o in optimizers if o not in DEFAULT_OPTIMIZERS]
    if unknown or not optimizers:
        raise FitError(f"unknown optimizer(s) {unknown}; choose from {', '.join(DEFAULT_OPTIMIZERS)}")
    for name, value in (("mixedlm", mixedlm), ("profile", profile)):
        if not isinstance(value, bool):
            raise FitError(f"{name} must be True or False, got {value!r}")
    _check_family_options(spec, nagq, profile)
    design = build_design(spec, data)
    check_fit_available(spec, FitSide.FREQUENTIST)  # a Gaussian model with an offset: read, not fitted yet
    if design.x_estimable.shape[1] == 0 and not design.blocks:
        raise SpecError("the model has no estimable coefficient")
    if spec.family is not Family.GAUSSIAN:
        return fit_generalized(design, conf_level, nagq)
    if design.n <= design.x_estimable.shape[1]:
        raise DataError(f"{design.n} rows cannot estimate {design.x_estimable.shape[1]} fixed coefficients "
                        "and a residual variance; more rows are needed")
    if not design.blocks:
        return _fit_ols(design, conf_level)
    fit = _fit_mixed(design, method_text, conf_level, optimizers,  # type: ignore[arg-type]
                     information_criteria, mixedlm, progress)
    return _with_profile_intervals(fit, conf_level) if profile else fit


def _check_family_options(spec: ModelSpec, nagq: object, profile: bool) -> None:
    """``nagq`` is a count of nodes, and more than one only for a GLMM; ``profile`` only for Gaussian models."""
    if isinstance(nagq, bool) or not isinstance(nagq, int | np.integer) or not 1 <= nagq <= MAX_NAGQ:
        raise FitError(f"nagq must be a whole number from 1 (the Laplace approximation) to {MAX_NAGQ} (adaptive "
                       f"Gauss-Hermite quadrature with that many nodes), got {nagq!r}")
    if nagq != 1 and spec.family is Family.GAUSSIAN:
        raise FitError(f"nagq={nagq} sets the quadrature of a GLMM (family bernoulli, binomial or poisson); a "
                       "Gaussian model's likelihood is exact: leave nagq out")
    if profile and spec.family is not Family.GAUSSIAN:
        raise FitError(f"profile-likelihood intervals are available for Gaussian models only, for now; this "
                       f"model's family is {spec.family.value!r}: leave profile out (its fixed effects have "
                       "Wald intervals)")


def _with_profile_intervals(fit: FrequentistFit, conf_level: float) -> FrequentistFit:
    """``fit`` with its SD rows' intervals from the profile likelihood (the method named in ``note``)."""
    import dataclasses

    profiled = sd_profile_intervals(fit.design, conf_level).set_index(["group", "term"])
    estimates = fit.estimates.copy()
    for i, sd in estimates[estimates["effect"] == str(Effect.RAN_PARS)].iterrows():
        key = (sd["group"], sd["term"])
        if key in profiled.index:
            estimates.loc[i, ["conf_low", "conf_high"]] = profiled.loc[key, ["conf_low", "conf_high"]].to_numpy()
            estimates.loc[i, "note"] = "; ".join(filter(None, [sd["note"], profiled.loc[key, "method"]]))
    return dataclasses.replace(fit, estimates=validate_estimates(estimates))


# --------------------------------------------------------------------- OLS


def _fit_ols(design: Design, conf_level: float) -> FrequentistFit:
    start = time.perf_counter()
    x = design.x_estimable
    # least squares on unit-length columns (the rank test's scaling), then back on the columns' scale:
    # a column of huge or tiny values would otherwise look rank-deficient to the solver
    norms = np.linalg.norm(x.to_numpy(dtype=float), axis=0)
    norms[norms == 0] = 1.0
    res = sm.OLS(design.y, x.to_numpy(dtype=float) / norms).fit()
    beta = np.asarray(res.params) / norms
    se = np.asarray(res.bse) / norms
    df_resid = ols_residual_df(design)
    rows = fixed_rows(design, beta, se, conf_level, df_resid)
    sigma = float(np.sqrt(res.ssr / df_resid))
    rows.append(row(Effect.RAN_PARS, RESIDUAL_GROUP, "", RESIDUAL_TERM, sigma, np.nan, np.nan, np.nan,
                    conf_level, design.spec.label))
    loglik = float(res.llf)
    df = x.shape[1] + 1  # coefficients and the residual variance, as R's logLik(lm)
    n_groups = {c: int(design.data[c].nunique()) for c in sorted(design.categorical)}
    stats = FitStats(nobs=design.n, n_groups=n_groups, loglik=loglik, loglik_method="ML",
                     aic=-2 * loglik + 2 * df, bic=-2 * loglik + np.log(design.n) * df, df=df)
    health = Health(converged=True, boundary=False, optimizer="QR least squares",
                    notes=aliased_note(design) + design.notes)
    return FrequentistFit(_ENGINE, design.spec, OLS_METHOD, make_estimates(rows), stats, health, design.summary,
                          design=design, seconds=time.perf_counter() - start)


# ------------------------------------------------------------ mixed models


def own_engine(design: Design, reml: bool) -> LinearMixedModel:
    """compare_kit's profiled criterion for ``design``."""
    return LinearMixedModel(design.y, design.x_estimable.to_numpy(dtype=float), re_terms(design), reml)


def _checker(design: Design, layout: mixedlm.Layout, criterion: LinearMixedModel,
             optimum: Optimum) -> mixedlm.Checker | None:
    """compare_kit's optimum, ready to start and check MixedLM."""
    return mixedlm.Checker(design, layout, criterion, optimum)


def _singular_equations(design: Design, where: str) -> FitError:
    """The mixed model's equations had no numerical solution (a failed Cholesky, an overflow)."""
    return FitError(f"the mixed model's equations for {design.spec.formula!r} could not be solved {where}: "
                    "in floating point they are singular. This happens when model columns are on very "
                    "different scales or nearly collinear; center or rescale the numeric predictors "
                    "(center(x), scale(x)) or drop a random term")


@dataclass(frozen=True)
class _Fitted:
    """The variance parameters a mixed fit reports, and how they were reached."""

    engine: EngineName
    theta: np.ndarray
    scale: float | None  # None: the engine's profiled residual variance at theta
    loglik: float
    converged: bool
    optimizer: str
    attempts: tuple[str, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    seconds: dict[str, float]


def _fit_mixed(design: Design, method: Method, conf_level: float, optimizers: tuple[str, ...],
               information_criteria: bool = True, use_mixedlm: bool = True,
               progress: Callable[[str], None] | None = None) -> FrequentistFit:
    with one_blas_thread():
        return _fit_mixed_now(design, method, conf_level, optimizers, information_criteria, use_mixedlm,
                              progress)


def _fit_mixed_now(design: Design, method: Method, conf_level: float, optimizers: tuple[str, ...],
                   information_criteria: bool, use_mixedlm: bool,
                   progress: Callable[[str], None] | None) -> FrequentistFit:
    start = time.perf_counter()
    criterion = own_engine(design, method == "REML")
    if progress is not None:
        criterion.watch(progress)
    optimum = criterion.optimize()
    if not optimum.found:
        raise _singular_equations(design, "at every variance tried")
    own_seconds = time.perf_counter() - start
    layout = mixedlm.layout(design) if use_mixedlm else None
    obstacle = mixedlm.obstacle(design, layout) if layout is not None else "switched off (mixedlm=False)"
    if obstacle is None:
        checker = _checker(design, layout, criterion, optimum)
        fitted = _with_mixedlm(design, layout, method, optimizers, checker, own_seconds)
    else:
        fitted = _with_own_engine(criterion, optimum, obstacle, own_seconds)
    try:
        with np.errstate(over="raise"):
            solution = criterion.solve(fitted.theta, fitted.scale)
            rel_covs = criterion.relative_covariances(fitted.theta)
    except NUMERICAL_FAILURES:
        raise _singular_equations(design, "at the optimum") from None
    scale = solution.sigma2
    boundary, boundary_terms = _boundary(design, rel_covs)
    rows = _mixed_rows(design, solution, rel_covs, scale, conf_level, boundary_terms)
    for r in rows:
        r["engine"] = str(fitted.engine)
    stats = _mixed_stats(design, fitted.loglik, method, information_criteria, fitted.theta)
    warn = list(design.warnings) + list(fitted.warnings)
    if not fitted.converged:
        warn.insert(0, f"{'MixedLM' if fitted.engine == EngineName.STATSMODELS else 'compare_kit'} did not "
                       "converge; the estimates shown are the best found and may be wrong")
    if boundary:
        warn.append("singular fit: " + "; ".join(boundary_terms.values()))
    health = Health(converged=fitted.converged, boundary=boundary, optimizer=fitted.optimizer,
                    attempts=fitted.attempts, warnings=tuple(warn), notes=design.notes + fitted.notes,
                    boundary_terms=tuple(boundary_terms))
    mixed = MixedState(tuple(rel_covs), scale, solution, fitted.seconds)
    return FrequentistFit(fitted.engine, design.spec, method, make_estimates(rows), stats, health,
                          design.summary, design=design, seconds=time.perf_counter() - start, mixed=mixed)


def _with_mixedlm(design: Design, layout: mixedlm.Layout, method: Method, optimizers: tuple[str, ...],
                  checker: mixedlm.Checker | None, own_seconds: float) -> _Fitted:
    t0 = time.perf_counter()
    fit = mixedlm.fit_mixedlm(design, layout, method == "REML", optimizers, checker)
    a = fit.attempt
    return _Fitted(EngineName.STATSMODELS, fit.theta, fit.scale, fit.loglik, a.converged, a.optimizer,
                   a.log, a.warnings, (), {"compare_kit": own_seconds, "statsmodels": time.perf_counter() - t0})


def _with_own_engine(criterion: LinearMixedModel, optimum: Optimum, obstacle: str, own_seconds: float) -> _Fitted:
    gap = criterion.improvable_by(optimum.theta)
    converged = optimum.success and gap <= CONVERGENCE_GAP
    log = (f"profiled criterion (compare_kit, SLSQP): logLik {optimum.loglik:.6f}, {optimum.evaluations} "
           "evaluations" + ("" if converged else f"; a small step still raises logLik by {gap:.2g}"),)
    note = f"statsmodels MixedLM not used: {obstacle}; compare_kit's own engine (lme4's method) fitted it"
    return _Fitted(EngineName.COMPARE_KIT, optimum.theta, None, optimum.loglik, converged,
                   "compare_kit (SLSQP, bounded theta)", log, (), (note,), {"compare_kit": own_seconds})


def _boundary(design: Design, rel_covs: list[np.ndarray]) -> tuple[bool, dict[tuple[str, str], str]]:
    """lme4's singularity check on the relative Cholesky factor: independent of the outcome's scale."""
    flagged: dict[tuple[str, str], str] = {}
    for block, cov in zip(design.blocks, rel_covs, strict=True):
        lam = lower_root(cov)
        for c, coef in enumerate(block.z.columns):
            if abs(lam[c, c]) < BOUNDARY_TOLERANCE:
                flagged[(block.group, coef)] = (f"the SD of {coef} across {block.group} is estimated at "
                                                "(or next to) zero" if c == 0 or not block.term.correlated
                                                else f"{coef} across {block.group} is perfectly "
                                                "correlated with another random coefficient or has zero SD")
    return bool(flagged), flagged


def _mixed_rows(design: Design, sol: LmmSolution, rel_covs: list[np.ndarray], scale: float,
                conf_level: float, boundary_terms: dict[tuple[str, str], str]) -> list[dict]:
    rows = fixed_rows(design, sol.beta, np.sqrt(np.diag(sol.cov_beta)), conf_level)
    rows += ran_pars_rows(design, [cov * scale for cov in rel_covs], conf_level, boundary_terms)
    rows.append(row(Effect.RAN_PARS, RESIDUAL_GROUP, "", RESIDUAL_TERM, np.sqrt(scale), np.nan, np.nan,
                    np.nan, conf_level, design.spec.label))
    unc = effect_uncertainty(sol.b, sol.cond_var, sol.pev, sol.cov_b_beta, len(sol.beta))
    return rows + group_rows(design, unc, sol.beta, sol.cov_beta, conf_level, boundary_terms)


def _mixed_stats(design: Design, loglik: float, method: Method, information_criteria: bool,
                 theta: np.ndarray) -> FitStats:
    n_theta = 0
    for block in design.blocks:
        k = block.z.shape[1]
        n_theta += k * (k + 1) // 2 if block.term.correlated else k
    df = design.x_estimable.shape[1] + n_theta + 1
    n_groups = {b.group: len(b.levels) for b in design.blocks}
    if method == "ML":
        ml_loglik, note = loglik, "from this ML fit"
    elif not information_criteria:
        ml_loglik, note = float("nan"), "not computed (information_criteria=False)"
    else:
        ml = own_engine(design, reml=False).optimize(theta)  # from the REML optimum: a few steps away
        ml_loglik = ml.loglik
        note = ("from an ML refit by compare_kit's engine (REML likelihoods are not comparable across "
                "fixed effects)" + ("" if ml.success else "; the ML refit did not converge"))
    return FitStats(nobs=design.n, n_groups=n_groups, loglik=loglik, loglik_method=method,
                    aic=-2 * ml_loglik + 2 * df, bic=-2 * ml_loglik + np.log(design.n) * df,
                    ic_note=note, df=df)


PROFILE_COLUMNS = ["group", "term", "ml_estimate", "conf_low", "conf_high", "conf_level", "method"]


def sd_profile_intervals(design: Design, level: float) -> pd.DataFrame:
    """lme4's ``confint(method = "profile")`` for every random-effect SD and the residual SD.

    The ML criterion is profiled, as lme4 does for REML fits too, so ``ml_estimate`` (the profile's
    minimum) is the ML estimate. An upper end the profile never reaches is ``inf``.
    """
    if not 0 < level < 1:
        raise FitError(f"level must lie strictly between 0 and 1, got {level}")
    if not design.blocks:
        raise FitError("profile intervals are for the SDs of a mixed model; this model has no random term")
    with one_blas_thread():
        profiled = profile_intervals(own_engine(design, reml=False), level)
    rows = []
    for p in profiled:
        if p.term is None:
            group, term = RESIDUAL_GROUP, RESIDUAL_TERM
        else:
            block = design.blocks[p.term]
            group, term = block.group, sd_term(block.z.columns[p.coef])
        rows.append((group, term, p.estimate, p.low, p.high, level, "profile likelihood (ML deviance)"))
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


__all__ = ["DEFAULT_OPTIMIZERS", "INTERCEPT", "PROFILE_COLUMNS", "Method", "fit_frequentist", "own_engine",
           "sd_profile_intervals"]
