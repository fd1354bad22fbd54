"""The Bayesian engine against lme4 (REML equals MixedLM) with short, seeded chains.

Every test here samples, so all are marked slow. Oracle: tests/reference/lme4
(see its README for the R command). Tolerances are in posterior SDs, as the issue
states them: with 4 chains x 500 draws the Monte Carlo error of a posterior
mean is about 0.03 posterior SD, far inside the 0.5 SD allowed.

A fixed seed does not fix the draws across machines (other BLAS kernels change the
gradients' last bits, and NUTS trajectories then part), so every assertion on the draws
carries its probability of failing when the engine is right, from the spread over seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.results import DIAGNOSTIC_COLUMNS, ESTIMATE_COLUMNS

pytestmark = pytest.mark.slow

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "lme4"


@pytest.fixture(scope="module")
def radon() -> pd.DataFrame:
    return ck.load_radon()


@pytest.fixture(scope="module")
def lme4() -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(REFERENCE / f"lme4_{name}.csv")
            for name in ("fixed_effects", "variance_components", "random_effects")}


@pytest.fixture(scope="module")
def varying_intercept(radon: pd.DataFrame) -> ck.FitResult:
    return ck.fit_bayesian(ck.ModelSpec.named("varying_intercept"), radon, draws=500, tune=500,
                           chains=4, seed=11)


@pytest.fixture(scope="module")
def partial_pooling(radon: pd.DataFrame) -> ck.FitResult:
    # the acceptance run: 4 chains x 1000 draws, at the project's default seed. Over seeds 1-100
    # (after the no-fastmath change) the largest R-hat of the 175 quantities was 1.0041-1.0143 (above
    # 1.01 for 9 seeds), the smallest bulk ESS 377-903 and tail ESS 291-1377 (both sd__floor; below 400
    # for 1 and 3 seeds): the engine's own flags (R-hat > 1.01, ESS < 400) are raised by chance for about
    # one seed in ten, so the test asserts limits a working sampler does not reach at this length
    return ck.fit_bayesian(ck.ModelSpec.named("partial_pooling"), radon, draws=1000, tune=1000,
                           chains=4, seed=1)


def _row(fit, effect: str, term: str, group: str = "", level: str = "") -> pd.Series:
    est = fit.estimates
    hit = est[(est.effect == effect) & (est.term == term) & (est.group == group) & (est.level == level)]
    assert len(hit) == 1, (effect, term, group, level)
    return hit.iloc[0]


def test_varying_intercept_matches_reml_within_half_a_posterior_sd(varying_intercept, lme4) -> None:
    fixed = lme4["fixed_effects"].query("model == 'varying_intercept' and method == 'REML'")
    for _, ref in fixed.iterrows():
        row = _row(varying_intercept, "fixed", ref.term)
        # false-failure probability: < 1e-12 (seeds 1-25: (posterior mean - REML) / posterior SD is
        # -0.02 +- 0.05 for the intercept, 0.00 +- 0.02 for floor, at most 0.12: 0.5 is > 9 SDs away)
        assert abs(row.estimate - ref.estimate) < 0.5 * row.std_error, ref.term
        # posterior SD ~ lme4 SE (weak priors, 919 rows). false-failure probability: <= 1e-4 (seeds 1-25:
        # the ratio is 1.025 +- 0.035 for the intercept (ESS ~400 makes a sample SD wobble 3.5%), 1.004 +-
        # 0.018 for floor; 0.2 is 5 SDs, 3.9 if the intercept's spread is 0.045; the old 0.15 was 3.6 SDs)
        assert row.std_error == pytest.approx(ref.std_error, rel=0.2)
    vc = lme4["variance_components"].query("model == 'varying_intercept' and method == 'REML'")
    sd_county = vc[vc.grp == "county"].sdcor.item()
    sd_resid = vc[vc.grp == "Residual"].sdcor.item()
    for (term, group), ref in {("sd__(Intercept)", "county"): sd_county,
                               ("sd__Observation", "Residual"): sd_resid}.items():
        row = _row(varying_intercept, "ran_pars", term, group)
        # false-failure probability: < 1e-9 (seeds 1-25: 0.12 +- 0.05 posterior SD for the county SD, the
        # skew of an SD's posterior; 0.05 +- 0.03 for the residual SD; 0.5 is > 6 SDs away)
        assert abs(row.estimate - ref) < 0.5 * row.std_error, term


def test_varying_intercept_county_effects_track_the_blups(varying_intercept, lme4) -> None:
    ref = lme4["random_effects"].query("model == 'varying_intercept' and method == 'REML'")
    ours = varying_intercept.table("ran_vals").set_index("level")
    merged = ref.set_index("grp")[["condval", "condsd"]].join(ours, how="inner")
    assert len(merged) == 85
    # false-failure probability: < 1e-12 (seeds 1-25: 0.99968-0.99985; a level-order error gives ~0)
    assert np.corrcoef(merged.condval, merged.estimate)[0, 1] > 0.99
    z = (merged.estimate - merged.condval).abs() / merged.std_error
    # false-failure probability: < 1e-12 (seeds 1-25: largest of the 85 |z| 0.06 +- 0.015, at most 0.095;
    # per county the systematic gap is <= 0.023 and the Monte Carlo SD <= 0.035, so 0.5 is > 13 SDs)
    assert z.max() < 0.5
    # ran_coefs are fixed + deviation, draw by draw (an identity: only rounding, ~1e-15, separates them)
    intercept = _row(varying_intercept, "fixed", "(Intercept)").estimate
    coefs = varying_intercept.table("ran_coefs").set_index("level")
    np.testing.assert_allclose(coefs.loc[ours.index, "estimate"], ours.estimate + intercept, atol=1e-9)


def test_result_follows_the_tidy_schema_and_records_the_run(varying_intercept) -> None:
    fit = varying_intercept
    assert list(fit.estimates.columns) == ESTIMATE_COLUMNS
    assert list(fit.diagnostics.columns) == DIAGNOSTIC_COLUMNS
    assert set(fit.estimates.engine) == {"bambi"}
    assert fit.method == "MCMC"
    assert (fit.estimates.conf_level == 0.95).all()
    # false-failure probability: < 1e-9 (a posterior mean outside its own 95% interval needs a skew no
    # parameter of this model has; no violation in seeds 1-25)
    assert (fit.estimates.conf_low < fit.estimates.estimate).all()
    assert (fit.estimates.estimate < fit.estimates.conf_high).all()
    # one diagnostics row per parameter: every estimate except the derived ran_coefs
    params = fit.estimates[fit.estimates.effect != "ran_coefs"]
    assert fit.diagnostics[["effect", "group", "level", "term"]].equals(
        params[["effect", "group", "level", "term"]].reset_index(drop=True))
    info = fit.sampling
    assert (info.sampler, info.seed, info.chains, info.draws, info.tune) == ("nutpie", 11, 4, 500, 500)
    assert set(info.timings) == {"build", "compile", "sample", "tune", "draw", "post_process"}
    assert all(v > 0 for v in info.timings.values())
    assert info.priors["floor"].startswith("Normal(mu=0, sigma=5.496)")
    assert info.priors["sd__Observation"].startswith("HalfStudentT(nu=4, sigma=0.8189)")
    assert "sd__(Intercept)|county ~ HalfNormal(sigma=2.242)" in info.describe()
    assert fit.posterior["posterior"]["Intercept"].shape == (4, 500)
    canonical = fit.draws
    assert canonical.fixed_names == ("(Intercept)", "floor")
    assert canonical.fixed.shape == (4, 500, 2) and canonical.blocks[0].vals.shape == (4, 500, 85, 1)
    # the same draws averaged twice: only rounding (rtol 1e-7 is ~5e8 ulps)
    np.testing.assert_allclose(canonical.fixed.mean(axis=(0, 1)), fit.table("fixed").estimate)
    assert fit.engine_formula == "y ~ 1 + x0 + (1 | g0)"
    assert fit.stats.nobs == 919 and fit.stats.n_groups == {"county": 85}


def test_partial_pooling_converges_at_4_by_1000(partial_pooling) -> None:
    fit = partial_pooling
    params = fit.diagnostics
    # false-failure probability: <= 1e-5 (a Gumbel fit to the 100 seeds' largest R-hat gives
    # P(> 1.025) = 4e-6; lognormal fit 6e-7). Non-convergence (a stuck chain) gives R-hat > 1.05.
    assert params.rhat.max() <= 1.025, params.rhat.max()
    # false-failure probability: <= 1e-4 (t fits to log(smallest ESS) over 100 seeds, whose lowest
    # tail stretches: P(bulk < 200) = 2e-5 (lowest seen 377), P(tail < 100) = 2e-4 (lowest seen 291))
    assert params.ess_bulk.min() >= 200, params.ess_bulk.min()
    assert params.ess_tail.min() >= 100, params.ess_tail.min()
    # false-failure probability: <= 1e-4 (none in 100 seeds x 4,000 draws; nutpie calls a draw divergent
    # at an energy error above 1000: 5 of 160,000 draws were above 100, 1 above 300 (713), each in a
    # different run; a power-law extrapolation puts a single divergence in ~1e-3 of the runs, and eleven
    # would need a burst never seen). A centred funnel diverges in every chain (test_matrix_api).
    assert fit.sampling.divergences <= 10, fit.sampling.divergences
    # cannot fail by chance: tree depth is 3-4 here (16 leapfrog steps), saturation needs 1024
    assert fit.sampling.tree_depth_saturation == 0
    # structural: the health verdict is the R-hat / divergence rule, and every flag reaches the user
    assert fit.health.converged == (params.rhat.max() <= 1.01 and fit.sampling.divergences == 0)
    assert fit.health.warnings == fit.sampling.flags and fit.health.ok == (fit.health.converged and
                                                                          not fit.sampling.flags)
    assert {"sd__(Intercept)", "sd__floor"} <= set(fit.table("ran_pars").term)
    assert "cor__(Intercept).floor" not in set(fit.estimates.term)  # uncorrelated: no correlation row
    assert "(lme4 '||')" in fit.sampling.structure and "Bambi" in fit.sampling.structure


def test_correlated_slopes_is_fitted_by_pymc_and_contains_the_reml_correlation(radon, lme4) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("correlated_slopes"), radon, draws=500, tune=500,
                          chains=4, seed=3)
    vc = lme4["variance_components"].query("model == 'varying_intercept_slope' and method == 'REML'")
    reml_cor = vc[vc.var2 == "floor"].sdcor.item()
    assert reml_cor == pytest.approx(-0.37, abs=0.01)
    cor = _row(fit, "ran_pars", "cor__(Intercept).floor", "county")
    # false-failure probability: < 1e-12 (seeds 1-25: the REML value sits at the posterior's 0.351 +-
    # 0.011 quantile, the interval's ends at 0.025 / 0.975 are > 25 SDs away; interval (-0.72, 0.44) at
    # its narrowest, and a correlation is inside (-1, 1) by construction)
    assert cor.conf_low < reml_cor < cor.conf_high
    assert -1 < cor.conf_low < cor.estimate < cor.conf_high < 1
    assert set(fit.estimates.engine) == {"pymc"}
    assert "correlated" in fit.sampling.structure and "LKJ" in fit.sampling.priors["cor|county"]
    fixed = lme4["fixed_effects"].query("model == 'varying_intercept_slope' and method == 'REML'")
    for _, ref in fixed.iterrows():
        row = _row(fit, "fixed", ref.term)
        # false-failure probability: < 1e-12 (seeds 1-25: -0.03 +- 0.03 and 0.00 +- 0.02 posterior SD)
        assert abs(row.estimate - ref.estimate) < 0.5 * row.std_error, ref.term
    # false-failure probability: <= 6e-4 (seeds 1-25: largest R-hat 1.008-1.032; P(> 1.1) is 6e-4 under
    # the heaviest-tailed fit (Gumbel on log(R-hat - 1)), 7e-9 lognormal; it was 1.05, where that fit
    # gives 6e-3). A sampler that does not mix (e.g. a wrong LKJ density) gives R-hat > 1.1.
    assert fit.sampling.max_rhat < 1.1, fit.sampling.max_rhat
    # false-failure probability: <= 1e-4 (no divergence in seeds 1-25; energy errors above 100 in 6 of
    # 50,000 draws, none above 300; nutpie calls a draw divergent above 1000, so a run may see one now and
    # then (power-law extrapolation: ~0.5% of runs), but eleven would need a burst never seen)
    assert fit.sampling.divergences <= 10, fit.sampling.divergences


def test_unpooled_reports_the_prior_dominated_cass_slope(radon) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("unpooled"), radon, draws=300, tune=300, chains=2,
                          seed=2, priors="tutorial")
    cass = _row(fit, "fixed", "countyCASS:floor")
    assert cass.note.startswith("prior-dominated: not identified by the data (every row with "
                                "county = CASS has floor = 0")
    assert cass.note.endswith("the posterior is the prior")
    # the tutorial's Normal(0, 100) prior, untouched by data. false-failure probability: <= 1e-5 (seeds
    # 1-12: 101 +- 6.4 (93.5-110.3; the draws of this slope mix slowly); the old (80, 120) was 3 SDs from
    # it, about 3e-3; (60, 150) is > 4.4 SDs even at 1.5 times the spread, and still tells the tutorial's
    # prior from the default one (sd 5.5) or a data-dominated slope (sd < 1))
    assert 60 < cass.std_error < 150, cass.std_error
    identified = _row(fit, "fixed", "countyANOKA:floor")
    # false-failure probability: < 1e-12 (at most 0.46 over seeds 1-12)
    assert identified.note == "" and identified.std_error < 1
    assert (fit.table("fixed").note != "").sum() == 25
    assert fit.sampling.priors["county:floor"].startswith("Normal(mu=0, sigma=100)")
    assert fit.sampling.priors["sd__Observation"].startswith("HalfCauchy(beta=5)")


def test_default_priors_stay_finite_for_columns_without_variation(radon) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("unpooled"), radon, draws=200, tune=200, chains=2, seed=2)
    assert "no variation get sigma = 5.496" in fit.sampling.priors["county:floor"]
    cass = _row(fit, "fixed", "countyCASS:floor")
    # Bambi's slope scale for floor: 2.5 sd(y) / sd(floor) = 5.496. false-failure probability: <= 1e-5
    # (seeds 1-12: 5.40 +- 0.28, 5.05-5.87: the old (4, 7) was 5 SDs below, 3.4 at 1.5 times the spread;
    # (3.5, 8) is > 4.5 SDs at 1.5 times the spread)
    assert 3.5 < cass.std_error < 8, cass.std_error


def test_same_seed_same_table_whatever_the_cores_other_seed_differs(radon) -> None:
    spec = ck.ModelSpec.named("pooled")
    kw = dict(draws=200, tune=200, chains=2)
    a = ck.fit_bayesian(spec, radon, seed=42, cores=1, **kw)
    b = ck.fit_bayesian(spec, radon, seed=42, cores=2, **kw)
    c = ck.fit_bayesian(spec, radon, seed=43, cores=2, **kw)
    # equal by construction: one process, one BLAS kernel, each chain seeded on its own
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    # false-failure probability: 0 in practice (two seeds giving bit-equal posterior means)
    assert not a.estimates.estimate.equals(c.estimates.estimate)


def test_pymc_sampler_is_selectable_and_read_from_the_draws(radon) -> None:
    spec = ck.ModelSpec.named("pooled")
    fit = ck.fit_bayesian(spec, radon, draws=200, tune=200, chains=2, seed=1, sampler="pymc", cores=2)
    one_core = ck.fit_bayesian(spec, radon, draws=200, tune=200, chains=2, seed=1, sampler="pymc", cores=1)
    pd.testing.assert_frame_equal(fit.estimates, one_core.estimates)  # per-chain seeds: cores don't matter
    assert fit.sampling.sampler == "pymc"
    assert fit.posterior["posterior"].attrs["inference_library"] == "pymc"
    floor = _row(fit, "fixed", "floor")
    # OLS: -0.5864. false-failure probability: < 1e-12 (seeds 1-12: -0.589 +- 0.004, posterior SD 0.07)
    assert floor.estimate == pytest.approx(-0.586, abs=0.05)


def test_short_chains_raise_flags(radon) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=30, tune=30, chains=2, seed=1)
    # cannot fail by chance: 60 draws give a bulk ESS near 60 (at most 65 over seeds 1-12), never 400
    assert any("bulk ESS < 400" in f for f in fit.sampling.flags)
    assert not fit.health.ok
    assert fit.health.warnings == fit.sampling.flags


def test_vague_priors_bring_the_answer_towards_reml(radon, lme4) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("varying_intercept"), radon, draws=300, tune=300,
                          chains=2, seed=4, priors={"preset": "vague", "floor": "Normal(0, 10)"})
    assert fit.sampling.priors["floor"].startswith("Normal(mu=0, sigma=10)  [set]")
    assert fit.sampling.priors["(Intercept)"].startswith("Normal(mu=0, sigma=1000)")
    ref = lme4["fixed_effects"].query("model == 'varying_intercept' and method == 'REML'")
    intercept = _row(fit, "fixed", "(Intercept)")
    reml = ref[ref.term == "(Intercept)"].estimate.item()
    # false-failure probability: <= 1e-4 (seeds 1-12: z = 0.00 +- 0.09, at most 0.14: 0.5 is 5.7 SDs,
    # 3.8 at 1.5 times the spread; the Monte Carlo error of 2 x 300 draws is all there is)
    assert abs(intercept.estimate - reml) < 0.5 * intercept.std_error


def test_numpyro_sampler(radon) -> None:
    """numpyro is a test dependency (pyproject's test extra), so this always runs."""
    fit = ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=200, tune=200, chains=2, seed=1,
                          sampler="numpyro")
    assert fit.sampling.sampler == "numpyro"
    assert np.isnan(fit.sampling.timings["compile"])  # jax compiles inside sampling
    assert "compile n/a (inside sample)" in fit.sampling.describe()
    # false-failure probability: < 1e-12 (seeds 1-5: -0.588 +- 0.002, posterior SD 0.07)
    assert _row(fit, "fixed", "floor").estimate == pytest.approx(-0.586, abs=0.05)
