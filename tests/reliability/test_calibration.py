"""Simulation-based calibration (Talts et al. 2018) of the Bayesian engine on a random-intercept design.

For each simulation: draw (intercept, group SD, residual SD) from the prior, simulate
8 groups x 5 rows, fit, and count how many of L = 99 thinned posterior draws fall
below the true value (the rank, 0..99). If the engine computes the posterior the
model implies, every parameter's ranks are uniform; a chi-square test on 10 equal
bins checks that at a nominal family-wise alpha of 6e-4 (2e-4 per parameter,
Bonferroni). The seeds are fixed, but that does not make the test deterministic: the
draws pass through BLAS, whose kernels differ between machines in the last bits, and
NUTS trajectories then part, so the ranks are random and alpha is the test's
false-failure probability. (With 200 simulations the chi-square tail is slightly
optimistic: simulating 16 million uniform multinomials gives 2.3e-4 per parameter,
so 7e-4 for the three, 8e-4 at 100 simulations.) The 99 thinned draws are close to
independent (over 30 simulations the ESS of the 100 thinned draws had a median of 86-105;
a lower ESS only coarsens a rank, it keeps it about uniform).

The model is the one compare_kit's engine builds (``bayesian._build``: Bambi,
non-centred, the priors below set explicitly, so nothing is scaled to the data) and
the draws are read back by the engine's own reader (``read_draws.bambi_draws``). Only the
compilation is shared: the observed values become a shared variable, so nutpie
compiles once and each simulation swaps the data (a full ``fit_bayesian`` compiles
for ~3 s, which would make 200 simulations take 10 minutes). ``test_fast_path_is_the_engine``
checks that this shortcut gives what ``fit_bayesian`` gives.

Size: ``--sbc-sims N`` or ``COMPARE_KIT_SBC_SIMS`` (default 200, ~30 s on 2 cores);
the ranks go to ``sbc_ranks.csv`` and the p-values to ``sbc_summary.csv`` in
``--sbc-dir`` / ``COMPARE_KIT_SBC_DIR`` (default: a pytest temporary folder), and the
path is printed in the terminal summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import compare_kit as ck
from tests.reliability.conftest import SBC_REPORT

pytestmark = pytest.mark.slow

N_GROUPS, N_ROWS = 8, 5
PRIORS = {"(Intercept)": "Normal(0, 1)", "sd__(Intercept)": "HalfNormal(1)",
          "sd__Observation": "HalfNormal(1)"}
FORMULA = "y ~ 1 + (1 | g)"
CHAINS, DRAWS, TUNE, THIN, L = 4, 250, 300, 10, 99  # 1000 draws, every 10th, the first 99
BINS = 10
ALPHA = 6e-4  # family-wise false-failure probability (nominal); each parameter is tested at ALPHA / 3
SEED = 20240607
PARAMETERS = ("intercept", "group_sd", "residual_sd")


@dataclass
class FastEngine:
    """compare_kit's model for the SBC design, compiled once; ``fit(y, seed)`` -> canonical draws."""

    design: object
    naming: object
    built: object
    compiled: object

    @classmethod
    def build(cls) -> FastEngine:
        import pytensor

        from compare_kit.design import build_design
        from compare_kit.engines.bambi_names import build_naming
        from compare_kit.engines.bayesian import _build
        from compare_kit.engines.compile_cache import compile_pymc_model
        from compare_kit.engines.priors import Priors

        placeholder = sbc_frame(np.linspace(-1.0, 1.0, N_GROUPS * N_ROWS))  # replaced in every simulation
        design = build_design(ck.ModelSpec.from_formula(FORMULA), placeholder)
        naming = build_naming(design)
        built = _build(design, naming, Priors.coerce(PRIORS))
        model = built.model
        (observed,) = model.observed_RVs
        model.rvs_to_values[observed] = pytensor.shared(design.y.copy(), name="sbc_y")
        compiled, _ = compile_pymc_model(model, built.var_names, None)  # as fit_bayesian compiles it
        return cls(design, naming, built, compiled)

    def fit(self, y: np.ndarray, seed: int) -> tuple[dict[str, np.ndarray], int]:
        import nutpie

        from compare_kit.engines.read_draws import bambi_draws
        from compare_kit.engines.sampling import SamplerRun, sampler_stats

        compiled = self.compiled.with_data(sbc_y=np.asarray(y, dtype=float))
        idata = nutpie.sample(compiled, draws=DRAWS, tune=TUNE, chains=CHAINS, cores=2, seed=seed,
                              progress_bar=False)
        divergences, saturation = sampler_stats(idata)
        canonical = bambi_draws(SamplerRun(idata, "nutpie", 0.0, 0.0, divergences, saturation), self.design,
                                 self.naming, self.built)
        draws = {"intercept": canonical.fixed[..., 0], "group_sd": canonical.blocks[0].sd[..., 0],
                 "residual_sd": canonical.residual}
        return draws, divergences


def sbc_frame(y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"y": y, "g": np.repeat([f"g{j}" for j in range(N_GROUPS)], N_ROWS)})


def prior_objects() -> dict[str, object]:
    """The very Prior objects handed to the engine: the simulation draws from these."""
    from compare_kit.engines.priors import Priors

    overrides = dict(Priors.coerce(PRIORS).overrides)
    return {"intercept": overrides["(Intercept)"], "group_sd": overrides["sd__(Intercept)"],
            "residual_sd": overrides["sd__Observation"]}


def draw_from(prior, rng: np.random.Generator) -> float:
    kw = prior.kwargs
    match prior.dist:
        case "Normal":
            return float(rng.normal(kw["mu"], kw["sigma"]))
        case "HalfNormal":
            return float(abs(rng.normal(0.0, kw["sigma"])))
    raise AssertionError(f"no simulator for {prior}")


def simulate(rng: np.random.Generator, priors: dict[str, object]) -> tuple[dict[str, float], np.ndarray]:
    truth = {name: draw_from(priors[name], rng) for name in PARAMETERS}
    effects = rng.normal(0.0, truth["group_sd"], N_GROUPS)
    noise = rng.normal(0.0, truth["residual_sd"], N_GROUPS * N_ROWS)
    y = truth["intercept"] + np.repeat(effects, N_ROWS) + noise
    return truth, y


def thinned(draws: np.ndarray) -> np.ndarray:
    flat = draws.reshape(-1)[::THIN][:L]  # chains one after another; every 10th draw is ~independent here
    assert flat.size == L
    return flat


def chi_square_p(ranks: np.ndarray) -> float:
    counts = np.bincount(ranks * BINS // (L + 1), minlength=BINS)
    return float(stats.chisquare(counts).pvalue)


@pytest.fixture(scope="module")
def engine() -> FastEngine:
    return FastEngine.build()


def test_the_simulated_prior_is_the_fitted_prior(engine):
    record = engine.built.prior_record
    assert record["(Intercept)"].startswith("Normal(mu=0, sigma=1)  [set]")
    assert record["sd__(Intercept)|g"].startswith("HalfNormal(sigma=1)  [set]")
    assert record["sd__Observation"].startswith("HalfNormal(sigma=1)  [set]")
    priors = prior_objects()
    resolved = engine.built.priors
    assert resolved.fixed[0].prior == priors["intercept"]
    assert resolved.block_sd[0][0] == priors["group_sd"]
    assert resolved.residual == priors["residual_sd"]
    assert not resolved.center  # an explicit intercept prior is on the uncentred intercept


def test_fast_path_is_the_engine(engine):
    """The compiled-once model with swapped data gives what fit_bayesian gives on the same data and seed."""
    truth, y = simulate(np.random.default_rng(SEED - 1), prior_objects())
    draws, _ = engine.fit(y, seed=SEED)
    fit = ck.fit_bayesian(ck.ModelSpec.from_formula(FORMULA), sbc_frame(y), draws=DRAWS, tune=TUNE,
                          chains=CHAINS, seed=SEED, priors=PRIORS, cores=2)
    pars = fit.table("ran_pars").set_index("group")["estimate"]
    engine_means = {"intercept": fit.table("fixed")["estimate"].item(), "group_sd": pars["g"],
                    "residual_sd": pars["Residual"]}
    for name in PARAMETERS:
        # the same model, seed, data and arithmetic twice in one process (only the source of y differs:
        # shared vs constant): equal draws by construction, on any machine, as both use its one BLAS kernel
        assert np.mean(draws[name]) == pytest.approx(engine_means[name], rel=1e-6, abs=1e-9), name


def test_ranks_are_uniform(engine, sbc_sims, sbc_dir):
    priors = prior_objects()
    rng = np.random.default_rng(SEED)
    rows = []
    for sim in range(sbc_sims):
        truth, y = simulate(rng, priors)
        draws, divergences = engine.fit(y, seed=SEED + 1 + sim)
        row = {"sim": sim, "divergences": divergences}
        for name in PARAMETERS:
            row[f"true_{name}"] = truth[name]
            row[f"rank_{name}"] = int((thinned(draws[name]) < truth[name]).sum())
            row[f"mean_{name}"] = float(draws[name].mean())
        row["rank_group_sd_if_halved"] = int((thinned(draws["group_sd"]) / 2 < truth["group_sd"]).sum())
        rows.append(row)
    ranks = pd.DataFrame(rows)
    summary = pd.DataFrame([{
        "parameter": name, "simulations": sbc_sims, "posterior_draws_ranked": L, "bins": BINS,
        "chi_square_p": chi_square_p(ranks[f"rank_{name}"].to_numpy()),
        "ks_p": float(stats.kstest((ranks[f"rank_{name}"] + 0.5) / (L + 1), "uniform").pvalue),
        "alpha": ALPHA / len(PARAMETERS),
    } for name in PARAMETERS])
    ranks.to_csv(sbc_dir / "sbc_ranks.csv", index=False)
    summary.to_csv(sbc_dir / "sbc_summary.csv", index=False)
    SBC_REPORT.append(f"ranks: {sbc_dir / 'sbc_ranks.csv'} ({sbc_sims} simulations); summary: "
                      f"{sbc_dir / 'sbc_summary.csv'}")
    SBC_REPORT.extend(f"  {r.parameter}: chi-square p = {r.chi_square_p:.3f}, KS p = {r.ks_p:.3f} "
                      f"(alpha {r.alpha:.4f})" for r in summary.itertuples())
    SBC_REPORT.append(f"  divergent transitions: {int(ranks['divergences'].sum())} in "
                      f"{sbc_sims * CHAINS * DRAWS} draws")
    if sbc_sims >= 50:
        # the data really change between simulations: the posterior follows the truth. false-failure
        # probability: < 1e-9 at 200 simulations, <= 1e-4 at 50 (bootstrap of a 200-simulation run:
        # correlation 0.935 +- 0.012 at 200, P(< 0.8) = 5e-5 at 50; fewer simulations are not checked)
        assert np.corrcoef(ranks["true_intercept"], ranks["mean_intercept"])[0, 1] > 0.8
    for r in summary.itertuples():
        # false-failure probability: <= 3e-4 per parameter, <= 8e-4 for the three (see the docstring)
        assert r.chi_square_p > r.alpha, f"{r.parameter}: ranks not uniform (p = {r.chi_square_p:.2g})"
    if sbc_sims >= 100:
        # power: an engine whose group-SD draws were half what they should be fails this test.
        # false-failure probability: < 1e-9 (74% of the halved ranks fall in the top bin; a million
        # multinomial resamples of 100 gave chi-square >= 198, where p < 1e-6 needs only 47)
        assert chi_square_p(ranks["rank_group_sd_if_halved"].to_numpy()) < 1e-6
