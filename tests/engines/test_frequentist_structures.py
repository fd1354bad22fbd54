"""Nested and crossed random effects against lme4 (make_structures.R on make_structures_data.py's data).

Same tolerances and reasons as test_frequentist_lme4.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import compare_kit as ck
from tests.conftest import REFERENCE, assert_variance_components_match, lme4_table

MODELS = {
    "nested_intercepts": ("nested.csv", "y ~ x + (1 | school/class)"),
    "nested_slopes": ("nested.csv", "y ~ x + (1 + x | school) + (1 | class:school)"),
    "crossed_intercepts": ("crossed.csv", "y ~ x + (1 | subject) + (1 | item)"),
    "crossed_slopes": ("crossed.csv", "y ~ x + (1 + x || subject) + (1 | item)"),
    # make_crossed.R: designs MixedLM cannot fit (correlated crossed slopes) or spans with one group
    "crossed_correlated": ("crossed_correlated.csv", "y ~ x + (1 + x | subject) + (1 + x | item)"),
    "plates": ("plates.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "three_crossed": ("three_crossed.csv", "y ~ x + (1 | subject) + (1 | item) + (1 | rater)"),
}
CASES = [(m, meth) for m in MODELS for meth in ("REML", "ML")]
PREFIX = {"crossed_correlated": "crossed", "plates": "crossed", "three_crossed": "crossed"}


def _table(kind: str, model: str) -> str:
    """The reference file of ``kind`` (fixed_effects, ...) that holds ``model``."""
    return f"{PREFIX.get(model, 'structures')}_{kind}.csv"


@pytest.fixture(scope="module")
def fits():
    out = {}
    for (model, method) in CASES:
        file, formula = MODELS[model]
        spec = ck.ModelSpec.from_formula(formula, label=model)
        data = ck.load_csv(REFERENCE / "lme4" / file, text_columns=spec.grouping_columns)
        out[(model, method)] = ck.fit_frequentist(spec, data, method=method)
    return out


def _ref(name, model, method):
    t = lme4_table(name)
    return t[(t["model"] == model) & (t["method"] == method)]


@pytest.mark.parametrize(("model", "method"), CASES)
def test_fixed_effects(fits, model, method):
    ours = fits[(model, method)].table("fixed").set_index("term")
    ref = _ref(_table("fixed_effects", model), model, method).set_index("term")
    np.testing.assert_allclose(ours.loc[ref.index, "estimate"], ref["estimate"], rtol=1e-4)
    np.testing.assert_allclose(ours.loc[ref.index, "std_error"], ref["std_error"], rtol=1e-3)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_variance_components(fits, model, method):
    pars = fits[(model, method)].table("ran_pars")
    ref = _ref(_table("variance_components", model), model, method)
    assert_variance_components_match(pars, ref)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_blups(fits, model, method):
    vals = fits[(model, method)].table("ran_vals")
    ref = _ref(_table("random_effects", model), model, method)
    merged = ref.merge(vals, left_on=["grpvar", "grp", "term"], right_on=["group", "level", "term"], how="left")
    assert len(merged) == len(vals) == len(ref)
    np.testing.assert_allclose(merged["estimate"], merged["condval"], atol=1e-3)
    np.testing.assert_allclose(merged["std_error"], merged["condsd"], atol=1e-3)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_loglik(fits, model, method):
    ref = _ref(_table("fit_stats", model), model, method).iloc[0]
    fit = fits[(model, method)]
    assert fit.stats.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.health.converged and not fit.health.boundary
    if method == "ML":
        assert fit.stats.aic == pytest.approx(ref["AIC"], abs=2e-3)


def test_correlated_crossed_slopes_are_compare_kits_own_fit(fits):
    """MixedLM cannot express them: compare_kit's engine reports and says why; the others stay statsmodels."""
    fit = fits[("crossed_correlated", "REML")]
    assert fit.engine == "compare_kit"
    assert any("MixedLM cannot fit correlated effects (1 + x | subject)" in n for n in fit.health.notes)
    assert fits[("crossed_intercepts", "REML")].engine == "statsmodels"
