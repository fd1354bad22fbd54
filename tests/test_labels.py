"""Readable parameter names: every group-effect row names its grouping factor, in tables and flags."""

from __future__ import annotations

import numpy as np
import pandas as pd

import compare_kit as ck
from compare_kit.display import equivalence, parameter_label, term_label
from compare_kit.engines.posterior import health_flags


def _crossed_fit():
    """Students and instructors numbered alike (both have levels 1..12), so only the factor tells them apart."""
    rng = np.random.default_rng(5)
    n = 300
    s, d = rng.integers(1, 13, n), rng.integers(1, 13, n)
    y = rng.normal(size=13)[s] + rng.normal(size=13)[d] + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "s": s.astype(str), "d": d.astype(str)})
    return ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ 1 + (1 | s) + (1 | d)"), data)


def test_parameter_label_names_the_factor_and_the_level():
    assert parameter_label("(Intercept)", "county", "AITKIN") == "county intercept [AITKIN]"
    assert parameter_label("floor", "county", "AITKIN") == "county floor slope [AITKIN]"
    assert parameter_label("floor") == "floor"
    assert parameter_label("sd__Observation", "Residual") == "residual SD"
    assert term_label("sd__(Intercept)", "county") == "SD of county intercepts"


def test_crossed_rows_have_distinct_labels_in_the_equivalence_table():
    est = _crossed_fit().estimates
    shared = set(est.loc[est["group"] == "s", "level"]) & set(est.loc[est["group"] == "d", "level"])
    assert shared  # the data are built so that the bare "intercept [level]" would repeat
    vals = est[est["effect"] == "ran_vals"]
    frame = pd.DataFrame({"effect": vals["effect"], "group": vals["group"], "level": vals["level"],
                          "term": vals["term"], "freq_estimate": vals["estimate"],
                          "freq_std_error": vals["std_error"], "bayes_estimate": np.nan,
                          "bayes_std_error": np.nan, "difference": np.nan, "z_difference": np.nan,
                          "verdict": "agree", "why": ""})
    labels = [row[0].text for row in equivalence(frame, "t").rows]
    assert len(labels) == len(set(labels)) == len(vals)
    assert "s intercept [1]" in labels and "d intercept [1]" in labels


def test_health_flags_name_the_worst_rows_factor():
    diagnostics = pd.DataFrame({
        "effect": ["ran_vals", "ran_vals", "ran_pars"], "group": ["d", "s", "s"], "level": ["1530", "1530", ""],
        "term": ["(Intercept)", "(Intercept)", "sd__(Intercept)"], "rhat": [1.0, 1.2, 1.0],
        "ess_bulk": [900.0, 900.0, 50.0], "ess_tail": [900.0, 900.0, 900.0]})
    flags = health_flags(diagnostics, divergences=0, saturation=0, chains=2, draws=500)
    assert any("worst s intercept [1530]: 1.200" in f for f in flags)
    assert any("lowest SD of s intercepts: 50" in f for f in flags)
