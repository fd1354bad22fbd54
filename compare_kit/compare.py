"""Comparison of a frequentist and a Bayesian fit of the same model.

``compare(freq, bayes)`` aligns the two tidy estimate tables by canonical names
and answers: which numbers agree, which differ, by how much in posterior SDs,
and why. It also builds the shrinkage table: how far each group's estimate moves
from its own data (no pooling) toward the population (complete pooling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from compare_kit.design import Design, GroupingBlock, nested_in, nesting_parents
from compare_kit.errors import IncomparableError
from compare_kit.family import Family
from compare_kit.link_scale import GroupInformation, glmm_why, identified_columns, own_link_estimate
from compare_kit.results import Effect, EngineName, FitResult

EQUIVALENCE_COLUMNS = ["model", "effect", "group", "level", "term", "freq_estimate", "freq_std_error",
                       "bayes_estimate", "bayes_std_error", "difference", "z_difference", "se_ratio",
                       "verdict", "why"]
SHRINKAGE_COLUMNS = ["group", "level", "n", "term", "no_pooling", "complete_pooling", "partial_freq",
                     "partial_bayes", "shrinkage_freq", "shrinkage_bayes", "pooling_factor", "note", "toward",
                     "toward_group", "toward_level", "complete_pooling_bayes"]
AGREE_Z, SLIGHT_Z = 0.5, 2.0
FEW_GROUPS = 10  # below this many levels, the why-texts say that a grouping factor's SD rests on few groups


@dataclass(frozen=True, eq=False)
class Comparison:
    """A frequentist and a Bayesian fit of one model, side by side."""

    freq: FitResult
    bayes: FitResult
    structure_note: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def model(self) -> str:
        return self.freq.model

    @cached_property
    def equivalence(self) -> pd.DataFrame:
        """One row per shared parameter: both estimates, their difference in posterior SDs, a verdict."""
        return equivalence_table(self.freq, self.bayes)

    @cached_property
    def equivalence_summary(self) -> pd.DataFrame:
        """Per effect type: how many rows agree, the largest |z|, the correlation of the estimates."""
        return summarise_equivalence(self.equivalence)

    @cached_property
    def shrinkage(self) -> pd.DataFrame:
        """Per group and random coefficient: own estimate, population value, both partial-pooling ones."""
        return shrinkage_table(self.freq, self.bayes)

    def _repr_html_(self) -> str:
        from compare_kit.display import comparison_tables, table_html

        return table_html(*comparison_tables(self))


def compare(freq: FitResult, bayes: FitResult) -> Comparison:
    """Align a statsmodels fit and a Bambi/PyMC fit of the same spec on the same data."""
    if not isinstance(freq, FitResult) or not isinstance(bayes, FitResult):
        raise IncomparableError("compare() takes two FitResult objects (from fit_frequentist and fit_bayesian)")
    if not EngineName(freq.engine).frequentist:
        raise IncomparableError(f"the first fit must come from fit_frequentist, got {freq.engine}")
    if bayes.engine not in (EngineName.BAMBI, EngineName.PYMC):
        raise IncomparableError(f"the second fit must come from bambi or pymc, got {bayes.engine}")
    a, b = freq.spec, bayes.spec
    if a.response != b.response:
        raise IncomparableError(f"the responses differ: {a.response.label} vs {b.response.label}")
    if a.intercept != b.intercept or {t.key for t in a.fixed} != {t.key for t in b.fixed}:
        raise IncomparableError(f"the fixed parts differ: {a} vs {b}")
    fs, bs = freq.data_summary, bayes.data_summary
    if (fs.data_hash, fs.n_used) != (bs.data_hash, bs.n_used):
        raise IncomparableError(
            f"the two fits used different data: {fs.n_used} rows (hash {fs.data_hash}) for statsmodels and "
            f"{bs.n_used} rows (hash {bs.data_hash}) for {bayes.engine}; fit both to the same table")
    note = _structure_note(freq, bayes)
    return Comparison(freq, bayes, structure_note=note)


def _structure_note(freq: FitResult, bayes: FitResult) -> str:
    a, b = freq.spec.random, bayes.spec.random
    shape_a = [(r.grouping, r.intercept, tuple(t.key for t in r.terms)) for r in a]
    shape_b = [(r.grouping, r.intercept, tuple(t.key for t in r.terms)) for r in b]
    if shape_a != shape_b:
        raise IncomparableError(f"the random parts differ: {freq.spec} vs {bayes.spec}")
    differs = [(ra, rb) for ra, rb in zip(a, b, strict=True) if ra.correlated != rb.correlated]
    if not differs:
        return ""
    parts = [f"statsmodels fitted {ra.to_formula()} and {bayes.engine} fitted {rb.to_formula()}"
             for ra, rb in differs]
    return ("Different structures: " + "; ".join(parts) + ". Correlations exist on one side only and are "
            "not compared; SDs and group effects are compared but may differ because of this.")


# ------------------------------------------------------------- equivalence

_KEY = ["effect", "group", "level", "term"]


def equivalence_table(freq: FitResult, bayes: FitResult) -> pd.DataFrame:
    f = freq.estimates[freq.estimates["effect"] != Effect.RAN_COEFS]
    b = bayes.estimates[bayes.estimates["effect"] != Effect.RAN_COEFS]
    merged = f.merge(b, on=_KEY, how="outer", suffixes=("_f", "_b"), indicator=True)
    out = pd.DataFrame({
        "model": freq.model,
        "effect": merged["effect"], "group": merged["group"], "level": merged["level"], "term": merged["term"],
        "freq_estimate": merged["estimate_f"], "freq_std_error": merged["std_error_f"],
        "bayes_estimate": merged["estimate_b"], "bayes_std_error": merged["std_error_b"],
    })
    out["difference"] = out["bayes_estimate"] - out["freq_estimate"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["z_difference"] = out["difference"] / out["bayes_std_error"]
        out["se_ratio"] = out["freq_std_error"] / out["bayes_std_error"]
    n_groups = dict(freq.stats.n_groups)
    at_zero = set(freq.health.boundary_terms)
    info = _group_information(freq)
    verdicts = [_verdict(row, merged.loc[i], n_groups, at_zero, info) for i, row in out.iterrows()]
    out["verdict"] = [v for v, _ in verdicts]
    out["why"] = [w for _, w in verdicts]
    order = {Effect.FIXED: 0, Effect.RAN_PARS: 1, Effect.RAN_VALS: 2}
    out["_o"] = out["effect"].map(lambda e: order.get(e, 3))
    out = out.sort_values(["_o", "group", "term", "level"], kind="stable").drop(columns="_o")
    return out.loc[:, EQUIVALENCE_COLUMNS].reset_index(drop=True)


def _group_information(freq: FitResult) -> GroupInformation | None:
    """A GLMM's method, family and mean trials per level of each factor; None for a Gaussian model."""
    design = freq.design
    if design.family is Family.GAUSSIAN:
        return None
    weight = design.trials if design.trials is not None else np.ones(design.n)
    per_level = {block.group: float(weight.sum() / len(block.levels)) for block in design.blocks}
    return GroupInformation(freq.method, design.family, per_level)


def _verdict(row: pd.Series, merged: pd.Series, n_groups: dict[str, int] | None = None,
             at_zero: set[tuple[str, str]] = frozenset(),
             info: GroupInformation | None = None) -> tuple[str, str]:
    side = merged["_merge"]
    if side == "left_only":
        return "only frequentist", "the Bayesian model has no such parameter (a different structure)"
    if side == "right_only":
        return "only Bayesian", "the frequentist model has no such parameter (a different structure)"
    if np.isnan(row["freq_estimate"]):
        note = merged.get("note_f", "") or "not estimable"
        return "prior-dominated", (f"frequentist: {note}. The Bayesian estimate exists only because the prior "
                                   "supplies what the data cannot")
    how = "REML/ML" if info is None else f"ML ({info.method})"
    if _at_zero(row, at_zero):
        if row["effect"] == Effect.RAN_VALS and info is not None:
            return "boundary", ("the frequentist group SD is at the boundary (zero), so this conditional mode is 0 "
                                "by construction, not an estimate; the posterior keeps the SD positive and the "
                                "group effect a little of the group's own deviation")
        if row["effect"] == Effect.RAN_VALS:
            return "boundary", ("the frequentist group SD is at the boundary (zero), so this BLUP is 0 by "
                                "construction, not an estimate; the posterior keeps the SD positive and the "
                                "group effect a little of the group's own deviation")
        return "boundary", (f"{how} puts this SD at the boundary (zero); the posterior of an SD cannot "
                            "reach zero, so its mean is positive: the two summarise a likelihood that is "
                            "flat near zero differently")
    z = abs(row["z_difference"])
    verdict = "agree" if z < AGREE_Z else "differ slightly" if z < SLIGHT_Z else "differ"
    if info is not None:
        return verdict, glmm_why(row, verdict, info, {g: n for g, n in (n_groups or {}).items() if n < FEW_GROUPS})
    return verdict, _why(row, verdict, n_groups or {})


def _at_zero(row: pd.Series, at_zero: set[tuple[str, str]]) -> bool:
    """The frequentist fit put this row's SD (or the SD behind this group effect) at exactly zero."""
    if row["effect"] == Effect.RAN_VALS:
        return (row["group"], row["term"]) in at_zero
    return row["effect"] == Effect.RAN_PARS and row["term"].startswith("sd__") and \
        (row["group"], row["term"].removeprefix("sd__")) in at_zero


def _why(row: pd.Series, verdict: str, n_groups: dict[str, int] | None = None) -> str:
    base = _base_why(row, verdict)
    few = {g: n for g, n in (n_groups or {}).items() if n < FEW_GROUPS}
    effect, group = row["effect"], row["group"]
    ratio = row["se_ratio"]
    if effect == Effect.FIXED and few:
        g, n = min(few.items(), key=lambda kv: kv[1])
        if np.isfinite(ratio) and ratio < 0.9:
            return (f"only {n} {g} groups: the uncertainty of this coefficient rests on {n} group effects, "
                    f"and the posterior averages over the poorly known {g} SD while GLS plugs in its "
                    f"estimate, so the posterior SD is wider (SE ratio {ratio:.2f}); "
                    + ("the point estimates agree" if verdict == "agree" else "the point estimates differ "
                       "by this much because the few groups leave the population value loosely pinned"))
        if verdict == "agree":
            return (f"same estimate: although there are only {n} {g} groups, this coefficient is estimated "
                    f"from the variation within the {g} groups, so their small number barely matters for it"
                    + (f" (SE ratio {ratio:.2f})" if np.isfinite(ratio) else ""))
        return base
    if group in few and effect == Effect.RAN_PARS and row["term"].startswith("sd__"):
        n = few[group]
        return (f"only {n} {group} groups: this SD rests on {n} group effects, so its likelihood is wide and "
                f"skewed and the posterior depends on its prior; a gap of this size is expected, not a "
                f"disagreement between the engines. " + base[0].upper() + base[1:])
    if group in few and effect == Effect.RAN_VALS:
        n = few[group]
        return (base + f". With only {n} {group} groups the SD behind these effects is poorly known: the "
                "posterior carries that uncertainty, the BLUP does not")
    return base


def _base_why(row: pd.Series, verdict: str) -> str:
    term, effect = row["term"], row["effect"]
    if effect == Effect.FIXED:
        if verdict == "agree":
            return ("same estimate: with many groups the posterior mean of a fixed effect sits at the GLS "
                    "estimate")
        return ("the posterior averages over the uncertain variance components, while GLS plugs in their "
                "point estimates; priors on coefficients also pull slightly")
    if effect == Effect.RAN_PARS and term.startswith("sd__") and row["group"] != "Residual":
        if row["difference"] > 0:
            return ("the posterior mean lies above the REML/ML value: an SD's posterior is skewed (bounded "
                    "at 0, long right tail), so its mean exceeds its mode; REML/ML is closer to the mode")
        return ("the posterior mean lies below the REML/ML value: the prior on this SD and the averaging "
                "over the other uncertain parameters pull it down; with a wide posterior (few groups, or a "
                "weakly identified slope) such a gap is still well inside the posterior")
    if effect == Effect.RAN_PARS and term.startswith("cor__"):
        if abs(row["bayes_estimate"]) < abs(row["freq_estimate"]):
            return ("correlations are weakly identified with few groups; the LKJ prior pulls the posterior "
                    "toward 0")
        return ("correlations are weakly identified with few groups; the posterior mean averages over a wide, "
                "skewed range of correlations and here lies further from 0 than the REML/ML value (a "
                "mode-like point estimate): the LKJ prior's pull toward 0 is weaker than that spread")
    if effect == Effect.RAN_PARS:
        return "the residual SD is informed by every row, so the engines usually agree closely"
    ratio = row["se_ratio"]
    if np.isfinite(ratio) and ratio < 1:
        return (f"the BLUP's conditional SD is {ratio:.2f} of the posterior SD: it treats the fixed effects and "
                "variance components as known, the posterior does not")
    return "the BLUP and the posterior mean shrink the group's own estimate by nearly the same share"


def summarise_equivalence(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for effect, part in table.groupby("effect", sort=False):
        both = part.dropna(subset=["freq_estimate", "bayes_estimate"])
        z = both["z_difference"].abs()
        rows.append({
            "effect": effect, "rows": len(part), "compared": len(both),
            "agree": int((z < AGREE_Z).sum()), "max_abs_z": float(z.max()) if len(z) else np.nan,
            "median_abs_z": float(z.median()) if len(z) else np.nan,
            "correlation": float(np.corrcoef(both["freq_estimate"], both["bayes_estimate"])[0, 1])
            if len(both) > 2 else np.nan,
            "median_se_ratio": float(both["se_ratio"].median()) if len(both) else np.nan,
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------- shrinkage


def shrinkage_table(freq: FitResult, bayes: FitResult | None = None) -> pd.DataFrame:
    """Each group's own estimate, the value it is pulled toward, and the partial-pooling estimates.

    One row per group level and random coefficient (``term``), for every grouping
    block of the model.

    * ``no_pooling``: the group's own least-squares coefficient for the random
      term's columns, after removing the other fixed effects at their GLS values
      (with an intercept only, the group's mean residual from the fixed part)
      and the effects of the grouping factors crossed with this one at their
      frequentist BLUPs (for a student of ``(1 | s) + (1 | d)``, each row less
      its instructor's BLUP: what the student's rows say once the instructors
      they met are accounted for). Crossed means neither nested in this factor
      nor enclosing it; the other blocks of the same factor (``(1 + x || g)``),
      enclosing and nested factors are not removed. NaN, with the reason in
      ``note``, where the group's rows cannot identify it.
      For an intercept-only factor with an intercept-only factor nested in it
      (a state of ``(1 | state/county)``) it is what the state's homes alone say
      when its counties vary as the model says: the precision-weighted mean of its
      counties' own estimates, weights 1 / (sigma^2/n_c + tau_c^2) (the state as
      a fixed effect, the counties random); ``note`` gives the plain mean of its
      rows, which weights large counties more.
    * ``toward``: what the row is pulled toward. ``population`` for a grouping
      factor that is nested in no other of the model's factors (the only kind in
      a one-level model, and also crossed factors); for a nested factor, its
      enclosing group, e.g. ``state MN`` for county ``AITKIN:MN`` of
      ``(1 | state/county)``. ``toward_group`` and ``toward_level`` hold the
      enclosing factor and level (empty for ``population``). A factor is nested
      in another when each of its levels lies within one level of the other and
      the other has fewer levels; the closest such factor (most levels) is its
      parent, and the parent's own parent its grandparent, and so on.
    * ``complete_pooling``: the value pulled toward, frequentist side. For
      ``population`` rows, the fixed effect (0 for a random coefficient without
      a fixed counterpart). For nested rows, the enclosing group's
      partial-pooling estimate: the fixed effect plus the BLUPs of the same
      coefficient for every enclosing level (for a county: fixed intercept +
      its state's BLUP).
    * ``complete_pooling_bayes``: the same target on the Bayesian side:
      ``complete_pooling`` itself for ``population`` rows (the frequentist fixed
      effect for both engines, so the two shares are measured toward the same
      point), and for nested rows the posterior mean of the fixed effect plus the
      enclosing levels' effects (each engine's county is pulled toward that
      engine's state).
    * ``partial_freq`` / ``partial_bayes``: the group's coefficient with partial
      pooling: fixed effect + this level's effect + the effects of every
      enclosing level (BLUPs; posterior means, i.e. the posterior mean of the
      sum). For ``population`` rows this is the engine's ``ran_coefs`` value.
    * ``shrinkage_freq`` = (no_pooling - partial_freq) / (no_pooling -
      complete_pooling), ``shrinkage_bayes`` likewise with partial_bayes and
      complete_pooling_bayes: the share of the way from the group's own estimate
      to its target, 0 = none, 1 = all the way. Both engines' shares start from
      the one ``no_pooling`` (the crossed factors removed at their frequentist
      BLUPs on both sides), so they differ only where the partial-pooling
      estimates (and, for nested rows, the targets) differ.
    * ``pooling_factor``: for an intercept-only term, the closed form
      v / (v + tau^2), with tau the term's SD and v the variance of the group's
      own estimate about its true value: sigma^2/n for a factor with nothing
      nested in it (one-level models, counties), 1 / sum of the weights above
      for an enclosing factor (states). Given the variance components and the
      GLS fixed effects it equals ``shrinkage_freq`` at every level (the BLUP
      equations), up to rounding; for crossed factors too, since each factor's
      BLUPs solve its own equations given the crossed factors' BLUPs, which
      ``no_pooling`` removes. Not where the factor has another block of its own
      (``(1 | g) + (0 + x | g)``): that block's effects stay in ``no_pooling``,
      and share and closed form differ (by up to 1.04 for the radon counties).

    For a GLMM (bernoulli, binomial, poisson) every column is on the link scale: ``no_pooling`` is the
    group's own maximum-likelihood coefficient with the rest of the linear predictor (other fixed
    effects, crossed factors' conditional modes, the offset) as an offset (``link_scale.own_link_estimate``;
    empty with a note where no finite maximum exists: all 0 or all 1, zero counts, separation), the
    partial-pooling values use conditional modes, and ``pooling_factor`` is NaN (its closed form needs a
    Normal likelihood).

    For a county of ``(1 | state/county)``: no_pooling = mean over its homes of
    (y - basement * b_basement); complete_pooling = b0 + u_state; partial_freq =
    b0 + u_state + u_county; shrinkage_freq = sigma^2 / (sigma^2 + n tau_county^2).
    For a state: complete_pooling = b0 and partial_freq = b0 + u_state.
    """
    design = freq.design
    if not design.blocks:
        return pd.DataFrame(columns=SHRINKAGE_COLUMNS)
    fixed = freq.table(Effect.FIXED).set_index("term")["estimate"]
    coefs_f = freq.table(Effect.RAN_COEFS).set_index(["group", "level", "term"])["estimate"]
    coefs_b = (bayes.table(Effect.RAN_COEFS).set_index(["group", "level", "term"])["estimate"]
               if bayes is not None else pd.Series(dtype=float))
    vals_f = freq.table(Effect.RAN_VALS).set_index(["group", "level", "term"])["estimate"]
    vals_b = (bayes.table(Effect.RAN_VALS).set_index(["group", "level", "term"])["estimate"]
              if bayes is not None else pd.Series(dtype=float))
    fixed_b = (bayes.table(Effect.FIXED).set_index("term")["estimate"] if bayes is not None
               else pd.Series(dtype=float))
    pars = freq.table(Effect.RAN_PARS).set_index(["group", "term"])["estimate"]
    gaussian = design.family is Family.GAUSSIAN
    sigma2 = float(pars[("Residual", "sd__Observation")] ** 2) if gaussian else np.nan
    parents = nesting_parents(design)
    own_all = _own_estimates(design, fixed, vals_f, parents, pars, sigma2)
    rows = []
    for b_index, block in enumerate(design.blocks):
        cols = list(block.z.columns)
        intercept_only = cols == ["(Intercept)"]
        tau2 = float(pars.get((block.group, "sd__(Intercept)"), np.nan) ** 2) if intercept_only else np.nan
        ancestors = _ancestors(b_index, parents)
        parent = design.blocks[ancestors[0]] if ancestors else None
        own_b, reasons_b, var_b = own_all[b_index]
        for j, level in enumerate(block.levels):
            rows_j = block.codes == j
            n_j = int(rows_j.sum())
            first_row = int(np.flatnonzero(rows_j)[0])
            enclosing = [(design.blocks[a].group, design.blocks[a].levels[design.blocks[a].codes[first_row]])
                         for a in ancestors]
            own, reasons, v = own_b[j], reasons_b[j], var_b[j]
            for c, term in enumerate(cols):
                base_f = float(fixed.get(term, 0.0)) if term in fixed.index else 0.0
                if parent is None:
                    complete = complete_b = base_f
                    part_f = coefs_f.get((block.group, level, term), np.nan)
                    part_b = coefs_b.get((block.group, level, term), np.nan)
                    toward, toward_group, toward_level = "population", "", ""
                else:
                    base_b = float(fixed_b.get(term, 0.0)) if bayes is not None else np.nan
                    up_f = sum(float(vals_f.get((g, lv, term), 0.0)) for g, lv in enclosing)
                    up_b = sum(float(vals_b.get((g, lv, term), 0.0)) for g, lv in enclosing)
                    complete, complete_b = base_f + up_f, base_b + up_b
                    part_f = complete + vals_f.get((block.group, level, term), np.nan)
                    part_b = complete_b + vals_b.get((block.group, level, term), np.nan)
                    toward_group, toward_level = enclosing[0]
                    toward = f"{toward_group} {toward_level}"
                rows.append({
                    "group": block.group, "level": level, "n": n_j, "term": term,
                    "no_pooling": own[c], "complete_pooling": complete,
                    "partial_freq": part_f, "partial_bayes": part_b,
                    "shrinkage_freq": _share(own[c], part_f, complete),
                    "shrinkage_bayes": _share(own[c], part_b, complete_b),
                    "pooling_factor": v / (v + tau2) if intercept_only and gaussian else np.nan,
                    "note": reasons[c], "toward": toward, "toward_group": toward_group,
                    "toward_level": toward_level, "complete_pooling_bayes": complete_b,
                })
    return pd.DataFrame(rows, columns=SHRINKAGE_COLUMNS)


def _ancestors(index: int, parents: dict[int, int]) -> list[int]:
    chain = []
    while index in parents and parents[index] not in chain:
        index = parents[index]
        chain.append(index)
    return chain


_OwnEstimates = tuple[list[np.ndarray], list[list[str]], np.ndarray]


def _own_estimates(design: Design, fixed: pd.Series, ran_vals: pd.Series, parents: dict[int, int],
                   pars: pd.Series, sigma2: float) -> dict[int, _OwnEstimates]:
    """Per block: each level's own estimate, the reasons for NaNs, and (intercept only) its variance.

    A level's own estimate is what its rows alone say. For an intercept-only block with one
    intercept-only block nested in it, that is the precision-weighted mean of the nested groups'
    own estimates (weights 1 / (v_c + tau_c^2), variance 1 / sum of the weights): the estimate
    with this factor as a fixed effect and the nested factor random, which the BLUP shrinks by
    exactly v / (v + tau^2). Otherwise it is the level's least-squares fit (variance sigma^2 / n
    for an intercept) of the response less the other fixed effects and less the BLUP contributions
    of the blocks crossed with this one (``ran_vals``, the frequentist group effects).
    """
    out: dict[int, _OwnEstimates] = {}

    def own_of(i: int) -> _OwnEstimates:
        if i in out:
            return out[i]
        block = design.blocks[i]
        cols = list(block.z.columns)
        kids = [c for c, p in parents.items() if p == i]
        n_levels = len(block.levels)
        if cols == ["(Intercept)"] and len(kids) == 1 and list(design.blocks[kids[0]].z.columns) == cols \
                and design.family is Family.GAUSSIAN:
            kid = design.blocks[kids[0]]
            kid_own, _, kid_var = own_of(kids[0])
            tau_k2 = float(pars.get((kid.group, "sd__(Intercept)"), np.nan) ** 2)
            weight = 1.0 / (kid_var + tau_k2)
            first = np.array([np.flatnonzero(kid.codes == k)[0] for k in range(len(kid.levels))])
            up = block.codes[first]
            values = np.array([o[0] for o in kid_own])
            total_w = np.bincount(up, weights=weight, minlength=n_levels)
            own = np.bincount(up, weights=weight * values, minlength=n_levels) / total_w
            kid_n = np.bincount(kid.codes, minlength=len(kid.levels)).astype(float)
            row_mean = (np.bincount(up, weights=kid_n * values, minlength=n_levels)
                        / np.bincount(up, weights=kid_n, minlength=n_levels))
            counts = np.bincount(up, minlength=n_levels)
            notes = [[f"own estimate: precision-weighted mean of its {counts[j]} {kid.group} groups "
                      f"(row mean {row_mean[j]:.3f})"] for j in range(n_levels)]
            result = ([np.array([v]) for v in own], notes, 1.0 / total_w)
        else:
            other = [c for c in design.x_estimable.columns if c not in cols]
            offset = design.x_estimable[other].to_numpy() @ fixed[other].to_numpy() if other else 0.0
            crossed = _crossed_offset(design, i, ran_vals)
            resid = design.y - offset - crossed  # Gaussian: the response less the rest of the model
            link_offset = np.zeros(design.n) + offset + crossed + (0.0 if design.offset is None else design.offset)
            z = block.z.to_numpy()
            ests, reasons = [], []
            sizes = np.bincount(block.codes, minlength=n_levels).astype(float)
            for j in range(n_levels):
                rows_j = block.codes == j
                if design.family is Family.GAUSSIAN:
                    est, why = _own_estimate(z[rows_j], resid[rows_j], cols)
                else:
                    est, why = own_link_estimate(z[rows_j], design.y[rows_j],
                                                 None if design.trials is None else design.trials[rows_j],
                                                 link_offset[rows_j], design.family, cols)
                ests.append(est)
                reasons.append(why)
            result = (ests, reasons, sigma2 / sizes)
        out[i] = result
        return result

    for i in range(len(design.blocks)):
        own_of(i)
    return out


def _crossed(block: GroupingBlock, other: GroupingBlock) -> bool:
    """Two blocks of different grouping factors, neither nested in the other (students and instructors)."""
    return other.group != block.group and not nested_in(block, other) and not nested_in(other, block)


def _crossed_offset(design: Design, index: int, ran_vals: pd.Series) -> np.ndarray | float:
    """Per row, the sum of Z_k b_k over the blocks crossed with block ``index`` (b_k: ``ran_vals``).

    Blocks of the same factor (the parts of ``(1 + x || g)``), enclosing factors and factors nested
    in this one are left in: the own estimate is measured with them as it always was.
    """
    block = design.blocks[index]
    total: np.ndarray | float = 0.0
    for other in design.blocks:
        if not _crossed(block, other):
            continue
        for coef in other.z.columns:
            effects = ran_vals.reindex([(other.group, level, coef) for level in other.levels]).to_numpy()
            total = total + other.z[coef].to_numpy() * effects[other.codes]
    return total


def _own_estimate(z: np.ndarray, y: np.ndarray, cols: list[str]) -> tuple[np.ndarray, list[str]]:
    """Least squares of ``y`` on ``z`` within one group; columns that the group cannot identify are NaN."""
    est = np.full(z.shape[1], np.nan)
    kept, reasons = identified_columns(z, cols)
    if kept:
        est[kept] = np.linalg.lstsq(z[:, kept], y, rcond=None)[0]
    return est, reasons


def _share(own: float, partial: float, complete: float) -> float:
    gap = own - complete
    if not np.isfinite(own) or not np.isfinite(partial) or abs(gap) < 1e-12:
        return np.nan
    return float((own - partial) / gap)
