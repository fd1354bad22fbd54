"""Predictions for new rows: transforms that remember their fitted rows, unseen levels, both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit import predictive
from compare_kit.design import TransformState, build_design
from compare_kit.errors import DataError

PLAIN = "log_radon ~ floor + log_uranium + (1 | county)"
REPARAMETRISED = "log_radon ~ center(floor) + scale(log_uranium) + (1 | county)"
NEW_HOMES = pd.DataFrame({"floor": [0, 1, 1, 0], "log_uranium": [0.2, -0.5, 0.1, 0.4],
                          "county": ["HENNEPIN", "NO SUCH COUNTY", "AITKIN", "CASS"]})


@pytest.fixture(scope="module")
def fits(radon):
    return {f: ck.fit_frequentist(ck.ModelSpec.from_formula(f), radon) for f in (PLAIN, REPARAMETRISED)}


def test_a_design_remembers_the_centre_and_scale_of_its_rows(radon):
    design = build_design(ck.ModelSpec.from_formula(REPARAMETRISED), radon)
    assert design.state.means == {"floor": pytest.approx(radon["floor"].mean(), rel=1e-12),
                                  "log_uranium": pytest.approx(radon["log_uranium"].mean(), rel=1e-12)}
    assert design.state.sds == {"log_uranium": pytest.approx(radon["log_uranium"].std(ddof=1), rel=1e-12)}
    # new rows built with that state are centred on the fitted rows' means, not on their own
    few = radon.iloc[:5]
    again = build_design(design.spec, few, state=design.state)
    np.testing.assert_allclose(again.x["center(floor)"], few["floor"] - radon["floor"].mean(), rtol=0, atol=1e-12)
    own = build_design(design.spec, few)
    assert own.state != design.state


def test_a_reparametrisation_gives_the_same_cross_validation(radon):
    """center() and scale() only reparametrise the model: the held-out predictions cannot change. Before
    the folds reused the fitted rows' state, the two RMSEs were 0.739908 and 0.739842."""
    plain, repar = (predictive.cross_validated_rmse([ck.ModelSpec.from_formula(f)], radon, folds=10, seed=1)
                    for f in (PLAIN, REPARAMETRISED))
    # the two REML optimisations agree to ~1e-10; 1e-7 leaves room for any BLAS kernel
    assert repar["rmse"].iloc[0] == pytest.approx(plain["rmse"].iloc[0], abs=1e-7)
    assert plain["rmse"].iloc[0] == pytest.approx(0.739908, abs=5e-6)


def test_a_reparametrisation_gives_the_same_predictions(fits):
    plain, repar = (fits[f].predict(NEW_HOMES) for f in (PLAIN, REPARAMETRISED))
    np.testing.assert_allclose(repar, plain, rtol=0, atol=1e-7)
    assert list(plain.index) == list(NEW_HOMES.index) and plain.name == "predicted"


def test_predictions_on_the_fitted_rows_are_the_fitted_values(fits, radon):
    fit = fits[PLAIN]
    np.testing.assert_allclose(fit.predict(radon), fit.fitted(), rtol=0, atol=1e-12)


def test_an_unseen_level_falls_back_to_the_population(fits):
    fit = fits[PLAIN]
    with_groups = fit.predict(NEW_HOMES)
    population = fit.predict(NEW_HOMES, include_group_effects=False)
    assert with_groups[1] == population[1]  # NO SUCH COUNTY
    blups = fit.table("ran_vals").set_index("level")["estimate"]
    for i, county in ((0, "HENNEPIN"), (2, "AITKIN"), (3, "CASS")):
        assert with_groups[i] == pytest.approx(population[i] + blups[county], abs=1e-12)
    fixed = fit.table("fixed").set_index("term")["estimate"]
    expected = fixed["(Intercept)"] + fixed["floor"] * 1 + fixed["log_uranium"] * -0.5
    assert population[1] == pytest.approx(expected, abs=1e-12)


def test_rows_that_cannot_be_predicted_are_missing_not_wrong(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ C(floor) + log_uranium + (1 | county)"),
                             radon)
    new = pd.DataFrame({"floor": [0, 2, 1, np.nan], "log_uranium": [0.1, 0.1, np.nan, 0.1],
                        "county": ["AITKIN"] * 4})
    pred = fit.predict(new)
    assert np.isfinite(pred[0]) and pred[1:].isna().all()  # floor 2 was never seen; missing values
    with pytest.raises(DataError, match="'log_uranium'"):
        fit.predict(new.drop(columns="log_uranium"))


def test_new_county_predictions_use_the_fitted_centre(radon):
    """predict_new (the report's new-home predictions) puts its rows on the fit's scale too."""
    freq = ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ center(floor) + (1 | county)"), radon)
    mean = radon["floor"].mean()
    assert freq.design.state == TransformState({"floor": pytest.approx(mean, rel=1e-12)}, {})
    x = predictive._new_rows_of(freq.design, [predictive.NewRow({"floor": 0.0}, "HENNEPIN")]).x
    assert x["center(floor)"].iloc[0] == pytest.approx(-mean, rel=1e-12)


@pytest.fixture(scope="module")
def bayes_plain(radon):
    return ck.fit_bayesian(ck.ModelSpec.from_formula(PLAIN), radon, draws=100, tune=100, chains=2, seed=3)


@pytest.mark.slow
def test_bayesian_predictions_are_the_posterior_mean_of_the_mean(radon, bayes_plain):
    bayes = bayes_plain
    # on the fitted rows: the mean over draws of each row's mean, the same linear sum (no Monte Carlo)
    np.testing.assert_allclose(bayes.predict(radon), bayes.mu.mean(axis=(0, 1)), rtol=0, atol=1e-10)
    pred = bayes.predict(NEW_HOMES)
    population = bayes.predict(NEW_HOMES, include_group_effects=False)
    assert pred[1] == population[1] and pred[0] != population[0]


@pytest.mark.slow
def test_psis_loo_in_chunks_of_rows_is_arvizs_loo(bayes_plain):
    """PSIS smooths each row's weights on its own, so chunks of rows change only rounding: the same draws
    on both sides (no Monte Carlo), arviz's ``az.loo`` on the full (chain, draw, n) arrays against
    ``psis_loo`` in chunks of 37 rows (919 rows: 25 chunks, the last one short)."""
    import warnings

    import arviz as az
    from scipy.special import logsumexp

    bayes = bayes_plain
    with warnings.catch_warnings():  # 200 draws: some Pareto k above arviz's 0.57, as in psis_loo's notes
        warnings.simplefilter("ignore", UserWarning)
        reference = az.loo(bayes.loo_data(), pointwise=True)
    loo = bayes.psis_loo(chunk_rows=37)
    # float rounding only: sums of 919 terms of size ~1 in another order (relative error ~1e-14)
    assert loo.elpd.elpd == pytest.approx(float(reference.elpd), rel=1e-8)
    assert loo.elpd.se == pytest.approx(float(reference.se), rel=1e-8)
    assert loo.elpd.p == pytest.approx(float(reference.p), rel=1e-8)
    np.testing.assert_allclose(loo.elpd.elpd_i, reference.elpd_i.values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loo.elpd.pareto_k, reference.pareto_k.values, rtol=1e-8, atol=1e-10)
    lw = reference.log_weights.transpose("chain", "draw", ...).values
    expected = (np.exp(lw - logsumexp(lw, axis=(0, 1), keepdims=True)) * bayes.mu).sum(axis=(0, 1))
    np.testing.assert_allclose(loo.predictions, expected, rtol=1e-10, atol=1e-12)
    assert bayes.loo.elpd.elpd == pytest.approx(loo.elpd.elpd, rel=1e-12)  # the default: one chunk here


@pytest.mark.slow
def test_means_at_chosen_draws_and_the_rmsd_need_no_full_mu(bayes_plain):
    bayes = bayes_plain
    full = bayes.mu.reshape(bayes.n_draws, -1)
    chosen = np.array([0, 57, 100, 199])  # both chains: flat indices are chain-major
    np.testing.assert_allclose(bayes.mu_at(chosen), full[chosen], rtol=1e-12, atol=1e-12)
    rmsd = np.sqrt(np.mean((bayes.design.y - full) ** 2, axis=1)).mean()
    assert predictive.in_sample_rmsd(bayes=bayes)["rmsd"].iloc[0] == pytest.approx(rmsd, rel=1e-12)
