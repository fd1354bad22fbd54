"""The coverage study's settings, the true model and the designs it simulates from.

Truth (``Truth``): the radon varying-intercept model
``log_radon = a + b * floor + u[county] + e`` with ``u ~ N(0, tau)`` and
``e ~ N(0, sigma)``, at constants rounded from the REML fit of
``log_radon ~ floor + (1 | county)`` to the survey (lme4: a = 1.4924, b = -0.6629,
tau = 0.3154, sigma = 0.7258); they are constants here, never refitted at run time.

Designs (``radon_design``): for ``k`` groups, real counties with their real homes
(rows) and floor values. ``k = 85`` is the whole survey (919 homes); ``k < 85`` is a
fixed subset of counties drawn without replacement by a generator seeded with
``SeedSequence([design_seed, k])``; ``k > 85`` draws counties with replacement (each
draw a new group with that county's rows), so any number of groups is possible with
group sizes and floor values taken from the real survey. The design is fixed for all
simulations of one ``k``: only the group effects and the noise are simulated.

Seeds: simulation ``i`` at ``k`` groups uses ``SeedSequence([seed, k, i])``; its first
child seeds the data, its second gives the sampler's seed. Nothing depends on how the
simulations are split into tasks or on which worker runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from compare_kit.errors import CompareKitError
from compare_kit.settings import setting_problem

RESPONSE, PREDICTOR, GROUP = "log_radon", "floor", "county"
FORMULA = f"{RESPONSE} ~ {PREDICTOR} + (1 | {GROUP})"
N_COUNTIES = 85
PARAMETERS = ("(Intercept)", "floor", "sd__(Intercept)", "sd__Observation")


class CoverageError(CompareKitError):
    """Bad settings for a coverage study (exit code 2 on the command line)."""


@dataclass(frozen=True)
class Truth:
    """The data-generating values (rounded from the REML fit to the radon survey)."""

    intercept: float = 1.49
    floor: float = -0.66
    group_sd: float = 0.32
    residual_sd: float = 0.73

    def value(self, parameter: str) -> float:
        return {"(Intercept)": self.intercept, "floor": self.floor, "sd__(Intercept)": self.group_sd,
                "sd__Observation": self.residual_sd}[parameter]


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings of every Bayesian fit (nutpie; ``cores`` threads per fit).

    Shorter than ``fit_bayesian``'s default (4 x 2000 after 1000) to fit hundreds of data sets
    into minutes; ``target_accept`` is the engine's default. Each fit's R-hat, bulk ESS and
    divergences are kept in the study's ``fits`` table.
    """

    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.8
    cores: int = 1


@dataclass(frozen=True)
class CoverageConfig:
    """Everything that determines a coverage study's results (the executor does not)."""

    groups: tuple[int, ...] = (10, 30, 85)
    sims: int = 200  # data sets per number of groups
    seed: int = 1
    chunk: int = 10  # simulations per task (a task amortises the model build)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    truth: Truth = field(default_factory=Truth)
    design_seed: int = 20261202
    level: float = 0.95
    retries: int = 2  # extra attempts for a task that fails

    def __post_init__(self) -> None:
        def whole(name: str, value: object, low: int, high: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
                raise CoverageError(f"{name} must be a whole number from {low} to {high}, got {value!r}")

        def shared(name: str, value: object, low: int | None = None) -> None:
            problem = setting_problem(name, value, low)
            if problem:
                raise CoverageError(f"{name} {problem}")

        if not self.groups:
            raise CoverageError("groups must list at least one number of groups, e.g. (10, 30, 85)")
        for k in self.groups:
            whole("each number of groups", k, 3, 5000)
        if len(set(self.groups)) != len(self.groups):
            raise CoverageError(f"groups must not repeat a number: {self.groups}")
        whole("sims", self.sims, 1, 1_000_000)
        shared("seed", self.seed)
        whole("chunk", self.chunk, 1, 100_000)
        whole("design_seed", self.design_seed, 0, 2**32 - 1)
        whole("retries", self.retries, 0, 100)
        shared("chains", self.sampler.chains)
        shared("draws", self.sampler.draws, low=10)  # R-hat and ESS need a few draws per chain
        shared("tune", self.sampler.tune, low=10)
        whole("cores", self.sampler.cores, 1, 64)
        if not 0 < self.level < 1 or not 0 < self.sampler.target_accept < 1:
            raise CoverageError("level and target_accept must lie strictly between 0 and 1")
        if self.truth.group_sd <= 0 or self.truth.residual_sd <= 0:
            raise CoverageError("the true SDs must be positive")


@dataclass(frozen=True, eq=False)
class SimDesign:
    """The rows of one design: floor values and group codes, with the real counties behind them."""

    n_groups: int
    frame: pd.DataFrame  # county (group label), floor, source_county; the response is simulated
    codes: np.ndarray  # per row, index of its group
    x: np.ndarray  # (n, 2): intercept, floor

    @property
    def n(self) -> int:
        return len(self.frame)

    def simulate(self, rng: np.random.Generator, truth: Truth) -> tuple[np.ndarray, np.ndarray]:
        """(y, u): the group effects first, then the noise, from one generator."""
        u = rng.normal(0.0, truth.group_sd, self.n_groups)
        e = rng.normal(0.0, truth.residual_sd, self.n)
        y = truth.intercept + truth.floor * self.x[:, 1] + u[self.codes] + e
        return y, u

    def data(self, y: np.ndarray) -> pd.DataFrame:
        return self.frame[[GROUP, PREDICTOR]].assign(**{RESPONSE: y})


@cache
def _survey() -> pd.DataFrame:
    from compare_kit.data import load_radon

    return load_radon()[[GROUP, PREDICTOR, RESPONSE]].reset_index(drop=True)


@cache
def radon_design(n_groups: int, design_seed: int) -> SimDesign:
    """The design with ``n_groups`` groups (see the module docstring)."""
    survey = _survey()
    counties = sorted(survey[GROUP].unique())
    if n_groups == len(counties):
        chosen = counties
    else:
        rng = np.random.default_rng(np.random.SeedSequence([design_seed, n_groups]))
        replace = n_groups > len(counties)
        chosen = [counties[i] for i in rng.choice(len(counties), size=n_groups, replace=replace)]
        if not replace:
            chosen = sorted(chosen)
    parts = []
    width = len(str(n_groups))
    for j, county in enumerate(chosen):
        rows = survey[survey[GROUP] == county]
        label = county if n_groups <= len(counties) else f"g{j + 1:0{width}d}_{county}"
        parts.append(pd.DataFrame({GROUP: label, PREDICTOR: rows[PREDICTOR].to_numpy(dtype=float),
                                   "source_county": county, "code": j}))
    frame = pd.concat(parts, ignore_index=True)
    # group codes in the order the engines sort levels (text order), so effects line up by label
    labels = sorted(frame[GROUP].unique())
    index = {lv: i for i, lv in enumerate(labels)}
    frame["code"] = frame[GROUP].map(index).astype(int)
    frame = frame.sort_values(["code"], kind="stable").reset_index(drop=True)
    codes = frame["code"].to_numpy()
    if np.ptp(frame[PREDICTOR].to_numpy()) == 0:
        raise CoverageError(f"the design with {n_groups} groups has no variation in floor")
    x = np.column_stack([np.ones(len(frame)), frame[PREDICTOR].to_numpy(dtype=float)])
    return SimDesign(n_groups, frame.drop(columns="code"), codes, x)


def real_response(design: SimDesign) -> np.ndarray:
    """The survey's own log_radon for the design's rows, group by group (the priors are scaled to it)."""
    survey = _survey()
    parts = [survey.loc[survey[GROUP] == c, RESPONSE].to_numpy() for c in design.frame.drop_duplicates(
        GROUP)["source_county"]]
    return np.concatenate(parts)


def sim_seeds(seed: int, n_groups: int, index: int) -> tuple[np.random.Generator, int]:
    """The data generator and the sampler seed of simulation ``index`` at ``n_groups`` groups."""
    data_ss, sampler_ss = np.random.SeedSequence([seed, n_groups, index]).spawn(2)
    return np.random.default_rng(data_ss), int(sampler_ss.generate_state(1)[0])
