"""Teaching demonstrations: how random effects and Bayesian partial pooling are one idea.

Each function returns tables ready for the report:

* ``conditional_equivalence``: fix the variance components at their REML values
  and put flat priors on the fixed effects; the posterior of the fixed effects and
  group effects is then exactly Gaussian, centred on the GLS estimates and the
  BLUPs, with the covariance of Henderson's mixed-model equations. MCMC draws
  reproduce this up to Monte Carlo error. The BLUPs' conditional SDs (lme4's
  ``condVar``, statsmodels' ``random_effects_cov``) are smaller: they treat the
  fixed effects as known.
* ``prior_flattening``: as the prior on a group SD widens, its posterior mode moves
  to the REML estimate (the posterior median stays above it: the posterior of an SD
  is right-skewed). The prior ladder is in units of the response's SD, so the sweep
  reaches a flat prior on any data's scale.
* ``boundary_demo``: on a small data set where REML puts the group SD at exactly
  zero (every BLUP then 0), the posterior keeps it positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from compare_kit.outcomes import require_gaussian
from compare_kit.results import Effect, FitResult, FrequentistFit

# The prior flattening's HalfNormal scales, as multiples of the response's SD: the widest, 12.5 SDs, is
# flat (within 0.3%) over every group SD the data allow, which is at most about the response's own SD.
PRIOR_SCALES = (0.02, 0.1, 0.5, 2.5, 12.5)
MODE_BANDWIDTH = 2.0  # the posterior mode's kernel bandwidth, in multiples of Scott's (``_posterior_mode``)

# The conditional-equivalence sampler's work budget: rows x chains x (tuning + kept draws). A gradient
# costs O(rows); on InstEval's 73,421 rows, 2 chains x (300 + 300) (8.8e7) took 106 s on 2 loaded cores,
# 4 chains x (300 + 100) 225 s (4 chains share 2 cores). Above the budget the demonstration keeps its
# model and rows and samples fewer chains and draws (``conditional_sampling``), which only widens its
# Monte Carlo error: z_mc is measured in Monte Carlo SEs, so it stays a standard-normal check.
CONDITIONAL_ROW_DRAWS_BUDGET = 100_000_000
_REDUCED_TUNE = 300  # nutpie's mass-matrix adaptation settles well within this on a Gaussian posterior
_MIN_DRAWS = 100  # per chain: an ESS of a few hundred over the chains, enough for MCSEs
_REDUCED_CHAINS = 2  # one per core of a two-core machine


class DemoData(StrEnum):
    """Which rows a demonstration fitted."""

    FIT = "fit"  # the rows of the frequentist fit it was given (in a study: the study's own table)
    CONSTRUCTED = "constructed"  # a small data set built for the demonstration (``boundary_data``)
    GIVEN = "given"  # a table the caller passed in


@dataclass(frozen=True, eq=False)
class Demo:
    """A demonstration's table, its one-line summary, the explanation for a student, and the model it
    fitted: ``formula`` (lme4 syntax) on ``data`` (the study's table or a constructed one)."""

    table: pd.DataFrame
    summary: pd.DataFrame
    explanation: str
    formula: str
    data: DemoData
    fixed: pd.DataFrame | None = None


def _sample(model, draws: int, tune: int, chains: int, seed: int, var_names: list[str]):
    from compare_kit.engines.compile_cache import default_cache_dir
    from compare_kit.engines.sampling import Sampler, SamplerSettings, run_sampler

    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, cores=chains, seed=seed,
                               progress=False, target_accept=0.9, compile_cache=default_cache_dir())
    return run_sampler(model, Sampler.NUTPIE, settings, var_names).idata


def _conditional_model(freq: FrequentistFit):
    """Flat priors on beta; per level b ~ N(0, sigma^2 Lambda Lambda') with Lambda and sigma fixed at the
    fit's values; y ~ N(X beta + Z b, sigma^2). Non-centred: b = sigma Lambda u, u ~ N(0, I).

    ``Z b`` is gathered: each row takes its own level's k coefficients times its k columns of Z, so no
    dense n x q matrix is built and memory and gradient cost are O(n k + q). ``b`` is kept as a
    deterministic, block by block, level-major and coefficient-minor (the order of ``effect_labels``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from compare_kit.engines.lmm import lower_root

    design = freq.design
    sigma = float(np.sqrt(freq.mixed.scale))
    x = design.x_estimable.to_numpy()
    with pm.Model() as model:
        beta = pm.Flat("beta", shape=x.shape[1])
        eta = pt.dot(x, beta)
        b_blocks = []
        for i, (block, cov) in enumerate(zip(design.blocks, freq.mixed.relative_covariances, strict=True)):
            root = lower_root(cov) * sigma  # relative covariances: Cov(b) = sigma^2 Lambda Lambda'
            u = pm.Normal(f"u_{i}", 0.0, 1.0, shape=(len(block.levels), root.shape[0]))
            b = pt.dot(u, root.T)  # (levels, k)
            eta = eta + (b[block.codes] * block.z.to_numpy()).sum(axis=1)
            b_blocks.append(b.reshape((-1,)))
        pm.Deterministic("b", pt.concatenate(b_blocks))
        pm.Normal("y", eta, sigma, observed=design.y)
    return model


@dataclass(frozen=True)
class SamplingPlan:
    """Draws, tuning steps and chains a demonstration samples, and whether the work budget cut them."""

    draws: int
    tune: int
    chains: int
    reduced: bool


def conditional_sampling(rows: int, draws: int, tune: int, chains: int,
                         budget: int = CONDITIONAL_ROW_DRAWS_BUDGET) -> SamplingPlan:
    """The requested draws, or fewer when ``rows * chains * (tune + draws)`` exceeds ``budget``: at most
    ``_REDUCED_CHAINS`` chains, tuning cut to ``_REDUCED_TUNE`` and the kept draws to what the budget
    leaves (at least ``_MIN_DRAWS``)."""
    if rows * chains * (tune + draws) <= budget:
        return SamplingPlan(draws, tune, chains, reduced=False)
    tune, chains = min(tune, _REDUCED_TUNE), min(chains, _REDUCED_CHAINS)
    return SamplingPlan(min(draws, max(_MIN_DRAWS, budget // (rows * chains) - tune)), tune, chains, reduced=True)


def _mcse_of_mean(draws: np.ndarray) -> np.ndarray:
    """Monte Carlo SE of the posterior mean of each quantity of (chain, draw, quantity) draws."""
    from arviz_stats.base import array_stats

    return np.asarray(array_stats.mcse(draws, method="mean", chain_axis=0, draw_axis=1), dtype=float)


def conditional_equivalence(freq: FitResult, draws: int = 1000, tune: int = 500, chains: int = 4,
                            seed: int = 1) -> Demo:
    """Posterior at fixed REML variance components vs GLS/BLUPs and three kinds of SD.

    Any structure the fit has (correlated slopes, crossed or nested factors): Henderson's equations
    give the GLS estimates, BLUPs and prediction-error SDs of all of them, and the sampled model is
    the same mixed model with its variance components fixed. Above ``CONDITIONAL_ROW_DRAWS_BUDGET``
    it samples fewer draws (``conditional_sampling``), and its explanation says so.
    """
    if isinstance(freq, FitResult):
        require_gaussian(freq.spec, "conditional_equivalence")
    if not isinstance(freq, FrequentistFit) or freq.mixed is None:
        raise ValueError("conditional_equivalence needs a frequentist mixed-model fit")
    plan = conditional_sampling(freq.design.n, draws, tune, chains)
    post = _sample(_conditional_model(freq), plan.draws, plan.tune, plan.chains, seed, ["beta", "b"])["posterior"]
    b_draws = np.asarray(post["b"])  # chain, draw, q
    beta_draws = np.asarray(post["beta"])
    pev = freq.pev
    table = pd.DataFrame({
        "group": pev["group"], "level": pev["level"], "term": pev["term"], "blup": pev["blup"],
        "posterior_mean": b_draws.mean(axis=(0, 1)), "mcse": _mcse_of_mean(b_draws),
        "cond_sd": pev["cond_sd"], "pev_sd": pev["pev_sd"], "posterior_sd": b_draws.std(axis=(0, 1), ddof=1)})
    table["z_mc"] = (table["posterior_mean"] - table["blup"]) / table["mcse"]
    table["sd_ratio_posterior_to_pev"] = table["posterior_sd"] / table["pev_sd"]
    table["sd_ratio_cond_to_pev"] = table["cond_sd"] / table["pev_sd"]
    fixed = freq.table(Effect.FIXED).dropna(subset=["estimate"]).reset_index(drop=True)
    fixed_rows = pd.DataFrame({
        "term": fixed["term"], "gls": fixed["estimate"], "gls_se": fixed["std_error"],
        "posterior_mean": beta_draws.mean(axis=(0, 1)), "posterior_sd": beta_draws.std(axis=(0, 1), ddof=1),
        "mcse": _mcse_of_mean(beta_draws),
    })
    fixed_rows["z_mc"] = (fixed_rows["posterior_mean"] - fixed_rows["gls"]) / fixed_rows["mcse"]
    summary = pd.DataFrame([{
        "groups": len(table), "max_abs_z_mc": float(table["z_mc"].abs().max()),
        "min_sd_ratio": float(table["sd_ratio_posterior_to_pev"].min()),
        "max_sd_ratio": float(table["sd_ratio_posterior_to_pev"].max()),
        "median_cond_to_pev": float(table["sd_ratio_cond_to_pev"].median()),
        "fixed_max_abs_z_mc": float(fixed_rows["z_mc"].abs().max()),
    }])
    explanation = (
        f"The model {freq.spec}, fitted to its {freq.design.n} rows. "
        "With the variance components held at their REML values and flat priors on the fixed effects, the "
        "posterior of the fixed effects and group effects is Gaussian, centred exactly on the GLS estimates "
        "and the BLUPs: the posterior means above differ from the BLUPs only by Monte Carlo error (z_mc, in "
        "Monte Carlo standard errors). Its SDs are the prediction-error SDs of Henderson's mixed-model "
        "equations (pev_sd), which count the uncertainty of the estimated fixed effects. lme4's condVar and "
        "statsmodels' random_effects_cov (cond_sd) hold the fixed effects fixed and are smaller. A full "
        "Bayesian fit goes one step further and also averages over the variance components.")
    if plan.reduced:
        explanation += (
            f" To keep its run time bounded on {freq.design.n} rows, this demonstration sampled {plan.chains} "
            f"chains x {plan.draws} draws after {plan.tune} tuning steps instead of {chains} x {draws} after "
            f"{tune} (its budget: {CONDITIONAL_ROW_DRAWS_BUDGET:,} rows x chains x draws): the "
            "same model and rows, with a larger Monte Carlo error, which z_mc already counts.")
    return Demo(table, summary, explanation, str(freq.spec), DemoData.FIT, fixed_rows)


def _posterior_mode(draws: np.ndarray) -> float:
    """The mode of a positive quantity's draws: a Gaussian kernel density of their logarithm, carried back
    to the quantity's own scale (divided by it), maximised on a fine grid.

    An SD's posterior is right-skewed: smoothing it on its own scale shifts the mode to the right (by 4%
    of sleepstudy's subject SD at 2000 draws), while its logarithm's density is nearly symmetric. Twice
    Scott's bandwidth, since a mode needs a smoother density than the density itself: over 20 seeds of
    2000 draws the mode is within -0.6 +- 1.5% of sleepstudy's REML SD (Scott's own: -0.2 +- 2.6%).
    """
    from scipy.stats import gaussian_kde

    draws = np.maximum(np.asarray(draws, dtype=float).ravel(), np.finfo(float).tiny)
    grid = np.linspace(np.quantile(draws, 0.001), np.quantile(draws, 0.995), 2000)
    kde = gaussian_kde(np.log(draws), bw_method=lambda k: MODE_BANDWIDTH * k.scotts_factor())
    density = kde(np.log(grid)) / grid
    return float(grid[np.argmax(density)])


def _random_intercept_model(design, prior_scale_name: str, response_sd: float):
    """y ~ fixed + (1 | g), non-centred, with flat priors on the fixed effects and a residual SD prior on
    the response's scale; the group SD's HalfNormal scale is a data variable."""
    import pymc as pm

    block = design.blocks[0]
    x = design.x_estimable.to_numpy()
    with pm.Model() as model:
        scale = pm.Data(prior_scale_name, 1.0)
        beta = pm.Flat("beta", shape=x.shape[1])
        sd_group = pm.HalfNormal("sd_group", sigma=scale)
        sd_resid = pm.HalfCauchy("sd_resid", 5.0 * response_sd)
        u = pm.Normal("u", 0.0, 1.0, shape=len(block.levels))
        mu = pm.math.dot(x, beta) + sd_group * u[block.codes]
        pm.Normal("y", mu, sd_resid, observed=design.y)
    return model


def prior_flattening(freq_reml: FitResult, freq_ml: FitResult, scales: tuple[float, ...] = PRIOR_SCALES,
                     draws: int = 1000, tune: int = 1000, chains: int = 2, seed: int = 1) -> Demo:
    """Posterior of a random intercept's SD under HalfNormal priors of growing scale.

    ``scales`` are multiples of the response's SD (the prior on a group SD of ``y`` in ms is then in ms).
    The fixed effects have flat priors, as in REML, and the residual SD a HalfCauchy(5 response SDs).
    """
    import nutpie
    import pymc as pm  # noqa: F401 - the model module needs it loaded

    from compare_kit.engines.compile_cache import compile_pymc_model

    require_gaussian(freq_reml.spec, "prior_flattening")
    design = freq_reml.design
    if len(design.blocks) != 1 or list(design.blocks[0].z.columns) != ["(Intercept)"]:
        raise ValueError("prior_flattening needs a model with one random intercept, e.g. varying_intercept")
    group = design.blocks[0].group
    reml = _sd(freq_reml, group)
    ml = _sd(freq_ml, group)
    # compiled as the engine compiles (no fastmath); no disk cache: the prior scale is shared data
    response_sd = float(np.std(design.y, ddof=1))
    compiled, _ = compile_pymc_model(_random_intercept_model(design, "prior_scale", response_sd),
                                     ["sd_group"], None)
    rows = []
    for multiple in scales:
        scale = float(multiple) * response_sd
        idata = nutpie.sample(compiled.with_data(prior_scale=scale), draws=draws, tune=tune,
                              chains=chains, cores=chains, seed=seed, progress_bar=False)
        sd = np.asarray(idata["posterior"]["sd_group"]).ravel()
        rows.append({"prior": f"HalfNormal({scale:.3g})", "prior_scale": scale,
                     "response_sds": float(multiple),
                     "posterior_mode": _posterior_mode(sd), "posterior_median": float(np.median(sd)),
                     "posterior_mean": float(sd.mean()), "conf_low": float(np.quantile(sd, 0.025)),
                     "conf_high": float(np.quantile(sd, 0.975)), "reml": reml, "ml": ml})
    table = pd.DataFrame(rows)
    table["mode_minus_reml"] = table["posterior_mode"] - reml
    summary = table[["prior", "posterior_mode", "posterior_median", "reml", "ml"]].tail(1).reset_index(drop=True)
    explanation = (
        f"The model {freq_reml.spec}, fitted to its {design.n} rows. "
        f"The SD of the {group} intercepts under ever wider HalfNormal priors, from {scales[0]:g} to "
        f"{scales[-1]:g} times the response's SD ({response_sd:.3g}); the fixed effects have flat priors. "
        "A narrow prior pulls the "
        "posterior toward zero; as the prior widens it stops mattering, and the posterior mode settles at "
        "the REML estimate (REML is the mode of the posterior under flat priors on the fixed effects and "
        "the variance parameters). The posterior median and mean stay above the mode: an SD's posterior is "
        "bounded at zero and has a long right tail, which is why a posterior mean of an SD sits above the "
        "frequentist estimate even when the two analyses agree.")
    return Demo(table, summary, explanation, str(freq_reml.spec), DemoData.FIT)


def _sd(fit: FitResult, group: str) -> float:
    pars = fit.table(Effect.RAN_PARS).set_index(["group", "term"])["estimate"]
    return float(pars[(group, "sd__(Intercept)")])


def boundary_data(seed: int = 8) -> pd.DataFrame:
    """Six groups of five rows from a model whose group SD is small (0.25, residual SD 1).

    With seed 8 the REML estimate of the group SD is at zero: the group means vary
    no more than five noisy rows per group would by chance alone.
    """
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(6), 5)
    y = 1.0 + rng.normal(0, 0.25, 6)[codes] + rng.normal(0, 1, 30)
    return pd.DataFrame({"y": y, "group": [f"G{i + 1}" for i in codes]})


def boundary_demo(data: pd.DataFrame | None = None, draws: int = 1000, tune: int = 1000, chains: int = 4,
                  seed: int = 1) -> Demo:
    """REML at the boundary (SD 0, BLUPs 0) beside the posterior, which keeps the SD positive."""
    from compare_kit.engines.bayesian import fit_bayesian
    from compare_kit.engines.frequentist import fit_frequentist
    from compare_kit.spec import ModelSpec

    source = DemoData.CONSTRUCTED if data is None else DemoData.GIVEN
    data = boundary_data() if data is None else data
    spec = ModelSpec.from_formula("y ~ 1 + (1 | group)", label="boundary")
    freq = fit_frequentist(spec, data)
    bayes = fit_bayesian(spec, data, draws=draws, tune=tune, chains=chains, seed=seed)
    sd_f = _sd(freq, "group")
    post = bayes.table(Effect.RAN_PARS).set_index(["group", "term"]).loc[("group", "sd__(Intercept)")]
    vals_f = freq.table(Effect.RAN_VALS).set_index("level")["estimate"]
    vals_b = bayes.table(Effect.RAN_VALS).set_index("level")
    own = data.groupby("group")["y"].mean() - data["y"].mean()
    table = pd.DataFrame({"level": vals_f.index, "n": data.groupby("group").size().loc[vals_f.index].to_numpy(),
                          "own_mean_deviation": own.loc[vals_f.index].to_numpy(),
                          "blup": vals_f.to_numpy(),
                          "posterior_mean": vals_b.loc[vals_f.index, "estimate"].to_numpy(),
                          "posterior_sd": vals_b.loc[vals_f.index, "std_error"].to_numpy()})
    summary = pd.DataFrame([{"reml_sd": sd_f, "boundary_flag": freq.health.boundary,
                             "posterior_mean_sd": float(post["estimate"]),
                             "posterior_conf_low": float(post["conf_low"]),
                             "posterior_conf_high": float(post["conf_high"])}])
    where = ("a constructed data set (six groups of five rows, simulated with a small group SD; not the "
             "study's data)" if source is DemoData.CONSTRUCTED else f"the {len(data)} rows given")
    explanation = (
        f"The model {spec}, fitted to {where}. "
        "Here REML estimates the group SD at zero: the group means differ no more than chance alone would "
        "make them differ. A variance cannot be negative, so the estimate sits on the boundary and every "
        "BLUP is shrunk all the way to zero — the model says the groups are identical. The posterior does "
        "not collapse: it weighs every SD the data allow, and small positive SDs remain plausible, so the "
        "posterior of the SD stays positive and the group effects keep a little of each group's own "
        "deviation. Neither answer is wrong; they summarise the same flat likelihood differently (a mode "
        "at zero versus an average over a right-skewed posterior).")
    return Demo(table, summary, explanation, str(spec), source)
