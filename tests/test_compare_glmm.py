"""The comparison and predictive checks of GLMMs on the link scale (issue 16, point 4), on the reference data
of tests/reference/lme4 (make_glmm_data.py): own estimates of groups against statsmodels' GLM with an offset,
the group whose own estimate does not exist, the shares of the way to the population, the scores against
their formulas, the folds of today's cross-validation, and (slow) the equivalence table against Bambi.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import gammaln, logsumexp

import compare_kit as ck
from compare_kit.compare import shrinkage_table
from compare_kit.errors import FitError
from compare_kit.predictive import (cross_validated_scores, cv_folds, in_sample_scores, kfold_predictions,
                                    scores_table)
from compare_kit.results import Effect
from tests.conftest import REFERENCE

MODELS = {
    "herds": ("herds.csv", ("herd", "period"), "cbind(incidence, size - incidence) ~ period + (1 | herd)",
              "binomial"),
    "counts": ("counts.csv", ("site", "year"), "count ~ x + (1 | site) + (1 | year) + offset(log(exposure))",
               "poisson"),
    "binary_crossed": ("binary_crossed.csv", ("subject", "item"), "y ~ x + (1 | subject) + (1 | item)",
                       "bernoulli"),
    "small_clusters": ("small_clusters.csv", ("cluster",), "y ~ x + (1 | cluster)", "bernoulli"),
}


def _data(model: str) -> pd.DataFrame:
    file, text, _, _ = MODELS[model]
    return ck.load_csv(REFERENCE / "lme4" / file, text_columns=text)


def _spec(model: str) -> ck.ModelSpec:
    _, _, formula, family = MODELS[model]
    return ck.ModelSpec.from_formula(formula, family=family, label=model)


@pytest.fixture(scope="module")
def fits():
    return {m: ck.fit_frequentist(_spec(m), _data(m)) for m in MODELS}


def _family(model: str):
    return {"binomial": sm.families.Binomial(), "poisson": sm.families.Poisson(),
            "bernoulli": sm.families.Binomial()}[MODELS[model][3]]


@pytest.mark.parametrize("model, group", [("herds", "herd"), ("counts", "site"), ("counts", "year"),
                                          ("binary_crossed", "subject"), ("small_clusters", "cluster")])
def test_a_groups_own_estimate_is_its_glm_with_the_rest_as_offset(fits, model, group):
    fit = fits[model]
    d = fit.design
    fixed = fit.table(Effect.FIXED).set_index("term")["estimate"]
    other = [c for c in d.x_estimable.columns if c != "(Intercept)"]
    offset = d.x_estimable[other].to_numpy() @ fixed[other].to_numpy()
    if d.offset is not None:
        offset = offset + d.offset
    modes = fit.table(Effect.RAN_VALS).set_index(["group", "level"])["estimate"]
    for block in d.blocks:  # the crossed factor's conditional modes
        if block.group != group:
            offset = offset + modes.loc[block.group].reindex(block.levels).to_numpy()[block.codes]
    table = shrinkage_table(fit).query("group == @group").set_index("level")
    block = next(b for b in d.blocks if b.group == group)
    checked = 0
    for j, level in enumerate(block.levels):
        rows = block.codes == j
        if not np.isfinite(table.loc[level, "no_pooling"]):
            continue
        y = d.y[rows] if d.trials is None else np.column_stack([d.y[rows], d.trials[rows] - d.y[rows]])
        glm = sm.GLM(y, np.ones((rows.sum(), 1)), family=_family(model), offset=offset[rows]).fit(tol=1e-12)
        np.testing.assert_allclose(table.loc[level, "no_pooling"], glm.params[0], rtol=1e-6, atol=1e-6)
        checked += 1
    assert checked >= len(block.levels) // 2


def test_an_all_zero_or_all_one_group_has_no_own_estimate_and_says_why(fits):
    fit = fits["small_clusters"]
    table = shrinkage_table(fit)
    sums = pd.Series(fit.design.y).groupby(fit.design.blocks[0].codes).agg(["sum", "count"])
    bound = (sums["sum"] == 0) | (sums["sum"] == sums["count"])
    assert bound.sum() > 10  # small clusters of a 0/1 outcome: many at a bound
    empty = table["no_pooling"].isna().to_numpy()
    np.testing.assert_array_equal(empty, bound.to_numpy())
    for (_, row), (_, s) in zip(table[empty].iterrows(), sums[bound].iterrows(), strict=True):
        value = "0" if s["sum"] == 0 else "1"
        side = "minus" if s["sum"] == 0 else "plus"
        assert f"all {int(s['count'])} outcomes are {value}, so the group's own log-odds runs to {side} " \
               "infinity" in row["note"]
        assert np.isnan(row["shrinkage_freq"]) and np.isfinite(row["partial_freq"])


@pytest.mark.parametrize("model", list(MODELS))
def test_the_conditional_mode_lies_between_the_own_estimate_and_the_population(fits, model):
    table = shrinkage_table(fits[model])
    own = table.dropna(subset=["no_pooling"])
    assert len(own) > 0
    assert own["shrinkage_freq"].dropna().between(0, 1).all()
    assert table["pooling_factor"].isna().all()  # no closed form for a GLMM
    assert set(table["toward"]) == {"population"}


def test_a_random_slopes_own_estimate_is_the_groups_glm_or_empty_where_separated():
    data = _data("counts")
    spec = ck.ModelSpec.from_formula("count ~ x + (1 + x | site) + offset(log(exposure))", family="poisson")
    fit = ck.fit_frequentist(spec, data)
    table = shrinkage_table(fit).set_index(["level", "term"])
    block = fit.design.blocks[0]
    z = block.z.to_numpy()
    for j, level in enumerate(block.levels):
        rows = block.codes == j
        glm = sm.GLM(fit.design.y[rows], z[rows], family=sm.families.Poisson(),
                     offset=fit.design.offset[rows]).fit(tol=1e-12)
        own = [table.loc[(level, term), "no_pooling"] for term in block.z.columns]
        np.testing.assert_allclose(own, glm.params, rtol=1e-6, atol=1e-6)
    binary = _data("small_clusters")
    spec = ck.ModelSpec.from_formula("y ~ x + (1 + x | cluster)", family="bernoulli")
    table = shrinkage_table(ck.fit_frequentist(spec, binary))
    separated = table["note"].str.contains("the group's own GLM has no finite maximum")
    assert separated.sum() > 10 and table.loc[separated, "no_pooling"].isna().all()
    assert table.loc[~separated, "no_pooling"].notna().all()


# --------------------------------------------------------------------------------------------- scores


def _binomial_log_pmf(y, n, p):
    return gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1) + y * np.log(p) + (n - y) * np.log1p(-p)


def test_in_sample_scores_are_the_formulas(fits):
    herds = fits["herds"]
    y, n, p = herds.design.y, herds.design.trials, herds.fitted()
    [s] = in_sample_scores(herds)
    np.testing.assert_allclose(s.log_score, np.mean(_binomial_log_pmf(y, n, p)), rtol=1e-10)
    np.testing.assert_allclose(s.brier, np.mean((y / n - p) ** 2), rtol=1e-12)
    assert np.isnan(s.deviance) and np.isnan(s.rmse_counts) and s.rows == len(y)
    counts = fits["counts"]
    y, m = counts.design.y, counts.fitted()
    [c] = in_sample_scores(counts)
    np.testing.assert_allclose(c.log_score, np.mean(y * np.log(m) - m - gammaln(y + 1)), rtol=1e-10)
    unit = 2 * (np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / m), 0.0) - (y - m))
    np.testing.assert_allclose(c.deviance, np.mean(unit), rtol=1e-10)
    np.testing.assert_allclose(c.rmse_counts, np.sqrt(np.mean((y - m) ** 2)), rtol=1e-12)
    assert np.isnan(c.brier)
    assert list(scores_table([s, c]).columns) == ["model", "engine", "method", "rows", "log_score", "brier",
                                                   "deviance", "rmse_counts"]


def test_cross_validation_uses_todays_folds_and_refits(fits):
    data = _data("herds")
    fold_of = np.random.default_rng(1).permutation(len(data)) % 3  # today's cross-validation folds
    np.testing.assert_array_equal(cv_folds(len(data), 3, 1), fold_of)
    [s] = cross_validated_scores(_spec("herds"), data, folds=3, seed=1)
    y, n = data["incidence"].to_numpy(float), data["size"].to_numpy(float)
    p = np.empty(len(data))
    for k in range(3):
        fit = ck.fit_frequentist(_spec("herds"), data[fold_of != k])
        p[fold_of == k] = fit.predict(data[fold_of == k]).to_numpy()
    assert s.rows == len(data) and s.method == "3-fold cross-validation"
    np.testing.assert_allclose(s.log_score, np.mean(_binomial_log_pmf(y, n, p)), rtol=1e-8)
    np.testing.assert_allclose(s.brier, np.mean((y / n - p) ** 2), rtol=1e-8)
    assert s.log_score < in_sample_scores(fits["herds"])[0].log_score  # held out predicts worse


def test_scores_refuse_a_gaussian_model_and_rmse_a_glmm(radon):
    spec = ck.ModelSpec.from_formula("log_radon ~ floor + (1 | county)")
    with pytest.raises(FitError, match="is Gaussian, whose checks are in_sample_rmsd and cross_validated_rmse"):
        cross_validated_scores(spec, radon, folds=2)
    with pytest.raises(FitError, match="available for Gaussian models only"):
        kfold_predictions([_spec("herds")], _data("herds"), folds=2)


# ------------------------------------------------------------------------------------ with sampling


@pytest.fixture(scope="module")
def herds_bayes():
    return ck.fit_bayesian(_spec("herds"), _data("herds"), draws=1000, tune=1000, chains=2, seed=11)


@pytest.mark.slow
def test_the_equivalence_table_on_the_link_scale(fits, herds_bayes):
    comparison = ck.compare(fits["herds"], herds_bayes)
    table = comparison.equivalence
    assert set(table["effect"]) == {Effect.FIXED, Effect.RAN_PARS, Effect.RAN_VALS}
    assert "Residual" not in set(table["group"])
    # The Monte Carlo error of a posterior mean is about 1/sqrt(ESS) <= 0.05 posterior SD with 2000 draws.
    # Seen on these herds: every |z| below 0.6; "differ" needs |z| >= 2, > 25 Monte Carlo SEs away:
    # false-failure probability < 1e-12. At least 3/4 of the rows "agree" (|z| < 0.5): the group effects'
    # |z| sit below 0.25, each > 5 SEs from 0.5, so 1/4 of the rows flipping has probability < 1e-6.
    assert not (table["verdict"] == "differ").any()
    assert (table["verdict"] == "agree").mean() >= 0.75
    words = " ".join(table["why"])
    for gaussian in ("residual", "REML", "GLS", "BLUP"):
        assert gaussian not in words
    assert "ML (Laplace)" in words
    shrink = comparison.shrinkage
    assert shrink["partial_bayes"].notna().all()


@pytest.mark.slow
def test_bayesian_scores_are_the_lppd_and_psis_loo(fits, herds_bayes):
    d = herds_bayes.design
    log_lik = herds_bayes.log_likelihood.reshape(-1, d.n)
    [s] = in_sample_scores(bayes=herds_bayes)
    np.testing.assert_allclose(s.log_score, np.mean(logsumexp(log_lik, axis=0) - np.log(len(log_lik))),
                               rtol=1e-10)
    p = herds_bayes.mu.reshape(-1, d.n).mean(axis=0) / d.trials
    np.testing.assert_allclose(s.brier, np.mean((d.y / d.trials - p) ** 2), rtol=1e-10)
    freq_cv, loo = cross_validated_scores(_spec("herds"), _data("herds"), folds=3, bayes=herds_bayes)
    np.testing.assert_allclose(loo.log_score * loo.rows, herds_bayes.loo.elpd.elpd, rtol=1e-10)
    assert loo.method == "PSIS leave-one-out" and freq_cv.rows == loo.rows


@pytest.mark.slow
@pytest.mark.parametrize("model", ["counts", "binary_crossed"])
def test_crossed_models_with_ample_data_agree(fits, model):
    bayes = ck.fit_bayesian(_spec(model), _data(model), draws=1000, tune=1000, chains=2, seed=3)
    table = ck.compare(fits[model], bayes).equivalence
    # Monte Carlo error of a posterior mean: about 1/sqrt(ESS) <= 0.05 posterior SD. Seen: every |z| below 0.7
    # (SDs), 0.1 (fixed effects) and 0.26 (group effects); "differ" needs |z| >= 2, > 25 Monte Carlo SEs away,
    # and 1/4 of the rows leaving "agree" needs the group effects' |z| to move > 4 SEs each: false-failure
    # probability < 1e-6.
    assert not (table["verdict"] == "differ").any()
    assert (table.query("effect == 'fixed'")["verdict"] == "agree").all()
    assert (table["verdict"] == "agree").mean() >= 0.75


@pytest.mark.slow
def test_small_binary_clusters_are_explained(fits):
    bayes = ck.fit_bayesian(_spec("small_clusters"), _data("small_clusters"), draws=500, tune=500, chains=2, seed=3)
    table = ck.compare(fits["small_clusters"], bayes).equivalence
    sd = table.query("term == 'sd__(Intercept)'").iloc[0]
    assert ("With about 3.7 trials per cluster level of a 0/1 outcome each group's likelihood is flat and skewed, "
            "and the Laplace approximation is known to understate a group SD") in sd["why"]
    modes = table.query("effect == 'ran_vals'")["why"]
    assert modes.str.contains("the conditional mode (its peak) and the posterior mean (its average) part",
                              regex=False).all()

