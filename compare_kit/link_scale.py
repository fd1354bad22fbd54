"""The comparison of a GLMM's two fits on the link scale: own estimates of groups and family-aware reasons.

``own_link_estimate`` is a group's no-pooling estimate for a bernoulli, binomial or poisson model: the
maximum-likelihood estimate of the group's intercept on the link scale (log-odds, log rate) from its
own rows, with the rest of the linear predictor (the other fixed effects, the crossed factors' modes and
the offset) held as an offset: a one-parameter GLM; for a term with slopes, the group's own GLM of the
term's columns with the same offset. It does not exist where the group's rows pin the mean at a bound (a
0/1 group of all 0 or all 1, successes 0 or all trials, counts all 0) or, with slopes, where they are
separated along the term's columns; the note says so. ``glmm_why`` words the equivalence table's reasons for a GLMM (no residual SD; Laplace or adaptive
quadrature against posterior averaging; few observations per group of a 0/1 outcome).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from compare_kit.family import Family
from compare_kit.results import Effect

__all__ = ["GroupInformation", "glmm_why", "identified_columns", "own_link_estimate"]

FEW_PER_GROUP = 10  # below this many trials per level, a 0/1 group's likelihood is called flat and skewed



def own_link_estimate(z: np.ndarray, y: np.ndarray, trials: np.ndarray | None, offset: np.ndarray,
                      family: Family, cols: list[str]) -> tuple[np.ndarray, list[str]]:
    """One group's own estimate of each random coefficient in ``cols`` on the link scale, and notes.

    An intercept-only term (``cols == ["(Intercept)"]``): the root of the score
    sum(y) = sum(mean(a + offset)) in the group's intercept ``a`` (poisson in closed form,
    log(sum y / sum exp(offset))); NaN, with the reason, where no finite root exists. A term with
    slopes: the group's own GLM of the columns its rows identify (``identified_columns``), by
    statsmodels' IRLS, unless the group's outcomes are separated along them (no finite maximum).
    """
    if cols != ["(Intercept)"]:
        return _own_glm(z, y, trials, offset, family, cols)
    n = len(y)
    total = float(y.sum())
    if family is Family.POISSON:
        if total == 0:
            return np.array([np.nan]), [f"no own estimate: all {n} counts are 0, so the group's own log rate "
                                        "runs to minus infinity (no finite maximum of its likelihood)"]
        return np.array([float(np.log(total) - np.log(np.exp(offset).sum()))]), [""]
    size = np.ones(n) if trials is None else np.asarray(trials, dtype=float)
    bound = _at_a_bound(total, float(size.sum()), n, family)
    if bound:
        return np.array([np.nan]), [bound]

    def score(a: float) -> float:
        return total - float((size * expit(a + offset)).sum())

    low, high = -1.0, 1.0
    while score(low) < 0:
        low *= 2
    while score(high) > 0:
        high *= 2
    return np.array([brentq(score, low, high, xtol=1e-13, rtol=1e-14)]), [""]


def identified_columns(z: np.ndarray, cols: list[str]) -> tuple[list[int], list[str]]:
    """The columns of ``z`` one group's rows identify (in order, each independent of those before), and
    for the others why not."""
    reasons = [""] * z.shape[1]
    kept: list[int] = []
    for c in range(z.shape[1]):
        trial = kept + [c]
        if np.linalg.matrix_rank(z[:, trial]) == len(trial):
            kept.append(c)
        else:
            values = np.unique(z[:, c])
            reasons[c] = (f"not estimable from this group alone: {cols[c]} = {values[0]:g} in all of its rows"
                          if len(values) == 1 else f"not estimable from this group alone ({cols[c]} aliased)")
    return kept, reasons


def _own_glm(z: np.ndarray, y: np.ndarray, trials: np.ndarray | None, offset: np.ndarray, family: Family,
             cols: list[str]) -> tuple[np.ndarray, list[str]]:
    """The group's own GLM of its identified columns with ``offset``; NaN with a note where separated."""
    import statsmodels.api as sm

    from compare_kit.engines.glmm_checks import separated_columns
    from compare_kit.engines.glmm_family import Response

    est = np.full(len(cols), np.nan)
    kept, reasons = identified_columns(z, cols)
    if not kept:
        return est, reasons
    x = z[:, kept]
    separated = separated_columns(x, Response.of(family.value, y, trials, offset))
    if separated:
        names = ", ".join(cols[kept[j]] for j in separated)
        for c in kept:
            reasons[c] = (f"no own estimate: the group's own GLM has no finite maximum (its outcomes are separated "
                          f"along {names}, whose estimates run off to infinity)")
        return est, reasons
    if family is Family.POISSON:
        glm = sm.GLM(y, x, family=sm.families.Poisson(), offset=offset)
    else:
        size = np.ones_like(y) if trials is None else trials
        glm = sm.GLM(np.column_stack([y, size - y]), x, family=sm.families.Binomial(), offset=offset)
    est[kept] = glm.fit(tol=1e-12).params
    return est, reasons


def _at_a_bound(total: float, trials: float, n: int, family: Family) -> str:
    """Why a 0/1 or binomial group's own log-odds does not exist, or ''."""
    if 0 < total < trials:
        return ""
    what = "0" if total == 0 else "1"
    side = "minus" if total == 0 else "plus"
    if family is Family.BERNOULLI:
        rows = f"all {n} outcomes are {what}"
    else:
        rows = f"all {n} rows have {'no successes' if total == 0 else 'only successes'}"
    return (f"no own estimate: {rows}, so the group's own log-odds runs to {side} infinity (no finite maximum "
            "of its likelihood); the partial-pooling estimates exist because the population pulls them")


@dataclass(frozen=True)
class GroupInformation:
    """How much a GLMM's data say about each grouping factor's levels: the fit's method (``Laplace`` or
    ``AGQ(nagq=N)``), the family, and per factor the mean trials per level (rows for 0/1 and counts)."""

    method: str
    family: Family
    per_level: dict[str, float]


def glmm_why(row: pd.Series, verdict: str, info: GroupInformation, few_groups: dict[str, int]) -> str:
    """The reason for one equivalence row of a GLMM, in words that fit the family (no residual SD)."""
    effect, group, term = row["effect"], row["group"], row["term"]
    how = f"ML ({info.method})"
    base = _base(row, verdict, how)
    binary = info.family in (Family.BERNOULLI, Family.BINOMIAL)
    per = info.per_level.get(group, np.inf)
    if binary and per < FEW_PER_GROUP and (effect == Effect.RAN_VALS or term.startswith("sd__")):
        small = f". With about {per:.1f} trials per {group} level of a 0/1 outcome each group's likelihood is flat " \
                "and skewed"
        if effect == Effect.RAN_VALS:
            base += small + ": the conditional mode (its peak) and the posterior mean (its average) part"
        elif info.method == "Laplace":
            base += small + ", and the Laplace approximation is known to understate a group SD in such small clusters"
        else:
            base += small + ("; adaptive quadrature removes most of the Laplace approximation's downward bias in "
                             "a group SD, not the gap between a posterior mean and a mode")
    if effect == Effect.FIXED and few_groups:
        g, n = min(few_groups.items(), key=lambda kv: kv[1])
        return base + (f"; only {n} {g} groups: the posterior averages over the poorly known {g} SD, "
                       f"{how} plugs in its estimate")
    if group in few_groups and effect == Effect.RAN_PARS and term.startswith("sd__"):
        n = few_groups[group]
        return (f"only {n} {group} groups: this SD rests on {n} group effects, so its likelihood is wide and "
                "skewed and the posterior depends on its prior; a gap of this size is expected. "
                + base[0].upper() + base[1:])
    return base


def _base(row: pd.Series, verdict: str, how: str) -> str:
    term, effect = row["term"], row["effect"]
    if effect == Effect.FIXED:
        if verdict == "agree":
            return (f"same estimate on the link scale: the posterior mean of this coefficient sits at the {how} "
                    "estimate")
        return (f"{how} maximises an approximate likelihood at the estimated group SDs; the posterior averages "
                "over the SDs and the group effects, and the priors on the link scale pull too (most where the "
                "data hold few events)")
    if effect == Effect.RAN_PARS and term.startswith("sd__"):
        if row["difference"] > 0:
            return (f"the posterior mean lies above the {how} value: an SD's posterior is skewed (bounded at 0, "
                    f"long right tail), so its mean exceeds its mode; {how} is closer to the mode")
        return (f"the posterior mean lies below the {how} value: the prior on this SD and the averaging over the "
                "other uncertain parameters pull it down; with a wide posterior (few groups, or a weakly "
                "identified slope) such a gap is still well inside the posterior")
    if effect == Effect.RAN_PARS:
        toward = abs(row["bayes_estimate"]) < abs(row["freq_estimate"])
        return ("correlations are weakly identified with few groups; "
                + ("the LKJ prior pulls the posterior toward 0" if toward else
                   f"the posterior mean averages over a wide, skewed range and lies further from 0 than the "
                   f"{how} value"))
    ratio = row["se_ratio"]
    if np.isfinite(ratio) and ratio < 1:
        return (f"the conditional mode's SD is {ratio:.2f} of the posterior SD: it is the curvature at the mode "
                "with the fixed effects and group SDs taken as known, the posterior averages over them")
    return "the conditional mode and the posterior mean of this group effect shrink its own estimate by nearly " \
           "the same share"
