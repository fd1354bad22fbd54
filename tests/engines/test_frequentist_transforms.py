"""poly() and I() terms against lme4 (make_transforms.R on the bundled radon data), new rows included.

Tolerances as in test_frequentist_lme4.py: fixed effects 1e-4 relative, SEs and SDs 1e-3, logLik 1e-3;
predictions add BLUPs to fixed effects, so 1e-3 absolute. A Bayesian fit of a poly() model agrees
with REML in units of posterior SD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.errors import DataError
from tests.conftest import lme4_table

MODELS = {
    "poly_uranium": "log_radon ~ poly(log_uranium, 2) + floor + (1 | county)",
    "poly_interaction": "log_radon ~ poly(log_uranium, 3) * floor + (1 | county)",
    "arithmetic": ("log_radon ~ floor + log_uranium + I(log_uranium^2) + I(floor * log_uranium) + "
                   "I(exp(log_uranium) / (1 + floor)) + (1 | county)"),
}
NEW_HOMES = pd.DataFrame({"floor": [0, 1, 1, 0, 1], "log_uranium": [0.2, -0.5, 0.1, 0.4, -0.9],
                          "county": ["HENNEPIN", "NO SUCH COUNTY", "AITKIN", "CASS", "LAKE"]})


@pytest.fixture(scope="module")
def fits(radon):
    return {m: ck.fit_frequentist(ck.ModelSpec.from_formula(f, label=m), radon) for m, f in MODELS.items()}


@pytest.mark.parametrize("model", MODELS)
def test_fixed_effects_and_their_names_are_lme4s(fits, model):
    ref = lme4_table("transforms_fixed_effects.csv").query("model == @model").set_index("term")
    ours = fits[model].table("fixed").set_index("term")
    assert list(ours.index) == list(ref.index)  # R's column names: poly(x, 2)1, I(x^2), I(a/(1 + b))
    np.testing.assert_allclose(ours["estimate"], ref["estimate"], rtol=1e-4)
    np.testing.assert_allclose(ours["std_error"], ref["std_error"], rtol=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_variance_and_loglik_are_lme4s(fits, model):
    ref = lme4_table("transforms_fit_stats.csv").query("model == @model").iloc[0]
    fit = fits[model]
    sds = fit.table("ran_pars").set_index("group")["estimate"]
    assert fit.stats.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert sds["county"] == pytest.approx(ref["sd_county"], rel=1e-3)
    assert sds["Residual"] == pytest.approx(ref["sigma"], rel=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_new_homes_are_predicted_on_the_training_basis(fits, model):
    """The poly() basis of the fitted rows is kept: five new homes are not a basis of their own."""
    ref = lme4_table("transforms_predictions.csv").query("model == @model")
    fit = fits[model]
    np.testing.assert_allclose(fit.predict(NEW_HOMES), ref["with_groups"], atol=1e-3)
    np.testing.assert_allclose(fit.predict(NEW_HOMES, include_group_effects=False), ref["population"], atol=1e-3)


def test_the_poly_basis_is_orthonormal_on_the_fitted_rows(fits):
    design = fits["poly_interaction"].design
    basis = design.x[[f"poly(log_uranium, 3){k}" for k in (1, 2, 3)]].to_numpy()
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(basis.sum(axis=0), 0.0, atol=1e-10)


def test_poly_needs_more_distinct_values_than_its_degree(radon):
    with pytest.raises(DataError, match=r"poly\(floor, 2\) needs more than 2 distinct values of 'floor'"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ poly(floor, 2) + (1 | county)"), radon)


def test_an_undefined_expression_names_its_rows(radon):
    data = radon.assign(zero=np.where(np.arange(len(radon)) == 3, 0.0, 1.0))
    with pytest.raises(DataError, match=r"I\(floor/zero\) is not a finite number in 1 row.*zero = 0"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ I(floor / zero) + (1 | county)"), data)
    with pytest.raises(DataError, match=r"I\(county\^2\) reads 'county' as numbers, but it holds text"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ I(county^2) + floor"), radon)


def test_a_new_row_that_leaves_the_expression_undefined_is_an_error(fits):
    new = NEW_HOMES.assign(log_uranium=[0.2, -0.5, 1e6, 0.4, -0.9])  # exp(1e6) overflows
    with pytest.raises(DataError, match=r"I\(exp\(log_uranium\)/\(1 \+ floor\)\) is not a finite number"):
        fits["arithmetic"].predict(new)


@pytest.mark.slow
def test_bambi_fits_the_same_poly_model(fits, radon):
    """Bambi's posterior means sit within 0.5 posterior SD of REML: with 919 homes the priors move them by
    about 0.05 SD, and the Monte Carlo error of a mean from 2 x 500 draws is about 0.05 SD, so a false
    failure needs a 9-sigma draw (probability far below 1e-6)."""
    spec = ck.ModelSpec.from_formula(MODELS["poly_uranium"], label="poly_uranium")
    bayes = ck.fit_bayesian(spec, radon, draws=500, tune=500, chains=2, seed=3)
    post = bayes.table("fixed").set_index("term")
    reml = fits["poly_uranium"].table("fixed").set_index("term")
    assert list(post.index) == list(reml.index)
    z = (post["estimate"] - reml["estimate"]) / post["std_error"]
    assert (z.abs() < 0.5).all(), z
