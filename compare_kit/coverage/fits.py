"""Fitting one simulated data set with both engines (runs inside a worker process).

Frequentist: ``compare_kit.fit_frequentist`` by REML (the engine itself, without the
ML refit behind AIC/BIC): fixed effects with their Wald 95% intervals, BLUPs of the
group effects; the group SD and the residual SD with profile-likelihood 95%
intervals of the REML criterion (``profile.py``; the ML profile, which is what lme4's
``confint(method = "profile")`` computes, is reported beside it).

Bayesian: the model ``fit_bayesian`` builds for this design with its default priors
(Bambi's weakly informative, data-scaled priors), built ONCE per design and compiled
once per worker process by nutpie; every simulation swaps in its response with
``compiled.with_data(...)`` and samples. The priors are therefore Bambi's defaults
scaled to the real survey's response on the design's rows (its mean and SD), not
re-scaled to each simulated response: the simulated responses have the survey's
scale, so the difference is a few percent in a weakly informative prior's width (a
test checks the posterior equals ``fit_bayesian``'s within Monte Carlo error). The
draws are read back by the engine's own reader (``read_draws.bambi_draws``), posterior
means and equal-tailed 95% intervals are taken from them, and R-hat / ESS come from
``posterior._diagnose`` (arviz).

Determinism: the model is compiled as the engine compiles it
(``compile_cache.compile_pymc_model``: PyTensor's numba functions without fastmath,
whose fresh and disk-cached machine code round alike), and PyTensor's on-disk numba
cache is also switched off while compiling, so every worker compiles the same graph to
the same code in memory whatever the state of the machine's caches. A test runs the
pool with an empty PyTensor compile folder and a Dask cluster with the filled one and
gets identical tables; another gets ``fit_bayesian``'s draws bit for bit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from compare_kit.coverage.config import FORMULA, GROUP, CoverageConfig, SimDesign, radon_design, real_response
from compare_kit.coverage.profile import profile_intervals
from compare_kit.settings import RHAT_LIMIT

SHARED_Y = "coverage_y"


@dataclass(frozen=True, eq=False)
class FastBayes:
    """The engine's Bayesian model of one design, compiled once; ``fit(y, seed)`` samples it."""

    design: Any  # compare_kit.design.Design (real response)
    naming: Any
    built: Any
    compiled: Any
    compile_seconds: float

    @classmethod
    def build(cls, sim: SimDesign) -> FastBayes:
        import pytensor

        from compare_kit.design import build_design
        from compare_kit.engines.compile_cache import compile_pymc_model
        from compare_kit.engines.bambi_names import build_naming
        from compare_kit.engines.bayesian import _build
        from compare_kit.engines.priors import Priors
        from compare_kit.spec import ModelSpec

        t0 = time.perf_counter()
        design = build_design(ModelSpec.from_formula(FORMULA), sim.data(real_response(sim)))
        naming = build_naming(design)
        built = _build(design, naming, Priors())  # fit_bayesian's default priors, resolved by Bambi
        model = built.model
        (observed,) = model.observed_RVs
        model.rvs_to_values[observed] = pytensor.shared(design.y.copy(), name=SHARED_Y)
        with pytensor.config.change_flags(numba__cache=False):
            # the engine's own compile (compile_cache.exact_math: no fastmath); no on-disk cache: shared data
            compiled, _ = compile_pymc_model(model, built.var_names, None)
        return cls(design, naming, built, compiled, time.perf_counter() - t0)

    def fit(self, y: np.ndarray, seed: int, cfg: CoverageConfig) -> tuple[Any, Any]:
        """(canonical draws, SamplerRun) of one response."""
        import nutpie

        from compare_kit.engines.read_draws import bambi_draws
        from compare_kit.engines.sampling import SamplerRun, sampler_stats

        s = cfg.sampler
        compiled = self.compiled.with_data(**{SHARED_Y: np.asarray(y, dtype=float)})
        t0 = time.perf_counter()
        idata = nutpie.sample(compiled, draws=s.draws, tune=s.tune, chains=s.chains, cores=s.cores, seed=seed,
                              progress_bar=False, target_accept=s.target_accept, save_warmup=False)
        seconds = time.perf_counter() - t0
        divergences, saturation = sampler_stats(idata)
        run = SamplerRun(idata, "nutpie", self.compile_seconds, seconds, divergences, saturation)
        return bambi_draws(run, self.design, self.naming, self.built), run


_MODELS: dict[tuple[int, int], FastBayes] = {}
_LOCK = threading.Lock()


def fast_bayes(n_groups: int, design_seed: int) -> FastBayes:
    """This process's compiled model of a design (built on first use; thread-safe)."""
    key = (n_groups, design_seed)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = FastBayes.build(radon_design(n_groups, design_seed))
        return _MODELS[key]


def _interval_row(base: dict, engine: str, parameter: str, method: str, truth: float, estimate: float,
                  low: float, high: float) -> dict:
    return {**base, "engine": engine, "parameter": parameter, "method": method, "truth": truth,
            "estimate": float(estimate), "conf_low": float(low), "conf_high": float(high),
            "covered": bool(low <= truth <= high), "width": float(high - low)}


def fit_frequentist(sim: SimDesign, y: np.ndarray, cfg: CoverageConfig, base: dict
                    ) -> tuple[list[dict], dict, np.ndarray]:
    """Interval rows, the fit's health row and the BLUPs (in design code order)."""
    from compare_kit.engines import frequentist
    from compare_kit.spec import ModelSpec

    t0 = time.perf_counter()
    fit = frequentist.fit_frequentist(ModelSpec.from_formula(FORMULA), sim.data(y), method="REML",
                                      conf_level=cfg.level, information_criteria=False)
    est = fit.estimates
    truth = cfg.truth
    rows = []
    for term in ("(Intercept)", "floor"):
        r = est[(est["effect"] == "fixed") & (est["term"] == term)].iloc[0]
        rows.append(_interval_row(base, "frequentist", term, "Wald", truth.value(term), r["estimate"],
                                  r["conf_low"], r["conf_high"]))
    pars = est[est["effect"] == "ran_pars"].set_index("group")["estimate"]
    codes = sim.codes
    profiles = {reml: profile_intervals(y, sim.x, codes, sim.n_groups, reml=reml, level=cfg.level)
                for reml in (True, False)}
    for reml, label in ((True, "profile (REML)"), (False, "profile (ML, as lme4)")):
        p = profiles[reml]
        # REML: statsmodels' estimate (the engine's); ML: the ML optimum the interval is built around
        tau_hat = float(pars[GROUP]) if reml else p.tau.estimate
        sigma_hat = float(pars["Residual"]) if reml else p.sigma.estimate
        rows.append(_interval_row(base, "frequentist", "sd__(Intercept)", label, truth.group_sd, tau_hat,
                                  p.tau.low, p.tau.high))
        rows.append(_interval_row(base, "frequentist", "sd__Observation", label, truth.residual_sd,
                                  sigma_hat, p.sigma.low, p.sigma.high))
    vals = est[est["effect"] == "ran_vals"].set_index("level")["estimate"]
    labels = sim.frame.drop_duplicates(GROUP)[GROUP].to_numpy()
    blups = vals.reindex(labels).to_numpy(dtype=float)
    health = {**base, "engine": "frequentist", "converged": bool(fit.health.converged),
              "boundary": bool(fit.health.boundary),
              "profile_tau_gap": abs(profiles[True].tau.estimate - float(pars[GROUP])),
              "max_rhat": np.nan, "min_ess_bulk": np.nan, "divergences": 0,
              "seconds": time.perf_counter() - t0}
    return rows, health, blups


def fit_bayesian(sim: SimDesign, y: np.ndarray, seed: int, cfg: CoverageConfig, base: dict
                 ) -> tuple[list[dict], dict, np.ndarray]:
    """Interval rows, the fit's health row and the posterior means of the group effects."""
    from compare_kit.engines.posterior import _diagnose

    t0 = time.perf_counter()
    engine = fast_bayes(sim.n_groups, cfg.design_seed)
    draws, run = engine.fit(y, seed, cfg)
    block = draws.blocks[0]
    params = {"(Intercept)": draws.fixed[..., draws.fixed_names.index("(Intercept)")],
              "floor": draws.fixed[..., draws.fixed_names.index("floor")],
              "sd__(Intercept)": block.sd[..., 0], "sd__Observation": draws.residual}
    tail = (1 - cfg.level) / 2
    rows = []
    for name, values in params.items():
        low, high = np.quantile(values, [tail, 1 - tail])
        rows.append(_interval_row(base, "bayesian", name, "posterior equal-tailed", cfg.truth.value(name),
                                  float(values.mean()), low, high))
    effects = block.vals[..., 0]  # (chain, draw, level)
    labels = sim.frame.drop_duplicates(GROUP)[GROUP].tolist()
    order = [block.levels.index(lv) for lv in labels]
    means = effects.mean(axis=(0, 1))[order]
    stacked = np.concatenate([np.stack(list(params.values()), axis=-1), effects], axis=-1)
    rhat, ess_bulk, _ = _diagnose(stacked)
    converged = bool(np.nanmax(rhat) <= RHAT_LIMIT and run.divergences == 0)
    health = {**base, "engine": "bayesian", "converged": converged,
              "boundary": False, "profile_tau_gap": np.nan, "max_rhat": float(np.nanmax(rhat)),
              "min_ess_bulk": float(np.nanmin(ess_bulk)), "divergences": int(run.divergences),
              "seconds": time.perf_counter() - t0}
    return rows, health, means
