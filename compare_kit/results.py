"""The fitted results and the one tidy schema both engines fill (see docs/design.md).

The estimates table is long and tidy: one row per (effect, group, level, term). It is
defined here once, validated here once, and every engine returns it. A reader of this
module sees everything a fit carries: ``FrequentistFit`` (with its mixed-model state)
and ``BayesianFit`` (with its draws, PSIS-LOO as a cached property, and its ArviZ tree
under canonical names, built on first use by ``engines.arviz_tree``), both ``FitResult``.
Nothing here imports an engine or the report at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from compare_kit.design import DataSummary, Design
from compare_kit.outcomes import require_gaussian, response_mean
from compare_kit.intervals import ols_residual_df, wald_interval  # noqa: F401 - re-exported
from compare_kit.loo import Elpd, Loo  # noqa: F401 - Elpd re-exported: the typed parts of a Loo
from compare_kit.spec import ModelSpec
from compare_kit.wording import count

if TYPE_CHECKING:
    from compare_kit.engines.bayesian import EngineModels
    from compare_kit.engines.glmm import GlmmSolution
    from compare_kit.engines.lmm import LmmSolution
    from compare_kit.engines.posterior import CanonicalDraws
    from compare_kit.fit_summary import FitSummary


class Effect(StrEnum):
    FIXED = "fixed"
    RAN_PARS = "ran_pars"
    RAN_VALS = "ran_vals"
    RAN_COEFS = "ran_coefs"


class EngineName(StrEnum):
    """The engine that produced a number (the ``engine`` column), with its display names."""

    STATSMODELS = "statsmodels"
    COMPARE_KIT = "compare_kit"  # compare_kit's own (RE)ML engine (engines/lmm.py)
    BAMBI = "bambi"
    PYMC = "pymc"

    @property
    def frequentist(self) -> bool:
        return self in (EngineName.STATSMODELS, EngineName.COMPARE_KIT)

    @property
    def label(self) -> str:
        """Short display name: ``statsmodels``, ``compare_kit``, ``Bambi``, ``PyMC``."""
        return _ENGINE_LABELS[self]

    @property
    def side_label(self) -> str:
        """Display name with its side: ``frequentist (statsmodels)``, ``Bayesian (Bambi)``."""
        return f"{'frequentist' if self.frequentist else 'Bayesian'} ({self.label})"


_ENGINE_LABELS = {EngineName.STATSMODELS: "statsmodels", EngineName.COMPARE_KIT: "compare_kit",
                  EngineName.BAMBI: "Bambi", EngineName.PYMC: "PyMC"}
FREQUENTIST_ENGINES = frozenset(e.value for e in EngineName if e.frequentist)


RESIDUAL_GROUP = "Residual"
RESIDUAL_TERM = "sd__Observation"
OLS_METHOD = "OLS"

KEY_COLUMNS = ["effect", "group", "level", "term"]
ESTIMATE_COLUMNS = ["engine", "model", *KEY_COLUMNS, "estimate", "std_error",
                    "conf_low", "conf_high", "conf_level", "note"]
DIAGNOSTIC_COLUMNS = ["engine", "model", *KEY_COLUMNS, "rhat", "ess_bulk", "ess_tail"]
_TEXT_COLUMNS = ["engine", "model", *KEY_COLUMNS, "note"]
_NUMBER_COLUMNS = ["estimate", "std_error", "conf_low", "conf_high", "conf_level"]


def sd_term(name: str) -> str:
    """``sd__floor``: the canonical name of a random coefficient's SD."""
    return f"sd__{name}"


def cor_term(first: str, second: str) -> str:
    """``cor__(Intercept).floor``: the canonical name of a correlation."""
    return f"cor__{first}.{second}"


def group_key(term: str, group: str) -> str:
    """``sd__floor|county``: a term of one grouping factor (prior keys, posterior variable names)."""
    return f"{term}|{group}"


def make_estimates(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a validated estimates table from row dicts (missing keys become empty)."""
    frame = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    for col in _TEXT_COLUMNS:
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "").astype(str)
    for col in _NUMBER_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="raise").astype(float)
    return validate_estimates(frame)


def validate_estimates(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a table against the tidy schema; return it with columns in schema order."""
    missing = [c for c in ESTIMATE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"estimates table lacks columns {missing}")
    frame = frame.loc[:, ESTIMATE_COLUMNS].reset_index(drop=True)
    col = {c: frame[c].to_numpy() for c in ("engine", "model", "effect", "group", "level", "term", "note")}
    bad_effect = set(col["effect"]) - {e.value for e in Effect}
    if bad_effect:
        raise ValueError(f"unknown effect values {sorted(bad_effect)}")
    bad_engine = set(col["engine"]) - {e.value for e in EngineName}
    if bad_engine:
        raise ValueError(f"unknown engine values {sorted(bad_engine)}")
    effect, level = col["effect"], col["level"]
    if ((effect == Effect.FIXED.value) & (col["group"] != "")).any():
        raise ValueError("fixed effects must have an empty group")
    ran_levels = (effect == Effect.RAN_VALS.value) | (effect == Effect.RAN_COEFS.value)
    if (ran_levels & (level == "")).any():
        raise ValueError("ran_vals and ran_coefs rows need a level")
    if (~ran_levels & (level != "")).any():
        raise ValueError("only ran_vals and ran_coefs rows have a level")
    keys = list(zip(*(col[c] for c in ("engine", "model", *KEY_COLUMNS)), strict=True))
    if len(set(keys)) < len(keys):
        dup = frame.duplicated(subset=["engine", "model", *KEY_COLUMNS])
        raise ValueError(f"duplicated estimate rows: {frame.loc[dup, KEY_COLUMNS].head().to_dict('records')}")
    estimate, std_error = frame["estimate"].to_numpy(dtype=float), frame["std_error"].to_numpy(dtype=float)
    estimated = ~np.isnan(estimate)
    if (std_error[estimated] < 0).any():
        raise ValueError("negative standard errors")
    no_estimate = ~estimated & (col["note"] == "")
    if no_estimate.any():
        raise ValueError("an empty estimate needs a note saying why: "
                         f"{frame.loc[no_estimate, 'term'].head().tolist()}")
    return frame


def validate_diagnostics(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in DIAGNOSTIC_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"diagnostics table lacks columns {missing}")
    return frame.loc[:, DIAGNOSTIC_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class FitStats:
    """Whole-model numbers: size, likelihood and information criteria."""

    nobs: int
    n_groups: dict[str, int]
    loglik: float = float("nan")
    loglik_method: str = ""  # "REML", "ML" or "" (no likelihood, e.g. Bayesian)
    aic: float = float("nan")
    bic: float = float("nan")
    ic_note: str = ""  # how AIC/BIC were obtained (e.g. "from an ML refit")
    df: int = 0


@dataclass(frozen=True)
class Health:
    """Did the fit work? Flags that must reach the user, never only a log."""

    converged: bool = True
    boundary: bool = False
    optimizer: str = ""
    attempts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # informational, e.g. coefficients not estimable by design
    boundary_terms: tuple[tuple[str, str], ...] = ()  # (group, coefficient) whose SD is at zero

    @property
    def ok(self) -> bool:
        return self.converged and not self.boundary and not self.warnings


@dataclass(frozen=True)
class SamplingInfo:
    """What the Bayesian engine actually ran (read from the draws, not assumed)."""

    sampler: str
    seed: int
    chains: int
    draws: int
    tune: int
    divergences: int = 0
    tree_depth_saturation: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    priors: dict[str, str] = field(default_factory=dict)
    prior_preset: str = ""
    structure: str = ""
    cores: int = 0
    target_accept: float = 0.8
    formula: str = ""  # the generated engine formula (safe column names)
    flags: tuple[str, ...] = ()  # R-hat, ESS, divergence and tree-depth warnings
    max_rhat: float = float("nan")
    min_ess_bulk: float = float("nan")
    min_ess_tail: float = float("nan")
    method: str = "standard"  # "collapsed": the group effects integrated out, then drawn per draw

    @property
    def ok(self) -> bool:
        """No diagnostic flag was raised."""
        return not self.flags

    def describe_priors(self) -> str:
        """The priors used, one ``name ~ prior`` line each."""
        width = max((len(k) for k in self.priors), default=0)
        return "\n".join(f"{k.ljust(width)} ~ {v}" for k, v in self.priors.items())

    def describe(self) -> str:
        """A printable account of the run: structure, sampler, phases, priors, flags."""
        phases = ", ".join(f"{k} {v:.2f}s" if v == v else f"{k} n/a (inside sample)"
                           for k, v in self.timings.items())
        lines = [f"structure: {self.structure}",
                 f"sampler: {self.sampler} ({self.chains} chains x {self.draws} draws after "
                 f"{self.tune} tuning, seed {self.seed}, {count(self.cores, 'core')}, "
                 f"target_accept {self.target_accept}, method {self.method})",
                 f"wall time: {phases}",
                 f"diagnostics: max R-hat {self.max_rhat:.4f}, min bulk ESS {self.min_ess_bulk:.0f}, "
                 f"min tail ESS {self.min_ess_tail:.0f}, {count(self.divergences, 'divergence')}, "
                 f"{count(self.tree_depth_saturation, 'tree-depth saturation')}",
                 f"priors ({self.prior_preset}):"]
        lines += ["  " + line for line in self.describe_priors().splitlines()]
        lines += [f"FLAG: {f}" for f in self.flags] or ["no diagnostic flags"]
        return "\n".join(lines)


@dataclass(frozen=True, eq=False, repr=False)
class FitResult:
    """One fitted model from one engine: estimates, statistics, health, and the design it was fitted on."""

    engine: EngineName
    spec: ModelSpec
    method: str  # "OLS", "REML", "ML", "Laplace", "AGQ(nagq=N)", "MCMC"
    estimates: pd.DataFrame
    stats: FitStats
    health: Health
    data_summary: DataSummary
    design: Design = field(repr=False)
    seconds: float = float("nan")  # wall time of the fit

    @property
    def model(self) -> str:
        return self.spec.label

    def table(self, effect: Effect | str) -> pd.DataFrame:
        """The rows of one effect type."""
        return self.estimates[self.estimates["effect"] == str(effect)].reset_index(drop=True)

    def _fit_stats_row(self) -> dict[str, Any]:
        return {
            "engine": str(self.engine), "model": self.model, "method": self.method,
            "nobs": self.stats.nobs,
            "n_groups": "; ".join(f"{g}={n}" for g, n in self.stats.n_groups.items()),
            "loglik": self.stats.loglik, "loglik_method": self.stats.loglik_method,
            "aic": self.stats.aic, "bic": self.stats.bic, "ic_note": self.stats.ic_note,
            "converged": self.health.converged, "boundary": self.health.boundary,
            "optimizer": self.health.optimizer, "warnings": " | ".join(self.health.warnings),
        }

    @property
    def fit_stats(self) -> pd.DataFrame:
        """One row for ``fit_stats.csv``: likelihood, size and health."""
        return pd.DataFrame([self._fit_stats_row()])

    # statsmodels' names (compare_kit.fit_summary computes them): fixed effects only, as lme4's fixef();
    # the SDs and correlations are in ``table("ran_pars")``, not in ``params``

    @property
    def params(self) -> pd.Series:
        """The fixed effects by term: estimates (Bayesian: posterior means); NaN where not estimable."""
        from compare_kit.fit_summary import params

        return params(self)

    @property
    def bse(self) -> pd.Series:
        """The fixed effects' standard errors by term; for a Bayesian fit, their posterior SDs."""
        from compare_kit.fit_summary import bse

        return bse(self)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Intervals of the fixed effects at level ``1 - alpha``, columns 0 and 1 as in statsmodels.

        Mixed fits: Wald; OLS: Student's t; Bayesian fits: equal-tailed posterior intervals from
        the draws (``compare_kit.fit_summary.conf_int``).
        """
        from compare_kit.fit_summary import conf_int

        return conf_int(self, alpha)

    def summary(self) -> FitSummary:
        """The fit's header and population-level table: prints as text, renders as HTML in a notebook."""
        from compare_kit.fit_summary import fit_summary

        return fit_summary(self)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        from compare_kit.fit_summary import fit_repr

        return fit_repr(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def predict(self, data: pd.DataFrame, include_group_effects: bool = True) -> pd.Series:
        """Predicted means of the rows of ``data``, on the response scale.

        Gaussian models: ``X beta + Z b`` with the BLUPs; Bayesian fits: the posterior mean of the mean
        (the same sum with posterior means, since it is linear). Other families (GLMs, GLMMs): the inverse
        link of ``X beta + Z b + offset`` at the conditional modes, a probability (bernoulli, binomial: per
        trial) or an expected count (poisson, for the row's exposure), as R's ``predict(type = "response")``;
        without group effects, the mean of a group whose effect is 0 (``re.form = NA``), not the average
        over groups. The offset is computed from the new rows' columns by the formula's ``offset(...)``.
        ``data`` is put on the fit's own scale: centring and scaling use the fitted rows' means and SDs. A
        level of a grouping factor the fit never saw gets no group effect (the population), as with
        ``include_group_effects=False`` for every row. A row lacking a value the model needs, holding a
        level of a categorical predictor the fit never saw, or whose offset is not a finite number, is NaN.
        The outcome's columns are not needed.
        """
        from compare_kit.new_rows import new_rows

        rows = new_rows(self.design, data)
        eta = self._linear_predictor(rows.x, rows.z, rows.codes, include_group_effects, unestimable_as_zero=False)
        pred = response_mean(self.spec.family.link, eta if rows.offset is None else eta + rows.offset)
        pred[~rows.usable] = np.nan
        return pd.Series(pred, index=data.index, name="predicted")

    def fitted(self) -> np.ndarray:
        """Fitted means of the rows used, fixed part plus group effects (OLS: the fitted line), on the
        response scale: for a GLM or GLMM the inverse link of the linear predictor with its offset (a
        probability, or an expected count), R's ``fitted()``.

        A coefficient that cannot be estimated counts as 0 here, as in R's ``fitted()``: on these rows
        its column lies in the span of the estimated ones (or is zero), so the fit does not depend on it.
        """
        design = self.design
        eta = self._linear_predictor(design.x, tuple(b.z for b in design.blocks),
                                     tuple(b.codes for b in design.blocks), True, unestimable_as_zero=True)
        return response_mean(self.spec.family.link, eta if design.offset is None else eta + design.offset)

    def _linear_predictor(self, x: pd.DataFrame, z: tuple[pd.DataFrame, ...], codes: tuple[np.ndarray, ...],
                          include_group_effects: bool, *, unestimable_as_zero: bool) -> np.ndarray:
        """``X beta + Z b`` from the tidy tables; a group code of -1 (a new level) adds no effect. An
        unestimated coefficient is 0, or NaN for the rows where its column is non-zero."""
        fixed = self.table(Effect.FIXED).set_index("term")["estimate"]
        if unestimable_as_zero:
            fixed = fixed.fillna(0.0)
        pred = np.zeros(len(x))
        for term in x.columns:
            column = x[term].to_numpy(dtype=float)
            pred = pred + np.where(column != 0, column * fixed.get(term, np.nan), 0.0)
        if include_group_effects:
            vals = self.table(Effect.RAN_VALS)
            for block, block_z, block_codes in zip(self.design.blocks, z, codes, strict=True):
                table = vals[vals["group"] == block.group].pivot(index="level", columns="term", values="estimate")
                b = table.reindex(index=list(block.levels), columns=list(block.z.columns)).fillna(0.0).to_numpy()
                b = np.vstack([b, np.zeros((1, b.shape[1]))])  # code -1 (a level never seen): no effect
                pred = pred + np.einsum("nk,nk->n", b[block_codes], block_z.to_numpy(dtype=float))
        return pred


@dataclass(frozen=True, eq=False)
class MixedState:
    """A mixed fit's variance parameters and everything read off the criterion's factor there."""

    relative_covariances: tuple[np.ndarray, ...]  # per block, the coefficients' covariance / sigma^2
    scale: float  # sigma^2
    solution: LmmSolution  # fixed effects, conditional modes, condVar, PEV, cov(b, beta)
    engine_seconds: Mapping[str, float] = field(default_factory=dict)  # per engine that ran


@dataclass(frozen=True, eq=False, repr=False)  # repr=False: FitResult's one-line repr, not a field dump
class FrequentistFit(FitResult):
    """An OLS fit, a Gaussian mixed fit by REML or ML (``mixed``), a GLM by ML, or a GLMM by the Laplace
    approximation or adaptive quadrature (``glmm``: compare_kit's engine's solution)."""

    mixed: MixedState | None = None
    glmm: GlmmSolution | None = None

    @property
    def ols(self) -> bool:
        """Fitted by least squares (a Gaussian model without random terms): t intervals, a residual SD."""
        return self.method == OLS_METHOD

    def profile_intervals(self, level: float | None = None) -> pd.DataFrame:
        """Profile-likelihood intervals of every SD, as lme4's ``confint(method = "profile")``.

        Parameters
        ----------
        level : float, optional
            Coverage of the intervals; the fit's ``conf_level`` by default.

        Returns
        -------
        DataFrame
            One row per SD (``group``, ``term`` as in the estimates), with the ML estimate at the
            profile's minimum, ``conf_low`` and ``conf_high``. lme4 profiles the ML deviance for
            REML fits too, and so does compare_kit.
        """
        from compare_kit.engines.frequentist import sd_profile_intervals

        require_gaussian(self.spec, "profile-likelihood intervals")
        conf = self.estimates["conf_level"].iloc[0] if level is None else level
        return sd_profile_intervals(self.design, float(conf))

    @cached_property
    def pev(self) -> pd.DataFrame:
        """Per group effect: BLUP (a GLMM's conditional mode), conditional SD (given beta) and Henderson's
        prediction-error SD (a GLMM's: of the linearised model at the final IRLS weights, given theta)."""
        sol = self.glmm if self.glmm is not None else self.mixed.solution if self.mixed is not None else None
        if sol is None:
            return pd.DataFrame(columns=["group", "level", "term", "blup", "cond_sd", "pev_sd"])
        labels = effect_labels(self.design)
        diag = np.concatenate([np.einsum("gaa->ga", v).ravel() for v in sol.pev])
        cond = np.concatenate([np.einsum("gaa->ga", v).ravel() for v in sol.cond_var])
        return labels.assign(blup=np.concatenate([b.ravel() for b in sol.b]),
                             cond_sd=np.sqrt(np.clip(cond, 0, None)), pev_sd=np.sqrt(np.clip(diag, 0, None)))


# The largest (draws x rows) float64 block a Bayesian fit's row-wise work holds at once: PSIS-LOO and the
# in-sample RMSD run over chunks of rows or of draws this size, never over the full (chain, draw, n) arrays.
CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False, repr=False)  # repr=False: FitResult's one-line repr
class BayesianFit(FitResult):
    """A fit by MCMC: draws under canonical names, their summaries and the sampler's account.

    ``posterior`` is the ArviZ DataTree of the draws under canonical names (``Intercept``, ``floor``,
    ``1|county`` with dim ``county``, ``sd__(Intercept)|county``, ``sigma``; the rule is in
    ``compare_kit.engines.arviz_tree``), with ``log_likelihood``, ``posterior_predictive`` and
    ``observed_data``, built on first use. ``sampler_posterior`` is the sampler's own tree (generated
    names, ``engine_names``); ``pymc_model`` and ``bambi_model`` are the models that were sampled.
    """

    diagnostics: pd.DataFrame | None = None
    sampler_posterior: Any = None  # the sampler's own arviz DataTree (generated names, see engine_names)
    sampling: SamplingInfo | None = None
    draws: CanonicalDraws | None = field(default=None, repr=False)
    engine_formula: str = ""  # the generated Bambi formula (safe column names)
    engine_names: tuple[tuple[str, str], ...] = ()  # each safe name of that formula, and what it stands for
    compile_cache: str = ""  # "hit", "miss", "off", ...
    models: EngineModels | None = field(default=None, repr=False)

    @cached_property
    def posterior(self) -> Any:
        """The draws as an ArviZ DataTree under canonical names, built on first use and kept.

        ``az.loo``, ``az.compare``, ``az.plot_forest``, ``az.plot_trace`` and ``az.plot_ppc_dist`` take it
        as it is. Its ``log_likelihood`` and ``posterior_predictive`` are (chain, draw, row) arrays: above
        ``compare_kit.engines.arviz_tree.ROW_WISE_BYTES`` they are left out, with a warning and the
        reason in ``posterior_note`` (``loo`` computes PSIS-LOO in chunks of rows instead).
        """
        import warnings

        tree = self.to_arviz()
        if tree.attrs["row_wise_note"]:
            warnings.warn(tree.attrs["row_wise_note"], UserWarning, stacklevel=2)
        return tree

    @property
    def posterior_note(self) -> str:
        """Why ``posterior`` lacks ``log_likelihood`` and ``posterior_predictive``; empty when it has them."""
        from compare_kit.engines.arviz_tree import row_wise_note

        return row_wise_note(self._draws(), self.design)

    def to_arviz(self, row_wise: bool | None = None) -> Any:
        """A new canonical DataTree (``posterior`` is this, kept). ``row_wise``: True includes
        ``log_likelihood`` and ``posterior_predictive`` whatever their size, False leaves them out,
        None includes them within ``ROW_WISE_BYTES``."""
        from compare_kit.engines.arviz_tree import canonical_tree

        seed = self.sampling.seed if self.sampling is not None else 0
        return canonical_tree(self._draws(), self.design, sampler_tree=self.sampler_posterior, seed=seed,
                              row_wise=row_wise)

    @property
    def pymc_model(self) -> Any:
        """The ``pymc.Model`` that was sampled (on the Bambi path Bambi's, with its generated names)."""
        return None if self.models is None else self.models.pymc

    @property
    def bambi_model(self) -> Any:
        """The ``bambi.Model`` that was sampled (generated names, ``engine_formula``); None on compare_kit's
        PyMC path (correlated or centred blocks), which Bambi cannot express."""
        return None if self.models is None else self.models.bambi

    @property
    def fit_stats(self) -> pd.DataFrame:
        row = self._fit_stats_row()
        s = self.sampling
        if s is not None:
            row.update(sampler=s.sampler, seed=s.seed, chains=s.chains, draws=s.draws, tune=s.tune,
                       divergences=s.divergences, tree_depth_saturation=s.tree_depth_saturation)
        return pd.DataFrame([row])

    @cached_property
    def mu(self) -> np.ndarray:
        """Per draw, the model's mean of every row on the response scale, in the outcome's units
        (``E[y]``: a GLMM's probability for bernoulli, expected successes ``trials * p`` for
        binomial, expected count for poisson; never the linear predictor): (chain, draw, row)."""
        from compare_kit.engines.posterior import posterior_mu

        return posterior_mu(self._draws(), self.design)

    @cached_property
    def log_likelihood(self) -> np.ndarray:
        """Pointwise log-likelihood per draw, of the model's family (Normal, Bernoulli, Binomial,
        Poisson): (chain, draw, row)."""
        from compare_kit.engines.posterior import pointwise_chunks

        draws = self._draws()
        out = np.empty((draws.size, self.design.n))
        for rows, _, log_lik in pointwise_chunks(draws, self.design):
            out[:, rows] = log_lik
        return out.reshape(*draws.shape, self.design.n)

    @property
    def n_draws(self) -> int:
        """Draws over all chains (the flat draw indices of ``mu_at`` run from 0 to this)."""
        return self._draws().size

    def mu_at(self, draws: np.ndarray) -> np.ndarray:
        """The model's mean of every row at the given flat (chain-major) draw indices: (len(draws), n),
        without building the full ``mu``; on the response scale, as ``mu``."""
        from compare_kit.engines.posterior import mean_of_draws

        return mean_of_draws(self._draws(), self.design, np.asarray(draws, dtype=int), slice(None))

    @cached_property
    def loo(self) -> Loo:
        """PSIS-LOO, computed once, with each row's leave-one-out mean prediction (``psis_loo``)."""
        return self.psis_loo()

    def psis_loo(self, chunk_rows: int | None = None) -> Loo:
        """PSIS-LOO over chunks of rows (default: ``CHUNK_BYTES`` of draws x rows each).

        PSIS smooths each row's importance weights on its own, so chunking the rows is exact: the
        numbers are arviz_stats' (its ``psislw`` per row, its pointwise elpd and p_loo, its r_eff from
        the ESS of sigma, or of a GLMM's first fixed effect (``loo.reff_anchor``), as ``az.loo`` on
        ``loo_data()`` computes it). The leave-one-out means are
        ``sum_s softmax(lw)_s mu_s`` from the same smoothed weights (arviz's formula for
        ``loo_expectations(kind="mean")``, without smoothing every row a second time).
        ``az.loo(bayes.posterior, reff=bayes.loo.elpd.r_eff)`` gives the same numbers from the full tree.
        """
        from compare_kit.loo import psis_loo

        return psis_loo(self._draws(), self.design, chunk_rows)

    def loo_data(self) -> Any:
        """The arviz DataTree of ``az.loo``: the r_eff anchor (residual SD, or a GLMM's first fixed effect,
        named ``sigma`` either way), row means, log-likelihood, outcome.

        It holds the full (chain, draw, n) arrays, so it is for small fits and for checking
        ``psis_loo`` against arviz; ``loo`` itself never builds it.
        """
        import arviz as az

        from compare_kit.loo import reff_anchor

        anchor = reff_anchor(self._draws())
        return az.from_dict({"posterior": {"sigma": anchor if anchor is not None else np.zeros(self._draws().shape)},
                             "posterior_predictive": {"y": self.mu}, "log_likelihood": {"y": self.log_likelihood},
                             "observed_data": {"y": self.design.y}})

    def _draws(self) -> CanonicalDraws:
        if self.draws is None:
            raise ValueError("this Bayesian fit carries no canonical draws")
        return self.draws


def effect_labels(design: Design) -> pd.DataFrame:
    """group, level, term of every random effect, block by block, level-major, coefficient-minor."""
    frames = [pd.DataFrame({"group": block.group,
                            "level": np.repeat(block.levels, block.z.shape[1]),
                            "term": np.tile(block.z.columns, len(block.levels))})
              for block in design.blocks]
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=["group", "level", "term"]))
