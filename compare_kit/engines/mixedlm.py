"""statsmodels MixedLM: the spec's random terms in MixedLM's terms, and its optimizers run and checked.

The spec is translated into statsmodels' terms (``groups``, ``exog_re``, variance
components) from the design matrices, never from formula text. MixedLM starts at
compare_kit's own optimum (``lmm``), its answer is checked by small steps of the same
criterion and against that optimum, and put on the zero bound where the criterion says the
bound is the optimum. ``obstacle`` says when MixedLM is not used, and why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams, VCSpec
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from compare_kit.design import Design, GroupingBlock, nested_in
from compare_kit.engines.lmm import LinearMixedModel, Optimum, lower_root
from compare_kit.errors import FitError

DEFAULT_OPTIMIZERS: tuple[str, ...] = ("lbfgs", "bfgs", "cg", "powell", "nm")
COST_LIMIT = 3e8  # MixedLM's dense work per likelihood evaluation (sum over groups of rows x columns^2)
AGREEMENT = 1e-3  # log-likelihood units: the two optimizers disagree beyond this


@dataclass(frozen=True)
class Layout:
    """How the spec's random terms map onto MixedLM's groups, exog_re and variance components."""

    partition_codes: np.ndarray
    n_partitions: int
    re_blocks: tuple[int, ...]  # indices of blocks on the partition factor (exog_re)
    vc_blocks: tuple[int, ...]  # indices of blocks fitted as variance components
    primary: str | None  # the grouping factor every other one is nested in (None: crossed)

    @property
    def crossed(self) -> bool:
        return self.n_partitions == 1


def layout(design: Design) -> Layout:
    """MixedLM's groups: the levels of the factor every other factor is nested in, else one group."""
    blocks = design.blocks
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
    return Layout(codes, n_part, re_blocks, vc_blocks, primary)


def _block_of(blocks: tuple[GroupingBlock, ...], group: str) -> GroupingBlock:
    return next(b for b in blocks if b.group == group)


def free_pattern(design: Design, layout: Layout) -> MixedLMParams | None:
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


def vc_spec(design: Design, layout: Layout) -> VCSpec | None:
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




def relative_covariances(design: Design, layout: Layout, res: object, scale: float) -> list[np.ndarray]:
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




@dataclass(frozen=True)
class Attempt:
    result: object | None
    converged: bool
    optimizer: str
    log: tuple[str, ...]
    warnings: tuple[str, ...]


def run_optimizers(model: MixedLM, reml: bool, free: MixedLMParams | None,
                    optimizers: tuple[str, ...], start: MixedLMParams,
                    checker: Checker | None = None) -> Attempt:
    """Try each optimizer in turn, each starting where the last stopped, until one reaches a maximum.

    statsmodels may report convergence at a point that is not a maximum (or at an
    infinite likelihood); every answer is therefore checked by small steps in each
    covariance parameter, and a fit that can still be improved is handed on. With
    a ``checker``, the answer is also compared with compare_kit's own optimum of
    the same criterion, and a disagreement is flagged.
    """
    log: list[str] = list(checker.log) if checker is not None else []
    best: Attempt | None = None
    for opt in optimizers:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = model.fit(reml=reml, method=[opt], free=free, start_params=start)
                gap = improvable_by(model, res, free, checker) if np.isfinite(res.llf) else np.inf
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
            return Attempt(res, True, opt, tuple(log), (disagree,) if disagree else ())
        reason = ("infinite log-likelihood" if not finite else
                  f"stopped short of the maximum (a small step raises logLik by {gap:.2g})"
                  if gap > 1e-6 else "reported no convergence")
        log.append(f"{opt}: {reason} (logLik {res.llf:.6f})")
        if finite and (best is None or res.llf > best.result.llf):
            best = Attempt(res, False, opt, (), messages)
            start = res.params_object
    if best is None:
        raise FitError("MixedLM failed with every optimizer (" + "; ".join(log) + "). The model may be "
                       "too complex for the data: try fewer random terms or check for collinear predictors.")
    return Attempt(best.result, False, best.optimizer, tuple(log), best.warnings)


def improvable_by(model: MixedLM, res: object, free: MixedLMParams | None,
                   checker: Checker | None = None) -> float:
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


def obstacle(design: Design, lay: Layout) -> str | None:
    """Why MixedLM cannot fit this design at reasonable cost (None: it can)."""
    for i in lay.vc_blocks:
        b = design.blocks[i]
        if b.term.correlated and b.z.shape[1] > 1:
            where = ("the grouping factors are crossed" if lay.primary is None
                     else f"{b.group!r} is nested in {lay.primary!r}")
            return (f"MixedLM cannot fit correlated effects {b.term.to_formula()}: {where}, and MixedLM "
                    "allows correlated effects only for the outermost grouping factor")
    work, widest = dense_cost(design, lay)
    if work > COST_LIMIT:
        span = ("spans all rows as one group" if lay.crossed
                else f"groups the rows by {lay.primary!r}")
        return (f"MixedLM {span} with up to {widest:,} random-effect columns per group, about {work:.2g} "
                f"operations per likelihood evaluation (limit {COST_LIMIT:.0g})")
    return None


def dense_cost(design: Design, lay: Layout) -> tuple[float, int]:
    """MixedLM's dense work per evaluation, sum over its groups of rows x columns^2 + columns^3, and
    the largest number of random-effect columns in one group."""
    k_re = sum(design.blocks[i].z.shape[1] for i in lay.re_blocks)
    rows_per = np.bincount(lay.partition_codes, minlength=lay.n_partitions).astype(float)
    cols = np.full(lay.n_partitions, float(k_re))
    for i in lay.vc_blocks:
        b = design.blocks[i]
        pairs = np.unique(lay.partition_codes * len(b.levels) + b.codes)
        cols += np.bincount(pairs // len(b.levels), minlength=lay.n_partitions) * b.z.shape[1]
    return float(np.sum(rows_per * cols**2 + cols**3)), int(cols.max())


class Checker:
    """compare_kit's own optimum of the criterion MixedLM maximises, used to start, probe and polish it."""

    def __init__(self, design: Design, lay: Layout, criterion: LinearMixedModel, optimum: Optimum) -> None:
        self.design = design
        self.layout = lay
        self.criterion = criterion
        self.optimum = optimum
        self.best_loglik = optimum.loglik
        self.log = (f"profiled criterion (compare_kit, SLSQP): logLik {self.best_loglik:.6f}"
                    + ("" if optimum.success else " (did not converge)"),)

    def start_params(self, beta: np.ndarray) -> MixedLMParams:
        """MixedLM's start at this optimum; a zero SD is lifted to 0.01 (statsmodels inverts cov_re)."""
        covs = []
        for t in self.criterion.ts(self.optimum.theta):
            t = t.copy()
            diag = np.arange(t.shape[0])
            t[diag, diag] = np.maximum(t[diag, diag], 0.01)
            covs.append(t @ t.T)
        lay = self.layout
        cov_re = linalg.block_diag(*[covs[i] for i in lay.re_blocks]) if lay.re_blocks else np.zeros((0, 0))
        vcomp = [np.diag(covs[i]) for i in lay.vc_blocks]
        return MixedLMParams.from_components(beta, cov_re, vcomp=np.concatenate(vcomp) if vcomp else None)

    def improvable_by(self, res: object) -> float:
        rel_covs = relative_covariances(self.design, self.layout, res, float(res.scale))
        return self.criterion.improvable_by(self.criterion.theta_of(rel_covs))

    def disagreement(self, optimizer: str, loglik: float) -> str | None:
        if not self.optimum.success or abs(loglik - self.best_loglik) <= AGREEMENT:
            return None
        return (f"optimizers disagree: statsmodels ({optimizer}) reached logLik {loglik:.6f}, compare_kit's "
                f"profiled optimizer {self.best_loglik:.6f}; the likelihood may be flat or multimodal, so "
                "check the variance components")


@dataclass(frozen=True)
class MixedLMFit:
    """MixedLM's answer on compare_kit's theta scale, put on the zero bound where the criterion says so."""

    theta: np.ndarray
    scale: float
    loglik: float
    attempt: Attempt


def fit_mixedlm(design: Design, lay: Layout, reml: bool, optimizers: tuple[str, ...],
                checker: Checker | None) -> MixedLMFit:
    """Fit MixedLM from ``checker``'s optimum (or a default start) and read its variance parameters."""
    x = design.x_estimable.to_numpy()
    exog_re = (np.column_stack([design.blocks[i].z.to_numpy() for i in lay.re_blocks])
               if lay.re_blocks else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constructor notices; fit warnings are recorded by run_optimizers
        model = MixedLM(design.y, x, groups=lay.partition_codes, exog_re=exog_re, exog_vc=vc_spec(design, lay))
    free = free_pattern(design, lay)
    attempt = run_optimizers(model, reml, free, optimizers, start_params(design, lay, checker), checker)
    res = attempt.result
    scale = float(res.scale)
    rel_covs = relative_covariances(design, lay, res, scale)
    loglik = float(res.llf)
    if checker is None:
        theta = np.concatenate([_diag_or_chol(c, design.blocks[i].term.correlated)
                                for i, c in enumerate(rel_covs)])
        return MixedLMFit(theta, scale, loglik, attempt)
    theta = checker.criterion.theta_of(rel_covs)
    snapped = checker.criterion.snap_to_bound(theta)
    if snapped.at_bound and not np.array_equal(snapped.theta, theta):
        # MixedLM stopped next to the zero bound, and the criterion says the bound is the optimum
        return MixedLMFit(snapped.theta, checker.criterion.sigma2(snapped.theta), snapped.loglik, attempt)
    return MixedLMFit(theta, scale, loglik, attempt)


def _diag_or_chol(cov: np.ndarray, correlated: bool) -> np.ndarray:
    t = lower_root(cov if correlated else np.diag(np.diag(cov)))
    k = t.shape[0]
    index = [(i, j) for j in range(k) for i in range(j, k)] if correlated else [(i, i) for i in range(k)]
    return np.array([t[r, c] for r, c in index])


def start_params(design: Design, lay: Layout, checker: Checker | None = None) -> MixedLMParams:
    """Where MixedLM starts: compare_kit's optimum, else OLS fixed effects and relative variances of 0.1.

    Measured on the radon models: statsmodels' own default start (relative
    variance 1) sends L-BFGS to an infinite likelihood for random-intercept
    models, while 0.1 reaches lme4's optimum for all of them; starting at the
    profiled optimum leaves statsmodels one or two steps.
    """
    x = design.x_estimable.to_numpy()
    beta = np.linalg.lstsq(x, design.y, rcond=None)[0]
    if checker is not None and checker.optimum.success:
        return checker.start_params(beta)
    k = sum(design.blocks[i].z.shape[1] for i in lay.re_blocks)
    n_vc = sum(design.blocks[i].z.shape[1] for i in lay.vc_blocks)
    return MixedLMParams.from_components(beta, 0.1 * np.eye(k), vcomp=0.1 * np.ones(n_vc) if n_vc else None)
