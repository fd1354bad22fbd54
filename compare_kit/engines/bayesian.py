"""The Bayesian engine: Bambi where it can express the spec, compare_kit's PyMC model where not.

``fit_bayesian`` builds the design once (the same rows and columns as the
frequentist engine), a Bambi model from generated safe names (``bambi_names``),
resolves the priors (``priors``), and samples with nutpie by default
(``sampling``). Specs with correlated group effects, which Bambi cannot express,
get the PyMC model of ``pymc_models`` with the same priors plus an LKJ prior on
the correlations. With ``method="collapsed"`` the same model is sampled with its group effects
integrated out (``collapsed``; Gaussian, one grouping factor). Draws are translated to canonical
names (``read_draws``) and summarised
(``posterior``) into the tidy schema of ``compare_kit.results``; the fit keeps the models it
sampled (``BayesianFit.pymc_model``, ``bambi_model``) and builds its ArviZ tree from the canonical
draws on first use (``arviz_tree``).
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare_kit.design import INTERCEPT, Design, build_design
from compare_kit.engines.bambi_names import (
    BAMBI_INTERCEPT,
    BAMBI_RESIDUAL,
    BambiNaming,
    build_naming,
    check_fixed_columns,
)
from compare_kit.engines.collapsed import Method, build_collapsed_model, check_collapsible, group_stats
from compare_kit.engines.compile_cache import resolve_cache_dir
from compare_kit.engines.posterior import CanonicalDraws, health_flags, stack_draws, summarise
from compare_kit.engines.priors import Prior, PriorPreset, Priors, Role, preset_priors
from compare_kit.engines.pymc_models import (
    FixedGroup,
    ModelPriors,
    build_pymc_model,
    centring,
    enclosing_intercept_blocks,
)
from compare_kit.engines.read_draws import BuiltModel, canonical_draws
from compare_kit.engines.sampling import Sampler, SamplerRun, SamplerSettings, run_sampler
from compare_kit.errors import DataError, FitError, SpecError
from compare_kit.family import Family
from compare_kit.results import (
    RESIDUAL_TERM,
    BayesianFit,
    EngineName,
    FitStats,
    Health,
    SamplingInfo,
    sd_term,
)
from compare_kit.outcomes import FitSide, check_fit_available
from compare_kit.settings import (
    DEFAULT_CHAINS,
    DEFAULT_DRAWS,
    DEFAULT_SEED,
    DEFAULT_TUNE,
    RHAT_LIMIT,
    setting_problem,
)
from compare_kit.spec import ModelSpec

PriorsArg = Priors | PriorPreset | str | Mapping[str, Prior | str] | None


def fit_bayesian(spec: ModelSpec, data: pd.DataFrame, *, draws: int = DEFAULT_DRAWS, tune: int = DEFAULT_TUNE,
                 chains: int = DEFAULT_CHAINS, seed: int = DEFAULT_SEED, priors: PriorsArg = None,
                 sampler: Sampler | str = Sampler.NUTPIE, progress: bool | Callable[[str], None] = False,
                 cores: int | None = None, target_accept: float = 0.8,
                 conf_level: float = 0.95, compile_cache: Path | str | bool | None = None,
                 method: Method | str = Method.STANDARD) -> BayesianFit:
    """Fit ``spec`` to ``data`` by MCMC; return the tidy estimates, diagnostics and draws.

    Parameters
    ----------
    draws, tune, chains : int
        Draws kept per chain, tuning steps per chain, number of chains. With nutpie a
        draw costs well under a millisecond, so the default keeps 2000 per chain
        (Monte Carlo error about 30% lower than with 1000) for a fraction of a second.
    seed : int
        The same seed gives the same estimates, whatever ``cores``.
    priors : str, mapping or Priors
        A preset (``"default"``, ``"tutorial"``, ``"vague"``) or overrides keyed by
        canonical names, e.g. ``{"preset": "tutorial", "floor": "Normal(0, 1)"}``.
    sampler : {"nutpie", "pymc", "numpyro"}
        The NUTS implementation; nutpie by default.
    progress : bool or callable
        ``True`` shows the sampler's progress bar; a function is told the iterations done, in
        one line every few seconds (nutpie), as ``fit_frequentist``'s ``progress`` is.
    cores : int, optional
        Chains run in parallel (default: as many as chains and CPUs allow).
    compile_cache : folder, True or False, optional
        Where nutpie's compiled model is kept between runs (``compare_kit.engines.compile_cache``):
        default ``$COMPARE_KIT_CACHE_DIR``, else ``~/.cache/compare_kit``; ``False`` compiles
        without it. A hit gives the same draws as a compile.
    method : {"standard", "collapsed"}
        ``"standard"`` (the default) samples the group effects with the other parameters.
        ``"collapsed"`` samples the same model with the group effects integrated out and then draws
        them exactly from their conditional normal at every kept draw
        (``compare_kit.engines.collapsed``): Gaussian models with one grouping factor only.
    """
    settings = _check_options(draws, tune, chains, seed, sampler, progress, cores, target_accept,
                              conf_level)
    settings = dataclasses.replace(settings, compile_cache=resolve_cache_dir(compile_cache))
    sampler = Sampler(sampler)
    method = _check_method(method)
    prior_choice = Priors.coerce(priors)
    t0 = time.perf_counter()
    design = build_design(spec, data)
    check_fit_available(spec, FitSide.BAYESIAN)  # a Gaussian model with an offset: not fitted yet
    if method == Method.COLLAPSED:
        check_collapsible(design)
    _check_categorical_levels(design)
    naming = build_naming(design)
    _check_prior_keys(prior_choice, naming)
    built = _build(design, naming, prior_choice, method)
    t_build = time.perf_counter() - t0
    run = run_sampler(built.model, sampler, settings, built.var_names)
    t2 = time.perf_counter()
    canonical = canonical_draws(run, design, naming, built, settings.seed)
    keys, values = stack_draws(canonical)
    estimates, diagnostics = summarise(keys, values, engine=built.engine.value, model=spec.label,
                                       notes=_alias_notes(design), conf_level=conf_level)
    timings = {"build": t_build, "compile": run.compile_seconds, "sample": run.sample_seconds,
               "tune": run.tune_seconds, "draw": run.sample_seconds - run.tune_seconds,
               "post_process": time.perf_counter() - t2}
    return _result(spec, design, naming, built, run, settings, prior_choice, estimates, diagnostics,
                   canonical, timings)


class EngineModels:
    """The models a fit sampled: the PyMC model and, on the Bambi path, the Bambi model it was built
    from (None on compare_kit's own PyMC path). Held as built; PyMC models do not pickle, so a pickled
    fit keeps only the design and priors and builds the same models again on first use."""

    def __init__(self, design: Design, priors: Priors, built: tuple[Any, Any] | None = None,
                 method: Method = Method.STANDARD) -> None:
        self.design, self.priors, self._built, self.method = design, priors, built, method

    def _get(self) -> tuple[Any, Any]:
        if self._built is None:
            built = _build(self.design, build_naming(self.design), self.priors, self.method)
            self._built = (built.model, built.bambi_model)
        return self._built

    @property
    def pymc(self) -> Any:
        return self._get()[0]

    @property
    def bambi(self) -> Any:
        return self._get()[1]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_built": None}


def _extreme(values: pd.Series, how: str) -> float:
    finite = values.dropna()
    return float(getattr(finite, how)()) if len(finite) else float("nan")


def _result(spec: ModelSpec, design: Design, naming: BambiNaming, built: BuiltModel, run: SamplerRun,
            settings: SamplerSettings, priors: Priors, estimates: pd.DataFrame,
            diagnostics: pd.DataFrame, canonical: CanonicalDraws, timings: dict[str, float]
            ) -> BayesianFit:
    flags = health_flags(diagnostics, run.divergences, run.tree_depth_saturation, settings.chains,
                         settings.draws)
    info = SamplingInfo(
        sampler=run.sampler, seed=settings.seed, chains=settings.chains, draws=settings.draws,
        tune=settings.tune, divergences=run.divergences, tree_depth_saturation=run.tree_depth_saturation,
        timings=timings, priors=built.prior_record, prior_preset=priors.preset.value,
        structure=built.structure, cores=settings.cores, target_accept=settings.target_accept,
        formula=naming.formula, flags=flags, method=Method.COLLAPSED.value if built.stats else
        Method.STANDARD.value, max_rhat=_extreme(diagnostics["rhat"], "max"),
        min_ess_bulk=_extreme(diagnostics["ess_bulk"], "min"),
        min_ess_tail=_extreme(diagnostics["ess_tail"], "min"),
    )
    rhat_ok = settings.chains > 1 and not (diagnostics["rhat"] > RHAT_LIMIT).any()
    n_pars = int((estimates["effect"] == "ran_pars").sum())
    return BayesianFit(
        engine=built.engine, spec=spec, method="MCMC", estimates=estimates,
        stats=FitStats(nobs=design.n, n_groups={b.group: len(b.levels) for b in design.blocks},
                       df=int(design.x.shape[1] + n_pars)),
        health=Health(converged=rhat_ok and run.divergences == 0, optimizer=run.sampler, warnings=flags),
        data_summary=design.summary, design=design, seconds=float(sum(timings[k] for k in
                                                                      ("build", "compile", "sample",
                                                                       "post_process"))),
        diagnostics=diagnostics, sampler_posterior=run.idata, sampling=info, draws=canonical,
        engine_formula=naming.formula, engine_names=naming.legend(design.response_label),
        compile_cache=str(run.compile_cache),
        models=EngineModels(design, priors, (built.model, built.bambi_model),
                            Method.COLLAPSED if built.stats is not None else Method.STANDARD),
    )


def _check_categorical_levels(design: Design) -> None:
    """Bambi refuses a categorical predictor with one level (a bare ValueError); say so clearly first."""
    for column in sorted(design.categorical):
        levels = design.data[column].map(str).unique()
        if len(levels) < 2:
            raise DataError(f"the categorical predictor {column!r} has a single level ({levels[0]!r}) in the rows "
                            "used; the Bayesian engine (Bambi) needs two or more. Leave the term out, or fit "
                            "this model with the frequentist engine only")


# ------------------------------------------------------------------ options


def _check_options(draws: Any, tune: Any, chains: Any, seed: Any, sampler: Any, progress: Any,
                   cores: Any, target_accept: Any, conf_level: Any) -> SamplerSettings:
    def whole(name: str, value: Any) -> int:
        problem = setting_problem(name, value)
        if problem:
            raise FitError(f"{name} {problem}")
        return int(value)

    draws, tune, chains, seed = (whole(n, v) for n, v in (("draws", draws), ("tune", tune), ("chains", chains),
                                                           ("seed", seed)))
    if sampler not in {s.value for s in Sampler}:
        raise FitError(f"unknown sampler {sampler!r}; accepted: {', '.join(s.value for s in Sampler)}")
    say = progress if callable(progress) else None
    if say is not None:
        progress = False
    if not isinstance(progress, bool):
        raise FitError(f"progress must be True, False or a function taking one line of text, got {progress!r}")
    if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int | np.integer)
                              or not 1 <= cores <= chains):
        raise FitError(f"cores must be a whole number from 1 to {chains}, got {cores!r}")
    cores = min(chains, os.cpu_count() or 1) if cores is None else int(cores)
    for name, value in (("target_accept", target_accept), ("conf_level", conf_level)):
        if isinstance(value, bool) or not isinstance(value, float | int) or not 0 < value < 1:
            raise FitError(f"{name} must be a number between 0 and 1 (exclusive), got {value!r}")
    return SamplerSettings(draws, tune, chains, cores, seed, progress, float(target_accept), say=say)


def _check_method(method: Any) -> Method:
    if method not in {m.value for m in Method}:
        raise FitError(f"unknown method {method!r}; accepted: {', '.join(m.value for m in Method)} "
                       "('standard' samples the group effects, 'collapsed' integrates them out)")
    return Method(method)


def _accepted_prior_keys(naming: BambiNaming) -> list[str]:
    keys = ([INTERCEPT] if naming.intercept else []) + [f.label for f in naming.fixed]
    for block in naming.blocks:
        for j, coef in enumerate(block.coefs):
            keys += [sd_term(coef), block.sd_key(j)]
        if block.correlated and len(block.coefs) > 1:
            keys += ["cor", block.cor_key]
    return list(dict.fromkeys(keys + ([RESIDUAL_TERM] if naming.gaussian else [])))


def _check_prior_keys(priors: Priors, naming: BambiNaming) -> None:
    accepted = _accepted_prior_keys(naming)
    for key, _ in priors.overrides:
        if key == RESIDUAL_TERM and not naming.gaussian:
            raise SpecError(f"the prior key {key!r} is the residual SD's, and a {naming.family.value} model has "
                            "no residual SD (its variance follows from its mean); leave it out. Accepted keys: "
                            f"{', '.join(accepted)}")
        if key not in accepted:
            raise SpecError(f"the prior key {key!r} names nothing in this model; accepted keys: "
                            f"{', '.join(accepted)}")


# ------------------------------------------------------------------- build


def _structure(naming: BambiNaming, centred: tuple[int, ...] = (), method: Method = Method.STANDARD
               ) -> tuple[EngineName, str]:
    if not naming.blocks:
        return EngineName.BAMBI, "fixed effects only (no group-level effects), fitted by Bambi"
    correlated = any(b.correlated and len(b.coefs) > 1 for b in naming.blocks)
    parts = []
    for b in naming.blocks:
        coefs = " + ".join(b.coefs)
        if b.correlated and len(b.coefs) > 1:
            parts.append(f"correlated {coefs} by {b.group} (lme4 '|', LKJ prior on the correlation)")
        else:
            parts.append(f"independent {coefs} by {b.group}" + (" (lme4 '||')" if len(b.coefs) > 1 else ""))
    if correlated:
        how = "fitted by compare_kit's non-centred PyMC model (Bambi cannot express correlated group effects)"
    elif centred:
        outer = ", ".join(naming.blocks[i].group for i in centred)
        how = (f"fitted by compare_kit's PyMC model with the {outer} intercepts centred on the fixed "
               f"intercept (each {outer} rests on many rows: non-centred, as Bambi builds it, NUTS "
               "cannot separate them from the intercept), every other block non-centred; same priors")
    else:
        how = "fitted by Bambi (non-centred)"
    engine = EngineName.PYMC if correlated or centred else EngineName.BAMBI
    if method == Method.COLLAPSED:
        model = ("compare_kit's PyMC model (correlated, LKJ prior)" if correlated else "Bambi's model")
        how = (f"{model}, group effects integrated out: NUTS on the fixed effects, SDs"
               f"{', correlations' if correlated else ''} and residual SD with the exact marginal "
               "likelihood, the group effects drawn exactly from their conditional normal at every "
               "kept draw (method='collapsed'); same priors")
    return engine, "; ".join(parts) + "; " + how


def _bambi_prior(prior: Prior) -> Any:
    import bambi as bmb

    return bmb.Prior(prior.dist, **prior.kwargs)


@dataclass(frozen=True)
class _Chosen:
    """Priors compare_kit hands to Bambi (all others are Bambi's data-scaled defaults)."""

    priors: dict[str, Prior]  # Bambi term name ("x0", "1|g0" for its SD, "sigma") -> prior
    origin: dict[str, str]  # Bambi term name -> "set" or "<preset> preset"

    def bambi(self) -> dict[str, Any]:
        import bambi as bmb

        group_sd = {n for n in self.priors if "|" in n}
        return {n: (bmb.Prior("Normal", mu=0.0, sigma=_bambi_prior(p)) if n in group_sd else _bambi_prior(p))
                for n, p in self.priors.items()}

    def label(self, name: str) -> str:
        return self.origin.get(name, "Bambi default, data-scaled")


def _choose_priors(naming: BambiNaming, priors: Priors) -> _Chosen:
    """Overrides first, then the preset's prior for the role, else leave it to Bambi."""
    preset = preset_priors(priors.preset)
    chosen: dict[str, Prior] = {}
    origin: dict[str, str] = {}

    def put(name: str, override: Prior | None, fallback: Prior | None) -> None:
        prior = override or fallback
        if prior is not None:
            chosen[name] = prior
            origin[name] = "set" if override else f"{priors.preset.value} preset"

    for label in ([INTERCEPT] if naming.intercept else []) + [f.label for f in naming.fixed]:
        put(naming.bambi_term(label), priors.override(label), preset.coefficient)
    for block in naming.blocks:
        for j, coef in enumerate(block.coefs):
            override = priors.override(block.sd_key(j)) or priors.override(sd_term(coef))
            put(block.bambi_effect(j), override, preset.group_sd)
    if naming.gaussian:  # a GLMM has no residual SD: the presets' prior on it does not apply
        put(BAMBI_RESIDUAL, priors.override(RESIDUAL_TERM), preset.residual_sd)
    return _Chosen(chosen, origin)


def _make_bambi(naming: BambiNaming, explicit: dict[str, Any], center: bool) -> Any:
    import bambi as bmb

    with warnings.catch_warnings():
        # Bambi's data-scaled prior divides by a column's SD; a column with no variation
        # (an unidentified slope, e.g. CASS's floor) gives inf, which _bambi_model replaces
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="bambi.priors.scaler")
        return bmb.Model(naming.formula, naming.frame, priors=explicit, family=naming.family.value,
                         dropna=False, center_predictors=center, noncentered=True)


def _bambi_model(design: Design, naming: BambiNaming, chosen: _Chosen, center: bool
                 ) -> tuple[Any, dict[str, str]]:
    """The Bambi model with resolved priors; notes on any default prior compare_kit had to patch."""
    explicit = chosen.bambi()
    model = _make_bambi(naming, explicit, center)
    notes: dict[str, str] = {}
    patched = dict(explicit)
    y_sd = float(np.std(design.y)) if naming.gaussian else 1.0  # Bambi's scale: 1 on a GLMM's link scale
    for name, term in _linear_part(model).common_terms.items():
        if name in explicit or term.prior.name != "Normal":
            continue
        sigma = np.atleast_1d(np.asarray(term.prior.args["sigma"], dtype=float))
        if np.all(np.isfinite(sigma)):
            continue
        # Bambi's own rule for a multi-column term's shared scale: the SD of the row sums
        data = np.asarray(term.data, dtype=float).reshape(design.n, -1)
        spread = float(np.std(data.sum(axis=1)))
        fallback = 2.5 * y_sd / spread if spread > 0 else 2.5 * y_sd
        fixed_sigma = np.where(np.isfinite(sigma), sigma, fallback)
        patched[name] = _bambi_prior(Prior.of("Normal", mu=np.zeros_like(fixed_sigma).squeeze(),
                                              sigma=fixed_sigma.squeeze()))
        notes[naming.prior_key(name)] = (f"; {int((~np.isfinite(sigma)).sum())} column(s) with no "
                                         f"variation get sigma = {fallback:.4g} (Bambi's scale "
                                         "gives infinity)")
    if len(patched) != len(explicit):
        model = _make_bambi(naming, patched, center)
    if center:
        sigma = np.asarray(_linear_part(model).intercept_term.prior.args.get("sigma", 1.0))
        if not np.all(np.isfinite(sigma)):  # pragma: no cover - guarded by the patch above
            raise FitError("Bambi's default intercept prior is not finite for this model; "
                           "set one, e.g. priors={'(Intercept)': 'Normal(0, 10)'}")
    return model, notes


def _linear_part(model: Any) -> Any:
    """The Bambi model's linear predictor's component: ``mu`` (gaussian, poisson) or ``p`` (bernoulli,
    binomial)."""
    return model.parameters[model.family.likelihood.parent]


def _from_bambi(prior: Any) -> Prior:
    return Prior.of(prior.name, **{k: np.asarray(v, dtype=float) for k, v in prior.args.items()})


# the scale a GLMM's linear predictor, and so its coefficients and group SDs, are on
_LINK_SCALE = {Family.BERNOULLI: "log-odds (logit)", Family.BINOMIAL: "log-odds (logit)",
               Family.POISSON: "log-rate (log)"}


def _resolve_priors(model: Any, naming: BambiNaming, priors: Priors, chosen: _Chosen,
                    notes: dict[str, str], layout: dict[str, list[str]], center: bool
                    ) -> tuple[ModelPriors, dict[str, str]]:
    """Read every prior back from the Bambi model: the numbers that will really be used. A GLMM's
    coefficient and SD priors are on its link scale (``scale``: log-odds, log of the mean)."""
    mu = _linear_part(model)
    scale = "" if naming.gaussian else f"; on the {_LINK_SCALE[naming.family]} scale"
    record: dict[str, str] = {}
    fixed: list[FixedGroup] = []
    terms = ([(BAMBI_INTERCEPT, mu.intercept_term)] if naming.intercept else [])
    terms += list(mu.common_terms.items())
    for name, term in terms:
        prior = _from_bambi(term.prior)
        key = naming.prior_key(name)
        fixed.append(FixedGroup(key, prior, tuple(layout[name])))
        where = " at centred predictors" if name == BAMBI_INTERCEPT and center else ""
        record[key] = f"{prior}  [{chosen.label(name)}{where}{notes.get(key, '')}{scale}]"
    block_sd: list[tuple[Prior, ...]] = []
    block_cor: list[Prior | None] = []
    for block in naming.blocks:
        sds = []
        for j in range(len(block.coefs)):
            prior = _from_bambi(mu.group_specific_terms[block.bambi_effect(j)].prior.args["sigma"])
            sds.append(prior)
            record[block.sd_key(j)] = f"{prior}  [{chosen.label(block.bambi_effect(j))}{scale}]"
        block_sd.append(tuple(sds))
        if block.correlated and len(block.coefs) > 1:
            override = priors.override(block.cor_key) or priors.override("cor")
            cor = override or preset_priors(priors.preset).correlation
            cor.check(Role.CORRELATION)
            block_cor.append(cor)
            record[block.cor_key] = f"{cor}  [{'set' if override else f'{priors.preset.value} preset'}]"
        else:
            block_cor.append(None)
    residual = None
    if naming.gaussian:
        residual = _from_bambi(model.parameters[BAMBI_RESIDUAL].prior)
        record[RESIDUAL_TERM] = f"{residual}  [{chosen.label(BAMBI_RESIDUAL)}]"
    return ModelPriors(tuple(fixed), tuple(block_sd), tuple(block_cor), residual, center), record


def _fixed_layout(model: Any, naming: BambiNaming, design: Design) -> dict[str, list[str]]:
    """Bambi common term -> canonical columns, checked value for value against the design."""
    mu = _linear_part(model)
    layout: dict[str, list[str]] = {}
    columns: dict[str, np.ndarray] = {}
    if naming.intercept:
        layout[BAMBI_INTERCEPT] = [INTERCEPT]
        columns[INTERCEPT] = np.ones(design.n)
    for name, term in mu.common_terms.items():
        names = naming.fixed_columns(name, None if term.levels is None else list(term.levels))
        data = np.asarray(term.data, dtype=float).reshape(design.n, -1)
        if data.shape[1] != len(names):
            raise FitError(f"internal error: Bambi's term {name!r} has {data.shape[1]} columns, "
                           f"expected {len(names)}")
        layout[name] = names
        columns.update({n: data[:, j] for j, n in enumerate(names)})
    check_fixed_columns(design, columns)
    return layout


def _build(design: Design, naming: BambiNaming, priors: Priors, method: Method = Method.STANDARD
           ) -> BuiltModel:
    centred = enclosing_intercept_blocks(design)
    engine, structure = _structure(naming, centred, method)
    if not naming.gaussian:
        structure = (f"{naming.family.value} outcome, {naming.family.link.value} link (coefficients and group "
                     f"SDs on the {_LINK_SCALE[naming.family]} scale; no residual SD); {structure}")
    chosen = _choose_priors(naming, priors)
    # Bambi's default intercept prior is set at centred predictors; an explicit one is not
    center = naming.intercept and BAMBI_INTERCEPT not in chosen.priors
    model, notes = _bambi_model(design, naming, chosen, center)
    layout = _fixed_layout(model, naming, design)
    model_priors, record = _resolve_priors(model, naming, priors, chosen, notes, layout, center)
    bambi = model if engine == EngineName.BAMBI else None
    if method == Method.COLLAPSED:
        block = design.blocks[0]
        x = design.x.to_numpy(dtype=float) - centring(design, model_priors.center)
        stats = group_stats(x, block.z.to_numpy(dtype=float), block.codes, len(block.levels), design.y)
        pm_model = build_collapsed_model(design, naming, model_priors, stats)
        var_names = [v.name for v in pm_model.free_RVs] + [v.name for v in pm_model.deterministics]
        return BuiltModel(engine, pm_model, var_names, model_priors, record, layout, structure, bambi, stats)
    if engine == EngineName.BAMBI:
        model.build()
        pm_model = model.backend.model
        effects = [b.bambi_effect(j) for b in naming.blocks for j in range(len(b.coefs))]
        var_names = [v.name for v in pm_model.free_RVs if not v.name.endswith("_offset")] + effects
    else:
        pm_model = build_pymc_model(design, naming, model_priors, centred)
        var_names = [v.name for v in pm_model.free_RVs] + [v.name for v in pm_model.deterministics]
    return BuiltModel(engine, pm_model, var_names, model_priors, record, layout, structure, bambi)


def _alias_notes(design: Design) -> dict[tuple[str, str], str]:
    """Fixed columns the data cannot identify: their posterior is (mostly) the prior."""
    notes = {}
    for column, reason in design.aliased.items():
        detail = reason.removeprefix("not estimable: ")
        zero = not design.x[column].to_numpy().any()
        tail = ("the posterior is the prior" if zero else
                "only its sum with other columns is identified, so the posterior leans on the prior")
        notes[("fixed", column)] = f"prior-dominated: not identified by the data ({detail}); {tail}"
    return notes

