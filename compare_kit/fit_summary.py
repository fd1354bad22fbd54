"""A fit in statsmodels' vocabulary: ``params``, ``bse``, ``conf_int`` and a summary that prints and renders.

``FitResult`` keeps thin properties that call these functions; the numbers come from the fit's tidy
estimates (frequentist estimates and SEs; posterior means and SDs), and only ``conf_int`` at another
level than the fit's goes back to the model: Wald (or OLS's t) quantiles of the same SEs, or the
posterior draws. ``FitSummary`` is statsmodels' ``Summary`` for a mixed fit: ``print`` shows the text, a
REPL shows the same text (not a quoted string), a notebook shows the HTML tables of ``display``
(every value escaped).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from compare_kit.display import DisplayTable, fit_result_tables, fmt_level, table_html
from compare_kit.errors import FitError
from compare_kit.family import Family
from compare_kit.results import BayesianFit, Effect, FrequentistFit, ols_residual_df, wald_interval
from compare_kit.wording import count

if TYPE_CHECKING:
    from compare_kit.results import FitResult

PROFILE_METHOD = "profile likelihood"  # the words every profiled SD's note holds (engines.frequentist)
SUMMARY_COLUMNS = ["effect", "group", "term", "estimate", "std_error", "conf_low", "conf_high"]


# ------------------------------------------------------------ the numbers


def _fixed(fit: FitResult) -> pd.DataFrame:
    return fit.table(Effect.FIXED).set_index("term")


def params(fit: FitResult) -> pd.Series:
    """The fixed effects by term (frequentist estimates; Bayesian posterior means); NaN where not estimable."""
    return _fixed(fit)["estimate"].rename(None).rename_axis(None)


def bse(fit: FitResult) -> pd.Series:
    """The fixed effects' standard errors (Bayesian: posterior SDs) by term."""
    return _fixed(fit)["std_error"].rename(None).rename_axis(None)


def conf_int(fit: FitResult, alpha: float = 0.05) -> pd.DataFrame:
    """Intervals of the fixed effects at level ``1 - alpha``: columns 0 (lower) and 1 (upper), by term.

    Mixed frequentist fits, GLMs and GLMMs: Wald intervals (normal quantiles), as statsmodels MixedLM and
    lme4's ``confint(method = "Wald")``; OLS: Student's t on the residual degrees of freedom, as
    statsmodels OLS and R's ``confint(lm)``; Bayesian fits: equal-tailed posterior intervals from the
    draws. A coefficient the data cannot estimate has NaN ends on the frequentist side.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise FitError(f"alpha must lie strictly between 0 and 1 (0.05 gives 95% intervals), got {alpha!r}")
    level = 1 - float(alpha)
    fixed = _fixed(fit)
    if isinstance(fit, BayesianFit):
        low, high = _posterior_interval(fit, fixed, level)
    else:
        df = ols_residual_df(fit.design) if isinstance(fit, FrequentistFit) and fit.ols else None
        low, high = wald_interval(fixed["estimate"].to_numpy(), fixed["std_error"].to_numpy(), level, df)
    return pd.DataFrame({0: low, 1: high}, index=list(fixed.index))


def _posterior_interval(fit: BayesianFit, fixed: pd.DataFrame, level: float) -> tuple[np.ndarray, np.ndarray]:
    stored = fixed["conf_level"].to_numpy()
    if fit.draws is None:
        if np.allclose(stored, level):
            return fixed["conf_low"].to_numpy(), fixed["conf_high"].to_numpy()
        raise FitError(f"this Bayesian fit carries no draws, only its {fmt_level(stored[0])} intervals: "
                       f"conf_int(alpha={1 - stored[0]:g}) gives them")
    from compare_kit.engines.posterior import equal_tailed

    draws = fit.draws
    columns = [draws.fixed_names.index(term) for term in fixed.index]
    return equal_tailed(draws.fixed.reshape(-1, draws.fixed.shape[-1])[:, columns], level)


# --------------------------------------------------------------- the words


def describe_intervals(fit: FitResult) -> str:
    """Which intervals the fit's table holds, in one sentence."""
    level = fmt_level(float(fit.estimates["conf_level"].iloc[0]))
    if isinstance(fit, BayesianFit):
        return (f"{level} equal-tailed posterior intervals; estimate: posterior mean, "
                "std_error: posterior SD")
    if isinstance(fit, FrequentistFit) and fit.ols:
        return f"{level} t intervals of the coefficients ({count(ols_residual_df(fit.design), 'residual degree of freedom', 'residual degrees of freedom')})"
    if fit.spec.family is not Family.GAUSSIAN:
        scale = f"on the {fit.spec.family.link.value} scale"
        if not fit.design.blocks:
            return f"{level} Wald (z) intervals of the coefficients, {scale}"
        return f"{level} Wald (z) intervals of the fixed effects, {scale}; none for the SDs"
    sds = fit.table(Effect.RAN_PARS)
    if sds["note"].str.contains(PROFILE_METHOD).any():
        sd_words = "profile-likelihood intervals of the SDs (lme4's confint(method = \"profile\"))"
    else:
        sd_words = "none for the SDs (profile=True or fit.profile_intervals() gives profile-likelihood ones)"
    return f"{level} Wald intervals of the fixed effects; {sd_words}"


def _groups(fit: FitResult) -> str:
    return ", ".join(f"{len(block.levels)} {block.group}" for block in fit.design.blocks)


def _how(fit: FitResult) -> str:
    return f"{fit.method} by {fit.engine.label}"


def fit_repr(fit: FitResult) -> str:
    """One line: ``<FrequentistFit partial_pooling: log_radon ~ floor + (1 + floor || county), REML by
    statsmodels, 919 rows, 85 county>``."""
    how = _how(fit)
    sampling = fit.sampling if isinstance(fit, BayesianFit) else None
    if sampling is not None:
        how += f" ({sampling.sampler}, {sampling.chains} x {sampling.draws} draws)"
    parts = [f"{fit.model}: {fit.spec}", how, count(fit.stats.nobs, "row"), _groups(fit)]
    return f"<{type(fit).__name__} {', '.join(p for p in parts if p)}>"


def _header(fit: FitResult) -> list[tuple[str, str]]:
    groups = _groups(fit)
    rows = [("formula", str(fit.spec)),
            ("data", fit.data_summary.describe() + (f" Groups: {groups}." if groups else ""))]
    if fit.spec.family is not Family.GAUSSIAN:
        family = fit.spec.family
        rows.append(("family", f"{family.value} ({family.link.value} link): the estimates are on the "
                               f"{family.link.value} scale"))
    if isinstance(fit, BayesianFit):
        if (s := fit.sampling) is not None:
            rows.append(("sampler", f"{s.sampler}: {s.chains} chains x {s.draws} draws after {s.tune} tuning, "
                         f"seed {s.seed}; {count(s.divergences, 'divergence')}; max R-hat {s.max_rhat:.3f}, "
                         f"min bulk ESS {s.min_ess_bulk:.0f}"))
    else:
        stats, health = fit.stats, fit.health
        ic = f"; AIC {stats.aic:.2f}, BIC {stats.bic:.2f}" if np.isfinite(stats.aic) else ""
        rows.append(("likelihood", f"logLik {stats.loglik:.3f} ({stats.loglik_method}){ic}"
                     + (f", {stats.ic_note}" if stats.ic_note and ic else "")))
        state = ([] if not fit.design.blocks else
                 ["converged" if health.converged else "NOT converged",
                  "an SD at the boundary" if health.boundary else "no SD at the boundary"])
        rows.append(("fit", "; ".join([*state, f"optimizer {health.optimizer}"])))
    rows.append(("intervals", describe_intervals(fit)))
    return rows


# ------------------------------------------------------------- the summary


@dataclass(frozen=True, eq=False, repr=False)
class FitSummary:
    """A fit's summary: prints as text, shows as that text in a REPL and as HTML tables in a notebook.

    ``table`` holds the population-level rows (fixed effects, SDs, correlations) of the estimates.
    """

    title: str
    header: tuple[tuple[str, str], ...]
    table: pd.DataFrame
    messages: tuple[str, ...]  # warnings and notes, each with its kind first
    tables: tuple[DisplayTable, ...]  # the HTML view

    def as_text(self) -> str:
        """The header, the table (each distinct note as a mark ``[k]``, spelled out below it), messages."""
        width = max(len(k) for k, _ in self.header)
        notes = list(dict.fromkeys(n for n in self.table["note"] if n))
        shown = self.table[SUMMARY_COLUMNS].copy()
        if notes:
            shown["note"] = [f"[{notes.index(n) + 1}]" if n else "" for n in self.table["note"]]
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            body = shown.to_string(index=False, na_rep="", float_format=lambda v: f"{v:.4f}")
        lines = [self.title, *(f"  {k.ljust(width)}  {v}" for k, v in self.header), "", body]
        lines += [""] * bool(notes) + [f"[{i}] {n}" for i, n in enumerate(notes, start=1)]
        return "\n".join(lines + ([""] + list(self.messages) if self.messages else []))

    def as_html(self) -> str:
        return table_html(*self.tables)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        return self.as_html()


def fit_summary(fit: FitResult) -> FitSummary:
    """The summary of ``fit`` (``FitResult.summary``)."""
    side = "Frequentist" if fit.engine.frequentist else "Bayesian"
    title = f"{side} fit of {fit.model} by {fit.engine.label}, {fit.method}"
    rows = fit.estimates[fit.estimates["effect"].isin([Effect.FIXED, Effect.RAN_PARS])].reset_index(drop=True)
    messages = ([f"warning: {w}" for w in fit.health.warnings] +
                [f"note: {n}" for n in fit.health.notes])
    tables = fit_result_tables(fit)
    tables[0] = replace(tables[0], note=describe_intervals(fit))
    return FitSummary(title, tuple(_header(fit)), rows[[*SUMMARY_COLUMNS, "note"]], tuple(messages), tuple(tables))


__all__ = ["FitSummary", "bse", "conf_int", "describe_intervals", "fit_repr", "fit_summary", "params"]
