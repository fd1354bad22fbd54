"""Comparison tables, predictive checks and teaching demonstrations, tested for content."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit import predictive, teaching
from compare_kit.compare import EQUIVALENCE_COLUMNS, SHRINKAGE_COLUMNS, compare, shrinkage_table
from compare_kit.errors import IncomparableError

DESIGN_EQUIVALENCE = ["model", "effect", "group", "level", "term", "freq_estimate", "freq_std_error",
                      "bayes_estimate", "bayes_std_error", "difference", "z_difference"]
DESIGN_SHRINKAGE = ["group", "level", "n", "term", "no_pooling", "complete_pooling", "partial_freq",
                    "partial_bayes", "shrinkage_freq", "shrinkage_bayes"]
SHORT = {"draws": 500, "tune": 500, "chains": 2, "seed": 1}


@pytest.fixture(scope="module")
def freq_vi(radon):
    return ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon)


@pytest.fixture(scope="module")
def pair_vi(radon, freq_vi):
    return freq_vi, ck.fit_bayesian(ck.ModelSpec.named("varying_intercept"), radon, **SHORT)


@pytest.fixture(scope="module")
def pair_pp(radon):
    spec = ck.ModelSpec.named("partial_pooling")
    return ck.fit_frequentist(spec, radon), ck.fit_bayesian(spec, radon, **SHORT)


def test_closed_form_pooling_factor_matches_empirical_shrinkage(freq_vi):
    table = shrinkage_table(freq_vi)
    assert list(table.columns[:len(DESIGN_SHRINKAGE)]) == DESIGN_SHRINKAGE[:len(DESIGN_SHRINKAGE)] or \
        set(DESIGN_SHRINKAGE) <= set(table.columns)
    assert len(table) == 85
    diff = (table["shrinkage_freq"] - table["pooling_factor"]).abs()
    assert diff.max() < 1e-3
    # small counties are pulled further than large ones
    small = table.loc[table["n"].idxmin(), "pooling_factor"]
    large = table.loc[table["n"].idxmax(), "pooling_factor"]
    assert small > 0.6 > 0.1 > large


@pytest.mark.slow
def test_equivalence_table_varying_intercept(pair_vi):
    cmp = compare(*pair_vi)
    eq = cmp.equivalence
    assert set(DESIGN_EQUIVALENCE) <= set(eq.columns) and list(eq.columns) == EQUIVALENCE_COLUMNS
    assert len(eq) == 2 + 2 + 85
    fixed = eq[eq["effect"] == "fixed"]
    assert (fixed["z_difference"].abs() < 0.5).all()
    assert (fixed["verdict"] == "agree").all()
    vals = eq[eq["effect"] == "ran_vals"]
    assert np.corrcoef(vals["freq_estimate"], vals["bayes_estimate"])[0, 1] > 0.99
    np.testing.assert_allclose(vals["z_difference"], vals["difference"] / vals["bayes_std_error"])
    summary = cmp.equivalence_summary.set_index("effect")
    assert summary.loc["ran_vals", "correlation"] > 0.99
    assert summary.loc["ran_vals", "compared"] == 85
    sd = eq[(eq["term"] == "sd__(Intercept)")].iloc[0]
    assert ("skewed" if sd["difference"] > 0 else "pull it down") in sd["why"]


@pytest.mark.slow
def test_shrinkage_both_engines_and_cass(pair_pp):
    cmp = compare(*pair_pp)
    table = cmp.shrinkage
    assert set(DESIGN_SHRINKAGE) <= set(table.columns) and list(table.columns) == SHRINKAGE_COLUMNS
    assert len(table) == 170
    cass = table[(table["level"] == "CASS")].set_index("term")
    assert np.isnan(cass.loc["floor", "no_pooling"]) and "floor = 0" in cass.loc["floor", "note"]
    population = cass.loc["floor", "complete_pooling"]
    assert abs(cass.loc["floor", "partial_freq"] - population) < 0.1
    assert abs(cass.loc["floor", "partial_bayes"] - population) < 0.15
    both = table.dropna(subset=["shrinkage_freq", "shrinkage_bayes"])
    assert np.corrcoef(both["partial_freq"], both["partial_bayes"])[0, 1] > 0.98


@pytest.mark.slow
def test_unpooled_tutorial_prior_cass_slope_is_prior_dominated(radon):
    spec = ck.ModelSpec.named("unpooled")
    freq = ck.fit_frequentist(spec, radon)
    bayes = ck.fit_bayesian(spec, radon, priors="tutorial", **SHORT)
    eq = compare(freq, bayes).equivalence.set_index("term")
    cass = eq.loc["countyCASS:floor"]
    assert np.isnan(cass["freq_estimate"]) and cass["verdict"] == "prior-dominated"
    assert cass["bayes_std_error"] > 30  # Normal(0, 100) prior: the data say nothing about it


@pytest.mark.slow
def test_incomparable_fits_are_refused(radon, pair_vi):
    freq, bayes = pair_vi
    other = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon.iloc[:800])
    with pytest.raises(IncomparableError, match="different data"):
        compare(other, bayes)
    pooled = ck.fit_frequentist(ck.ModelSpec.named("group_predictor"), radon)
    with pytest.raises(IncomparableError, match="fixed parts differ"):
        compare(pooled, bayes)
    with pytest.raises(IncomparableError, match="fit_frequentist"):
        compare(bayes, freq)


@pytest.mark.slow
def test_allowed_structural_difference_is_stated(radon, pair_pp):
    corr = ck.fit_frequentist(ck.ModelSpec.named("correlated_slopes"), radon)
    cmp = compare(corr, pair_pp[1])
    assert "Different structures" in cmp.structure_note
    eq = cmp.equivalence
    assert (eq.loc[eq["term"].str.startswith("cor__"), "verdict"] == "only frequentist").all()


def test_cross_validation_ranks_multilevel_first(radon):
    specs = [ck.ModelSpec.named(n) for n in ("pooled", "unpooled", "partial_pooling")]
    cv = predictive.cross_validated_rmse(specs, radon, folds=5, seed=1).set_index("model")
    assert cv.loc["partial_pooling", "rmse"] < cv.loc["pooled", "rmse"] < cv.loc["unpooled", "rmse"]
    assert (cv["rows"] + cv["rows_left_out"] == 919).all()
    assert cv["rows"].nunique() == 1 and cv["rows"].iloc[0] > 850
    assert set(cv["method"]) == {"5-fold cross-validation"}


@pytest.mark.slow
def test_bayesian_loo_rmse_joins_the_cross_validation_table(radon, pair_pp):
    specs = [ck.ModelSpec.named(n) for n in ("pooled", "partial_pooling")]
    pooled_b = ck.fit_bayesian(specs[0], radon, **SHORT)
    cv = predictive.cross_validated_rmse(specs, radon, folds=5, seed=1, bayes_fits=[pooled_b, pair_pp[1]])
    bayes = cv[cv["method"] == "PSIS leave-one-out"].set_index("model")["rmse"]
    freq = cv[cv["engine"] == "statsmodels"].set_index("model")["rmse"]
    assert bayes["partial_pooling"] < bayes["pooled"]
    assert abs(bayes["pooled"] - freq["pooled"]) < 0.01  # 919 rows, 2 coefficients: LOO ~ K-fold


@pytest.mark.slow
def test_rmsd_loo_and_predictions(pair_vi, radon):
    freq, bayes = pair_vi
    rmsd = predictive.in_sample_rmsd(freq, bayes).set_index("engine")
    assert 0.6 < rmsd.loc["statsmodels", "rmsd"] < 0.75
    assert abs(rmsd.loc["bambi", "rmsd"] - rmsd.loc["statsmodels", "rmsd"]) < 0.03
    loo = predictive.loo_table([pair_vi])
    assert loo.loc[0, "elpd_loo"] == pytest.approx(-1040, abs=25)
    assert loo.loc[0, "aic"] == pytest.approx(2097.70679881256, abs=1e-2)
    rows = [predictive.NewRow({"floor": 0.0}, "HENNEPIN"), predictive.NewRow({"floor": 0.0})]
    pred = predictive.predict_new(freq, bayes, rows)
    assert len(pred) == 4
    width = pred["conf_high"] - pred["conf_low"]
    assert (width > 2.5).all() and (width < 3.5).all()
    hennepin = pred[pred["level"] == "HENNEPIN"]
    assert abs(hennepin["estimate"].iloc[0] - hennepin["estimate"].iloc[1]) < 0.05
    new = pred[pred["level"] == "(new group)"]
    assert (new["conf_high"] - new["conf_low"]).min() > (hennepin["conf_high"] - hennepin["conf_low"]).max()


@pytest.mark.slow
def test_conditional_equivalence(freq_vi):
    demo = teaching.conditional_equivalence(freq_vi, draws=1000, tune=500, chains=4, seed=1)
    table = demo.table
    assert len(table) == 85
    assert (table["z_mc"].abs() < 3).all()
    ratio = table["sd_ratio_posterior_to_pev"]
    assert ratio.between(0.9, 1.1).all()
    assert (table["cond_sd"] <= table["pev_sd"] + 1e-12).all()
    assert (demo.fixed["z_mc"].abs() < 3).all()


@pytest.mark.slow
def test_prior_flattening_moves_the_mode_to_reml(radon, freq_vi):
    ml = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon, method="ML")
    demo = teaching.prior_flattening(freq_vi, ml, scales=(0.02, 0.5, 12.5), draws=500, tune=500, chains=2)
    gaps = demo.table["mode_minus_reml"].abs().to_numpy()
    assert gaps[0] > 0.1 and gaps[-1] < 0.02
    assert (demo.table["posterior_mean"] >= demo.table["posterior_mode"] - 0.01).all()


@pytest.mark.slow
def test_boundary_demo_posterior_stays_positive():
    demo = teaching.boundary_demo(draws=500, tune=500, chains=2)
    s = demo.summary.iloc[0]
    assert s["boundary_flag"] and s["reml_sd"] < 1e-3
    assert s["posterior_conf_low"] > 0 and s["posterior_mean_sd"] > 0.1
    assert (demo.table["blup"].abs() < 1e-3).all()
    assert (demo.table["posterior_mean"].abs() > demo.table["blup"].abs()).any()


@pytest.mark.slow
def test_public_api_compare(pair_vi):
    cmp = ck.compare(*pair_vi)
    assert cmp.model == "varying_intercept" and len(cmp.equivalence) == 89
