"""The statsmodels engine against lme4 1.1-31 (tests/reference/lme4, made by make_reference.R).

Tolerances (from the project's contract, each justified):
- fixed effects 1e-4 relative: both are the GLS solution at the optimum; the
  optimizers stop at slightly different points (about 1e-6 apart here);
- fixed-effect SEs 1e-3 relative: compare_kit reports the SE conditional on the
  variance parameters, as lme4 does; the residual difference comes only from the
  optimizers' stopping points;
- SDs 1e-3 relative and correlations 0.01 absolute: variance parameters are
  flatter in the likelihood, so optimizers agree less closely on them;
- BLUPs and their conditional SDs 1e-3 absolute: they inherit the SDs' error;
- log-likelihood 1e-3 absolute: both evaluate the same (RE)ML criterion;
- OLS 1e-8: a closed-form least-squares solution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from tests.conftest import LME4_MODELS, assert_variance_components_match, lme4_table

CASES = [(m, meth) for m in LME4_MODELS for meth in ("REML", "ML")]


@pytest.fixture(scope="module")
def fits(radon: pd.DataFrame) -> dict[tuple[str, str], ck.results.FitResult]:
    return {(m, meth): ck.fit_frequentist(ck.ModelSpec.from_formula(LME4_MODELS[m], label=m), radon,
                                          method=meth)
            for m, meth in CASES}


def _ref(name: str, model: str, method: str) -> pd.DataFrame:
    t = lme4_table(name)
    return t[(t["model"] == model) & (t["method"] == method)]


@pytest.mark.parametrize(("model", "method"), CASES)
def test_fixed_effects_match_lme4(fits, model, method):
    fit = fits[(model, method)]
    ours = fit.table("fixed").set_index("term")
    ref = _ref("lme4_fixed_effects.csv", model, method).set_index("term")
    assert list(ours.index) == list(ref.index)
    np.testing.assert_allclose(ours["estimate"], ref["estimate"], rtol=1e-4)
    np.testing.assert_allclose(ours["std_error"], ref["std_error"], rtol=1e-3)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_variance_components_match_lme4(fits, model, method):
    fit = fits[(model, method)]
    pars = fit.table("ran_pars")
    ref = _ref("lme4_variance_components.csv", model, method)
    assert_variance_components_match(pars, ref)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_blups_and_conditional_sds_match_lme4(fits, model, method):
    fit = fits[(model, method)]
    vals = fit.table("ran_vals")
    ref = _ref("lme4_random_effects.csv", model, method)
    merged = ref.merge(vals, left_on=["grp", "term"], right_on=["level", "term"], how="left")
    assert len(merged) == len(vals) == len(ref)
    assert merged["estimate"].notna().all()
    np.testing.assert_allclose(merged["estimate"], merged["condval"], atol=1e-3)
    np.testing.assert_allclose(merged["std_error"], merged["condsd"], atol=1e-3)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_fit_statistics_match_lme4(fits, model, method):
    fit = fits[(model, method)]
    ref = _ref("lme4_fit_stats.csv", model, method).iloc[0]
    assert fit.stats.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.stats.nobs == ref["nobs"] == 919
    assert fit.health.boundary == (ref["singular"] == "TRUE")
    assert fit.health.converged
    if method == "ML":  # lme4's REML AIC uses the REML criterion; ours is always from ML
        assert fit.stats.aic == pytest.approx(ref["AIC"], abs=2e-3)
        assert fit.stats.bic == pytest.approx(ref["BIC"], abs=2e-3)


def test_reml_fit_reports_ml_information_criteria(fits):
    reml = fits[("uncorrelated_intercept_slope", "REML")]
    ml = _ref("lme4_fit_stats.csv", "uncorrelated_intercept_slope", "ML").iloc[0]
    assert np.isfinite(reml.stats.aic) and np.isfinite(reml.stats.bic)
    assert reml.stats.aic == pytest.approx(ml["AIC"], abs=2e-3)
    assert "ML refit" in reml.stats.ic_note


def test_ran_coefs_are_fixed_plus_blup(fits):
    fit = fits[("uncorrelated_intercept_slope", "REML")]
    fixed = fit.table("fixed").set_index("term")["estimate"]
    vals = fit.table("ran_vals").set_index(["level", "term"])["estimate"]
    coefs = fit.table("ran_coefs").set_index(["level", "term"])["estimate"]
    expected = vals + fixed.reindex(vals.index.get_level_values("term")).to_numpy()
    np.testing.assert_allclose(coefs.loc[expected.index], expected, atol=1e-12)
    assert len(coefs) == 170


def test_blups_agree_with_statsmodels_own(radon):
    """The mixed-model equations reproduce statsmodels' BLUPs and conditional covariances."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    fit = ck.fit_frequentist(ck.ModelSpec.named("correlated_slopes"), radon)
    design = fit.design
    block = design.blocks[0]
    sm = MixedLM(design.y, design.x.to_numpy(), groups=block.codes, exog_re=block.z.to_numpy())
    cov_re = fit.mixed.relative_covariances[0] * fit.mixed.scale
    # statsmodels' own BLUPs at compare_kit's variance parameters
    res = sm.fit(reml=True, method=["lbfgs"])
    ours = fit.table("ran_vals")
    for code, level in enumerate(block.levels[:10]):
        re = res.random_effects[code].to_numpy()
        got = ours[ours["level"] == level].set_index("term").loc[["(Intercept)", "floor"], "estimate"]
        np.testing.assert_allclose(got.to_numpy(), re, atol=2e-4)
    assert np.allclose(cov_re, np.asarray(res.cov_re), atol=1e-3)


def test_ols_pooled_matches_lm(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("pooled"), radon)
    ref = lme4_table("ols_pooled.csv").set_index("term")
    ours = fit.table("fixed").set_index("term").loc[ref.index]
    np.testing.assert_allclose(ours["estimate"], ref["estimate"], rtol=1e-8)
    np.testing.assert_allclose(ours["std_error"], ref["std_error"], rtol=1e-8)
    assert fit.method == "OLS"


def test_ols_unpooled_matches_lm_and_reports_25_slopes_not_estimable(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("unpooled"), radon)
    ref = lme4_table("ols_unpooled.csv").set_index("term")
    fixed = fit.table("fixed").set_index("term")
    estimable = fixed[fixed["estimate"].notna()]
    assert len(fixed) == 170 and len(estimable) == 145 == len(ref)
    ours = estimable.loc[ref.index]
    np.testing.assert_allclose(ours["estimate"], ref["estimate"], rtol=1e-8)
    np.testing.assert_allclose(ours["std_error"], ref["std_error"], rtol=1e-8)
    missing = fixed[fixed["estimate"].isna()]
    assert len(missing) == 25
    assert missing.index.str.endswith(":floor").all()
    cass = fixed.loc["countyCASS:floor"]
    assert np.isnan(cass["estimate"]) and "CASS has floor = 0" in cass["note"]
    assert (np.abs(estimable["estimate"]) < 10).all()
