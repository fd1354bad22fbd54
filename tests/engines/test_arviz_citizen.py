"""``BayesianFit.posterior`` is an ArviZ citizen: canonical names, log-likelihood, the model objects.

The name rules and the row-wise groups are checked on made-up draws (no sampling); ArviZ's own
functions run on a Bambi-path fit and a PyMC-path fit (short chains, marked slow).
"""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import compare_kit as ck  # noqa: E402
from compare_kit.design import build_design  # noqa: E402
from compare_kit.engines import arviz_tree  # noqa: E402
from compare_kit.engines.posterior import (  # noqa: E402
    BlockDraws,
    CanonicalDraws,
    normal_log_likelihood,
    posterior_mu,
)

BAMBI_FORMULA = "log_radon ~ floor + (1 | county)"
PYMC_FORMULA = "log_radon ~ floor + (1 + floor | county)"  # correlated: compare_kit's own PyMC model


def _fake_draws(design, chains: int = 2, draws: int = 50, seed: int = 0) -> CanonicalDraws:
    """Made-up draws of the right shapes (the tree only renames and reshapes them)."""
    rng = np.random.default_rng(seed)
    shape = (chains, draws)
    blocks = []
    for block in design.blocks:
        k = len(block.z.columns)
        cor = None
        if block.term.correlated and k > 1:
            cor = np.broadcast_to(np.eye(k), (*shape, k, k)).copy()
            cor[..., 0, 1] = cor[..., 1, 0] = rng.uniform(-1, 1, shape)
        blocks.append(BlockDraws(block.group, tuple(block.z.columns), tuple(block.levels),
                                 rng.uniform(0.1, 1, (*shape, k)), cor,
                                 rng.normal(0, 0.3, (*shape, len(block.levels), k))))
    return CanonicalDraws(tuple(design.x.columns), rng.normal(0, 1, (*shape, design.x.shape[1])),
                          tuple(blocks), rng.uniform(0.5, 1, shape))


def _tree(formula: str, data: pd.DataFrame, **kw):
    design = build_design(ck.ModelSpec.from_formula(formula), data)
    draws = _fake_draws(design)
    return design, draws, arviz_tree.canonical_tree(draws, design, **kw)


# ------------------------------------------------------------------ names, on made-up draws


def test_names_dims_and_coords_follow_the_tidy_table(radon):
    design, draws, tree = _tree(PYMC_FORMULA, radon)
    post = tree["posterior"]
    assert list(post.data_vars) == ["Intercept", "floor", "sd__(Intercept)|county", "sd__floor|county",
                                    "cor__(Intercept).floor|county", "sigma", "1|county", "floor|county"]
    assert post["1|county"].dims == ("chain", "draw", "county")
    assert list(post["county"].values) == list(design.blocks[0].levels) and "AITKIN" in post["county"].values
    # every variable names its tidy row
    assert post["Intercept"].attrs == {"effect": "fixed", "group": "", "term": "(Intercept)"}
    assert post["floor|county"].attrs == {"effect": "ran_vals", "group": "county", "term": "floor"}
    assert post["cor__(Intercept).floor|county"].attrs["term"] == "cor__(Intercept).floor"
    assert post["sigma"].attrs == {"effect": "ran_pars", "group": "Residual", "term": "sd__Observation"}
    # the same numbers, renamed (views of the canonical draws)
    np.testing.assert_array_equal(post["floor|county"].values, draws.blocks[0].vals[..., 1])
    np.testing.assert_array_equal(post["cor__(Intercept).floor|county"].values, draws.blocks[0].cor[..., 0, 1])
    for group in ("log_likelihood", "posterior_predictive", "observed_data"):
        assert list(tree[group].data_vars) == ["log_radon"] and tree[group]["log_radon"].dims[-1] == "__obs__"
    assert tree.attrs["row_wise_note"] == ""


def test_names_stay_unique_when_the_data_take_them(radon):
    """Columns called Intercept, sigma and chain, a factor called draw: every name is still unique and
    xarray accepts the tree (a variable named like a dim would be refused)."""
    data = radon.assign(Intercept=radon["floor"] * 2 + 1, sigma=np.log(radon["log_uranium"] + 3),
                        chain=np.arange(len(radon)) % 7, draw=radon["county"])
    design, draws, tree = _tree("log_radon ~ Intercept + sigma + chain + (1 | draw)", data)
    post = tree["posterior"]
    assert list(post.data_vars) == ["(Intercept)", "Intercept", "sigma", "chain_", "sd__(Intercept)|draw",
                                    "sd__Observation", "1|draw"]
    assert post["(Intercept)"].attrs["term"] == "(Intercept)" and post["Intercept"].attrs["term"] == "Intercept"
    assert post["1|draw"].dims == ("chain", "draw", "draw_")
    names = arviz_tree.posterior_names(draws, design.response_label)
    assert names.fixed == ("(Intercept)", "Intercept", "sigma", "chain_")  # in the design's column order


@pytest.mark.parametrize("random", ["(1 | county) + (0 + floor | county)", "(1 + floor || county)"])
def test_uncorrelated_effects_of_one_factor_share_its_dim(radon, random):
    _, _, tree = _tree(f"log_radon ~ floor + {random}", radon)
    post = tree["posterior"]
    assert post["1|county"].dims == post["floor|county"].dims == ("chain", "draw", "county")
    assert list(post.data_vars) == ["Intercept", "floor", "sd__(Intercept)|county", "sd__floor|county", "sigma",
                                    "1|county", "floor|county"]


def test_nested_and_crossed_factors_get_a_dim_each(radon):
    data = radon.assign(basin=radon["county"].str[0])  # a made-up factor enclosing county (lme4 names the inner one county:basin)
    design, _, tree = _tree("log_radon ~ floor + (1 | basin/county) + (0 + floor | basin)", data)
    post = tree["posterior"]
    assert {"1|basin", "1|county:basin", "floor|basin"} <= set(post.data_vars)
    assert post["1|county:basin"].dims == ("chain", "draw", "county:basin")
    assert post["floor|basin"].dims == post["1|basin"].dims == ("chain", "draw", "basin")
    assert post.sizes["basin"] == len(design.blocks[0].levels) < post.sizes["county:basin"]


def test_row_wise_groups_are_the_normal_likelihood_and_seeded_replicates(radon):
    design, draws, tree = _tree(PYMC_FORMULA, radon, seed=5)
    mu = posterior_mu(draws, design)
    # the same formula on the same numbers, in chunks of rows or all at once: rounding only
    np.testing.assert_allclose(tree["log_likelihood"]["log_radon"].values,
                               normal_log_likelihood(design.y, mu, draws.residual), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(tree["observed_data"]["log_radon"].values, design.y)
    z = (tree["posterior_predictive"]["log_radon"].values - mu) / draws.residual[..., None]
    # 100 draws x 919 rows of N(0, 1): SE of the mean 0.0033 and of the SD 0.0023, so the bounds are
    # 6 and 4.3 SEs: false-failure probability < 2e-5
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.01
    again = arviz_tree.canonical_tree(draws, design, seed=5)["posterior_predictive"]["log_radon"].values
    np.testing.assert_array_equal(again, tree["posterior_predictive"]["log_radon"].values)


def test_row_wise_groups_are_left_out_above_the_budget_with_the_reason(radon, monkeypatch):
    design = build_design(ck.ModelSpec.from_formula(BAMBI_FORMULA), radon)
    draws = _fake_draws(design)  # 100 draws x 919 rows x 2 groups x 8 bytes: 1.4 MiB
    monkeypatch.setattr(arviz_tree, "ROW_WISE_BYTES", 2**20)
    tree = arviz_tree.canonical_tree(draws, design)
    assert "log_likelihood" not in tree.children and "posterior_predictive" not in tree.children
    assert "observed_data" in tree.children and "posterior" in tree.children
    note = tree.attrs["row_wise_note"]
    assert "100 draws x 919 rows would take 1.4 MiB" in note and "bayes.loo" in note and "row_wise=True" in note
    full = arviz_tree.canonical_tree(draws, design, row_wise=True)
    assert {"log_likelihood", "posterior_predictive"} <= set(full.children) and full.attrs["row_wise_note"] == ""
    assert "log_likelihood" not in arviz_tree.canonical_tree(draws, design, row_wise=False).children


def test_the_budget_leaves_out_a_large_survey():
    """73,000 rows x 8,000 draws (the issue's example): 8.7 GiB of row-wise groups, never built."""
    design = SimpleNamespace(n=73_000)  # only the sizes matter
    draws = SimpleNamespace(size=4 * 2000)  # draws over all chains
    assert arviz_tree.row_wise_bytes(draws, design) == 2 * 8 * 8000 * 73_000
    assert "8.7 GiB" in arviz_tree.row_wise_note(draws, design)


# --------------------------------------------------------------- ArviZ on two real fits


@pytest.fixture(scope="module")
def fits(radon) -> dict[str, ck.BayesianFit]:
    return {name: ck.fit_bayesian(ck.ModelSpec.from_formula(formula), radon, draws=200, tune=200, chains=2,
                                  seed=1)
            for name, formula in (("bambi", BAMBI_FORMULA), ("pymc", PYMC_FORMULA))}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.slow
def test_each_path_runs_the_engine_it_is_named_for(fits):
    assert (fits["bambi"].engine, fits["pymc"].engine) == ("bambi", "pymc")


@pytest.mark.slow
@pytest.mark.parametrize("path", ["bambi", "pymc"])
def test_the_canonical_posterior_holds_the_tidy_tables_draws(fits, path):
    fit = fits[path]
    post = fit.posterior["posterior"]
    coefs = ("(Intercept)",) if path == "bambi" else ("(Intercept)", "floor")
    expected = ["Intercept", "floor", *(f"sd__{c}|county" for c in coefs),
                *(["cor__(Intercept).floor|county"] if path == "pymc" else []), "sigma",
                *(f"{'1' if c == '(Intercept)' else c}|county" for c in coefs)]
    assert list(post.data_vars) == expected
    assert post.sizes == {"chain": 2, "draw": 200, "county": 85}
    assert list(post["county"].values) == list(fit.design.blocks[0].levels) and "AITKIN" in post["county"]
    est = fit.estimates
    for name in post.data_vars:
        attrs = post[name].attrs
        rows = est[(est.effect == attrs["effect"]) & (est.group == attrs["group"]) & (est.term == attrs["term"])]
        mean = post[name].mean(("chain", "draw")).values
        if attrs["effect"] == "ran_vals":  # one row per level, in the dim's order
            rows = rows.set_index("level").loc[post["county"].values]
        # the same draws averaged twice: rounding only
        np.testing.assert_allclose(mean, rows["estimate"].to_numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    assert post.attrs["sample_dims"] == ["chain", "draw"]
    assert int(fit.posterior["sample_stats"]["diverging"].sum()) == fit.sampling.divergences


@pytest.mark.slow
def test_the_names_map_the_samplers_own_variables(fits):
    raw_bambi, post = fits["bambi"].sampler_posterior["posterior"], fits["bambi"].posterior["posterior"]
    np.testing.assert_array_equal(post["1|county"].values, raw_bambi["1|g0"].values)
    np.testing.assert_array_equal(post["sd__(Intercept)|county"].values, raw_bambi["1|g0_sigma"].values)
    raw_pymc, post = fits["pymc"].sampler_posterior["posterior"], fits["pymc"].posterior["posterior"]
    np.testing.assert_array_equal(post["sd__floor|county"].values, raw_pymc["sd_0_1"].values)
    np.testing.assert_array_equal(post["sigma"].values, raw_pymc["sigma"].values)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["bambi", "pymc"])
def test_az_loo_on_the_posterior_is_the_fits_own_loo(fits, path):
    fit = fits[path]
    with warnings.catch_warnings():  # 400 draws: a few Pareto k above arviz's 0.62
        warnings.simplefilter("ignore", UserWarning)
        default = az.loo(fit.posterior)
        same_reff = az.loo(fit.posterior, reff=fit.loo.elpd.r_eff, pointwise=True)
    # with the fit's r_eff (sigma's ESS) arviz smooths the same log-likelihood the same way: rounding only
    assert float(same_reff.elpd) == pytest.approx(fit.loo.elpd.elpd, rel=1e-10)
    np.testing.assert_allclose(same_reff.pareto_k.values, fit.loo.elpd.pareto_k, rtol=1e-8, atol=1e-10)
    # arviz's default r_eff (mean ESS of every posterior variable) moves only the smoothing of the tails:
    # |difference| at most 0.037 over seeds 1-8 of both models, so the bound 1.0 is 27 times the largest
    # seen (false-failure probability < 1e-4)
    assert default.n_data_points == 919 and float(default.elpd) == pytest.approx(fit.loo.elpd.elpd, abs=1.0)


@pytest.mark.slow
def test_az_compare_takes_the_two_posteriors(fits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare({"intercepts": fits["bambi"].posterior, "slopes": fits["pymc"].posterior})
    assert set(table.index) == {"intercepts", "slopes"} and table["weight"].sum() == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["bambi", "pymc"])
def test_arviz_plots_take_the_posterior(fits, path):
    tree = fits[path].posterior
    forest = az.plot_forest(tree, var_names=["Intercept", "floor"], backend="matplotlib")
    assert set(forest.viz["variable_label"].data_vars) == {"Intercept", "floor"}
    levels = az.plot_forest(tree, var_names=["1|county"], backend="matplotlib")
    assert "AITKIN" in levels.viz["county_label"]["county"].values  # the levels by name
    names = ["Intercept", "floor", "sd__(Intercept)|county", "sigma"]
    trace = az.plot_trace(tree, var_names=names, backend="matplotlib")
    assert sorted(trace.viz["plot"].data_vars) == sorted(names)  # four panels, not hundreds
    ppc = az.plot_ppc_dist(tree, num_samples=20, backend="matplotlib")
    assert list(ppc.viz["plot"].data_vars) == ["log_radon"]


@pytest.mark.slow
def test_the_models_are_reachable_and_survive_pickling(fits):
    import bambi as bmb
    import pymc as pm

    bambi_fit, pymc_fit = fits["bambi"], fits["pymc"]
    assert isinstance(bambi_fit.model, str) and bambi_fit.model == bambi_fit.spec.label  # the label, as before
    assert isinstance(bambi_fit.bambi_model, bmb.Model) and bambi_fit.bambi_model.formula.main.startswith("y ~")
    assert bambi_fit.pymc_model is bambi_fit.bambi_model.backend.model
    assert pymc_fit.bambi_model is None and isinstance(pymc_fit.pymc_model, pm.Model)
    sampled = set(pymc_fit.sampler_posterior["posterior"].data_vars)
    assert {v.name for v in pymc_fit.pymc_model.free_RVs} - {"corr_chol_0_free"} <= sampled
    for fit in (bambi_fit, pymc_fit):
        copy = pickle.loads(pickle.dumps(fit))  # PyMC models do not pickle: the copy builds its own
        assert [v.name for v in copy.pymc_model.free_RVs] == [v.name for v in fit.pymc_model.free_RVs]
        np.testing.assert_array_equal(copy.pymc_model.rvs_to_values[copy.pymc_model.observed_RVs[0]].data,
                                      fit.design.y)
        np.testing.assert_array_equal(copy.posterior["posterior"]["sigma"].values,
                                      fit.posterior["posterior"]["sigma"].values)


@pytest.mark.slow
def test_a_fit_over_the_budget_warns_and_says_why(fits, monkeypatch):
    monkeypatch.setattr(arviz_tree, "ROW_WISE_BYTES", 2**20)
    fit = dataclasses.replace(fits["bambi"])  # a copy without the kept tree
    assert "bayes.loo" in fit.posterior_note
    with pytest.warns(UserWarning, match="left out of the posterior tree"):
        tree = fit.posterior
    assert "log_likelihood" not in tree.children and tree.attrs["row_wise_note"] == fit.posterior_note
    assert np.isfinite(fit.loo.elpd.elpd)  # PSIS-LOO in chunks needs no tree


def test_psis_rows_without_a_tail_get_raw_weights_instead_of_an_error():
    """A row whose largest importance ratios tie (a stuck chain repeats one value; a draw at which the outcome
    is impossible has log-likelihood -inf) cannot be smoothed: arviz_stats raises; loo falls back per row."""
    from arviz_stats.base import array_stats
    from scipy.special import logsumexp

    from compare_kit.loo import smoothed_log_weights

    rng = np.random.default_rng(1)
    log_lik = rng.normal(-1, 0.3, (3, 1000))
    stuck = log_lik[1].copy()
    stuck[500:] = -7.6  # the second chain stuck at its worst value: the tail of -log_lik is one value
    impossible = log_lik[2].copy()
    impossible[:40] = -np.inf
    rows = np.vstack([log_lik[0], stuck, impossible])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # arviz_stats on the -inf row (psis_loo records them)
        with pytest.raises(ValueError):
            array_stats.psislw(rows, r_eff=1.0, axis=-1)
        weights, k, raw = smoothed_log_weights(rows, 1.0)
    reference, k_ref = array_stats.psislw(rows[:1], r_eff=1.0, axis=-1)
    assert raw == 2 and np.isnan(k[1:]).all() and k[0] == k_ref[0]
    np.testing.assert_allclose(weights[0], reference[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights[1], -stuck - logsumexp(-stuck), rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights[2], np.full(1000, -np.log(1000)), rtol=0, atol=1e-12)
