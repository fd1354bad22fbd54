"""The Bayesian engine against lme4 (REML equals MixedLM) with short, seeded chains.

Every test here samples, so all are marked slow. Oracle: tests/reference/lme4
(see its README for the R command). Tolerances are in posterior SDs, as the issue
states them: with 4 chains x 500 draws the Monte Carlo error of a posterior
mean is about 0.03 posterior SD, far inside the 0.5 SD allowed.
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
    # the acceptance run: 4 chains x 1000 draws, at the project's default seed. At 4 x 1000 the
    # largest R-hat of the 175 quantities passes 1.01 by chance for about one seed in ten (seeds 1-10,
    # measured after the no-fastmath change: 1.0046-1.0104, seed 5 the one above; min bulk ESS 588-864)
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
        assert abs(row.estimate - ref.estimate) < 0.5 * row.std_error, ref.term
        # posterior SD ~ lme4 SE (weak priors, 919 rows)
        assert row.std_error == pytest.approx(ref.std_error, rel=0.15)
    vc = lme4["variance_components"].query("model == 'varying_intercept' and method == 'REML'")
    sd_county = vc[vc.grp == "county"].sdcor.item()
    sd_resid = vc[vc.grp == "Residual"].sdcor.item()
    for (term, group), ref in {("sd__(Intercept)", "county"): sd_county,
                               ("sd__Observation", "Residual"): sd_resid}.items():
        row = _row(varying_intercept, "ran_pars", term, group)
        assert abs(row.estimate - ref) < 0.5 * row.std_error, term


def test_varying_intercept_county_effects_track_the_blups(varying_intercept, lme4) -> None:
    ref = lme4["random_effects"].query("model == 'varying_intercept' and method == 'REML'")
    ours = varying_intercept.table("ran_vals").set_index("level")
    merged = ref.set_index("grp")[["condval", "condsd"]].join(ours, how="inner")
    assert len(merged) == 85
    assert np.corrcoef(merged.condval, merged.estimate)[0, 1] > 0.99
    z = (merged.estimate - merged.condval).abs() / merged.std_error
    assert z.max() < 0.5
    # ran_coefs are fixed + deviation, draw by draw
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
    np.testing.assert_allclose(canonical.fixed.mean(axis=(0, 1)), fit.table("fixed").estimate)
    assert fit.engine_formula == "y ~ 1 + x0 + (1 | g0)"
    assert fit.stats.nobs == 919 and fit.stats.n_groups == {"county": 85}


def test_partial_pooling_converges_at_4_by_1000(partial_pooling) -> None:
    fit = partial_pooling
    params = fit.diagnostics
    assert params.rhat.max() <= 1.01
    assert params.ess_bulk.min() >= 400
    assert fit.sampling.divergences == 0
    assert fit.sampling.flags == ()
    assert fit.health.converged and fit.health.ok
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
    assert cor.conf_low < reml_cor < cor.conf_high
    assert -1 < cor.conf_low < cor.estimate < cor.conf_high < 1
    assert set(fit.estimates.engine) == {"pymc"}
    assert "correlated" in fit.sampling.structure and "LKJ" in fit.sampling.priors["cor|county"]
    fixed = lme4["fixed_effects"].query("model == 'varying_intercept_slope' and method == 'REML'")
    for _, ref in fixed.iterrows():
        row = _row(fit, "fixed", ref.term)
        assert abs(row.estimate - ref.estimate) < 0.5 * row.std_error, ref.term
    assert fit.sampling.max_rhat < 1.05 and fit.sampling.divergences == 0


def test_unpooled_reports_the_prior_dominated_cass_slope(radon) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("unpooled"), radon, draws=300, tune=300, chains=2,
                          seed=2, priors="tutorial")
    cass = _row(fit, "fixed", "countyCASS:floor")
    assert cass.note.startswith("prior-dominated: not identified by the data (every row with "
                                "county = CASS has floor = 0")
    assert cass.note.endswith("the posterior is the prior")
    assert 80 < cass.std_error < 120  # the tutorial's Normal(0, 100) prior, untouched by data
    identified = _row(fit, "fixed", "countyANOKA:floor")
    assert identified.note == "" and identified.std_error < 1
    assert (fit.table("fixed").note != "").sum() == 25
    assert fit.sampling.priors["county:floor"].startswith("Normal(mu=0, sigma=100)")
    assert fit.sampling.priors["sd__Observation"].startswith("HalfCauchy(beta=5)")


def test_default_priors_stay_finite_for_columns_without_variation(radon) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("unpooled"), radon, draws=200, tune=200, chains=2, seed=2)
    assert "no variation get sigma = 5.496" in fit.sampling.priors["county:floor"]
    cass = _row(fit, "fixed", "countyCASS:floor")
    assert 4 < cass.std_error < 7  # Bambi's slope scale for floor: 2.5 sd(y) / sd(floor)


def test_same_seed_same_table_whatever_the_cores_other_seed_differs(radon) -> None:
    spec = ck.ModelSpec.named("pooled")
    kw = dict(draws=200, tune=200, chains=2)
    a = ck.fit_bayesian(spec, radon, seed=42, cores=1, **kw)
    b = ck.fit_bayesian(spec, radon, seed=42, cores=2, **kw)
    c = ck.fit_bayesian(spec, radon, seed=43, cores=2, **kw)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    assert not a.estimates.estimate.equals(c.estimates.estimate)


def test_pymc_sampler_is_selectable_and_read_from_the_draws(radon) -> None:
    spec = ck.ModelSpec.named("pooled")
    fit = ck.fit_bayesian(spec, radon, draws=200, tune=200, chains=2, seed=1, sampler="pymc", cores=2)
    one_core = ck.fit_bayesian(spec, radon, draws=200, tune=200, chains=2, seed=1, sampler="pymc", cores=1)
    pd.testing.assert_frame_equal(fit.estimates, one_core.estimates)  # per-chain seeds: cores don't matter
    assert fit.sampling.sampler == "pymc"
    assert fit.posterior["posterior"].attrs["inference_library"] == "pymc"
    floor = _row(fit, "fixed", "floor")
    assert floor.estimate == pytest.approx(-0.586, abs=0.05)  # OLS: -0.5864


def test_short_chains_raise_flags(radon) -> None:
    fit = ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=30, tune=30, chains=2, seed=1)
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
    assert abs(intercept.estimate - reml) < 0.5 * intercept.std_error


def test_numpyro_sampler(radon) -> None:
    """numpyro is a test dependency (pyproject's test extra), so this always runs."""
    fit = ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, draws=200, tune=200, chains=2, seed=1,
                          sampler="numpyro")
    assert fit.sampling.sampler == "numpyro"
    assert np.isnan(fit.sampling.timings["compile"])  # jax compiles inside sampling
    assert "compile n/a (inside sample)" in fit.sampling.describe()
    assert _row(fit, "fixed", "floor").estimate == pytest.approx(-0.586, abs=0.05)
