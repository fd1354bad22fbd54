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
# A fixed seed does not fix the draws across machines (other BLAS kernels change the gradients' last bits
# and the NUTS trajectories part), so each assertion on draws states its false-failure probability, from
# the spread measured over seeds 1-13 at these settings (2 chains x 500 draws), with the measured SD taken
# 1.5 times larger (13 seeds pin an SD down to about 20%).
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


def _crossed_data(seed: int = 3) -> pd.DataFrame:
    """Students (30) x instructors (20), unbalanced: each row meets a random pair, a few students often."""
    rng = np.random.default_rng(seed)
    n = 600
    student = rng.choice(30, n, p=rng.dirichlet(np.full(30, 2.0)))
    instructor = rng.integers(0, 20, n)
    region = instructor % 4  # instructors nested in 4 regions, crossed with students
    y = (1.0 + 0.4 * rng.normal(size=4)[region] + 0.6 * rng.normal(size=30)[student]
         + 0.5 * rng.normal(size=20)[instructor] + rng.normal(size=n))
    return pd.DataFrame({"y": y, "s": [f"s{i}" for i in student], "d": [f"d{i}" for i in instructor],
                         "r": [f"r{i}" for i in region]})


@pytest.mark.parametrize("formula", ["y ~ 1 + (1 | s) + (1 | d)", "y ~ 1 + (1 | s) + (1 | r/d)"])
def test_crossed_shrinkage_equals_pooling_factor(formula):
    # The own estimate of a crossed factor removes the other factors' BLUPs; then, given the variance
    # components, share = v / (v + tau^2) is an identity of the BLUP equations, exact up to the
    # solver's rounding (measured <= 1e-12 here), so 1e-6 is ample and still catches any missing term
    # (leaving the other factor in gave shares from -4 to 12 on InstEval).
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula(formula), _crossed_data())
    table = shrinkage_table(fit)
    assert set(table["group"]) == {g.group for g in fit.design.blocks}
    assert table["shrinkage_freq"].notna().all()
    assert (table["shrinkage_freq"] - table["pooling_factor"]).abs().max() < 1e-6
    assert table["shrinkage_freq"].between(0, 1).all()
    assert table["shrinkage_bayes"].isna().all()  # no Bayesian fit given


@pytest.mark.slow
def test_equivalence_table_varying_intercept(pair_vi):
    cmp = compare(*pair_vi)
    eq = cmp.equivalence
    assert set(DESIGN_EQUIVALENCE) <= set(eq.columns) and list(eq.columns) == EQUIVALENCE_COLUMNS
    assert len(eq) == 2 + 2 + 85
    fixed = eq[eq["effect"] == "fixed"]
    # false-failure probability: < 1e-7 (z is -0.02 +- 0.06 and 0.00 +- 0.03 over seeds, 0.5 is > 5 SDs
    # at 1.5 x 0.06; "agree" is |z| < 0.5, the same event)
    assert (fixed["z_difference"].abs() < 0.5).all()
    assert (fixed["verdict"] == "agree").all()
    vals = eq[eq["effect"] == "ran_vals"]
    # false-failure probability: < 1e-12 (0.99964 +- 0.00007 over seeds)
    assert np.corrcoef(vals["freq_estimate"], vals["bayes_estimate"])[0, 1] > 0.99
    np.testing.assert_allclose(vals["z_difference"], vals["difference"] / vals["bayes_std_error"])
    summary = cmp.equivalence_summary.set_index("effect")
    assert summary.loc["ran_vals", "correlation"] > 0.99  # the same correlation as above
    assert summary.loc["ran_vals", "compared"] == 85
    sd = eq[(eq["term"] == "sd__(Intercept)")].iloc[0]
    # cannot fail by chance: the expected text follows the sign the draws gave
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
    assert abs(cass.loc["floor", "partial_freq"] - population) < 0.1  # no draws: the BLUP is exactly 0
    # false-failure probability: < 1e-9 (-0.006 +- 0.010 over seeds, at most 0.035: the unidentified
    # slope's posterior mean is 0 up to Monte Carlo error)
    assert abs(cass.loc["floor", "partial_bayes"] - population) < 0.15
    both = table.dropna(subset=["shrinkage_freq", "shrinkage_bayes"])
    # false-failure probability: < 1e-12 (0.99996 +- 0.00002 over seeds)
    assert np.corrcoef(both["partial_freq"], both["partial_bayes"])[0, 1] > 0.98


@pytest.mark.slow
def test_unpooled_tutorial_prior_cass_slope_is_prior_dominated(radon):
    spec = ck.ModelSpec.named("unpooled")
    freq = ck.fit_frequentist(spec, radon)
    bayes = ck.fit_bayesian(spec, radon, priors="tutorial", **SHORT)
    eq = compare(freq, bayes).equivalence.set_index("term")
    cass = eq.loc["countyCASS:floor"]
    assert np.isnan(cass["freq_estimate"]) and cass["verdict"] == "prior-dominated"
    # Normal(0, 100) prior: the data say nothing about it. false-failure probability: < 1e-12 (the sample
    # SD is 99 +- 4.3 over seeds)
    assert cass["bayes_std_error"] > 30


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
    # false-failure probability: < 1e-12 (the gap is 0.040 +- 0.001 over seeds)
    assert bayes["partial_pooling"] < bayes["pooled"]
    # 919 rows, 2 coefficients: LOO ~ K-fold. false-failure probability: < 1e-12 (0.0007 +- 0.00014)
    assert abs(bayes["pooled"] - freq["pooled"]) < 0.01


@pytest.mark.slow
def test_rmsd_loo_and_predictions(pair_vi, radon):
    freq, bayes = pair_vi
    rmsd = predictive.in_sample_rmsd(freq, bayes).set_index("engine")
    assert 0.6 < rmsd.loc["statsmodels", "rmsd"] < 0.75
    # false-failure probability: < 1e-12 (the gap is 0.0185 +- 0.0003 over seeds)
    assert abs(rmsd.loc["bambi", "rmsd"] - rmsd.loc["statsmodels", "rmsd"]) < 0.03
    loo = predictive.loo_table([pair_vi])
    # false-failure probability: < 1e-12 (-1037.2 +- 0.3 over seeds)
    assert loo.loc[0, "elpd_loo"] == pytest.approx(-1040, abs=25)
    assert loo.loc[0, "aic"] == pytest.approx(2097.70679881256, abs=1e-2)
    rows = [predictive.NewRow({"floor": 0.0}, "HENNEPIN"), predictive.NewRow({"floor": 0.0})]
    pred = predictive.predict_new(freq, bayes, rows)
    assert len(pred) == 4
    # The Bayesian side adds residual (and new-group) noise from predict_new's own numpy generator (seed 1,
    # no BLAS: the same normals on every machine), so only the MCMC draws vary; the spreads below are over
    # MCMC seeds. Were that noise redrawn too, a width would vary by ~0.09 and an estimate by ~0.023.
    width = pred["conf_high"] - pred["conf_low"]
    # false-failure probability: < 1e-9 (Bayesian widths 2.86 +- 0.03 and 3.08 +- 0.04; no draws in the
    # frequentist 2.86 and 3.11)
    assert (width > 2.5).all() and (width < 3.5).all()
    hennepin = pred[pred["level"] == "HENNEPIN"]
    # false-failure probability: <= 1e-6 (0.0387 +- 0.0012 over seeds, at most 0.0405: 0.05 is 9 SDs, 6 at
    # 1.5 times the spread)
    assert abs(hennepin["estimate"].iloc[0] - hennepin["estimate"].iloc[1]) < 0.05
    new = pred[pred["level"] == "(new group)"]
    # false-failure probability: <= 2e-5 (the smallest new-group width exceeds the largest HENNEPIN one by
    # 0.20 +- 0.032 over seeds, at least 0.14: 6 SDs, 4.2 at 1.5 times the spread)
    assert (new["conf_high"] - new["conf_low"]).min() > (hennepin["conf_high"] - hennepin["conf_low"]).max()


@pytest.mark.slow
def test_conditional_equivalence(freq_vi):
    """The posterior is exactly N(BLUP/GLS, PEV), so z_mc = (posterior mean - BLUP) / MCSE is a standard
    normal draw for each of the 85 counties and 2 coefficients, whatever the seed or BLAS kernel.

    Measured over seeds 1-80 (4 x 1000 draws): the 6,800 county z have SD 0.98 (floor's z: 1.16, the
    intercept's 0.90), mean z^2 per run 0.97 +- 0.19 (at most 1.65), largest |z| 4.09 (any |z| > 3 in
    12% of the runs: the old limit of 3 failed about one run in five at seed-to-seed odds);
    ESS 3,200-11,600 (antithetic), varying 9% between seeds; posterior SD / PEV SD: SD 0.018 per county
    (0.022 at most), its mean over the counties 1.000 +- 0.002. The MCSE is itself estimated (its error
    is at most half the ESS's 9%), so the limits below leave room for z's with an SD of 1.1 (1.3 for a
    coefficient). A real error is far outside them: a posterior centred 1 posterior SD off gives
    z ~ sqrt(ESS) > 50.
    """
    demo = teaching.conditional_equivalence(freq_vi, draws=1000, tune=500, chains=4, seed=1)
    table = demo.table
    assert len(table) == 85
    z = pd.concat([table["z_mc"], demo.fixed["z_mc"]])
    # false-failure probability: <= 3e-4 (Bonferroni over the 87 z: 87 P(|Z| > 5) = 5e-5 for exact
    # MCSEs; 1.1e-4 with a 5% MCSE error, 1e-4 more if floor's z has SD 1.3). Catches a posterior mean
    # off by 0.1 posterior SD (z ~ 0.1 sqrt(ESS) >= 5.6) in any one county.
    assert (z.abs() < 5).all(), z.abs().max()
    # false-failure probability: <= 5e-5 (mean z^2 is ~ chi^2_85 / 85, P(> 3) ~ 1e-7; simulated with a
    # common MC factor of correlation 0.08 and a shared 8% MCSE error: 5e-5). Catches what the bound
    # above misses: every county off by 0.02 posterior SD, or MCSEs too small by a factor 1.7.
    assert (table["z_mc"] ** 2).mean() < 3
    ratio = table["sd_ratio_posterior_to_pev"]
    # false-failure probability: <= 1e-4 (each ratio ~ N(1, 0.02); 85 P(|N(0, 0.0245)| > 0.12) = 8e-5).
    # Catches a posterior SD 12% off in any county, e.g. the smallest county's cond_sd (0.82 of PEV).
    assert ratio.between(0.88, 1.12).all(), (ratio.min(), ratio.max())
    # false-failure probability: <= 1e-4 (the mean of 85 ratios ~ N(1, 0.002); 0.01 is 5 SDs, 4 SDs if
    # the SD is 0.0025). Catches posterior SDs that are the conditional SDs (mean ratio 0.984).
    assert abs(ratio.mean() - 1) < 0.01, ratio.mean()
    # no draws: both from the frequentist fit; PEV exceeds condVar by >= 1e-4 for every county
    assert (table["cond_sd"] <= table["pev_sd"]).all()


@pytest.mark.slow
def test_prior_flattening_moves_the_mode_to_reml(radon, freq_vi):
    ml = ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon, method="ML")
    demo = teaching.prior_flattening(freq_vi, ml, scales=(0.02, 0.5, 12.5), draws=500, tune=500, chains=2)
    gaps = demo.table["mode_minus_reml"].abs().to_numpy()
    # false-failure probability: <= 1e-6 (seeds 1-15: the narrow prior's gap 0.2196 +- 0.0007; the wide
    # prior's 0.005 +- 0.0025, at most 0.010: the old limit 0.02 was 6 SDs, 4 at 1.5 times the spread of a
    # kernel-density mode; 0.03 is 10 and 6.6, and a tenth of the REML SD (0.32))
    assert gaps[0] > 0.1 and gaps[-1] < 0.03, gaps
    # false-failure probability: < 1e-12 (mean - mode is at least -0.0007 over seeds; -0.0001 +- 0.0003 for
    # the narrow prior, whose posterior is nearly symmetric; 0.01 is > 20 SDs away)
    assert (demo.table["posterior_mean"] >= demo.table["posterior_mode"] - 0.01).all()


@pytest.mark.slow
def test_prior_sweep_ends_at_reml_on_the_datas_own_scale():
    """Reaction times in ms (SD ~ 50): the prior ladder is in response SDs, so its widest rung is flat there
    (the radon ladder's HalfNormal(12.5) left sleepstudy's mode at 32 against REML's 37)."""
    from tests.report.conftest import repeated_measures

    data = repeated_measures()
    spec = ck.ModelSpec.from_formula("reaction_time ~ dose + (1 | subject)")
    reml, ml = ck.fit_frequentist(spec, data), ck.fit_frequentist(spec, data, method="ML")
    demo = teaching.prior_flattening(reml, ml, scales=(0.02, 12.5), draws=4000, tune=1000, chains=2)
    table = demo.table
    response_sd = float(np.std(data["reaction_time"], ddof=1))
    assert table["prior_scale"].tolist() == pytest.approx([0.02 * response_sd, 12.5 * response_sd])
    assert table["prior"].iloc[-1] == f"HalfNormal({12.5 * response_sd:.3g})"
    gap = table["mode_minus_reml"].iloc[-1] / table["reml"].iloc[-1]
    # false-failure probability: < 1e-6 (seeds 1-20 at 8000 draws: gap -0.56 +- 0.77%, at most 2.3%;
    # 5% is 7 SDs away). Catches the radon-scaled ladder (which left sleepstudy's mode 14% below REML)
    # and a mode taken on the SD's own scale at Scott's bandwidth (+4% on sleepstudy at 2000 draws)
    assert abs(gap) < 0.05, gap
    # false-failure probability: < 1e-12 (the narrow prior, 1 ms, holds every draw near zero)
    assert table["posterior_median"].iloc[0] < 0.1 * table["reml"].iloc[0]
    assert "times the response's SD" in demo.explanation


@pytest.mark.slow
def test_boundary_demo_posterior_stays_positive():
    demo = teaching.boundary_demo(draws=500, tune=500, chains=2)
    s = demo.summary.iloc[0]
    assert s["boundary_flag"] and s["reml_sd"] < 1e-3  # no draws
    assert demo.formula == "y ~ (1 | group)" and demo.data is teaching.DemoData.CONSTRUCTED
    assert "constructed data set" in demo.explanation
    # conf_low > 0 cannot fail (every draw of an SD is positive); posterior_mean_sd: false-failure
    # probability < 1e-12 (0.306 +- 0.017 over seeds 1-15)
    assert s["posterior_conf_low"] > 0 and s["posterior_mean_sd"] > 0.1
    assert (demo.table["blup"].abs() < 1e-3).all()  # no draws: exactly 0 at the boundary
    # cannot fail by chance: the BLUPs are 0 and a posterior mean of continuous draws is never exactly 0
    # (the largest |mean| was >= 0.14 in every seed)
    assert (demo.table["posterior_mean"].abs() > demo.table["blup"].abs()).any()


@pytest.mark.slow
def test_public_api_compare(pair_vi):
    cmp = ck.compare(*pair_vi)
    assert cmp.model == "varying_intercept" and len(cmp.equivalence) == 89


def test_conditional_model_is_the_dense_mixed_model(radon):
    """The gathered linear predictor (each row's own level's coefficients) is the textbook
    ``X beta + Z Lambda u`` with a dense Z and a block-diagonal Lambda: the same log density and the same
    group effects at any point (checked at a random one; correlated slopes, so Lambda is a full 2 x 2)."""
    from scipy import linalg, stats

    from compare_kit.engines.lmm import lower_root

    freq = ck.fit_frequentist(ck.ModelSpec.from_formula("log_radon ~ floor + (1 + floor | county)"), radon,
                              mixedlm=False)
    model = teaching._conditional_model(freq)
    design, block = freq.design, freq.design.blocks[0]
    sigma = np.sqrt(freq.mixed.scale)
    rng = np.random.default_rng(3)
    point = {"beta": rng.normal(size=2), "u_0": rng.normal(size=(len(block.levels), 2))}
    onehot = np.eye(len(block.levels))[block.codes]
    z_dense = (onehot[:, :, None] * block.z.to_numpy()[:, None, :]).reshape(design.n, -1)
    lam = linalg.block_diag(*[lower_root(freq.mixed.relative_covariances[0]) * sigma] * len(block.levels))
    b = lam @ point["u_0"].ravel()
    eta = design.x_estimable.to_numpy() @ point["beta"] + z_dense @ b
    expected = stats.norm.logpdf(point["u_0"]).sum() + stats.norm.logpdf(design.y, eta, sigma).sum()
    # float rounding only: two orders of summing ~1,100 terms of size ~1 (relative error ~1e-13)
    assert model.compile_logp()(point) == pytest.approx(expected, rel=1e-10)
    b_of_u = model.compile_fn(model["b"], inputs=[model["u_0"]])
    np.testing.assert_allclose(b_of_u({"u_0": point["u_0"]}), b, rtol=1e-12, atol=1e-12)


def test_conditional_sampling_keeps_the_request_within_the_budget():
    plan = teaching.conditional_sampling(919, draws=2000, tune=500, chains=4)
    assert (plan.draws, plan.tune, plan.chains, plan.reduced) == (2000, 500, 4, False)
    # InstEval's 73,421 rows at the command line's defaults: fewer chains and draws, within the budget
    plan = teaching.conditional_sampling(73421, draws=2000, tune=500, chains=4, budget=10**8)
    assert plan.reduced and plan.chains == 2 and plan.tune == 300
    assert 100 <= plan.draws < 2000 and 73421 * 2 * (plan.tune + plan.draws) <= 10**8
    plan = teaching.conditional_sampling(20000, draws=2000, tune=500, chains=4, budget=10**8)
    assert plan.reduced and 20000 * plan.chains * (plan.tune + plan.draws) <= 10**8


def test_a_correlation_is_said_to_be_pulled_toward_0_only_when_it_is():
    from compare_kit.compare import _base_why

    row = pd.Series({"term": "cor__(Intercept).floor", "effect": "ran_pars", "group": "county"})
    toward = _base_why(pd.concat([row, pd.Series({"freq_estimate": -0.8, "bayes_estimate": -0.3})]), "differ")
    away = _base_why(pd.concat([row, pd.Series({"freq_estimate": 0.07, "bayes_estimate": 0.4})]), "differ")
    assert "pulls the posterior toward 0" in toward
    assert "further from 0" in away and "pulls the posterior toward 0" not in away
