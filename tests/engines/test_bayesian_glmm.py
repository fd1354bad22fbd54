"""The Bayesian engine on GLMMs (issue 16): Bambi's bernoulli, binomial and poisson families, compare_kit's
PyMC model for correlated effects, the draws without a residual SD, the family's log-likelihood, PSIS-LOO
and the ArviZ tree; against glmer's ML estimates on make_glmm_data.py's data (tests/reference/lme4).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import special, stats

import compare_kit as ck
from compare_kit.design import build_design
from compare_kit.engines import bayesian
from compare_kit.engines.bambi_names import build_naming
from compare_kit.engines.posterior import BlockDraws, CanonicalDraws, linear_predictor, pointwise_chunks, stack_draws
from compare_kit.engines.priors import Priors
from compare_kit.errors import FitError, SpecError
from tests.conftest import REFERENCE, lme4_table

# name -> (file, text columns, formula, family, glmer's model in the reference CSVs)
MODELS = {
    "herds": ("herds.csv", ("herd", "period"), "cbind(incidence, size - incidence) ~ period + (1 | herd)",
              "binomial", "herds"),
    "counts": ("counts.csv", ("site", "year"), "count ~ x + (1 | site) + (1 | year) + offset(log(exposure))",
               "poisson", "counts"),
    "count_slopes": ("counts.csv", ("site", "year"),
                     "count ~ x + (1 + x | site) + (1 | year) + offset(log(exposure))", "poisson", "count_slopes"),
    "binary_crossed": ("binary_crossed.csv", ("subject", "item"), "y ~ x + (1 | subject) + (1 | item)",
                       "bernoulli", "binary_crossed"),
}


def _data(model: str):
    file, text, _, _, _ = MODELS[model]
    return ck.load_csv(REFERENCE / "lme4" / file, text_columns=text)


def _spec(model: str) -> ck.ModelSpec:
    _, _, formula, family, _ = MODELS[model]
    return ck.ModelSpec.from_formula(formula, family=family)


def _random_draws(design, rng, chains=2, per_chain=5) -> CanonicalDraws:
    """Made-up draws of the right shapes (no residual: a GLMM)."""
    p = design.x.shape[1]
    blocks = tuple(BlockDraws(b.group, tuple(b.z.columns), b.levels,
                              rng.uniform(0.2, 1.0, (chains, per_chain, b.z.shape[1])), None,
                              rng.normal(0, 0.5, (chains, per_chain, len(b.levels), b.z.shape[1])))
                   for b in design.blocks)
    return CanonicalDraws(tuple(design.x.columns), rng.normal(0, 0.5, (chains, per_chain, p)), blocks, None)


# ------------------------------------------------------------------------------ without sampling


@pytest.mark.parametrize("model", ["herds", "counts", "binary_crossed"])
def test_the_pointwise_log_likelihood_is_scipys_logpmf(model):
    design = build_design(_spec(model), _data(model))
    draws = _random_draws(design, np.random.default_rng(3))
    x = design.x.to_numpy(dtype=float)
    eta = draws.fixed.reshape(draws.size, -1) @ x.T  # the linear predictor, built independently
    for block_draws, block in zip(draws.blocks, design.blocks, strict=True):
        eta += block_draws.vals.reshape(draws.size, len(block.levels))[:, block.codes]
    if model == "counts":
        eta += np.log(_data(model)["exposure"].to_numpy(dtype=float))
    np.testing.assert_allclose(linear_predictor(draws, design, slice(None), slice(None)), eta, rtol=1e-12)
    family = MODELS[model][3]
    if family == "binomial":
        trials = _data(model)["size"].to_numpy(dtype=float)
        mean, expected = trials * special.expit(eta), stats.binom.logpmf(design.y, trials, special.expit(eta))
    elif family == "bernoulli":
        mean, expected = special.expit(eta), stats.bernoulli.logpmf(design.y, special.expit(eta))
    else:
        mean, expected = np.exp(eta), stats.poisson.logpmf(design.y, np.exp(eta))
    chunks = list(pointwise_chunks(draws, design, chunk_rows=17))  # several chunks
    np.testing.assert_allclose(np.concatenate([c[1] for c in chunks], axis=1), mean, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([c[2] for c in chunks], axis=1), expected, rtol=1e-10, atol=1e-12)


def test_the_logit_log_likelihood_stays_finite_far_out():
    """scipy's logpmf on expit(eta) gives -inf once expit rounds to 1; computed from eta it does not."""
    design = build_design(_spec("binary_crossed"), _data("binary_crossed"))
    draws = _random_draws(design, np.random.default_rng(0))
    draws.fixed[..., list(design.x.columns).index("(Intercept)")] = 60.0
    log_lik = np.concatenate([c[2] for c in pointwise_chunks(draws, design)], axis=1)
    assert np.all(np.isfinite(log_lik))
    assert log_lik[:, design.y == 0].max() < -50  # a failure at eta ~ 60 is nearly impossible


def test_a_glmm_has_no_residual_row():
    design = build_design(_spec("herds"), _data("herds"))
    keys, values = stack_draws(_random_draws(design, np.random.default_rng(1)))
    assert not any(k["term"] == "sd__Observation" or k["group"] == "Residual" for k in keys)
    assert values.shape[-1] == len(keys)


@pytest.mark.parametrize(("model", "scale"), [("herds", "log-odds (logit)"), ("counts", "log-rate (log)")])
@pytest.mark.parametrize("preset", ["default", "tutorial"])
def test_priors_are_described_on_the_link_scale_without_a_residual_sd(model, scale, preset):
    design = build_design(_spec(model), _data(model))
    naming = build_naming(design)
    built = bayesian._build(design, naming, Priors.coerce(preset))
    assert built.priors.residual is None
    assert "sd__Observation" not in built.prior_record
    assert "sigma" not in [v.name for v in built.model.free_RVs]
    for key, text in built.prior_record.items():
        assert key.startswith("cor") or f"on the {scale} scale" in text, (key, text)
    assert f"on the {scale} scale; no residual SD" in built.structure
    if preset == "default" and model == "herds":  # Bambi's logit defaults: Normal(0, 1.5) on the intercept
        assert built.prior_record["(Intercept)"].startswith("Normal(mu=0, sigma=1.5)")


def test_the_binomial_response_and_the_offset_reach_bambi_as_generated_columns():
    naming = build_naming(build_design(_spec("herds"), _data("herds")))
    assert naming.formula == "p(y, t0) ~ 1 + c0 + (1 | g0)"
    np.testing.assert_array_equal(naming.frame["t0"], _data("herds")["size"])
    naming = build_naming(build_design(_spec("counts"), _data("counts")))
    assert naming.formula == "y ~ 1 + x0 + (1 | g0) + (1 | g1) + offset(o0)"
    np.testing.assert_allclose(naming.frame["o0"], np.log(_data("counts")["exposure"]))
    assert ("o0", "offset(log(exposure))") in naming.legend("count")


def test_a_residual_prior_on_a_glmm_is_refused(engines_must_not_run):
    with pytest.raises(SpecError, match="a binomial model has no residual SD"):
        ck.fit_bayesian(_spec("herds"), _data("herds"), priors={"sd__Observation": "HalfNormal(1)"})


def test_the_collapsed_sampler_refuses_a_glmm(engines_must_not_run):
    with pytest.raises(FitError, match="its family is poisson"):
        ck.fit_bayesian(_spec("counts"), _data("counts"), method="collapsed")


# ------------------------------------------------------------------------------ sampling

# Posterior means against glmer's ML estimates (the Done-when: within 0.5 posterior SD on a model with
# ample data). The posterior mean differs from the ML estimate by a fixed gap of order 1/n plus Monte Carlo
# error of SD / sqrt(ESS). Measured with seeds 1, 2, 3 and 7 at 2 x 1000 draws: |gap + error| at most 0.082 SD
# over the 6 coefficients, the fixed effects' bulk ESS at least 127. So a failure needs a Monte Carlo error over
# 0.5 - 0.09 = 0.41 SD, with 2 x 2000 draws (ESS above ~250) over 6 Monte Carlo SEs: probability under 1e-8 per
# coefficient.
SAMPLED = ["counts", "count_slopes", "binary_crossed"]


@pytest.fixture(scope="module")
def fits() -> dict[str, ck.BayesianFit]:
    return {m: ck.fit_bayesian(_spec(m), _data(m), draws=2000, tune=1000, chains=2, seed=7)
            for m in SAMPLED + ["herds"]}


@pytest.mark.slow
@pytest.mark.parametrize("model", SAMPLED)
def test_posterior_means_are_within_half_a_posterior_sd_of_glmer(fits, model):
    fit = fits[model]
    fixed = fit.estimates[fit.estimates["effect"] == "fixed"].set_index("term")
    ref = lme4_table("glmm_fixed_effects.csv")
    ref = ref[(ref["model"] == MODELS[model][4]) & (ref["method"] == "Laplace")].set_index("term")
    assert list(fixed.index) == list(ref.index)
    z = (fixed["estimate"] - ref["estimate"]).abs() / fixed["std_error"]
    assert (z < 0.5).all(), z
    assert fit.engine.value == ("pymc" if model == "count_slopes" else "bambi")


@pytest.mark.slow
@pytest.mark.parametrize("model", SAMPLED + ["herds"])
def test_a_glmm_fit_has_no_residual_and_its_loo_is_arvizs(fits, model):
    import arviz as az

    fit = fits[model]
    assert not (fit.estimates["group"] == "Residual").any()
    assert not (fit.estimates["term"] == "sd__Observation").any()
    assert fit.draws.residual is None
    tree = fit.to_arviz(row_wise=True)
    assert "sigma" not in tree["posterior"].data_vars
    response = fit.design.response_label
    replicated = tree["posterior_predictive"][response].values
    assert np.all(replicated == np.round(replicated)) and replicated.min() >= 0  # counts, 0/1, successes
    if fit.design.trials is not None:
        assert np.all(replicated <= fit.design.trials)
    if MODELS[model][3] == "bernoulli":
        assert set(np.unique(replicated)) <= {0.0, 1.0}
    np.testing.assert_allclose(tree["log_likelihood"][response].values, fit.log_likelihood, rtol=1e-12)
    ours = fit.loo.elpd
    with warnings.catch_warnings():  # a few Pareto k above arviz's threshold: the fit's Loo says so too
        warnings.simplefilter("ignore", UserWarning)
        theirs = az.loo(tree, reff=ours.r_eff, pointwise=True)
    assert float(theirs.elpd) == pytest.approx(ours.elpd, rel=1e-10)
    assert float(theirs.p) == pytest.approx(ours.p, rel=1e-8)
    np.testing.assert_allclose(theirs.pareto_k.values, ours.pareto_k, rtol=1e-8, atol=1e-10)
    # mu is the mean on the response scale: its posterior mean tracks the outcome (the rows' mean)
    assert fit.mu.mean() == pytest.approx(fit.design.y.mean(), rel=0.1)
