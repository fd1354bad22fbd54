"""Run one NUTS implementation on a PyMC model; report what actually ran.

Three samplers: nutpie (default; the model's log density compiled with numba),
PyMC's own NUTS, and numpyro (through PyMC's JAX bridge, optional install).
The sampler's name is read from the draws' metadata, never assumed, and the
sampler statistics (divergences, tree depth) are read from the draws too.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pymc as pm

from compare_kit.errors import FitError

MAX_TREE_DEPTH = 10


class Sampler(StrEnum):
    """The NUTS implementations fit_bayesian can run."""

    NUTPIE = "nutpie"
    PYMC = "pymc"
    NUMPYRO = "numpyro"


@dataclass(frozen=True)
class SamplerSettings:
    draws: int
    tune: int
    chains: int
    cores: int
    seed: int
    progress: bool
    target_accept: float
    compile_cache: Path | None = None  # folder of compile_cache's entries; None: nutpie's own compile
    say: Callable[[str], None] | None = None  # told the draws done every PROGRESS_SECONDS (nutpie only)


@dataclass(frozen=True, eq=False)
class SamplerRun:
    """The draws and what the sampler reported about itself."""

    idata: Any  # xarray DataTree with posterior and sample_stats groups
    sampler: str  # from the draws' metadata
    compile_seconds: float
    sample_seconds: float
    divergences: int
    tree_depth_saturation: int
    tune_seconds: float = float("nan")
    compile_cache: str = "off"  # compile_cache's status: hit, miss, unsaved, off, uncacheable: ...  # tuning share of sample_seconds (nutpie, 20 ms resolution; NaN if unknown)


def run_sampler(model: pm.Model, sampler: Sampler, settings: SamplerSettings,
                var_names: list[str]) -> SamplerRun:
    """Compile and sample ``model``; return draws with sampler statistics."""
    t_tune = float("nan")
    cache = "off"
    match sampler:
        case Sampler.NUTPIE:
            idata, t_compile, t_sample, t_tune, cache = _run_nutpie(model, settings, var_names)
        case Sampler.PYMC:
            idata, t_compile, t_sample = _run_pymc(model, settings, var_names)
        case Sampler.NUMPYRO:
            idata, t_compile, t_sample = _run_numpyro(model, settings, var_names)
    divergences, saturation = sampler_stats(idata)
    return SamplerRun(idata, sampler_name(idata), t_compile, t_sample, divergences, saturation, t_tune,
                      cache)


def sampler_name(idata: Any) -> str:
    """The inference library recorded in the draws' metadata ("unknown" if absent)."""
    for group in ("posterior", "sample_stats"):
        if group in idata.children:
            name = idata[group].attrs.get("inference_library")
            if name:
                return str(name)
    return "unknown"


def sampler_stats(idata: Any) -> tuple[int, int]:
    """Divergent transitions and draws that hit the maximum tree depth."""
    stats = idata["sample_stats"]
    divergences = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    for name in ("maxdepth_reached", "reached_max_treedepth"):
        if name in stats:
            return divergences, int(np.asarray(stats[name]).sum())
    if "tree_depth" in stats:
        return divergences, int((np.asarray(stats["tree_depth"]) >= MAX_TREE_DEPTH).sum())
    return divergences, 0


class _TuningClock:
    """nutpie's progress callback: each chain's sampling time spent tuning and in total, and, when
    given ``say``, the iterations done so far every ``every`` seconds."""

    def __init__(self, say: Callable[[str], None] | None = None, every: float = float("inf")) -> None:
        self.tune_ms: dict[int, float] = {}
        self.total_ms: dict[int, float] = {}
        self.say, self.every = say, every
        self.began = self.last = time.perf_counter()

    def __call__(self, chains: list[Any]) -> None:
        for i, chain in enumerate(chains):
            runtime = float(chain.runtime_ms)
            self.total_ms[i] = runtime
            if chain.tuning:
                self.tune_ms[i] = runtime
        now = time.perf_counter()
        if self.say is not None and now - self.last >= self.every:
            self.last = now
            done = sum(int(c.finished_draws) for c in chains)
            total = sum(int(c.total_draws) for c in chains)
            phase = "tuning" if any(c.tuning for c in chains) else "drawing"
            self.say(f"  sampling: {done} of {total} iterations of {len(chains)} chains, {phase} "
                     f"({now - self.began:.0f} s)")

    def share(self) -> float:
        total = sum(self.total_ms.values())
        return sum(self.tune_ms.values()) / total if total > 0 else float("nan")


def _run_nutpie(model: pm.Model, s: SamplerSettings, var_names: list[str]
                ) -> tuple[Any, float, float, float, str]:
    import nutpie

    from compare_kit.engines.compile_cache import compile_pymc_model

    t0 = time.perf_counter()
    compiled, cache = compile_pymc_model(model, var_names, s.compile_cache)
    t1 = time.perf_counter()
    from compare_kit.engines.lmm import PROGRESS_SECONDS

    clock = _TuningClock(s.say, PROGRESS_SECONDS)
    idata = nutpie.sample(compiled, draws=s.draws, tune=s.tune, chains=s.chains, cores=s.cores,
                          seed=s.seed, save_warmup=False, progress_bar=s.progress,
                          target_accept=s.target_accept, progress_callback=clock, progress_rate=20)
    t_sample = time.perf_counter() - t1
    return idata, t1 - t0, t_sample, t_sample * clock.share(), cache


def _chain_seeds(seed: int, chains: int) -> list[int]:
    return [int(v) for v in np.random.default_rng(seed).integers(2**30, size=chains)]


def _run_pymc(model: pm.Model, s: SamplerSettings, var_names: list[str]) -> tuple[Any, float, float]:
    seeds = _chain_seeds(s.seed, s.chains)
    t0 = time.perf_counter()
    initial_points, step = pm.init_nuts(init="jitter+adapt_diag", chains=s.chains, model=model,
                                        random_seed=seeds, progressbar=False, quiet=True,
                                        tune=s.tune, target_accept=s.target_accept)
    t1 = time.perf_counter()
    idata = pm.sample(draws=s.draws, tune=s.tune, chains=s.chains, cores=s.cores, step=step,
                      initvals=initial_points, random_seed=seeds, model=model,
                      nuts_sampler="pymc", var_names=var_names, progressbar=s.progress,
                      compute_convergence_checks=False, quiet=not s.progress)
    return idata, t1 - t0, time.perf_counter() - t1


def _run_numpyro(model: pm.Model, s: SamplerSettings, var_names: list[str]) -> tuple[Any, float, float]:
    missing = [m for m in ("numpyro", "jax") if importlib.util.find_spec(m) is None]
    if missing:
        raise FitError(f"the numpyro sampler needs {' and '.join(missing)}, which is not installed; "
                       "install it with: pip install 'compare_kit[numpyro]' (or pip install numpyro), "
                       "or choose sampler='nutpie' (the default) or sampler='pymc'")
    t0 = time.perf_counter()
    idata = pm.sample(draws=s.draws, tune=s.tune, chains=s.chains, random_seed=s.seed, model=model,
                      nuts_sampler="numpyro", var_names=var_names, progressbar=s.progress,
                      compute_convergence_checks=False, quiet=not s.progress,
                      nuts={"chain_method": "vectorized", "target_accept": s.target_accept})
    # numpyro traces and compiles inside sampling: that time is in "sample", compile is unknown
    return idata, float("nan"), time.perf_counter() - t0
