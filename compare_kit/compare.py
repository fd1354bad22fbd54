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

from compare_kit.design import Design
from compare_kit.errors import IncomparableError
from compare_kit.results import Effect, EngineName, FitResult

EQUIVALENCE_COLUMNS = ["model", "effect", "group", "level", "term", "freq_estimate", "freq_std_error",
                       "bayes_estimate", "bayes_std_error", "difference", "z_difference", "se_ratio",
                       "verdict", "why"]
SHRINKAGE_COLUMNS = ["group", "level", "n", "term", "no_pooling", "complete_pooling", "partial_freq",
                     "partial_bayes", "shrinkage_freq", "shrinkage_bayes", "pooling_factor", "note"]
AGREE_Z, SLIGHT_Z = 0.5, 2.0


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
        from compare_kit.report.tables import comparison_tables, table_html

        return table_html(*comparison_tables(self))


def compare(freq: FitResult, bayes: FitResult) -> Comparison:
    """Align a statsmodels fit and a Bambi/PyMC fit of the same spec on the same data."""
    if not isinstance(freq, FitResult) or not isinstance(bayes, FitResult):
        raise IncomparableError("compare() takes two FitResult objects (from fit_frequentist and fit_bayesian)")
    if freq.engine != EngineName.STATSMODELS:
        raise IncomparableError(f"the first fit must come from statsmodels, got {freq.engine}")
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
    verdicts = [_verdict(row, merged.loc[i]) for i, row in out.iterrows()]
    out["verdict"] = [v for v, _ in verdicts]
    out["why"] = [w for _, w in verdicts]
    order = {Effect.FIXED: 0, Effect.RAN_PARS: 1, Effect.RAN_VALS: 2}
    out["_o"] = out["effect"].map(lambda e: order.get(e, 3))
    out = out.sort_values(["_o", "group", "term", "level"], kind="stable").drop(columns="_o")
    return out.loc[:, EQUIVALENCE_COLUMNS].reset_index(drop=True)


def _verdict(row: pd.Series, merged: pd.Series) -> tuple[str, str]:
    side = merged["_merge"]
    if side == "left_only":
        return "only frequentist", "the Bayesian model has no such parameter (a different structure)"
    if side == "right_only":
        return "only Bayesian", "the frequentist model has no such parameter (a different structure)"
    if np.isnan(row["freq_estimate"]):
        note = merged.get("note_f", "") or "not estimable"
        return "prior-dominated", (f"frequentist: {note}. The Bayesian estimate exists only because the prior "
                                   "supplies what the data cannot")
    if "at the boundary" in str(merged.get("note_f", "")):
        if row["effect"] == Effect.RAN_VALS:
            return "boundary", ("the frequentist group SD is at the boundary (zero), so this BLUP is 0 by "
                                "construction, not an estimate; the posterior keeps the SD positive and the "
                                "group effect a little of the group's own deviation")
        return "boundary", ("REML/ML puts this SD at the boundary (zero); the posterior of an SD cannot "
                            "reach zero, so its mean is positive: the two summarise a likelihood that is "
                            "flat near zero differently")
    z = abs(row["z_difference"])
    verdict = "agree" if z < AGREE_Z else "differ slightly" if z < SLIGHT_Z else "differ"
    return verdict, _why(row, verdict)


def _why(row: pd.Series, verdict: str) -> str:
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
        return ("correlations are weakly identified with few groups; the LKJ prior pulls the posterior "
                "toward 0")
    if effect == Effect.RAN_PARS:
        return "the residual SD is well identified by hundreds of rows; the engines agree closely"
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
    """Each group's own estimate, the population value, and the partial-pooling estimates.

    * ``no_pooling``: the group's own least-squares coefficient for the random
      term's columns, after removing the other fixed effects at their GLS values
      (with an intercept only, the group's mean residual from the fixed part);
    * ``complete_pooling``: the population value, the fixed effect (0 for a
      random coefficient without a fixed counterpart);
    * ``shrinkage_*``: (no_pooling - partial) / (no_pooling - complete_pooling);
    * ``pooling_factor``: for a random intercept alone, the closed form
      (sigma^2/n) / (sigma^2/n + tau^2).
    """
    design: Design | None = freq.extras.get("design")
    if design is None or not design.blocks:
        return pd.DataFrame(columns=SHRINKAGE_COLUMNS)
    fixed = freq.table(Effect.FIXED).set_index("term")["estimate"]
    coefs_f = freq.table(Effect.RAN_COEFS).set_index(["group", "level", "term"])["estimate"]
    coefs_b = (bayes.table(Effect.RAN_COEFS).set_index(["group", "level", "term"])["estimate"]
               if bayes is not None else pd.Series(dtype=float))
    pars = freq.table(Effect.RAN_PARS).set_index(["group", "term"])["estimate"]
    sigma2 = float(pars[("Residual", "sd__Observation")] ** 2)
    rows = []
    for block in design.blocks:
        cols = list(block.z.columns)
        other = [c for c in design.x_estimable.columns if c not in cols]
        offset = design.x_estimable[other].to_numpy() @ fixed[other].to_numpy() if other else 0.0
        resid = design.y - offset
        z = block.z.to_numpy()
        intercept_only = cols == ["(Intercept)"]
        tau2 = float(pars.get((block.group, "sd__(Intercept)"), np.nan) ** 2) if intercept_only else np.nan
        for j, level in enumerate(block.levels):
            rows_j = block.codes == j
            n_j = int(rows_j.sum())
            own, reasons = _own_estimate(z[rows_j], resid[rows_j], cols)
            for c, term in enumerate(cols):
                complete = float(fixed.get(term, 0.0)) if term in fixed.index else 0.0
                part_f = coefs_f.get((block.group, level, term), np.nan)
                part_b = coefs_b.get((block.group, level, term), np.nan)
                rows.append({
                    "group": block.group, "level": level, "n": n_j, "term": term,
                    "no_pooling": own[c], "complete_pooling": complete,
                    "partial_freq": part_f, "partial_bayes": part_b,
                    "shrinkage_freq": _share(own[c], part_f, complete),
                    "shrinkage_bayes": _share(own[c], part_b, complete),
                    "pooling_factor": (sigma2 / n_j) / (sigma2 / n_j + tau2) if intercept_only else np.nan,
                    "note": reasons[c],
                })
    return pd.DataFrame(rows, columns=SHRINKAGE_COLUMNS)


def _own_estimate(z: np.ndarray, y: np.ndarray, cols: list[str]) -> tuple[np.ndarray, list[str]]:
    """Least squares of ``y`` on ``z`` within one group; columns that the group cannot identify are NaN."""
    k = z.shape[1]
    est = np.full(k, np.nan)
    reasons = [""] * k
    kept: list[int] = []
    for c in range(k):
        trial = kept + [c]
        if np.linalg.matrix_rank(z[:, trial]) == len(trial):
            kept.append(c)
        else:
            values = np.unique(z[:, c])
            reasons[c] = (f"not estimable from this group alone: {cols[c]} = {values[0]:g} in all of its rows"
                          if len(values) == 1 else f"not estimable from this group alone ({cols[c]} aliased)")
    if kept:
        est[kept] = np.linalg.lstsq(z[:, kept], y, rcond=None)[0]
    return est, reasons


def _share(own: float, partial: float, complete: float) -> float:
    gap = own - complete
    if not np.isfinite(own) or not np.isfinite(partial) or abs(gap) < 1e-12:
        return np.nan
    return float((own - partial) / gap)
