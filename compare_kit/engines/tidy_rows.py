"""A frequentist fit's tidy rows: fixed effects, SDs and correlations, group effects and coefficients.

Shared by every frequentist path (OLS, the Gaussian mixed model, the GLM and the GLMM), so a number
means the same in each: Wald intervals (Student's t for OLS), NaN with the reason for a coefficient
the data cannot estimate, the SDs and correlations of each random term from its covariance, and per
level the conditional mode with its conditional SD (``ran_vals``) and the fixed effect plus the mode
with the SD of their joint error (``ran_coefs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from compare_kit.design import Design
from compare_kit.results import Effect, EngineName, cor_term, effect_labels, sd_term, wald_interval
from compare_kit.wording import count

BOUNDARY_BLUP_NOTE = "group SD at the boundary: the BLUP is shrunk to zero, not estimated"


def row(effect: Effect, group: str, level: str, term: str, estimate: float, std_error: float,
        conf_low: float, conf_high: float, conf_level: float, model: str, note: str = "",
        engine: EngineName = EngineName.STATSMODELS) -> dict:
    """One tidy row."""
    return {"engine": str(engine), "model": model, "effect": str(effect), "group": group, "level": level,
            "term": term, "estimate": float(estimate), "std_error": float(std_error),
            "conf_low": float(conf_low), "conf_high": float(conf_high), "conf_level": conf_level,
            "note": note}


def fixed_rows(design: Design, beta: np.ndarray, se: np.ndarray, conf_level: float,
               df: float | None = None) -> list[dict]:
    """One row per fixed-effect column: the estimable ones (``beta``, ``se`` in ``x_estimable``'s order)
    with Wald intervals (t on ``df`` degrees of freedom when given), the others empty with the reason."""
    label = design.spec.label
    low, high = wald_interval(np.asarray(beta), np.asarray(se), conf_level, df)
    fixed = dict(zip(design.x_estimable.columns, zip(beta, se, low, high, strict=True), strict=True))
    rows = []
    for name in design.x.columns:
        if name in fixed:
            rows.append(row(Effect.FIXED, "", "", name, *fixed[name], conf_level, label))
        else:
            rows.append(row(Effect.FIXED, "", "", name, np.nan, np.nan, np.nan, np.nan, conf_level, label,
                            note=design.aliased[name]))
    return rows


def aliased_note(design: Design) -> tuple[str, ...]:
    """The health note of a model without random terms whose design has columns the data cannot estimate."""
    return (f"{count(len(design.aliased), 'coefficient')} not estimable from the data (reported empty with the "
            "reason)",) if design.aliased else ()


def ran_pars_rows(design: Design, covariances: Sequence[np.ndarray], conf_level: float,
                  boundary_terms: dict[tuple[str, str], str]) -> list[dict]:
    """Each random term's SDs, and its correlations when the term is correlated, from its (k, k) covariance."""
    label = design.spec.label
    rows = []
    for block, cov in zip(design.blocks, covariances, strict=True):
        sds = np.sqrt(np.clip(np.diag(cov), 0, None))
        coefs = list(block.z.columns)
        for c, coef in enumerate(coefs):
            rows.append(row(Effect.RAN_PARS, block.group, "", sd_term(coef), sds[c], np.nan, np.nan, np.nan,
                            conf_level, label, note="at the boundary" if (block.group, coef) in boundary_terms
                            else ""))
        if block.term.correlated:
            for a in range(len(coefs)):
                for b in range(a + 1, len(coefs)):
                    denom = sds[a] * sds[b]
                    cor = cov[a, b] / denom if denom > 0 else np.nan
                    note = "" if denom > 0 else "undefined: an SD is zero"
                    rows.append(row(Effect.RAN_PARS, block.group, "", cor_term(coefs[a], coefs[b]), cor,
                                    np.nan, np.nan, np.nan, conf_level, label, note=note))
    return rows


@dataclass(frozen=True)
class EffectUncertainty:
    """Per random effect (global order): mode, conditional SD, Henderson PEV and its covariance with beta."""

    b: np.ndarray
    cond_sd: np.ndarray
    pev: np.ndarray
    cov_with_beta: np.ndarray  # (effect, fixed column)


def effect_uncertainty(b: Sequence[np.ndarray], cond_var: Sequence[np.ndarray], pev: Sequence[np.ndarray],
                       cov_b_beta: Sequence[np.ndarray], p: int) -> EffectUncertainty:
    """The per-term blocks laid end to end (term by term, level-major, coefficient-minor)."""
    def stack(parts: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.einsum("gaa->ga", x).ravel() for x in parts])

    return EffectUncertainty(np.concatenate([x.ravel() for x in b]), np.sqrt(np.clip(stack(cond_var), 0, None)),
                             stack(pev), np.concatenate([c.reshape(-1, p) for c in cov_b_beta]))


def group_rows(design: Design, unc: EffectUncertainty, beta: np.ndarray, cov_beta: np.ndarray, conf_level: float,
               boundary_terms: dict[tuple[str, str], str]) -> list[dict]:
    """ran_vals (mode, conditional SD) and ran_coefs (fixed + mode, with its joint error SD from the PEV,
    ``cov_beta`` and their covariance, all given the variance parameters)."""
    labels = effect_labels(design)
    est_cols = list(design.x_estimable.columns)
    fixed_idx = np.array([est_cols.index(t) if t in est_cols else -1 for t in labels["term"]])
    has_fixed = fixed_idx >= 0
    safe = np.where(has_fixed, fixed_idx, 0)
    rows_idx = np.arange(len(labels))
    coef_var = unc.pev + np.where(has_fixed, np.diag(cov_beta)[safe] + 2 * unc.cov_with_beta[rows_idx, safe], 0.0)
    coef_se = np.sqrt(np.clip(coef_var, 0, None))
    fixed_part = np.where(has_fixed, np.asarray(beta)[safe], 0.0)
    vals_lo, vals_hi = wald_interval(unc.b, unc.cond_sd, conf_level)
    coef = fixed_part + unc.b
    coef_lo, coef_hi = wald_interval(coef, coef_se, conf_level)
    label = design.spec.label
    vals, coefs = [], []
    for i, (group, level, term) in enumerate(labels.itertuples(index=False)):
        if (group, term) in boundary_terms:
            # the BLUP is zero by construction, not an estimate: no standard error, no interval
            vals.append(row(Effect.RAN_VALS, group, level, term, unc.b[i], np.nan, np.nan, np.nan,
                            conf_level, label, note=BOUNDARY_BLUP_NOTE))
        else:
            vals.append(row(Effect.RAN_VALS, group, level, term, unc.b[i], unc.cond_sd[i], vals_lo[i],
                            vals_hi[i], conf_level, label))
        coefs.append(row(Effect.RAN_COEFS, group, level, term, coef[i], coef_se[i], coef_lo[i], coef_hi[i],
                         conf_level, label))
    return vals + coefs


__all__ = ["BOUNDARY_BLUP_NOTE", "EffectUncertainty", "aliased_note", "effect_uncertainty", "fixed_rows",
           "group_rows", "ran_pars_rows", "row"]
