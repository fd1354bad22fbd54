"""Non-Gaussian models through the public API: ``ck.fit_frequentist`` against lme4's glmer and R's glm.

References: ``tests/reference/lme4/make_glmm.R`` (R 4.2.2, lme4 1.1-31) on make_glmm_data.py's tables.
Tolerances (issue 16's): fixed effects 1e-3 relative, SDs 1e-2 relative, logLik 1e-3 absolute;
conditional modes and SDs 5e-3 absolute (they move with the variance estimates, which the two
optimizers place within ~1e-4 of each other); fitted and predicted means 3e-3 relative (the largest
gap, 8e-4, is the observation-level model's, whose 192 modes are the least determined).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import compare_kit as ck
from compare_kit.cli import main
from compare_kit.engines.tidy_rows import BOUNDARY_BLUP_NOTE
from compare_kit.errors import DataError, FitError, SpecError
from compare_kit.results import Effect, EngineName
from tests.conftest import REFERENCE, lme4_table

# name -> (file, text columns, formula, family)
MODELS = {
    "herds": ("herds.csv", ("herd", "period"), "cbind(incidence, size - incidence) ~ period + (1 | herd)",
              "binomial"),
    "counts": ("counts.csv", ("site", "year"), "count ~ x + (1 | site) + (1 | year) + offset(log(exposure))",
               "poisson"),
    "count_slopes": ("counts.csv", ("site", "year"),
                     "count ~ x + (1 + x | site) + (1 | year) + offset(log(exposure))", "poisson"),
    "binary_crossed": ("binary_crossed.csv", ("subject", "item"), "y ~ x + (1 | subject) + (1 | item)", "bernoulli"),
    "small_clusters": ("small_clusters.csv", ("cluster",), "y ~ x + (1 | cluster)", "bernoulli"),
    "counts_obs": ("counts.csv", ("site", "year"),
                   "count ~ x + (1 | site) + (1 | year) + (1 | obs) + offset(log(exposure))", "poisson"),
}
CASES = [(m, "Laplace") for m in MODELS] + [("herds", "nAGQ25"), ("small_clusters", "nAGQ25")]
GLMS = {  # R's glm() on the same tables
    "herds_glm": ("herds", "cbind(incidence, size - incidence) ~ period", "binomial"),
    "counts_glm": ("counts", "count ~ x + offset(log(exposure))", "poisson"),
    "binary_glm": ("binary_crossed", "y ~ x", "bernoulli"),
}


def table(model: str) -> pd.DataFrame:
    file, text, _, _ = MODELS[model]
    data = ck.load_csv(REFERENCE / "lme4" / file, text_columns=text)
    data["obs"] = [f"o{i:03d}" for i in range(1, len(data) + 1)]  # make_glmm.R's observation-level factor
    return data


def spec(model: str) -> ck.ModelSpec:
    _, _, formula, family = MODELS[model]
    return ck.ModelSpec.from_formula(formula, family=family, label=model)


@pytest.fixture(scope="module")
def fits():
    return {(m, method): ck.fit_frequentist(spec(m), table(m), nagq=1 if method == "Laplace" else 25)
            for m, method in CASES}


def _ref(name: str, model: str, method: str | None = None) -> pd.DataFrame:
    t = lme4_table(name)
    keep = t["model"] == model
    if method is not None:
        keep &= t["method"] == method
    return t[keep].reset_index(drop=True)


# ------------------------------------------------------------------ against glmer


@pytest.mark.parametrize(("model", "method"), CASES)
def test_fixed_effects_with_wald_z_intervals(fits, model, method):
    fit = fits[(model, method)]
    ref = _ref("glmm_fixed_effects.csv", model, method)
    fixed = fit.table(Effect.FIXED)
    assert list(fixed["term"]) == list(ref["term"])
    np.testing.assert_allclose(fixed["estimate"], ref["estimate"], rtol=1e-3)
    np.testing.assert_allclose(fixed["std_error"], ref["std_error_tight"], rtol=1e-3)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(fixed["conf_low"], fixed["estimate"] - z * fixed["std_error"], rtol=1e-12)
    np.testing.assert_allclose(fixed["conf_high"], fixed["estimate"] + z * fixed["std_error"], rtol=1e-12)
    assert set(fit.estimates["engine"]) == {str(EngineName.COMPARE_KIT)} and fit.engine is EngineName.COMPARE_KIT
    assert fit.method == ("Laplace" if method == "Laplace" else "AGQ(nagq=25)")


@pytest.mark.parametrize(("model", "method"), CASES)
def test_sds_and_correlations_without_a_residual_row(fits, model, method):
    pars = fits[(model, method)].table(Effect.RAN_PARS)
    ref = _ref("glmm_variance_components.csv", model, method)
    assert "Residual" not in set(pars["group"]) and "sd__Observation" not in set(pars["term"])
    assert len(pars) == len(ref)
    for _, r in ref.iterrows():
        term = f"sd__{r['var1']}" if pd.isna(r["var2"]) else f"cor__{r['var1']}.{r['var2']}"
        ours = pars.loc[(pars["group"] == r["grp"]) & (pars["term"] == term), "estimate"]
        assert len(ours) == 1, (r["grp"], term)
        if term.startswith("sd__"):
            assert ours.iloc[0] == pytest.approx(r["sdcor"], rel=1e-2)
        else:
            assert abs(ours.iloc[0] - r["sdcor"]) < 1e-2


@pytest.mark.parametrize(("model", "method"), CASES)
def test_conditional_modes_and_group_coefficients(fits, model, method):
    fit = fits[(model, method)]
    ref = _ref("glmm_random_effects.csv", model, method)
    vals = fit.table(Effect.RAN_VALS).merge(ref, left_on=["group", "level", "term"],
                                            right_on=["grpvar", "grp", "term"], validate="one_to_one")
    assert len(vals) == len(ref) == len(fit.table(Effect.RAN_VALS))
    np.testing.assert_allclose(vals["estimate"], vals["condval"], atol=5e-3)
    np.testing.assert_allclose(vals["std_error"], vals["condsd"], atol=5e-3)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(vals["conf_high"] - vals["conf_low"], 2 * z * vals["std_error"], rtol=1e-12)
    coefs = fit.table(Effect.RAN_COEFS).merge(fit.table(Effect.RAN_VALS), on=["group", "level", "term"])
    fixed = fit.params.reindex(coefs["term"]).fillna(0.0).to_numpy()
    np.testing.assert_allclose(coefs["estimate_x"], fixed + coefs["estimate_y"], rtol=1e-12, atol=1e-12)
    assert np.all(coefs["std_error_x"] > 0)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_loglik_and_information_criteria(fits, model, method):
    fit = fits[(model, method)]
    ref = _ref("glmm_fit_stats.csv", model, method).iloc[0]
    s = fit.stats
    assert fit.glmm.glmer_loglik == pytest.approx(ref["logLik"], abs=1e-3)
    if method == "Laplace":
        assert s.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    else:  # compare_kit keeps the saturated model's log-likelihood that glmer's quadrature drops, and says so
        assert s.loglik == pytest.approx(ref["logLik"] + fit.glmm.saturated_loglik, abs=1e-3)
        assert f"glmer's: {fit.glmm.glmer_loglik:.4f}" in s.ic_note
    assert (s.loglik_method, s.nobs, s.df) == ("ML", ref["nobs"], ref["df"])
    assert s.aic == pytest.approx(-2 * s.loglik + 2 * s.df, rel=1e-12)
    assert s.bic == pytest.approx(-2 * s.loglik + np.log(s.nobs) * s.df, rel=1e-12)
    assert fit.health.converged and not fit.health.boundary


@pytest.mark.parametrize(("model", "method"), CASES)
def test_fitted_means_are_glmers(fits, model, method):
    fit = fits[(model, method)]
    ref = _ref("glmm_fitted.csv", model, method)
    np.testing.assert_allclose(fit.fitted(), ref["fitted"], rtol=3e-3)
    np.testing.assert_allclose(fit.fitted(), fit.glmm.fitted, rtol=1e-9)


@pytest.mark.parametrize("model", ["herds", "counts"])
def test_predictions_on_the_response_scale_are_glmers(fits, model):
    """Seen and unseen levels (the population's mean), with the offset from the new rows' exposures."""
    new = {"herds": pd.DataFrame({"herd": ["h01", "h07", "h99"], "period": ["1", "3", "2"]}),
           "counts": pd.DataFrame({"site": ["s01", "s05", "s99"], "year": ["2001", "2004", "2099"],
                                   "x": [0.5, -1.0, 0.2], "exposure": [1.0, 2.5, 0.5]})}[model]
    ref = _ref("glmm_predictions.csv", model)
    fit = fits[(model, "Laplace")]
    for group_effects in (True, False):
        expected = ref.loc[ref["group_effects"] == group_effects, "predicted"]
        np.testing.assert_allclose(fit.predict(new, include_group_effects=group_effects), expected, rtol=3e-3)


def test_predict_needs_the_offset_columns_not_the_outcome(fits):
    fit = fits[("counts", "Laplace")]
    rows = pd.DataFrame({"site": ["s01", "s01", "s01"], "year": ["2001"] * 3, "x": [0.1] * 3,
                         "exposure": [1.0, 2.0, 0.0]})
    pred = fit.predict(rows)
    assert pred.iloc[1] == pytest.approx(2 * pred.iloc[0], rel=1e-12)  # a count per unit of exposure
    assert np.isnan(pred.iloc[2])  # log(0): no finite offset, no prediction
    with pytest.raises(DataError, match="'exposure'"):
        fit.predict(rows.drop(columns="exposure"))
    herds = fits[("herds", "Laplace")].predict(pd.DataFrame({"herd": ["h01"], "period": ["1"]}))
    assert 0 < herds.iloc[0] < 1  # cbind()'s columns (incidence, size) are not needed: a probability


# ------------------------------------------------------------------ GLMs, against R's glm


@pytest.fixture(scope="module")
def glms():
    return {name: ck.fit_frequentist(ck.ModelSpec.from_formula(formula, family=family, label=name), table(data))
            for name, (data, formula, family) in GLMS.items()}


@pytest.mark.parametrize("name", list(GLMS))
def test_a_glm_is_rs_glm(glms, name):
    fit = glms[name]
    ref = _ref("glm_fixed_effects.csv", name)
    fixed = fit.table(Effect.FIXED)
    assert list(fixed["term"]) == list(ref["term"])
    # the two IRLS runs stop at different points within their tolerances (R's: deviance to 1e-8 relative):
    # standard errors differ by up to 6e-6 relative
    np.testing.assert_allclose(fixed["estimate"], ref["estimate"], rtol=1e-5)
    for column in ("std_error", "conf_low", "conf_high"):
        np.testing.assert_allclose(fixed[column], ref[column], rtol=1e-4)
    stats_ref = _ref("glm_fit_stats.csv", name).iloc[0]
    s = fit.stats
    assert s.loglik == pytest.approx(stats_ref["logLik"], abs=1e-6)
    assert s.aic == pytest.approx(stats_ref["AIC"], abs=1e-6) and s.bic == pytest.approx(stats_ref["BIC"], abs=1e-6)
    assert (s.nobs, s.df) == (stats_ref["nobs"], stats_ref["df"])
    assert (fit.engine, fit.method, fit.glmm) == (EngineName.STATSMODELS, "ML", None)
    assert set(fit.estimates["effect"]) == {"fixed"}  # no residual SD: these families have no scale
    np.testing.assert_allclose(fit.fitted(), _ref("glmm_fitted.csv", name, "glm")["fitted"], rtol=1e-6)
    np.testing.assert_allclose(fit.conf_int(0.05).to_numpy(), ref[["conf_low", "conf_high"]].to_numpy(), rtol=1e-4)
    assert "Wald (z) intervals" in str(fit.summary())


def test_a_glms_overdispersion_is_named_as_a_number(glms):
    ratio = _ref("glm_fit_stats.csv", "counts_glm").iloc[0]["pearson_ratio"]
    assert any(w.startswith(f"Pearson overdispersion ratio {ratio:.2f} (> 1: more spread than Poisson")
               for w in glms["counts_glm"].health.warnings)
    assert not any("overdispersion" in m for m in glms["binary_glm"].health.warnings + glms["binary_glm"].health.notes)


# ------------------------------------------------------------------ health


@pytest.mark.parametrize(("model", "warned"), [("counts", True), ("herds", False)])
def test_the_overdispersion_ratio_is_a_number(fits, model, warned):
    fit = fits[(model, "Laplace")]
    ratio = _ref("glmm_fit_stats.csv", model, "Laplace").iloc[0]["pearson_ratio"]
    family = "Poisson" if model == "counts" else "binomial"
    words = f"Pearson overdispersion ratio {ratio:.2f}"
    where = fit.health.warnings if warned else fit.health.notes
    assert any(m.startswith(words) for m in where)
    if warned:
        assert any(f"more spread than {family}; the standard errors are too small. Consider an observation-level "
                   "random effect, (1 | row)" in m for m in where)


def test_an_observation_level_effect_is_allowed_for_counts_and_replaces_the_ratio(fits):
    health = fits[("counts_obs", "Laplace")].health
    assert not any("overdispersion ratio" in m for m in health.warnings)
    assert any("no Pearson overdispersion ratio: the observation-level effect of 'obs'" in n for n in health.notes)
    assert any("every group of 'obs' has a single row" in n for n in health.notes)


def test_an_observation_level_effect_is_refused_for_a_zero_one_outcome():
    data = table("small_clusters")
    with pytest.raises(DataError, match="every row is its own group of 'obs'.*a 0/1 outcome carries no information"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ x + (1 | obs)", family="bernoulli"), data)
    data["n"] = 1
    with pytest.raises(DataError, match="a 0/1 outcome carries no information"):
        ck.fit_frequentist(ck.ModelSpec.from_formula("cbind(y, n - y) ~ x + (1 | obs)", family="binomial"), data)
    gaussian = ck.ModelSpec.from_formula("x ~ 1 + (1 | obs)")
    with pytest.raises(DataError, match="cannot be told apart from the residual"):
        ck.fit_frequentist(gaussian, data)


def _identical_groups() -> pd.DataFrame:
    """Every group has the same outcomes at the same x: the group SD's optimum is 0."""
    x = np.tile([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5], 8)
    return pd.DataFrame({"y": np.tile([0, 1, 0, 1, 1, 0], 8), "x": x,
                         "g": np.repeat([f"g{i}" for i in range(8)], 6)})


def test_a_singular_fit_names_the_coefficient_and_its_factor():
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ x + (1 | g)", family="bernoulli"), _identical_groups())
    assert fit.health.boundary and fit.health.boundary_terms == (("g", "(Intercept)"),)
    assert "the SD of (Intercept) across g: SD at (or next to) zero, a singular fit" in fit.health.warnings
    sd = fit.table(Effect.RAN_PARS).iloc[0]
    assert (sd["estimate"], sd["note"]) == (0.0, "at the boundary")
    vals = fit.table(Effect.RAN_VALS)
    assert (vals["note"] == BOUNDARY_BLUP_NOTE).all() and vals["std_error"].isna().all()


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x"])
def test_separation_names_the_columns(formula):
    rng = np.random.default_rng(3)
    x = np.tile([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5], 10) + rng.normal(scale=0.1, size=60)
    data = pd.DataFrame({"y": (x > 0).astype(int), "x": x, "g": np.repeat([f"g{i}" for i in range(10)], 6)})
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula(formula, family="bernoulli"), data)
    assert any(w.startswith("separation: the estimates of (Intercept), x run off to infinity")
               for w in fit.health.warnings), fit.health.warnings
    assert any("fitted mean numerically at 0 or 1" in w for w in fit.health.warnings)


def test_a_two_level_text_outcome_is_fitted_with_its_success_level():
    data = table("binary_crossed")
    data["answer"] = np.where(data["y"] == 1, "yes", "no")
    coded = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ x + (1 | subject)", family="bernoulli"), data)
    text = ck.fit_frequentist(ck.ModelSpec.from_formula("answer ~ x + (1 | subject)", family="bernoulli",
                                                        success="yes"), data)
    np.testing.assert_allclose(text.params, coded.params, rtol=1e-9)


# ------------------------------------------------------------------ options and refusals


def test_method_is_ignored_a_glmm_is_fitted_by_ml(fits):
    fit = ck.fit_frequentist(spec("herds"), table("herds"), method="ML")
    assert fit.method == "Laplace" and fit.stats.loglik == pytest.approx(fits[("herds", "Laplace")].stats.loglik)


@pytest.mark.parametrize(("model", "nagq", "error", "message"), [
    ("counts", 5, FitError, r"nagq=5.*one grouping factor with one scalar random effect.*2 random terms"),
    ("count_slopes", 2, FitError, "nagq=2"),
    ("herds", 0, FitError, "nagq must be a whole number from 1"),
    ("herds", 2.5, FitError, "nagq must be a whole number from 1"),
])
def test_nagq_errors(model, nagq, error, message):
    with pytest.raises(error, match=message):
        ck.fit_frequentist(spec(model), table(model), nagq=nagq)


def test_nagq_needs_a_glmm_and_profile_a_gaussian_model(radon):
    with pytest.raises(FitError, match="a Gaussian model's likelihood is exact"):
        ck.fit_frequentist(ck.ModelSpec.named("varying_intercept"), radon, nagq=5)
    glm = ck.ModelSpec.from_formula("cbind(incidence, size - incidence) ~ period", family="binomial")
    with pytest.raises(FitError, match="this model has no random term"):
        ck.fit_frequentist(glm, table("herds"), nagq=5)
    with pytest.raises(FitError, match="profile-likelihood intervals are available for Gaussian models only"):
        ck.fit_frequentist(spec("herds"), table("herds"), profile=True)


def test_what_needs_a_residual_sd_refuses_a_glmm_clearly(fits):
    from compare_kit import predictive

    fit = fits[("herds", "Laplace")]
    phrase = "available for Gaussian models only, for now; 'herds' is a GLMM of family 'binomial'"
    for call in (lambda: predictive.in_sample_rmsd(fit), fit.profile_intervals,
                 lambda: predictive.cross_validated_rmse([fit.spec], table("herds"), folds=2)):
        with pytest.raises(FitError, match=phrase):
            call()


def test_the_cli_fits_a_glmm_and_prints_its_table(capsys, tmp_path):
    csv_out = tmp_path / "est.csv"
    code = main(["fit", "--engine", "frequentist", "--family", "binomial", "--formula",
                 "cbind(incidence, size - incidence) ~ C(period) + (1 | herd)", "--csv",
                 str(REFERENCE / "lme4" / "herds.csv"), "--nagq", "25", "--csv-out", str(csv_out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "compare_kit" in captured.out and "sd__(Intercept)" in captured.out and "ran_vals" in captured.out
    written = pd.read_csv(csv_out, keep_default_na=False)
    ref = _ref("glmm_variance_components.csv", "herds", "nAGQ25").iloc[0]
    assert float(written.loc[written["term"] == "sd__(Intercept)", "estimate"].iloc[0]) == pytest.approx(
        ref["sdcor"], rel=1e-2)
    assert "Pearson overdispersion ratio" in captured.err


def test_the_cli_keeps_nagq_for_the_frequentist_engine(capsys):
    code = main(["fit", "--engine", "bayesian", "--family", "binomial", "--formula", MODELS["herds"][2], "--csv",
                 str(REFERENCE / "lme4" / "herds.csv"), "--nagq", "5", "--quiet"])
    assert code == 2 and "--nagq sets the quadrature of the frequentist engine's GLMM" in capsys.readouterr().err
