"""Studies: which data, which models, which settings — read from a TOML file — and running them.

The default radon study is itself such a file (``compare_kit/studies/radon.toml``).
Errors in a study file name the key and, where it can be found, the line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from compare_kit.errors import CompareKitError, SpecError
from compare_kit.family import Family, coerce_family, coerce_success
from compare_kit.results import FitResult
from compare_kit.settings import DEFAULT_CHAINS, DEFAULT_DRAWS, DEFAULT_SEED, DEFAULT_TUNE, setting_problem
from compare_kit.spec import ModelSpec
from compare_kit.wording import count

if TYPE_CHECKING:
    from compare_kit.compare import Comparison
    from compare_kit.predictive import KFoldPredictions
    from compare_kit.teaching import Demo

DEFAULT_STUDY = "radon.toml"
SRRS2_STUDY = "srrs2.toml"  # the three-level study of the full survey (bundled, or the user's copy)
_SETTINGS = {"seed": int, "draws": int, "tune": int, "chains": int, "sampler": str, "priors": str,
             "method": str, "cv_folds": int, "panel_levels": list, "demos": bool, "mixedlm": bool}


class StudyError(CompareKitError):
    """A study file is malformed: names the key and the line."""


@dataclass(frozen=True)
class ModelEntry:
    label: str
    spec: ModelSpec
    priors: str | None = None


@dataclass(frozen=True)
class Settings:
    seed: int = DEFAULT_SEED
    draws: int = DEFAULT_DRAWS
    tune: int = DEFAULT_TUNE
    chains: int = DEFAULT_CHAINS
    sampler: str = "nutpie"
    priors: str = "default"
    method: str = "REML"
    cv_folds: int = 10
    panel_levels: tuple[str, ...] = ()
    demos: bool = True  # the teaching demonstrations (one-level random-intercept experiments)
    mixedlm: bool = True  # statsmodels MixedLM beside compare_kit's engine where it can fit the model


@dataclass(frozen=True)
class Study:
    """What to fit: a title, where the data come from, the models and the settings."""

    title: str
    data_source: str  # "radon", "csv" or "srrs2"
    csv_path: Path | None
    models: tuple[ModelEntry, ...]
    settings: Settings = field(default_factory=Settings)
    source_file: str = ""
    primary: str = ""  # the label of the model the user wrote (checked first); "" for none in particular
    data_path: Path | None = None  # srrs2: the folder holding srrs2.dat and cty.dat (None: the bundled copy)
    exclude_states: tuple[str, ...] = ()  # srrs2: values of its state column left out (e.g. "R5")
    # [value_labels.COLUMN]: what the values of a numeric predictor mean, for the figures' axes
    value_labels: dict[str, dict[float, str]] = field(default_factory=dict)

    def load_data(self) -> pd.DataFrame:
        from compare_kit.data import load_csv, load_radon

        if self.data_source == "radon":
            return load_radon()
        if self.data_source == "srrs2":
            return self._load_srrs2()
        text_columns = {g for m in self.models for g in m.spec.grouping_columns}
        text_columns |= {v.column for m in self.models for t in m.spec.fixed for v in t.variables
                         if v.categorical}
        return load_csv(self.csv_path, text_columns=sorted(text_columns))

    def _load_srrs2(self) -> pd.DataFrame:
        from compare_kit.srrs2 import load_srrs2

        data = load_srrs2(self.data_path)  # None: the copy bundled with compare_kit
        attrs = dict(data.attrs)
        if self.exclude_states:
            present = set(data["state"].astype(str))
            unknown = [s for s in self.exclude_states if s not in present]
            if unknown:
                raise StudyError(f"{self.source_file or 'study'}: data.exclude_states names "
                                 f"{', '.join(repr(u) for u in unknown)}, which the survey does not have; "
                                 f"its states are {', '.join(sorted(present))}")
            keep = ~data["state"].astype(str).isin(self.exclude_states)
            attrs["excluded"] = {s: int((data["state"] == s).sum()) for s in self.exclude_states}
            data = data[keep].reset_index(drop=True)
        # the survey has homes without a recorded floor and counties without uranium: keep only homes
        # every model can use, so that all models (and their LOO, AIC and cross-validation) share the rows
        columns = list(dict.fromkeys(c for m in self.models for c in m.spec.columns if c in data.columns))
        missing = data[columns].isna()
        attrs["incomplete"] = {c: int(missing[c].sum()) for c in columns if missing[c].any()}
        attrs["incomplete_rows"] = int(missing.any(axis=1).sum())
        data = data[~missing.any(axis=1)].reset_index(drop=True)
        data.attrs = attrs
        return data

    def with_settings(self, **changes: Any) -> Study:
        values = {**self.settings.__dict__, **{k: v for k, v in changes.items() if v is not None}}
        return dataclasses.replace(self, settings=Settings(**values))

    def with_data_path(self, path: str | Path | None) -> Study:
        """The study with its srrs2 data folder set (the folder holding srrs2.dat and cty.dat; None: the
        copy bundled with compare_kit)."""
        if self.data_source != "srrs2":
            raise StudyError(f"{self.source_file or 'this study'} reads {self.data_source!r} data, not the "
                             "srrs2 survey; a srrs2 folder applies only to a study with source = \"srrs2\"")
        return dataclasses.replace(self, data_path=None if path is None else Path(path))

    def check(self, data: pd.DataFrame) -> None:
        """Build every model's design before anything is fitted, the user's own model first, so that a
        bad table is refused with a message about that model and before any sampling."""
        from compare_kit.design import build_design

        order = sorted(self.models, key=lambda m: m.label != self.primary)
        for entry in order:
            build_design(entry.spec, data)


def default_study_path() -> Path:
    return Path(str(resources.files("compare_kit") / "studies" / DEFAULT_STUDY))


def srrs2_study_path() -> Path:
    """The packaged three-level study of the full radon survey (reads the bundled srrs2.dat and cty.dat)."""
    return Path(str(resources.files("compare_kit") / "studies" / SRRS2_STUDY))


def load_study(path: str | Path | None = None) -> Study:
    """Read a study file (default: the packaged radon study)."""
    path = Path(path) if path is not None else default_study_path()
    if not path.is_file():
        raise StudyError(f"no study file at {str(path)!r}; give the path of a .toml study file")
    text = path.read_text(encoding="utf-8-sig")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from None
    return parse_study(raw, text, source=str(path), base=path.parent)


def parse_study(raw: dict[str, Any], text: str = "", source: str = "study", base: Path = Path(".")) -> Study:
    def fail(key: str, message: str) -> StudyError:
        line = _line_of(text, key)
        where = f" (line {line})" if line else ""
        return StudyError(f"{source}: {key}{where}: {message}")

    known = {"title", "data", "settings", "models", "value_labels"}
    for key in raw:
        if key not in known:
            raise fail(key, f"unknown key; a study has {', '.join(sorted(known))}")
    title = raw.get("title", "compare_kit study")
    if not isinstance(title, str):
        raise fail("title", "must be text")
    data = raw.get("data", {"source": "radon"})
    if not isinstance(data, dict):
        raise fail("data", "must be a table with source = \"radon\" or csv = \"path\"")
    source_kind, csv_path, data_path, exclude = _data_source(data, fail, base)
    settings = _settings(raw.get("settings", {}), fail)
    models_raw = raw.get("models")
    if not isinstance(models_raw, dict) or not models_raw:
        raise fail("models", "needs at least one [models.NAME] table with a formula")
    models = []
    for label, entry in models_raw.items():
        key = f"models.{label}"
        if not isinstance(entry, dict) or "formula" not in entry:
            raise fail(key, "needs formula = \"...\"")
        unknown = set(entry) - {"formula", "priors", "family", "success"}
        if unknown:
            raise fail(f"{key}.{sorted(unknown)[0]}", "unknown key; a model has formula, priors, family and "
                                                       "success")
        if not isinstance(entry["formula"], str):
            raise fail(f"{key}.formula", "must be text")
        spec = _model_spec(entry, label, key, fail)
        priors = entry.get("priors")
        if priors is not None and not isinstance(priors, str):
            raise fail(f"{key}.priors", "must be a preset name: default, tutorial or vague")
        models.append(ModelEntry(label, spec, priors))
    return Study(title, source_kind, csv_path, tuple(models), settings, source, data_path=data_path,
                 exclude_states=exclude, value_labels=_value_labels(raw.get("value_labels", {}), fail))


def _model_spec(entry: dict[str, Any], label: str, key: str, fail: Callable[[str, str], StudyError]) -> ModelSpec:
    """A model table's spec: its formula read with its family and success level (errors name the key)."""
    family, success = entry.get("family"), entry.get("success")
    if family is not None and not isinstance(family, str):
        raise fail(f"{key}.family", f"must be a family name such as \"poisson\", got {family!r}")
    try:
        coerce_family(family)
    except SpecError as exc:
        raise fail(f"{key}.family", str(exc)) from None
    try:
        coerce_success(success, coerce_family(family))
    except SpecError as exc:
        raise fail(f"{key}.success", str(exc)) from None
    try:
        return ModelSpec.from_formula(entry["formula"], label=label, family=family, success=success)
    except SpecError as exc:
        raise fail(f"{key}.formula", str(exc)) from None


def _value_labels(raw: Any, fail: Callable[[str, str], StudyError]) -> dict[str, dict[float, str]]:
    """``[value_labels.floor]`` with ``0 = "basement (0)"``: each column's numeric values and their labels."""
    if not isinstance(raw, dict):
        raise fail("value_labels", "must be a table of [value_labels.COLUMN] tables")
    out: dict[str, dict[float, str]] = {}
    for column, labels in raw.items():
        key = f"value_labels.{column}"
        if not isinstance(labels, dict) or not labels:
            raise fail(key, "must be a table of value = \"label\" lines, e.g. 0 = \"basement\"")
        out[column] = {}
        for value, label in labels.items():
            try:
                number = float(value)
            except ValueError:
                raise fail(key, f"{value!r} is not a number; labels name a numeric column's values") from None
            if not isinstance(label, str):
                raise fail(key, f"the label of {value} must be text")
            out[column][number] = label
    return out


def _data_source(data: dict[str, Any], fail: Callable[[str, str], StudyError],
                 base: Path) -> tuple[str, Path | None, Path | None, tuple[str, ...]]:
    """(source, csv path, srrs2 folder, excluded states) from the [data] table; paths relative to ``base``."""
    if data.get("source") == "srrs2":
        unknown = set(data) - {"source", "path", "exclude_states"}
        if unknown:
            raise fail(f"data.{sorted(unknown)[0]}", "unknown key; a srrs2 data source has source, path "
                                                      "and exclude_states")
        folder = None
        if "path" in data:
            if not isinstance(data["path"], str) or not data["path"].strip():
                raise fail("data.path", "must be the path of the folder holding srrs2.dat and cty.dat")
            folder = Path(data["path"]).expanduser()
            folder = folder if folder.is_absolute() else base / folder
        exclude = data.get("exclude_states", [])
        if not isinstance(exclude, list) or not all(isinstance(v, str) for v in exclude):
            raise fail("data.exclude_states", "must be a list of state codes, e.g. [\"R5\"]")
        return "srrs2", None, folder, tuple(exclude)
    unknown = set(data) - {"source", "csv"}
    if unknown:
        raise fail(f"data.{sorted(unknown)[0]}", "unknown key; data has source = \"radon\" or csv = \"path\"")
    if "csv" in data:
        if not isinstance(data["csv"], str):
            raise fail("data.csv", "must be a file path")
        path = Path(data["csv"])
        return "csv", path if path.is_absolute() else base / path, None, ()
    if data.get("source", "radon") != "radon":
        raise fail("data.source", "must be \"radon\" or \"srrs2\" (or give csv = \"path\")")
    return "radon", None, None, ()


def _settings(raw: Any, fail: Callable[[str, str], StudyError]) -> Settings:
    if not isinstance(raw, dict):
        raise fail("settings", "must be a table")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _SETTINGS:
            raise fail(f"settings.{key}", f"unknown setting; known: {', '.join(_SETTINGS)}")
        kind = _SETTINGS[key]
        if kind is int and setting_problem(key, value):
            raise fail(f"settings.{key}", setting_problem(key, value))
        if kind is bool and not isinstance(value, bool):
            raise fail(f"settings.{key}", f"must be true or false, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise fail(f"settings.{key}", f"must be text, got {value!r}")
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(f"settings.{key}", "must be a list of group names")
            value = tuple(value)
        values[key] = value
    if values.get("method", "REML") not in ("REML", "ML"):
        raise fail("settings.method", "must be \"REML\" or \"ML\"")
    return Settings(**values)


def _line_of(text: str, dotted_key: str) -> int | None:
    """The line where a dotted key is set: ``models.x.formula`` in ``[models.x]`` or inline."""
    if not text:
        return None
    parts = dotted_key.split(".")
    lines = text.splitlines()
    table: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        header = re.match(r"\[([^\]]+)\]", stripped)
        if header:
            table = [p.strip().strip('"') for p in header.group(1).split(".")]
            if table == parts:
                return number
            continue
        match = re.match(r"([A-Za-z0-9_\"-]+)\s*=", stripped)
        if match and table + [match.group(1).strip('"')] == parts:
            return number
        if match and not table and match.group(1) == parts[0]:
            return number
    return None


@dataclass(frozen=True, eq=False)
class StudyResult:
    """Everything a study produced, ready for the report and the tables."""

    study: Study
    data: pd.DataFrame
    fits: dict[str, tuple[FitResult, FitResult]]  # label -> (frequentist, Bayesian)
    comparisons: dict[str, Comparison]  # label -> the comparison of its two fits
    predictive: PredictiveTables
    demos: Demos
    timings: dict[str, float]

    @property
    def problems(self) -> tuple[str, ...]:
        """Every fit's warnings, each as ``label (engine): warning``."""
        return tuple(f"{label} ({fit.engine}): {w}" for label, pair in self.fits.items() for fit in pair
                     for w in fit.health.warnings)

    @property
    def estimates(self) -> pd.DataFrame:
        return pd.concat([r.estimates for pair in self.fits.values() for r in pair], ignore_index=True)

    @property
    def fit_stats(self) -> pd.DataFrame:
        return pd.concat([r.fit_stats for pair in self.fits.values() for r in pair], ignore_index=True)

    @property
    def diagnostics(self) -> pd.DataFrame:
        frames = [b.diagnostics for _, b in self.fits.values() if b.diagnostics is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def equivalence(self) -> pd.DataFrame:
        return pd.concat([c.equivalence for c in self.comparisons.values()], ignore_index=True)

    @property
    def shrinkage(self) -> pd.DataFrame:
        frames = [c.shrinkage.assign(model=label) for label, c in self.comparisons.items()
                  if len(c.shrinkage)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True)
class PredictiveTables:
    """A study's predictive checks, one row per model (and engine).

    A Gaussian study fills ``rmsd`` and ``cv``; a study of a discrete family (bernoulli, binomial,
    poisson) fills ``scores`` and ``cv_scores`` instead (``predictive.DiscreteScores`` rows) and leaves
    ``rmsd`` and ``cv`` empty."""

    rmsd: pd.DataFrame  # in-sample RMSD: how closely each fit recreates the data (the tutorial's check)
    cv: pd.DataFrame  # out-of-sample RMSE: K-fold refits (frequentist) beside PSIS-LOO (Bayesian)
    loo: pd.DataFrame  # PSIS-LOO beside AIC and BIC
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # in-sample log score, Brier, deviance
    cv_scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # the same, K-fold and PSIS-LOO

    @property
    def discrete(self) -> bool:
        """Whether these are the scores of a discrete outcome (not RMSD and RMSE)."""
        return not self.rmsd.columns.size and bool(self.scores.columns.size)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"rmsd": self.rmsd, "cv": self.cv, "loo": self.loo, "scores": self.scores,
                "cv_scores": self.cv_scores}


@dataclass(frozen=True)
class Demos:
    """The teaching demonstrations a study ran (None: not run)."""

    conditional_equivalence: Demo | None = None
    prior_flattening: Demo | None = None
    boundary: Demo | None = None
    glmm_approximation: Demo | None = None  # a GLMM study's: Laplace, quadrature and MCMC side by side

    def ran(self) -> dict[str, Demo]:
        """The demonstrations that ran, by name, in the report's order."""
        return {f.name: d for f in dataclasses.fields(self) if (d := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class SideWork:
    """What ``side_work`` returns: the K-fold refits' predictions, the demonstrations and their timings."""

    kfold: KFoldPredictions | None  # None: no Gaussian model (a discrete family's checks are scores)
    demos: Demos
    timings: dict[str, float]


@dataclass(frozen=True)
class TeachingModels:
    """The models the demonstrations fit: ``conditional`` (conditional equivalence: the study's first
    mixed model itself, any structure) and ``random_intercept`` (prior flattening: one random intercept,
    the study's own or one derived from ``conditional``)."""

    conditional: ModelSpec
    random_intercept: ModelSpec


def teaching_spec(study: Study) -> TeachingModels | None:
    """The demonstrations' models (None: the study has no mixed model). Prior flattening needs one
    random intercept: the study's own such model, else one derived from its first mixed model (same
    response and fixed part, an intercept for its first grouping factor, labelled ``varying_intercept``)."""
    mixed = [m.spec for m in study.models if m.spec.random]
    if not mixed:
        return None
    first = mixed[0]
    for spec in mixed:
        if len(spec.random) == 1 and spec.random[0].term_labels == ("(Intercept)",):
            return TeachingModels(first, spec)
    fixed = " + ".join(t.to_formula() for t in first.fixed) or "1"
    group = ":".join(first.random[0].grouping)
    return TeachingModels(first, first.sibling(f"{fixed} + (1 | {group})", "varying_intercept"))


def side_work(study: Study, data: pd.DataFrame, demos: bool,
              say: Callable[[str], None] | None = None) -> SideWork:
    """The part of a study that needs no Bayesian fit of the study's models: the statsmodels K-fold
    refits and the teaching demonstrations. ``run_study`` runs it beside the model fits.

    The demonstrations' frequentist fits skip MixedLM (``mixedlm=False``): the same optimum, sooner.
    ``say`` hears each step as it starts and ends; by default the lines go to the parent process
    when this runs in a worker (``processes.worker_say``), and nowhere otherwise.
    """
    from compare_kit import predictive, teaching
    from compare_kit.engines.frequentist import fit_frequentist
    from compare_kit.processes import worker_say

    say = worker_say if say is None else say
    s = study.settings
    timings: dict[str, float] = {}

    def step(what: str, run: Callable[[], Any]) -> Any:
        say(f"{what} ...")
        t0 = time.perf_counter()
        value = run()
        timings[what] = time.perf_counter() - t0
        say(f"{what}: {timings[what]:.0f} s")
        return value

    specs = [m.spec for m in study.models]
    if is_discrete(study):
        kfold = None
        ran = Demos()
        if demos and study.settings.demos and teaching_spec(study) is not None:
            from compare_kit.teaching_glmm import approximation_demo

            ran = Demos(glmm_approximation=step(
                "demonstration: Laplace, adaptive quadrature and MCMC (constructed binary data)",
                lambda: approximation_demo(draws=s.draws, tune=s.tune, chains=s.chains, seed=s.seed)))
        return SideWork(kfold, ran, timings)
    kfold = step("cross-validation refits",
                 lambda: predictive.kfold_predictions(specs, data, folds=s.cv_folds, seed=s.seed))
    models = teaching_spec(study)
    ran = Demos()
    if demos and study.settings.demos and models is not None:
        t0 = time.perf_counter()
        conditional = fit_frequentist(models.conditional, data, mixedlm=False)
        reml = (conditional if models.random_intercept is models.conditional
                else fit_frequentist(models.random_intercept, data, mixedlm=False))
        ml = fit_frequentist(models.random_intercept, data, method="ML", mixedlm=False)
        ran = Demos(
            conditional_equivalence=step(
                f"demonstration: conditional equivalence on {models.conditional}",
                lambda: teaching.conditional_equivalence(conditional, draws=s.draws, tune=min(s.tune, 500),
                                                         chains=s.chains, seed=s.seed)),
            prior_flattening=step(
                f"demonstration: prior flattening on {models.random_intercept}",
                lambda: teaching.prior_flattening(reml, ml, draws=s.draws, tune=s.tune, chains=2, seed=s.seed)),
            boundary=step("demonstration: the boundary case (a constructed data set)",
                          lambda: teaching.boundary_demo(draws=s.draws, tune=s.tune, chains=s.chains,
                                                         seed=s.seed)))
        timings["teaching demonstrations"] = time.perf_counter() - t0
    return SideWork(kfold, ran, timings)


def is_discrete(study: Study) -> bool:
    """Whether the study's models are of a discrete family (bernoulli, binomial, poisson): one family
    for all of them (``study_family``)."""
    return study_family(study) is not Family.GAUSSIAN


def study_family(study: Study) -> Family:
    """The one family of the study's models; a ``StudyError`` when they mix families (their predictive
    checks and PSIS-LOO would compare densities of different outcomes)."""
    families = {m.spec.family for m in study.models}
    if len(families) > 1:
        names = ", ".join(f"{m.label} ({m.spec.family.value})" for m in study.models)
        raise StudyError(f"{study.source_file or 'study'}: the models mix families ({names}); a study's models "
                         "share one family, so that their predictive checks score the same outcome: put "
                         "each family in its own study")
    return families.pop()


def run_study(study: Study, say: Callable[[str], None] = lambda _m: None,
              demos: bool = True, workers: int | None = None) -> StudyResult:
    """Fit every model with both engines, compare them, and run the checks and demonstrations.

    ``workers``: processes to use (default: 2 where the machine has 2 or more CPUs, else 1).
    With 2, the statsmodels cross-validation refits and the teaching demonstrations run in a
    second process (``compare_kit.processes.Sidecar``) while this one fits the models; the tables are the
    same as with ``workers=1``, which runs everything here, one step after another.
    """
    from compare_kit.engines.bayesian import fit_bayesian
    from compare_kit.engines.frequentist import fit_frequentist
    from compare_kit import predictive
    from compare_kit.compare import compare
    from compare_kit.outcomes import FitSide, check_fit_available
    from compare_kit.processes import Sidecar

    if workers is None:
        workers = 2 if (os.cpu_count() or 1) >= 2 else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
    s = study.settings
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data = study.load_data()
    study.check(data)
    discrete = is_discrete(study)
    for entry in study.models:  # before any fit or second process starts
        check_fit_available(entry.spec, FitSide.STUDY)
    sidecar = None
    if workers > 1:
        say("cross-validation refits and teaching demonstrations run in a second process ...")
        sidecar = Sidecar(side_work, study, data, demos, progress_to=say)
    try:
        fits: dict[str, tuple[FitResult, FitResult]] = {}
        comparisons: dict[str, Comparison] = {}
        for entry in study.models:
            t0 = time.perf_counter()
            kind = ("GLM" if not entry.spec.random else "ML, Laplace") if discrete else (
                "OLS" if not entry.spec.random else s.method)
            say(f"[{entry.label}] frequentist fit ({kind}) ...")
            freq = fit_frequentist(entry.spec, data, method=s.method, mixedlm=s.mixedlm, progress=say)
            say(f"[{entry.label}] {freq.engine.label}: {freq.seconds:.1f} s. Bayesian fit ({s.chains} chains x "
                f"{s.draws} draws, {s.sampler}) ...")
            bayes = fit_bayesian(entry.spec, data, draws=s.draws, tune=s.tune, chains=s.chains,
                                 seed=s.seed, priors=entry.priors or s.priors, sampler=s.sampler, progress=say)
            fits[entry.label] = (freq, bayes)
            comparisons[entry.label] = compare(freq, bayes)
            timings[f"fit {entry.label}"] = time.perf_counter() - t0
            say(f"[{entry.label}] {bayes.engine.label}: {bayes.seconds:.1f} s")
        t0 = time.perf_counter()
        if discrete:
            say("predictive checks: in-sample scores and cross-validated scores ...")
            rmsd = pd.DataFrame()
            scores = predictive.scores_table([x for f, b in fits.values()
                                              for x in predictive.in_sample_scores(f, b)])
            cv_scores = predictive.scores_table([
                x for entry in study.models for x in predictive.cross_validated_scores(
                    entry.spec, data, folds=s.cv_folds, seed=s.seed, bayes=fits[entry.label][1])])
        else:
            say("predictive checks: in-sample RMSD ...")
            rmsd = pd.concat([predictive.in_sample_rmsd(f, b) for f, b in fits.values()], ignore_index=True)
            scores = cv_scores = pd.DataFrame()
        say(f"predictive checks: PSIS-LOO of {count(len(fits), 'Bayesian fit')} over {count(len(data), 'row')} ...")
        loo = predictive.loo_table(list(fits.values()))
        timings["predictive checks"] = time.perf_counter() - t0
        say(f"predictive checks: {timings['predictive checks']:.0f} s")
        if sidecar is None:
            if demos and teaching_spec(study) is not None:
                say("teaching demonstrations ...")
            side = side_work(study, data, demos, say)
        else:
            t0 = time.perf_counter()
            say("waiting for the second process ...")
            side = sidecar.result()
            timings["waiting for the second process"] = time.perf_counter() - t0
    finally:
        if sidecar is not None:
            sidecar.close()
    cv = (pd.DataFrame() if side.kfold is None
          else predictive.cv_table(side.kfold, [b for _, b in fits.values()]))
    tables = PredictiveTables(rmsd, cv, loo, scores, cv_scores)
    timings.update(side.timings)
    timings["total"] = time.perf_counter() - start
    return StudyResult(study, data, fits, comparisons, tables, side.demos, timings)
