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
  is right-skewed).
* ``boundary_demo``: on a small data set where REML puts the group SD at exactly
  zero (every BLUP then 0), the posterior keeps it positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare_kit.results import Effect, FitResult, FrequentistFit

PRIOR_SCALES = (0.02, 0.1, 0.5, 2.5, 12.5)


@dataclass(frozen=True, eq=False)
class Demo:
    """A demonstration's table, its one-line summary and the explanation for a student."""

    table: pd.DataFrame
    summary: pd.DataFrame
    explanation: str
    fixed: pd.DataFrame | None = None


def _sample(model, draws: int, tune: int, chains: int, seed: int, var_names: list[str]):
    from compare_kit.engines.compile_cache import default_cache_dir
    from compare_kit.engines.sampling import Sampler, SamplerSettings, run_sampler

    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, cores=chains, seed=seed,
                               progress=False, target_accept=0.9, compile_cache=default_cache_dir())
    return run_sampler(model, Sampler.NUTPIE, settings, var_names).idata


def conditional_equivalence(freq: FitResult, draws: int = 1000, tune: int = 500, chains: int = 4,
                            seed: int = 1) -> Demo:
    """Posterior at fixed REML variance components vs GLS/BLUPs and three kinds of SD."""
    import arviz as az
    import pymc as pm
    from scipy import linalg

    from compare_kit.engines.lmm import lower_root

    if not isinstance(freq, FrequentistFit) or freq.mixed is None:
        raise ValueError("conditional_equivalence needs a frequentist mixed-model fit")
    design = freq.design
    rel_covs = freq.mixed.relative_covariances
    sigma = float(np.sqrt(freq.mixed.scale))
    x = design.x_estimable.to_numpy()
    z_blocks, lam_blocks, keys = [], [], []
    for block, cov in zip(design.blocks, rel_covs, strict=True):
        lam = lower_root(cov)
        onehot = np.eye(len(block.levels))[block.codes]
        z_blocks.append((onehot[:, :, None] * block.z.to_numpy()[:, None, :]).reshape(design.n, -1))
        lam_blocks += [lam] * len(block.levels)
        keys += [(block.group, lv, t) for lv in block.levels for t in block.z.columns]
    z = np.hstack(z_blocks)
    lam_full = linalg.block_diag(*lam_blocks)
    zl = z @ lam_full * sigma  # relative covariances: Cov(b) = sigma^2 Lambda Lambda'
    with pm.Model() as model:
        beta = pm.Flat("beta", shape=x.shape[1])
        u = pm.Normal("u", 0.0, 1.0, shape=zl.shape[1])
        pm.Deterministic("b", pm.math.dot(lam_full * sigma, u))
        pm.Normal("y", pm.math.dot(x, beta) + pm.math.dot(zl, u), sigma, observed=design.y)
    idata = _sample(model, draws, tune, chains, seed, ["beta", "u", "b"])
    post = idata["posterior"]
    b_draws = np.asarray(post["b"])  # chain, draw, q
    beta_draws = np.asarray(post["beta"])
    pev = freq.pev.set_index(["group", "level", "term"])
    rows = []
    for i, key in enumerate(keys):
        d = b_draws[:, :, i]
        rows.append({"group": key[0], "level": key[1], "term": key[2], "blup": pev.loc[key, "blup"],
                     "posterior_mean": d.mean(), "mcse": float(az.mcse(d, method="mean")),
                     "cond_sd": pev.loc[key, "cond_sd"], "pev_sd": pev.loc[key, "pev_sd"],
                     "posterior_sd": d.std(ddof=1)})
    table = pd.DataFrame(rows)
    table["z_mc"] = (table["posterior_mean"] - table["blup"]) / table["mcse"]
    table["sd_ratio_posterior_to_pev"] = table["posterior_sd"] / table["pev_sd"]
    table["sd_ratio_cond_to_pev"] = table["cond_sd"] / table["pev_sd"]
    fixed = freq.table(Effect.FIXED).dropna(subset=["estimate"]).reset_index(drop=True)
    fixed_rows = pd.DataFrame({
        "term": fixed["term"], "gls": fixed["estimate"], "gls_se": fixed["std_error"],
        "posterior_mean": beta_draws.mean(axis=(0, 1)), "posterior_sd": beta_draws.std(axis=(0, 1), ddof=1),
        "mcse": [float(az.mcse(beta_draws[:, :, j], method="mean")) for j in range(beta_draws.shape[2])],
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
        "With the variance components held at their REML values and flat priors on the fixed effects, the "
        "posterior of the fixed effects and group effects is Gaussian, centred exactly on the GLS estimates "
        "and the BLUPs: the posterior means above differ from the BLUPs only by Monte Carlo error (z_mc, in "
        "Monte Carlo standard errors). Its SDs are the prediction-error SDs of Henderson's mixed-model "
        "equations (pev_sd), which count the uncertainty of the estimated fixed effects. lme4's condVar and "
        "statsmodels' random_effects_cov (cond_sd) hold the fixed effects fixed and are smaller. A full "
        "Bayesian fit goes one step further and also averages over the variance components.")
    return Demo(table, summary, explanation, fixed_rows)


def _posterior_mode(draws: np.ndarray) -> float:
    """The mode of a positive quantity's draws, from a Gaussian kernel density on a fine grid."""
    from scipy.stats import gaussian_kde

    draws = np.asarray(draws, dtype=float).ravel()
    grid = np.linspace(0.0, np.quantile(draws, 0.995), 2000)
    # reflect at zero so that a mode at the boundary is not pushed inward
    kde = gaussian_kde(np.concatenate([draws, -draws]))
    return float(grid[np.argmax(kde(grid))])


def _random_intercept_model(design, prior_scale_name: str):
    """y ~ fixed + (1 | g), non-centred; the group SD's HalfNormal scale is a data variable."""
    import pymc as pm

    block = design.blocks[0]
    x = design.x_estimable.to_numpy()
    with pm.Model() as model:
        scale = pm.Data(prior_scale_name, 1.0)
        beta = pm.Normal("beta", 0.0, 100.0, shape=x.shape[1])
        sd_group = pm.HalfNormal("sd_group", sigma=scale)
        sd_resid = pm.HalfCauchy("sd_resid", 5.0)
        u = pm.Normal("u", 0.0, 1.0, shape=len(block.levels))
        mu = pm.math.dot(x, beta) + sd_group * u[block.codes]
        pm.Normal("y", mu, sd_resid, observed=design.y)
    return model


def prior_flattening(freq_reml: FitResult, freq_ml: FitResult, scales: tuple[float, ...] = PRIOR_SCALES,
                     draws: int = 1000, tune: int = 1000, chains: int = 2, seed: int = 1) -> Demo:
    """Posterior of a random intercept's SD under HalfNormal(scale) priors of growing scale."""
    import nutpie
    import pymc as pm  # noqa: F401 - the model module needs it loaded

    from compare_kit.engines.compile_cache import compile_pymc_model

    design = freq_reml.design
    if len(design.blocks) != 1 or list(design.blocks[0].z.columns) != ["(Intercept)"]:
        raise ValueError("prior_flattening needs a model with one random intercept, e.g. varying_intercept")
    group = design.blocks[0].group
    reml = _sd(freq_reml, group)
    ml = _sd(freq_ml, group)
    # compiled as the engine compiles (no fastmath); no disk cache: the prior scale is shared data
    compiled, _ = compile_pymc_model(_random_intercept_model(design, "prior_scale"), ["sd_group"], None)
    rows = []
    for scale in scales:
        idata = nutpie.sample(compiled.with_data(prior_scale=float(scale)), draws=draws, tune=tune,
                              chains=chains, cores=chains, seed=seed, progress_bar=False)
        sd = np.asarray(idata["posterior"]["sd_group"]).ravel()
        rows.append({"prior": f"HalfNormal({scale:g})", "prior_scale": scale,
                     "posterior_mode": _posterior_mode(sd), "posterior_median": float(np.median(sd)),
                     "posterior_mean": float(sd.mean()), "conf_low": float(np.quantile(sd, 0.025)),
                     "conf_high": float(np.quantile(sd, 0.975)), "reml": reml, "ml": ml})
    table = pd.DataFrame(rows)
    table["mode_minus_reml"] = table["posterior_mode"] - reml
    summary = table[["prior", "posterior_mode", "posterior_median", "reml", "ml"]].tail(1).reset_index(drop=True)
    explanation = (
        f"The SD of the {group} intercepts under ever wider HalfNormal priors. A narrow prior pulls the "
        "posterior toward zero; as the prior widens it stops mattering, and the posterior mode settles at "
        "the REML estimate (REML is the mode of the posterior under flat priors on the fixed effects and "
        "the variance parameters). The posterior median and mean stay above the mode: an SD's posterior is "
        "bounded at zero and has a long right tail, which is why a posterior mean of an SD sits above the "
        "frequentist estimate even when the two analyses agree.")
    return Demo(table, summary, explanation)


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
    explanation = (
        "Here REML estimates the group SD at zero: the group means differ no more than chance alone would "
        "make them differ. A variance cannot be negative, so the estimate sits on the boundary and every "
        "BLUP is shrunk all the way to zero — the model says the groups are identical. The posterior does "
        "not collapse: it weighs every SD the data allow, and small positive SDs remain plausible, so the "
        "posterior of the SD stays positive and the group effects keep a little of each group's own "
        "deviation. Neither answer is wrong; they summarise the same flat likelihood differently (a mode "
        "at zero versus an average over a right-skewed posterior).")
    return Demo(table, summary, explanation)
