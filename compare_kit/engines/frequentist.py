"""The frequentist engine: OLS for complete and no pooling, MixedLM for partial pooling.

The spec is translated into statsmodels' terms here (``groups``, ``exog_re``,
variance components) from the design matrices, never from formula text.
statsmodels estimates the variance parameters; the fixed effects, BLUPs and
their uncertainties are then read off the mixed-model equations at those
values (``mme.py``), which is what lme4 reports.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import linalg
from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams, VCSpec
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from compare_kit.design import INTERCEPT, Design, GroupingBlock, build_design, nested_in
from compare_kit.engines.mme import MMESolution, Partition, relative_factor, solve_mme
from compare_kit.engines.lmm import LinearMixedModel, ReTerm
from compare_kit.errors import DataError, FitError, SpecError
from compare_kit.results import (
    RESIDUAL_GROUP,
    RESIDUAL_TERM,
    Effect,
    EngineName,
    FitResult,
    FitStats,
    Health,
    cor_term,
    make_estimates,
    sd_term,
    wald_interval,
)
from compare_kit.spec import ModelSpec

Method = Literal["REML", "ML"]
DEFAULT_OPTIMIZERS: tuple[str, ...] = ("lbfgs", "bfgs", "cg", "powell", "nm")
BOUNDARY_TOLERANCE = 1e-4  # lme4's isSingular tolerance on the relative Cholesky factor
BOUNDARY_BLUP_NOTE = "group SD at the boundary: the BLUP is shrunk to zero, not estimated"
_ENGINE = EngineName.STATSMODELS


def fit_frequentist(spec: ModelSpec, data: pd.DataFrame, method: Method = "REML",
                    conf_level: float = 0.95,
                    optimizers: tuple[str, ...] = DEFAULT_OPTIMIZERS,
                    information_criteria: bool = True) -> FitResult:
    """Fit ``spec`` to ``data``: OLS without random terms, else MixedLM by REML or ML.

    A REML fit also refits by ML for AIC and BIC unless ``information_criteria``
    is False (cross-validation folds, which need neither).
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
    design = build_design(spec, data)
    if design.x_estimable.shape[1] == 0 and not design.blocks:
        raise SpecError("the model has no estimable coefficient")
    if design.n <= design.x_estimable.shape[1]:
        raise DataError(f"{design.n} rows cannot estimate {design.x_estimable.shape[1]} fixed coefficients "
                        "and a residual variance; more rows are needed")
    if not design.blocks:
        return _fit_ols(design, conf_level)
    return _fit_mixed(design, method_text, conf_level, optimizers,  # type: ignore[arg-type]
                      information_criteria)


# --------------------------------------------------------------------- OLS


def _fit_ols(design: Design, conf_level: float) -> FitResult:
    start = time.perf_counter()
    x = design.x_estimable
    res = sm.OLS(design.y, x.to_numpy()).fit()
    beta = np.asarray(res.params)
    se = np.asarray(res.bse)
    df_resid = design.n - x.shape[1]
    from scipy.stats import t as t_dist

    q = t_dist.ppf(0.5 + conf_level / 2, df_resid)
    fixed = dict(zip(x.columns, zip(beta, se, strict=True), strict=True))
    rows = []
    for name in design.x.columns:
        if name in fixed:
            b, s = fixed[name]
            rows.append(_row(Effect.FIXED, "", "", name, b, s, b - q * s, b + q * s, conf_level,
                             design.spec.label))
        else:
            rows.append(_row(Effect.FIXED, "", "", name, np.nan, np.nan, np.nan, np.nan, conf_level,
                             design.spec.label, note=design.aliased[name]))
    sigma = float(np.sqrt(res.ssr / df_resid))
    rows.append(_row(Effect.RAN_PARS, RESIDUAL_GROUP, "", RESIDUAL_TERM, sigma, np.nan, np.nan, np.nan,
                     conf_level, design.spec.label))
    loglik = float(res.llf)
    df = x.shape[1] + 1  # coefficients and the residual variance, as R's logLik(lm)
    n_groups = {c: int(design.data[c].nunique()) for c in sorted(design.categorical)}
    notes = (f"{len(design.aliased)} coefficient(s) not estimable from the data (reported empty with the "
             "reason)",) if design.aliased else ()
    stats = FitStats(nobs=design.n, n_groups=n_groups, loglik=loglik, loglik_method="ML",
                     aic=-2 * loglik + 2 * df, bic=-2 * loglik + np.log(design.n) * df, df=df)
    health = Health(converged=True, boundary=False, optimizer="QR least squares", notes=notes + design.notes)
    return FitResult(_ENGINE, design.spec, "OLS", make_estimates(rows), stats, health, design.summary,
                     extras={"design": design, "seconds": time.perf_counter() - start})


# ------------------------------------------------------------------ layout


@dataclass(frozen=True)
class _Layout:
    """How the spec's random terms map onto MixedLM's groups, exog_re and variance components."""

    partition_codes: np.ndarray
    n_partitions: int
    re_blocks: tuple[int, ...]  # indices of blocks on the partition factor (exog_re)
    vc_blocks: tuple[int, ...]  # indices of blocks fitted as variance components

    @property
    def crossed(self) -> bool:
        return self.n_partitions == 1


def _layout(design: Design) -> _Layout:
    blocks = design.blocks
    _check_duplicate_coefficients(blocks)
    groups = list(dict.fromkeys(b.group for b in blocks))
    primary = next((g for g in groups if all(nested_in(_block_of(blocks, h), _block_of(blocks, g))
                                              for h in groups)), None)
    if primary is None:
        codes = np.zeros(design.n, dtype=int)
        n_part = 1
        re_blocks: tuple[int, ...] = ()
    else:
        pb = _block_of(blocks, primary)
        codes, n_part = pb.codes, len(pb.levels)
        re_blocks = tuple(i for i, b in enumerate(blocks) if b.group == primary)
    vc_blocks = tuple(i for i in range(len(blocks)) if i not in re_blocks)
    for i in vc_blocks:
        b = blocks[i]
        if b.term.correlated and b.z.shape[1] > 1:
            where = ("the grouping factors are crossed" if primary is None
                     else f"{b.group!r} is nested in {primary!r}")
            raise SpecError(
                f"statsmodels MixedLM cannot fit correlated effects {b.term.to_formula()} here: "
                f"{where}, and MixedLM allows correlated effects only for the outermost grouping "
                f"factor. Use uncorrelated effects ({_uncorrelated_hint(b)}) or one grouping factor.")
    return _Layout(codes, n_part, re_blocks, vc_blocks)


def _uncorrelated_hint(block: GroupingBlock) -> str:
    return block.term.to_formula().replace(" | ", " || ")


def _block_of(blocks: tuple[GroupingBlock, ...], group: str) -> GroupingBlock:
    return next(b for b in blocks if b.group == group)


def _check_duplicate_coefficients(blocks: tuple[GroupingBlock, ...]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for b in blocks:
        for coef in b.z.columns:
            key = (b.group, coef)
            if key in seen:
                raise SpecError(f"the random coefficient {coef!r} for {b.group!r} appears in two terms "
                                f"({seen[key]} and {b.term.to_formula()}); keep it in one")
            seen[key] = b.term.to_formula()


def _free_pattern(design: Design, layout: _Layout) -> MixedLMParams | None:
    """Which covariance entries MixedLM may estimate (None: all of them)."""
    sizes = [design.blocks[i].z.shape[1] for i in layout.re_blocks]
    k = sum(sizes)
    free = np.zeros((k, k))
    start = 0
    for i, size in zip(layout.re_blocks, sizes, strict=True):
        block = free[start:start + size, start:start + size]
        block[...] = 1.0 if design.blocks[i].term.correlated else np.eye(size)
        start += size
    if np.all(free == 1.0):
        return None
    n_vc = sum(design.blocks[i].z.shape[1] for i in layout.vc_blocks)
    return MixedLMParams.from_components(np.ones(design.x_estimable.shape[1]), free, vcomp=
                                         np.ones(n_vc) if n_vc else None)


def _vc_spec(design: Design, layout: _Layout) -> VCSpec | None:
    if not layout.vc_blocks:
        return None
    names, colnames, mats = [], [], []
    for i in layout.vc_blocks:
        block = design.blocks[i]
        for coef in block.z.columns:
            zcol = block.z[coef].to_numpy()
            per_group_mats, per_group_names = [], []
            for j in range(layout.n_partitions):
                rows = np.flatnonzero(layout.partition_codes == j)
                levels = np.unique(block.codes[rows])
                mat = (block.codes[rows][:, None] == levels[None, :]) * zcol[rows][:, None]
                per_group_mats.append(mat.astype(float))
                per_group_names.append([block.levels[lv] for lv in levels])
            names.append(f"{block.group}|{coef}")
            colnames.append(per_group_names)
            mats.append(per_group_mats)
    return VCSpec(names, colnames, mats)


# -------------------------------------------------------------------- fits


@dataclass(frozen=True)
class _Attempt:
    result: object | None
    converged: bool
    optimizer: str
    log: tuple[str, ...]
    warnings: tuple[str, ...]


def _run_optimizers(model: MixedLM, reml: bool, free: MixedLMParams | None,
                    optimizers: tuple[str, ...], start: MixedLMParams,
                    checker: _Checker | None = None) -> _Attempt:
    """Try each optimizer in turn, each starting where the last stopped, until one reaches a maximum.

    statsmodels may report convergence at a point that is not a maximum (or at an
    infinite likelihood); every answer is therefore checked by small steps in each
    covariance parameter, and a fit that can still be improved is handed on. With
    a ``checker`` (one grouping factor), the answer is also compared with an
    independent optimizer of the same criterion, and a disagreement is flagged.
    """
    log: list[str] = list(checker.log) if checker is not None else []
    best: _Attempt | None = None
    for opt in optimizers:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = model.fit(reml=reml, method=[opt], free=free, start_params=start)
                gap = _improvable_by(model, res, free, checker) if np.isfinite(res.llf) else np.inf
        except (np.linalg.LinAlgError, ValueError, FloatingPointError, ZeroDivisionError) as exc:
            log.append(f"{opt}: failed ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        messages = tuple(dict.fromkeys(
            str(w.message) for w in caught
            if issubclass(w.category, ConvergenceWarning) and "boundary" not in str(w.message).lower()
            and "Hessian" not in str(w.message)))
        finite = bool(np.isfinite(res.llf))
        converged = bool(getattr(res, "converged", False)) and finite and gap <= 1e-6
        if converged:
            log.append(f"{opt}: converged (logLik {res.llf:.6f})")
            disagree = checker.disagreement(opt, float(res.llf)) if checker is not None else None
            return _Attempt(res, True, opt, tuple(log), (disagree,) if disagree else ())
        reason = ("infinite log-likelihood" if not finite else
                  f"stopped short of the maximum (a small step raises logLik by {gap:.2g})"
                  if gap > 1e-6 else "reported no convergence")
        log.append(f"{opt}: {reason} (logLik {res.llf:.6f})")
        if finite and (best is None or res.llf > best.result.llf):
            best = _Attempt(res, False, opt, (), messages)
            start = res.params_object
    if best is None:
        raise FitError("MixedLM failed with every optimizer (" + "; ".join(log) + "). The model may be "
                       "too complex for the data: try fewer random terms or check for collinear predictors.")
    return _Attempt(best.result, False, best.optimizer, tuple(log), best.warnings)


def _improvable_by(model: MixedLM, res: object, free: MixedLMParams | None,
                   checker: _Checker | None = None) -> float:
    """The largest log-likelihood gain from a small step in one covariance parameter (0 at a maximum)."""
    if checker is not None:
        return checker.improvable_by(res)
    packed = res.params_object.get_packed(use_sqrt=model.use_sqrt, has_fe=False)
    mask = (np.ones(len(packed), dtype=bool) if free is None
            else free.get_packed(use_sqrt=False, has_fe=False) != 0)
    base = model.loglike(packed, profile_fe=True)
    gain = 0.0
    for i in np.flatnonzero(mask):
        for step in (1e-3, -1e-3):
            trial = packed.copy()
            trial[i] += step * max(1.0, abs(trial[i]))
            value = model.loglike(trial, profile_fe=True)
            if np.isfinite(value):
                gain = max(gain, float(value - base))
    return gain


def _start_params(design: Design, layout: _Layout, checker: _Checker | None = None) -> MixedLMParams:
    """Where MixedLM starts: the profiled criterion's optimum when there is one grouping factor,
    else OLS fixed effects and a relative variance of 0.1 for every random coefficient.

    Measured on the radon models: statsmodels' own default start (relative
    variance 1) sends L-BFGS to an infinite likelihood for random-intercept
    models, while 0.1 reaches lme4's optimum for all of them; starting at the
    profiled optimum leaves statsmodels one or two steps.
    """
    x = design.x_estimable.to_numpy()
    beta = np.linalg.lstsq(x, design.y, rcond=None)[0]
    if checker is not None and checker.success:
        return checker.start_params(beta)
    k = sum(design.blocks[i].z.shape[1] for i in layout.re_blocks)
    n_vc = sum(design.blocks[i].z.shape[1] for i in layout.vc_blocks)
    return MixedLMParams.from_components(beta, 0.1 * np.eye(k), vcomp=0.1 * np.ones(n_vc) if n_vc else None)


class _Checker:
    """compare_kit's own optimizer of the profiled criterion (``lmm.LinearMixedModel``), any structure.

    It finds the bounded optimum in milliseconds; statsmodels then starts there, and its
    answer is checked against this one (``disagreement``), probed for a nearby improvement
    (``improvable_by``) and put on the zero bound where the criterion says the bound is the
    optimum (``polish``), so that a boundary fit does not depend on where MixedLM stopped.
    """

    TOLERANCE = 1e-3  # log-likelihood units: optimizers that differ by more disagree

    def __init__(self, design: Design, layout: _Layout, reml: bool) -> None:
        self.design = design
        self.layout = layout
        terms = [ReTerm(b.codes, len(b.levels), b.z.to_numpy(dtype=float), b.term.correlated)
                 for b in design.blocks]
        self.criterion = LinearMixedModel(design.y, design.x_estimable.to_numpy(dtype=float), terms, reml)
        optimum = self.criterion.optimize()
        self.theta, self.success = optimum.theta, optimum.success
        self.best_loglik = optimum.loglik
        self.log = (f"profiled criterion (compare_kit, SLSQP): logLik {self.best_loglik:.6f}"
                    + ("" if self.success else " (did not converge)"),)

    def start_params(self, beta: np.ndarray) -> MixedLMParams:
        """MixedLM's start at this optimum; a zero SD is lifted to 0.01 (statsmodels inverts cov_re)."""
        covs = []
        for t in self.criterion.ts(self.theta):
            t = t.copy()
            diag = np.arange(t.shape[0])
            t[diag, diag] = np.maximum(t[diag, diag], 0.01)
            covs.append(t @ t.T)
        cov_re = (linalg.block_diag(*[covs[i] for i in self.layout.re_blocks]) if self.layout.re_blocks
                  else np.zeros((0, 0)))
        vcomp = [np.diag(covs[i]) for i in self.layout.vc_blocks]
        return MixedLMParams.from_components(beta, cov_re, vcomp=np.concatenate(vcomp) if vcomp else None)

    def improvable_by(self, res: object) -> float:
        rel_covs = _relative_covariances(self.design, self.layout, res, float(res.scale))
        return self.criterion.improvable_by(self.criterion.theta_of(rel_covs))

    def polish(self, rel_covs: list[np.ndarray]) -> tuple[list[np.ndarray], float, float] | None:
        """Relative covariances, residual variance and log-likelihood with near-zero entries of theta at
        exactly 0 where the criterion is no worse there (``LinearMixedModel.snap_to_bound``); None when
        nothing moved."""
        theta = self.criterion.theta_of(rel_covs)
        snapped = self.criterion.snap_to_bound(theta)
        if np.array_equal(snapped.theta, theta) or not snapped.at_bound:
            return None
        return (self.criterion.relative_covariances(snapped.theta), self.criterion.sigma2(snapped.theta),
                snapped.loglik)

    def disagreement(self, optimizer: str, loglik: float) -> str | None:
        if not self.success or abs(loglik - self.best_loglik) <= self.TOLERANCE:
            return None
        return (f"optimizers disagree: statsmodels ({optimizer}) reached logLik {loglik:.6f}, compare_kit's "
                f"profiled optimizer {self.best_loglik:.6f}; the likelihood may be flat or multimodal, so "
                "check the variance components")


def _checker(design: Design, layout: _Layout, reml: bool) -> _Checker | None:
    """The independent optimizer of the same criterion (every model with random terms)."""
    if not design.blocks:
        return None
    return _Checker(design, layout, reml)


def _fit_mixed(design: Design, method: Method, conf_level: float,
               optimizers: tuple[str, ...], information_criteria: bool = True) -> FitResult:
    start = time.perf_counter()
    layout = _layout(design)
    x = design.x_estimable
    exog_re = (np.column_stack([design.blocks[i].z.to_numpy() for i in layout.re_blocks])
               if layout.re_blocks else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constructor notices; fit warnings are recorded below
        model = MixedLM(design.y, x.to_numpy(), groups=layout.partition_codes, exog_re=exog_re,
                        exog_vc=_vc_spec(design, layout))
    free = _free_pattern(design, layout)
    checker = _checker(design, layout, method == "REML")
    start_params = _start_params(design, layout, checker)
    attempt = _run_optimizers(model, method == "REML", free, optimizers, start_params, checker)
    res = attempt.result
    scale = float(res.scale)
    rel_covs = _relative_covariances(design, layout, res, scale)
    loglik = float(res.llf)
    polished = checker.polish(rel_covs) if checker is not None else None
    if polished is not None:  # MixedLM stopped next to the zero bound; the criterion says it is the bound
        rel_covs, scale, loglik = polished
    solution = solve_mme(design.y, x.to_numpy(), _partitions(design, layout, rel_covs), scale,
                         _n_effects(design))
    boundary, boundary_terms = _boundary(design, rel_covs)
    rows = _mixed_rows(design, solution, rel_covs, scale, conf_level, boundary_terms)
    stats = _mixed_stats(design, layout, res, loglik, method, optimizers, free, model, information_criteria)
    warn = list(design.warnings) + list(attempt.warnings)
    if not attempt.converged:
        warn.insert(0, "MixedLM did not converge with any optimizer; the estimates shown are the best "
                       "found and may be wrong")
    if boundary:
        warn.append("singular fit: " + "; ".join(boundary_terms.values()))
    health = Health(converged=attempt.converged, boundary=boundary, optimizer=attempt.optimizer,
                    attempts=attempt.log, warnings=tuple(warn), notes=design.notes)
    extras = {"design": design, "mme": solution, "relative_covariances": rel_covs, "scale": scale,
              "seconds": time.perf_counter() - start, "pev": _pev_table(design, solution)}
    return FitResult(_ENGINE, design.spec, method, make_estimates(rows), stats, health,
                     design.summary, extras=extras)


def _relative_covariances(design: Design, layout: _Layout, res: object, scale: float) -> list[np.ndarray]:
    """Per block, the random coefficients' covariance divided by the residual variance."""
    covs: list[np.ndarray | None] = [None] * len(design.blocks)
    cov_re = np.asarray(res.cov_re) if layout.re_blocks else np.zeros((0, 0))
    start = 0
    for i in layout.re_blocks:
        k = design.blocks[i].z.shape[1]
        covs[i] = cov_re[start:start + k, start:start + k] / scale
        start += k
    vcomp = np.asarray(getattr(res, "vcomp", np.zeros(0)), dtype=float)
    pos = 0
    for i in layout.vc_blocks:
        k = design.blocks[i].z.shape[1]
        covs[i] = np.diag(vcomp[pos:pos + k]) / scale
        pos += k
    return [c for c in covs if c is not None] if all(c is not None for c in covs) else []


def _n_effects(design: Design) -> int:
    return sum(len(b.levels) * b.z.shape[1] for b in design.blocks)


def _effect_offsets(design: Design) -> list[int]:
    offsets, total = [], 0
    for b in design.blocks:
        offsets.append(total)
        total += len(b.levels) * b.z.shape[1]
    return offsets


def _partitions(design: Design, layout: _Layout, rel_covs: list[np.ndarray]) -> list[Partition]:
    offsets = _effect_offsets(design)
    lams = [relative_factor(c) for c in rel_covs]
    parts = []
    for j in range(layout.n_partitions):
        rows = np.flatnonzero(layout.partition_codes == j)
        z_cols, lam_blocks, index = [], [], []
        for bi, block in enumerate(design.blocks):
            k = block.z.shape[1]
            zb = block.z.to_numpy()[rows]
            for level in np.unique(block.codes[rows]):
                mask = (block.codes[rows] == level)[:, None]
                z_cols.append(zb * mask)
                lam_blocks.append(lams[bi])
                index.extend(offsets[bi] + level * k + np.arange(k))
        parts.append(Partition(rows, np.hstack(z_cols), linalg.block_diag(*lam_blocks), np.array(index)))
    return parts


def _boundary(design: Design, rel_covs: list[np.ndarray]) -> tuple[bool, dict[tuple[str, str], str]]:
    """lme4's singularity check on the relative Cholesky factor: independent of the outcome's scale."""
    flagged: dict[tuple[str, str], str] = {}
    for block, cov in zip(design.blocks, rel_covs, strict=True):
        lam = relative_factor(cov)
        for c, coef in enumerate(block.z.columns):
            if abs(lam[c, c]) < BOUNDARY_TOLERANCE:
                flagged[(block.group, coef)] = (f"the SD of {coef} across {block.group} is estimated at "
                                                "(or next to) zero" if c == 0 or not block.term.correlated
                                                else f"{coef} across {block.group} is perfectly "
                                                "correlated with another random coefficient or has zero SD")
    return bool(flagged), flagged


def _mixed_rows(design: Design, sol: MMESolution, rel_covs: list[np.ndarray], scale: float,
                conf_level: float, boundary_terms: dict[tuple[str, str], str]) -> list[dict]:
    label = design.spec.label
    rows: list[dict] = []
    est_cols = list(design.x_estimable.columns)
    beta = dict(zip(est_cols, sol.beta, strict=True))
    beta_se = dict(zip(est_cols, np.sqrt(np.diag(sol.cov_beta)), strict=True))
    for name in design.x.columns:
        if name in beta:
            lo, hi = wald_interval(beta[name], beta_se[name], conf_level)
            rows.append(_row(Effect.FIXED, "", "", name, beta[name], beta_se[name], lo, hi, conf_level, label))
        else:
            rows.append(_row(Effect.FIXED, "", "", name, np.nan, np.nan, np.nan, np.nan, conf_level, label,
                             note=design.aliased[name]))
    for block, cov in zip(design.blocks, rel_covs, strict=True):
        sds = np.sqrt(np.clip(np.diag(cov), 0, None) * scale)
        coefs = list(block.z.columns)
        for c, coef in enumerate(coefs):
            rows.append(_row(Effect.RAN_PARS, block.group, "", sd_term(coef), sds[c], np.nan, np.nan, np.nan,
                             conf_level, label, note="at the boundary" if (block.group, coef) in boundary_terms
                             else ""))
        if block.term.correlated:
            for a in range(len(coefs)):
                for b in range(a + 1, len(coefs)):
                    denom = sds[a] * sds[b]
                    cor = cov[a, b] * scale / denom if denom > 0 else np.nan
                    note = "" if denom > 0 else "undefined: an SD is zero"
                    rows.append(_row(Effect.RAN_PARS, block.group, "", cor_term(coefs[a], coefs[b]), cor,
                                     np.nan, np.nan, np.nan, conf_level, label, note=note))
    rows.append(_row(Effect.RAN_PARS, RESIDUAL_GROUP, "", RESIDUAL_TERM, np.sqrt(scale), np.nan, np.nan,
                     np.nan, conf_level, label))
    rows += _group_rows(design, sol, beta, conf_level, boundary_terms)
    return rows


@dataclass(frozen=True)
class _EffectUncertainty:
    """Per random effect (global order): conditional SD, Henderson PEV and its covariance with beta."""

    cond_sd: np.ndarray
    pev: np.ndarray
    cov_with_beta: np.ndarray  # (effect, fixed column)


def _effect_uncertainty(sol: MMESolution) -> _EffectUncertainty:
    n = len(sol.b)
    cond = np.zeros(n)
    pev = np.zeros(n)
    cross = np.zeros((n, len(sol.beta)))
    for pi, index in enumerate(sol.partition_index):
        cond[index] = np.sqrt(np.clip(np.diag(sol.cond_var[pi]), 0, None))
        pev[index] = np.diag(sol.pev[pi])
        cross[index] = sol.cov_b_beta[pi]
    return _EffectUncertainty(cond, pev, cross)


def _effect_labels(design: Design) -> pd.DataFrame:
    """group, level, term of every random effect, in the global order used by the MME."""
    frames = [pd.DataFrame({"group": block.group,
                            "level": np.repeat(block.levels, block.z.shape[1]),
                            "term": np.tile(block.z.columns, len(block.levels))})
              for block in design.blocks]
    return pd.concat(frames, ignore_index=True)


def _group_rows(design: Design, sol: MMESolution, beta: dict[str, float], conf_level: float,
                boundary_terms: dict[tuple[str, str], str]) -> list[dict]:
    """ran_vals (BLUP, conditional SD) and ran_coefs (fixed + BLUP, with its joint error SD)."""
    labels = _effect_labels(design)
    unc = _effect_uncertainty(sol)
    est_cols = list(design.x_estimable.columns)
    fixed_idx = np.array([est_cols.index(t) if t in est_cols else -1 for t in labels["term"]])
    has_fixed = fixed_idx >= 0
    safe = np.where(has_fixed, fixed_idx, 0)
    rows_idx = np.arange(len(labels))
    coef_var = unc.pev + np.where(has_fixed, np.diag(sol.cov_beta)[safe]
                                  + 2 * unc.cov_with_beta[rows_idx, safe], 0.0)
    coef_se = np.sqrt(np.clip(coef_var, 0, None))
    fixed_part = np.array([beta.get(t, 0.0) for t in labels["term"]])
    vals_lo, vals_hi = wald_interval(sol.b, unc.cond_sd, conf_level)
    coef = fixed_part + sol.b
    coef_lo, coef_hi = wald_interval(coef, coef_se, conf_level)
    label = design.spec.label
    vals, coefs = [], []
    for i, (group, level, term) in enumerate(labels.itertuples(index=False)):
        if (group, term) in boundary_terms:
            # the BLUP is zero by construction, not an estimate: no standard error, no interval
            vals.append(_row(Effect.RAN_VALS, group, level, term, sol.b[i], np.nan, np.nan, np.nan,
                             conf_level, label, note=BOUNDARY_BLUP_NOTE))
        else:
            vals.append(_row(Effect.RAN_VALS, group, level, term, sol.b[i], unc.cond_sd[i], vals_lo[i],
                             vals_hi[i], conf_level, label))
        coefs.append(_row(Effect.RAN_COEFS, group, level, term, coef[i], coef_se[i], coef_lo[i], coef_hi[i],
                          conf_level, label))
    return vals + coefs


def _pev_table(design: Design, sol: MMESolution) -> pd.DataFrame:
    """Per group effect: BLUP, conditional SD (given beta) and Henderson's prediction-error SD."""
    unc = _effect_uncertainty(sol)
    return _effect_labels(design).assign(blup=sol.b, cond_sd=unc.cond_sd,
                                         pev_sd=np.sqrt(np.clip(unc.pev, 0, None)))


def _mixed_stats(design: Design, layout: _Layout, res: object, loglik: float, method: Method,
                 optimizers: tuple[str, ...], free: MixedLMParams | None, model: MixedLM,
                 information_criteria: bool) -> FitStats:
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
        checker = _checker(design, layout, reml=False)
        start = (checker.start_params(np.asarray(res.fe_params)) if checker is not None and checker.success
                 else res.params_object)
        ml = _run_optimizers(model, False, free, optimizers, start, checker)
        ml_loglik = float(ml.result.llf)
        if checker is not None:
            rel = _relative_covariances(design, layout, ml.result, float(ml.result.scale))
            polished = checker.polish(rel)
            ml_loglik = polished[2] if polished is not None else ml_loglik
        note = ("from an ML refit (REML likelihoods are not comparable across fixed effects)"
                + ("" if ml.converged else "; the ML refit did not converge"))
    return FitStats(nobs=design.n, n_groups=n_groups, loglik=loglik, loglik_method=method,
                    aic=-2 * ml_loglik + 2 * df, bic=-2 * ml_loglik + np.log(design.n) * df,
                    ic_note=note, df=df)


def _row(effect: Effect, group: str, level: str, term: str, estimate: float, std_error: float,
         conf_low: float, conf_high: float, conf_level: float, model: str, note: str = "") -> dict:
    return {"engine": str(_ENGINE), "model": model, "effect": str(effect), "group": group, "level": level,
            "term": term, "estimate": float(estimate), "std_error": float(std_error),
            "conf_low": float(conf_low), "conf_high": float(conf_high), "conf_level": conf_level,
            "note": note}


__all__ = ["DEFAULT_OPTIMIZERS", "INTERCEPT", "Method", "fit_frequentist"]
