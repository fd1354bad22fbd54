"""One task of the coverage study: a chunk of simulations at one number of groups.

A task is a frozen, picklable value; ``run_task`` runs it anywhere (a local worker
process or a Dask worker) and returns plain rows. Every simulation's seeds come from
``SeedSequence([seed, n_groups, index])`` (``config.sim_seeds``), so a task's output
depends only on the task, never on the worker, the executor or the chunking.

``fault`` injects a failure for testing the retry logic: ``"raise"`` raises on the
first ``fault_attempts`` attempts, ``"exit"`` ends the worker process abruptly.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compare_kit.coverage.config import CoverageConfig, radon_design, sim_seeds


class InjectedFault(RuntimeError):
    """A deliberate failure (tests of the retry logic)."""


@dataclass(frozen=True)
class Task:
    n_groups: int
    start: int  # first simulation index (inclusive)
    stop: int  # last simulation index (exclusive)
    config: CoverageConfig
    attempt: int = 0
    fault: str = ""  # "", "raise" or "exit"
    fault_attempts: int = 0  # attempts that fail (0, 1, ...)

    @property
    def id(self) -> str:
        return f"k{self.n_groups}-s{self.start:06d}-{self.stop:06d}"


@dataclass(frozen=True)
class TaskOutput:
    task_id: str
    intervals: list[dict]
    fits: list[dict]
    seconds: float
    worker: str
    info: dict[str, Any] = field(default_factory=dict)


def make_tasks(config: CoverageConfig, faults: dict[str, tuple[str, int]] | None = None) -> list[Task]:
    """Every task of a study, in a fixed order; ``faults`` maps task ids to (kind, failing attempts)."""
    faults = dict(faults or {})
    tasks = []
    for k in config.groups:
        for start in range(0, config.sims, config.chunk):
            t = Task(k, start, min(start + config.chunk, config.sims), config)
            kind, attempts = faults.pop(t.id, ("", 0))
            tasks.append(Task(k, t.start, t.stop, config, fault=kind, fault_attempts=attempts))
    if faults:
        raise ValueError(f"faults name unknown tasks: {sorted(faults)}")
    return tasks


def _limit_threads() -> Any:
    """One BLAS thread per worker: the workers already use every core."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def run_task(task: Task) -> TaskOutput:
    """Simulate and fit every data set of the task with both engines."""
    from compare_kit.coverage import fits

    if task.fault and task.attempt < task.fault_attempts:
        if task.fault == "exit":
            os._exit(17)
        raise InjectedFault(f"injected fault in task {task.id} (attempt {task.attempt + 1})")
    t0 = time.perf_counter()
    cfg = task.config
    sim_design = radon_design(task.n_groups, cfg.design_seed)
    intervals: list[dict] = []
    fit_rows: list[dict] = []
    info: dict[str, Any] = {}
    with _limit_threads():
        compile_t0 = time.perf_counter()
        fits.fast_bayes(task.n_groups, cfg.design_seed)
        info["build_seconds"] = time.perf_counter() - compile_t0
        for index in range(task.start, task.stop):
            rng, sampler_seed = sim_seeds(cfg.seed, task.n_groups, index)
            y, u = sim_design.simulate(rng, cfg.truth)
            base = {"n_groups": task.n_groups, "sim": index}
            for engine in ("frequentist", "bayesian"):
                if engine == "frequentist":
                    rows, health, effects = fits.fit_frequentist(sim_design, y, cfg, base)
                else:
                    rows, health, effects = fits.fit_bayesian(sim_design, y, sampler_seed, cfg, base)
                health["group_rmse"] = float(np.sqrt(np.mean((effects - u) ** 2)))
                health["sampler_seed"] = sampler_seed if engine == "bayesian" else -1
                intervals += rows
                fit_rows.append(health)
    worker = f"{os.uname().nodename}:{os.getpid()}"
    return TaskOutput(task.id, intervals, fit_rows, time.perf_counter() - t0, worker, info)
