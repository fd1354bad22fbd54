"""A fit in statsmodels' vocabulary: params, bse, conf_int against lme4 (one model per structure), the
summary object's text and escaped HTML, and the one-line repr."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import compare_kit as ck
from compare_kit.results import BayesianFit, FitResult, FrequentistFit
from tests.conftest import REFERENCE, lme4_table

# one model per structure: (reference file, model, data file or None for radon, formula)
STRUCTURES = {
    "single": ("lme4_fixed_effects.csv", "uncorrelated_intercept_slope", None,
               "log_radon ~ floor + (1 + floor || county)"),
    "nested": ("structures_fixed_effects.csv", "nested_intercepts", "nested.csv", "y ~ x + (1 | school/class)"),
    "crossed": ("structures_fixed_effects.csv", "crossed_intercepts", "crossed.csv",
                "y ~ x + (1 | subject) + (1 | item)"),
}
TOLERANCE = 1e-4  # measured: estimates and SEs within 1e-6 of lme4 on all three (REML and ML)


def _fit(structure: str, radon: pd.DataFrame, method: str = "REML", **options) -> FrequentistFit:
    _, model, file, formula = STRUCTURES[structure]
    spec = ck.ModelSpec.from_formula(formula, label=model)
    data = radon if file is None else ck.load_csv(REFERENCE / "lme4" / file, text_columns=spec.grouping_columns)
    return ck.fit_frequentist(spec, data, method=method, **options)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_params_bse_and_wald_intervals_match_lme4(structure, method, radon):
    file, model, _, _ = STRUCTURES[structure]
    fit = _fit(structure, radon, method)
    table = lme4_table(file)
    ref = table[(table["model"] == model) & (table["method"] == method)].set_index("term")
    assert list(fit.params.index) == list(ref.index) == list(fit.bse.index)
    np.testing.assert_allclose(fit.params, ref["estimate"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(fit.bse, ref["std_error"], atol=TOLERANCE, rtol=0)
    for alpha in (0.05, 0.1):  # lme4's confint(method = "Wald"): estimate -/+ z * SE
        z = stats.norm.ppf(1 - alpha / 2)
        ci = fit.conf_int(alpha)
        assert list(ci.columns) == [0, 1] and list(ci.index) == list(ref.index)
        np.testing.assert_allclose(ci[0], ref["estimate"] - z * ref["std_error"], atol=2 * TOLERANCE, rtol=0)
        np.testing.assert_allclose(ci[1], ref["estimate"] + z * ref["std_error"], atol=2 * TOLERANCE, rtol=0)
    fixed = fit.table("fixed").set_index("term")  # the fit's own level gives the table's intervals
    np.testing.assert_allclose(fit.conf_int()[0], fixed["conf_low"], rtol=1e-12)
    np.testing.assert_allclose(fit.conf_int()[1], fixed["conf_high"], rtol=1e-12)


def test_ols_intervals_use_t_on_the_residual_degrees_of_freedom(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("pooled"), radon)
    ref = lme4_table("ols_pooled.csv").set_index("term")  # R's lm()
    np.testing.assert_allclose(fit.params, ref["estimate"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(fit.bse, ref["std_error"], atol=TOLERANCE, rtol=0)
    q = stats.t.ppf(0.95, len(radon) - 2)  # confint(lm(log_radon ~ floor), level = 0.9)
    np.testing.assert_allclose(fit.conf_int(0.1)[1], ref["estimate"] + q * ref["std_error"], atol=2 * TOLERANCE)
    assert "t intervals" in str(fit.summary()) and "917 residual degrees of freedom" in str(fit.summary())


def test_unestimable_coefficients_are_nan_as_in_r(radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("unpooled"), radon)
    assert fit.params.isna().sum() == 25 and np.isnan(fit.params["countyCASS:floor"])
    assert fit.conf_int().loc["countyCASS:floor"].isna().all()
    assert fit.conf_int()[0].notna().sum() == len(fit.params) - 25


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, "0.05", True, None])
def test_bad_alpha_is_refused_with_a_clear_message(alpha, radon):
    fit = ck.fit_frequentist(ck.ModelSpec.named("pooled"), radon)
    with pytest.raises(ck.FitError, match="alpha must lie strictly between 0 and 1"):
        fit.conf_int(alpha)


def test_summary_prints_as_text_and_repr_shows_that_text(radon):
    fit = _fit("nested", radon, profile=True)
    summary = fit.summary()
    text = str(summary)
    assert repr(summary) == text == str(fit) == summary.as_text()
    assert text.startswith("Frequentist fit of nested_intercepts by statsmodels, REML\n")
    for words in ("y ~ x + (1 | school) + (1 | class:school)", "Groups: 12 school, 48 class:school.", "logLik",
                  "95% Wald intervals of the fixed effects; profile-likelihood intervals of the SDs",
                  "sd__(Intercept)", "class:school", "[1] profile likelihood (ML deviance)"):
        assert words in text, words
    assert list(summary.table["term"]) == ["(Intercept)", "x", "sd__(Intercept)", "sd__(Intercept)",
                                           "sd__Observation"]
    plain = _fit("nested", radon).summary()
    assert "none for the SDs (profile=True or fit.profile_intervals()" in str(plain)


def test_summary_html_holds_the_terms_and_is_the_fits_notebook_view(radon):
    fit = _fit("crossed", radon)
    html = fit.summary()._repr_html_()
    assert html == fit._repr_html_() == fit.summary().as_html()
    for words in ('<table id="fit-estimates"', "intercept", "SD of subject intercepts", "SD of item intercepts",
                  "residual SD", "95% interval", "95% Wald intervals of the fixed effects",
                  "log-likelihood (REML)"):
        assert words in html, words


def test_summary_html_escapes_hostile_names():
    rng = np.random.default_rng(7)
    group = np.repeat([f"<i>{i}</i>" for i in range(12)], 10)
    bump = dict(zip(np.unique(group), rng.normal(scale=1.0, size=12), strict=True))
    data = pd.DataFrame({"kind": np.where(np.arange(120) % 2 == 0, "0", "<script>alert(1)</script>"),
                         "g<b>": group})
    data["y"] = rng.normal(size=120) + data["g<b>"].map(bump) + (data["kind"] != "0")
    fit = ck.fit_frequentist(ck.ModelSpec.from_formula("y ~ kind + (1 | `g<b>`)"), data)
    assert "kind<script>alert(1)</script>" in fit.params.index
    html = fit.summary()._repr_html_()
    assert "kind&lt;script&gt;alert(1)&lt;/script&gt;" in html and "SD of g&lt;b&gt; intercepts" in html
    assert "<script>" not in html and "<b>" not in html
    assert "kind<script>alert(1)</script>" in str(fit.summary())  # text is text


def test_repr_is_one_line_for_every_kind_of_fit(radon):
    mixed = ck.fit_frequentist(ck.ModelSpec.named("partial_pooling"), radon)
    assert repr(mixed) == ("<FrequentistFit partial_pooling: log_radon ~ floor + (1 + floor || county), "
                           "REML by statsmodels, 919 rows, 85 county>")
    ols = ck.fit_frequentist(ck.ModelSpec.named("pooled"), radon)
    assert repr(ols) == "<FrequentistFit pooled: log_radon ~ floor, OLS by statsmodels, 919 rows>"
    nested = _fit("nested", radon, mixedlm=False)
    assert repr(nested) == ("<FrequentistFit nested_intercepts: y ~ x + (1 | school) + (1 | class:school), REML by compare_kit, "
                            "288 rows, 12 school, 48 class:school>")
    # dataclasses write a __repr__ per class unless told not to: every fit class has FitResult's
    assert FrequentistFit.__repr__ is BayesianFit.__repr__ is FitResult.__repr__


@pytest.fixture(scope="module")
def bayes() -> BayesianFit:
    return ck.fit_bayesian(ck.ModelSpec.named("varying_intercept"), ck.load_radon(), draws=200, tune=200,
                           chains=2, seed=3)


@pytest.mark.slow
def test_bayesian_params_are_posterior_means_and_intervals_come_from_the_draws(bayes):
    flat = bayes.draws.fixed.reshape(-1, bayes.draws.fixed.shape[-1])
    assert list(bayes.params.index) == list(bayes.draws.fixed_names) == ["(Intercept)", "floor"]
    np.testing.assert_allclose(bayes.params, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bayes.bse, flat.std(axis=0, ddof=1), rtol=1e-12)
    for alpha in (0.05, 0.2):  # the same draws give the same quantiles: nothing random is asserted
        ci = bayes.conf_int(alpha)
        np.testing.assert_allclose(ci[0], np.quantile(flat, alpha / 2, axis=0), rtol=1e-12)
        np.testing.assert_allclose(ci[1], np.quantile(flat, 1 - alpha / 2, axis=0), rtol=1e-12)
    fixed = bayes.table("fixed").set_index("term")
    np.testing.assert_allclose(bayes.conf_int()[0], fixed["conf_low"], rtol=1e-12)
    assert (bayes.conf_int(0.2)[1] < bayes.conf_int(0.05)[1]).all()


@pytest.mark.slow
def test_bayesian_summary_and_repr(bayes):
    line = repr(bayes)
    assert "\n" not in line
    assert line.startswith("<BayesianFit varying_intercept: log_radon ~ floor + (1 | county), MCMC by Bambi (")
    assert line.endswith("2 x 200 draws), 919 rows, 85 county>")
    text = str(bayes.summary())
    assert text.startswith("Bayesian fit of varying_intercept by Bambi, MCMC\n")
    assert "95% equal-tailed posterior intervals; estimate: posterior mean, std_error: posterior SD" in text
    assert "2 chains x 200 draws after 200 tuning, seed 3" in text
    html = bayes.summary()._repr_html_()
    assert "posterior SD" in html and "SD of county intercepts" in html


@pytest.mark.slow
def test_a_bayesian_fit_without_draws_gives_only_its_own_level(bayes):
    import dataclasses

    bare = dataclasses.replace(bayes, draws=None)
    pd.testing.assert_frame_equal(bare.conf_int(), bayes.conf_int())
    with pytest.raises(ck.FitError, match=r"carries no draws, only its 95% intervals: conf_int\(alpha=0.05\)"):
        bare.conf_int(0.1)
