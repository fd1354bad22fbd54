"""``coverage_study``: simulate from the radon varying-intercept model, fit both engines, summarise.

For each number of groups ``k`` in ``config.groups``, ``config.sims`` data sets are
simulated from ``Truth`` on the radon design with ``k`` counties (``config.py``) and
each is fitted by

* the frequentist engine (REML): fixed effects with Wald 95% intervals, the group SD
  and the residual SD with profile-likelihood 95% intervals (REML criterion; the ML
  profile, lme4's ``confint`` default, beside it), BLUPs of the group effects;
* the Bayesian engine (nutpie, default priors): posterior means and equal-tailed
  95% intervals, posterior means of the group effects.

The result's ``table`` says, per number of groups, engine, parameter and interval
method, how often the interval contained the truth (``coverage``), with its Monte
Carlo standard error ``sqrt(p (1 - p) / n)``, the mean width, and the bias and RMSE of
the point estimate; ``group_effects`` compares the RMSE of BLUPs and posterior means
against the simulated group effects. Work is split into tasks of ``config.chunk``
simulations, each seeded from (seed, k, simulation), and run on local worker
processes or a Dask cluster with the same results.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare_kit.coverage.config import PARAMETERS, CoverageConfig, CoverageError, SamplerConfig, radon_design
from compare_kit.coverage.runner import TaskFailure, run_tasks
from compare_kit.coverage.tasks import make_tasks

TABLE_FILES = ("coverage.csv", "coverage_group_effects.csv", "coverage_intervals.csv", "coverage_fits.csv",
               "coverage_failures.csv")
INTERVAL_COLUMNS = ["n_groups", "sim", "engine", "parameter", "method", "truth", "estimate", "conf_low",
                    "conf_high", "covered", "width"]
FIT_COLUMNS = ["n_groups", "sim", "engine", "sampler_seed", "converged", "boundary", "max_rhat",
               "min_ess_bulk", "divergences", "group_rmse", "profile_tau_gap", "seconds"]
FAILURE_COLUMNS = [f.name for f in dataclasses.fields(TaskFailure)]


@dataclass(frozen=True, eq=False)
class CoverageResult:
    """The tables of a coverage study (tidy DataFrames) and how it ran."""

    config: CoverageConfig
    table: pd.DataFrame  # coverage per n_groups x engine x parameter x method
    group_effects: pd.DataFrame  # RMSE of BLUPs and posterior means, per n_groups
    intervals: pd.DataFrame  # raw: one row per data set x engine x parameter x method
    fits: pd.DataFrame  # raw: one row per data set x engine (health, timings)
    failures: pd.DataFrame  # every failed attempt; final = True: the task's data sets are missing
    tasks: pd.DataFrame  # per task: worker, seconds, attempts
    executor: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def designs(self) -> pd.DataFrame:
        """Per number of groups: homes (rows), group sizes and the share of ground-floor homes."""
        rows = []
        for k in self.config.groups:
            d = radon_design(k, self.config.design_seed)
            sizes = np.bincount(d.codes)
            rows.append({"n_groups": k, "rows": d.n, "min_size": int(sizes.min()),
                         "median_size": float(np.median(sizes)), "max_size": int(sizes.max()),
                         "share_floor_1": float(d.x[:, 1].mean())})
        return pd.DataFrame(rows)

    @property
    def settings(self) -> dict[str, Any]:
        c = self.config
        return {"groups": list(c.groups), "sims": c.sims, "seed": c.seed, "chunk": c.chunk,
                "design_seed": c.design_seed, "level": c.level, "retries": c.retries,
                **{f"truth_{k}": v for k, v in dataclasses.asdict(c.truth).items()},
                **{f"sampler_{k}": v for k, v in dataclasses.asdict(c.sampler).items()},
                "executor": self.executor}

    def write_csvs(self, folder: str | Path) -> list[Path]:
        """The five tables as CSV (full precision), written atomically."""
        from compare_kit.io import write_csv_atomic

        folder = Path(folder)
        frames = dict(zip(TABLE_FILES, (self.table, self.group_effects, self.intervals, self.fits,
                                        self.failures), strict=True))
        return [write_csv_atomic(folder / name, frames[name]) for name in TABLE_FILES]


def _mc_se(p: pd.Series, n: pd.Series) -> pd.Series:
    return np.sqrt(p * (1 - p) / n)


def summarise(intervals: pd.DataFrame) -> pd.DataFrame:
    """The coverage table: one row per n_groups x engine x parameter x method."""
    keys = ["n_groups", "engine", "parameter", "method"]
    if intervals.empty:
        return pd.DataFrame(columns=[*keys, "truth", "n_datasets", "coverage", "coverage_mc_se", "mean_width",
                                     "mean_width_mc_se", "bias", "rmse"])
    g = intervals.assign(error=intervals["estimate"] - intervals["truth"]).groupby(keys, sort=False)
    out = g.agg(truth=("truth", "first"), n_datasets=("covered", "size"), coverage=("covered", "mean"),
                mean_width=("width", "mean"), width_sd=("width", "std"), bias=("error", "mean"),
                mse=("error", lambda e: float(np.mean(np.square(e))))).reset_index()
    out["coverage_mc_se"] = _mc_se(out["coverage"], out["n_datasets"])
    out["mean_width_mc_se"] = out["width_sd"].fillna(0.0) / np.sqrt(out["n_datasets"])
    out["rmse"] = np.sqrt(out["mse"])
    order = {p: i for i, p in enumerate(PARAMETERS)}
    out = out.sort_values(["n_groups", "parameter", "engine", "method"],
                          key=lambda s: s.map(order) if s.name == "parameter" else s, kind="stable")
    return out[[*keys, "truth", "n_datasets", "coverage", "coverage_mc_se", "mean_width", "mean_width_mc_se",
                "bias", "rmse"]].reset_index(drop=True)


def summarise_group_effects(fits: pd.DataFrame) -> pd.DataFrame:
    """RMSE of the group-effect estimates against the simulated effects, per n_groups and engine.

    ``rmse``: square root of the mean over data sets of each data set's mean squared error;
    ``mean_rmse`` and its Monte Carlo SE: the average of the per-data-set RMSEs;
    ``difference_vs_blup``: the paired mean difference of per-data-set RMSEs, posterior means
    minus BLUPs (negative: posterior means closer to the truth), over data sets where both fitted.
    """
    cols = ["n_groups", "engine", "estimator", "n_datasets", "rmse", "mean_rmse", "mean_rmse_mc_se",
            "difference_vs_blup", "difference_mc_se"]
    if fits.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for k, frame in fits.groupby("n_groups", sort=True):
        wide = frame.pivot(index="sim", columns="engine", values="group_rmse")
        for engine, estimator in (("frequentist", "BLUP"), ("bayesian", "posterior mean")):
            if engine not in wide:
                continue
            v = wide[engine].dropna()
            row = {"n_groups": k, "engine": engine, "estimator": estimator, "n_datasets": len(v),
                   "rmse": float(np.sqrt(np.mean(v**2))), "mean_rmse": float(v.mean()),
                   "mean_rmse_mc_se": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan,
                   "difference_vs_blup": 0.0 if engine == "frequentist" else np.nan,
                   "difference_mc_se": np.nan}
            if engine == "bayesian" and "frequentist" in wide:
                both = wide[["bayesian", "frequentist"]].dropna()
                diff = both["bayesian"] - both["frequentist"]
                row["difference_vs_blup"] = float(diff.mean())
                if len(diff) > 1:
                    row["difference_mc_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff)))
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _as_config(config: CoverageConfig | None, overrides: Mapping[str, Any]) -> CoverageConfig:
    cfg = config or CoverageConfig()
    sampler_keys = {f.name for f in dataclasses.fields(SamplerConfig)}
    top_keys = {f.name for f in dataclasses.fields(CoverageConfig)}
    unknown = set(overrides) - sampler_keys - top_keys
    if unknown:
        raise CoverageError(f"unknown coverage setting(s): {', '.join(sorted(unknown))}")
    sampler = dataclasses.replace(cfg.sampler, **{k: v for k, v in overrides.items() if k in sampler_keys})
    top = {k: (tuple(v) if k == "groups" else v) for k, v in overrides.items() if k in top_keys}
    return dataclasses.replace(cfg, sampler=sampler, **top)


def coverage_study(config: CoverageConfig | None = None, *, workers: int | None = None, scheduler: Any = None,
                   say: Callable[[str], None] = lambda _m: None,
                   faults: Mapping[str, tuple[str, int]] | None = None, **settings: Any) -> CoverageResult:
    """Run the coverage study (see the module docstring).

    Parameters
    ----------
    config : CoverageConfig, optional
        The study; keyword ``settings`` override its fields, e.g. ``groups=(10, 30, 85)``,
        ``sims=200``, ``seed=1``, ``chunk=10``, or the sampler's ``chains``, ``draws``, ``tune``.
    workers : int, optional
        Local worker processes (default: the number of CPUs, at most the number of tasks).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``"tcp://host:8786"``) or a client: run the tasks on that
        cluster instead (its workers need compare_kit). Same results as locally for the same seed.
    faults : mapping, optional
        For tests of the retry logic: task id -> (``"raise"`` or ``"exit"``, failing attempts).
    """
    import os

    cfg = _as_config(config, settings)
    tasks = make_tasks(cfg, dict(faults or {}))
    if workers is None:
        workers = min(os.cpu_count() or 1, len(tasks))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CoverageError(f"workers must be a whole number of 1 or more, got {workers!r}")
    workers = min(workers, len(tasks))
    for k in cfg.groups:
        radon_design(k, cfg.design_seed)  # bad designs fail here, before any worker starts
    say(f"coverage study: {cfg.sims} data sets at each of {', '.join(map(str, cfg.groups))} groups, "
        f"{len(tasks)} tasks of up to {cfg.chunk}")
    t0 = time.perf_counter()
    outcome = run_tasks(tasks, workers=workers, scheduler=scheduler, retries=cfg.retries, say=say)
    wall = time.perf_counter() - t0
    # in task order, not in the order they finished
    outputs = [outcome.outputs[t.id] for t in tasks if t.id in outcome.outputs]
    intervals = pd.DataFrame([r for o in outputs for r in o.intervals], columns=INTERVAL_COLUMNS)
    fits = pd.DataFrame([r for o in outputs for r in o.fits], columns=FIT_COLUMNS)
    failures = pd.DataFrame([dataclasses.astuple(f) for f in outcome.failures],
                            columns=FAILURE_COLUMNS).sort_values(
        ["task", "attempt"], kind="stable").reset_index(drop=True)
    attempts = failures.groupby("task")["attempt"].max().to_dict() if len(failures) else {}
    task_rows = [{"task": t.id, "n_groups": t.n_groups, "sims": t.stop - t.start,
                  "done": t.id in outcome.outputs,
                  "attempts": attempts.get(t.id, 0) + (1 if t.id in outcome.outputs else 0),
                  "worker": outcome.outputs[t.id].worker if t.id in outcome.outputs else "",
                  "seconds": outcome.outputs[t.id].seconds if t.id in outcome.outputs else np.nan,
                  "build_seconds": outcome.outputs[t.id].info.get("build_seconds", np.nan)
                  if t.id in outcome.outputs else np.nan} for t in tasks]
    per_engine = fits.groupby("engine")["seconds"].mean().to_dict() if len(fits) else {}
    timings = {"wall": wall, "tasks_total": float(np.nansum([r["seconds"] for r in task_rows])),
               **{f"mean_fit_{e}": float(v) for e, v in per_engine.items()}}
    return CoverageResult(cfg, summarise(intervals), summarise_group_effects(fits), intervals, fits, failures,
                          pd.DataFrame(task_rows), outcome.executor, timings)
