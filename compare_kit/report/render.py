"""The HTML report: a StudyResult -> one self-contained, deterministic HTML page.

``render_report(result)`` returns the page as a string; ``write_report`` runs a
study if given one, renders, and writes atomically (plus the tidy CSVs when
asked). The page is built only by jinja2 templates with autoescape on; figures
are inline SVG from ``figures.py``; every number is rounded in ``tables.py``.
The same result renders to the same bytes except the one line marked
``Generated at`` (the timestamp and run time).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from markupsafe import Markup

from compare_kit.design import is_factor
from compare_kit.io import utc_timestamp
from compare_kit.report import figures as figs
from compare_kit.report.family_words import family_words, glmm_text, user_texts
from compare_kit.report.score_tables import discrete_scores
from compare_kit.report import tables as tb
from compare_kit.results import BayesianFit, EngineName
from compare_kit.spec import Pooling
from compare_kit.wording import count, size_range

if TYPE_CHECKING:
    from compare_kit.design import Design
    from compare_kit.results import FitResult
    from compare_kit.study import Study, StudyResult

PACKAGES = ("compare_kit", "numpy", "scipy", "pandas", "statsmodels", "pymc", "pytensor", "bambi", "arviz",
            "nutpie", "numba", "xarray", "matplotlib", "seaborn", "jinja2")
TABLE_FILES = ("estimates.csv", "equivalence.csv", "shrinkage.csv", "fit_stats.csv", "diagnostics.csv")
DEMO_FILE = "demo_{}.csv"  # written beside TABLE_FILES, one per demonstration that ran


@dataclass(frozen=True)
class Problem:
    what: str  # the fit or part of the report concerned
    items: tuple[str, ...]
    where: str  # the section id it belongs to
    severity: str = "warning"  # "error" or "warning"


@dataclass(frozen=True)
class Section:
    id: str
    title: str


SECTIONS = (
    Section("data", "1. The data"),
    Section("models", "2. The models"),
    Section("results", "3. Results side by side"),
    Section("equivalence", "4. Do the engines agree?"),
    Section("shrinkage", "5. Shrinkage"),
    Section("predictive", "6. Predictive checks"),
    Section("connection", "7. Random effects and Bayesian partial pooling"),
    Section("health", "8. Health of the fits"),
    Section("reproducibility", "9. Reproducibility"),
)


# ------------------------------------------------------------------ words



def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def pooling_words(fit: FitResult, study_group: str = "") -> str:
    """What a model assumes about the groups, in plain words."""
    design = fit.design
    spec = fit.spec
    coefs = [tb.term_text(c) for c in design.x.columns] if design.x.shape[1] <= 4 else []
    if design.pooling == Pooling.COMPLETE:
        shared = f" ({_join(coefs)})" if coefs else ""
        who = f"every {study_group} group" if study_group else "every row"
        rest = ("in the residual" if spec.family.value == "gaussian"
                else "unmodelled, spread over the outcome's own variation")
        return (f"Complete pooling: one set of coefficients{shared} for {who}, as if all groups were the "
                f"same. Differences between groups end up {rest}.")
    if design.pooling == Pooling.NONE:
        factors = sorted({v.column for t in spec.fixed for v in t.variables if is_factor(v, design.categorical)})
        return (f"No pooling: every level of {_join(factors)} gets its own coefficients, estimated from its "
                "own rows alone; nothing is shared between groups. Groups with few rows get noisy "
                "estimates, and a coefficient a group's rows cannot identify is not estimated by "
                "statsmodels and comes from the prior alone in the Bayesian fit.")
    parts = []
    for r in spec.random:
        names = _join([tb.term_text(t) if t == "(Intercept)" else f"{t} slope" for t in r.term_labels])
        link = ("their deviations may be correlated" if r.correlated and len(r.term_labels) > 1
                else "independent of each other" if len(r.term_labels) > 1 else "")
        parts.append(f"each {r.group} group has its own {names}, drawn from a common normal distribution "
                     f"centred on the population value, whose SD is estimated from the data"
                     + (f" ({link})" if link else ""))
    return ("Partial pooling: " + "; ".join(parts) + ". Groups with few rows are pulled toward the "
            "population value, groups with many rows keep close to their own estimate.")


def frequentist_engine_words(engine: str) -> str:
    """A frequentist engine as the report names it: ``statsmodels`` or ``compare_kit's own engine``."""
    return "compare_kit's own engine" if engine == EngineName.COMPARE_KIT else tb.engine_text(engine)


def statsmodels_words(fit: FitResult) -> str:
    """What the engine that reported the fit was given: statsmodels OLS or MixedLM (arrays built from the
    parse, never from a formula string), or compare_kit's own engine where MixedLM was not used."""
    design = fit.design
    cols = list(design.x_estimable.columns)
    shown = ", ".join(cols) if len(cols) <= 6 else f"{', '.join(cols[:3])}, … ({len(cols)} columns)"
    dropped = len(design.aliased)
    extra = f"; {count(dropped, 'aliased column')} dropped" if dropped else ""
    if not design.blocks:
        return f"OLS: endog {design.response_label}; exog [{shown}]{extra}"
    blocks = "; ".join(
        f"groups {b.group} with random [{', '.join(b.z.columns)}]"
        + (f" ({'correlated' if b.term.correlated else 'independent'})" if len(b.z.columns) > 1 else "")
        for b in design.blocks)
    if fit.engine == EngineName.COMPARE_KIT and fit.spec.family.value != "gaussian":
        return (f"compare_kit's own GLMM engine, maximum likelihood by {fit.method} (lme4's glmer method): "
                f"response {design.response_label}; fixed [{shown}]{extra}; {blocks}")
    if fit.engine == EngineName.COMPARE_KIT:
        return (f"compare_kit's own engine, lme4's profiled {fit.method} criterion (statsmodels MixedLM was not "
                f"used; the notes at the top say why): response {design.response_label}; fixed [{shown}]{extra}; "
                f"{blocks}")
    return f"MixedLM by {fit.method}: endog {design.response_label}; exog [{shown}]{extra}; {blocks}"


def fitted_by(result: StudyResult) -> str:
    """Which engines fitted the models, for the masthead: ``each fitted by statsmodels and by Bambi``."""
    frequentist: dict[str, list[str]] = {}
    for label, (freq, _) in result.fits.items():
        frequentist.setdefault(frequentist_engine_words(freq.engine), []).append(label)
    bayesian = " / ".join(sorted({tb.engine_text(b.engine) for _, b in result.fits.values()}))
    if len(frequentist) == 1:
        return f"each fitted by {next(iter(frequentist))} and by {bayesian}"
    who = " or ".join(f"{name} ({', '.join(labels)})" for name, labels in frequentist.items())
    return f"fitted by {who}, and each by {bayesian}"


def frequentist_engines(result: StudyResult) -> str:
    """The frequentist engines that reported fits, in words (``statsmodels and compare_kit's own engine``)."""
    return _join(list(dict.fromkeys(frequentist_engine_words(f.engine) for f, _ in result.fits.values())))


def bambi_legend(bayes: FitResult) -> str:
    """The generated engine formula's names, translated back to the table's columns."""
    names = bayes.engine_names if isinstance(bayes, BayesianFit) else ()
    return ", ".join(f"{a} = {b}" for a, b in names)


# -------------------------------------------------------------- problems


def collect_problems(result: StudyResult, figure_problems: list[str]) -> tuple[list[Problem], list[str]]:
    """Everything a reader must see before trusting the numbers (one entry per fit); notes apart."""
    problems: list[Problem] = []
    notes: list[str] = []
    for label, pair in result.fits.items():
        for fit in pair:
            engine = tb.engine_text(fit.engine)
            if fit.health.warnings:
                failed = not fit.health.converged and fit.engine.frequentist
                problems.append(Problem(f"{label}, {engine}", tuple(fit.health.warnings), "health",
                                        "error" if failed else "warning"))
            for n in fit.health.notes:
                notes.append(f"{label} ({engine}): {n}")
    for _, r in result.predictive.loo.iterrows():
        k = int(r["pareto_k_above_0.7"])
        if k:
            notes.append(f"{r['model']}: {count(k, 'row')} with Pareto k > 0.7, so PSIS-LOO is unreliable for "
                         f"{'that row' if k == 1 else 'those rows'} (common when a model has a parameter per small group)")
    for label, cmp in result.comparisons.items():
        if cmp.structure_note:
            notes.append(f"{label}: {cmp.structure_note}")
    if figure_problems:
        problems.append(Problem("figures", tuple(figure_problems), "results", "error"))
    return problems, notes


# ------------------------------------------------------------- sections


def _data_section(result: StudyResult, label: str | None, crossed: bool = False) -> dict[str, Any]:
    """The table, the rows each model uses and, for model ``label``'s grouping factors (``crossed``: as
    crossed factors), their sizes."""
    study = result.study
    data = result.data
    source = ("the bundled Minnesota survey (data/radon_mn.csv)" if study.data_source == "radon"
              else f"CSV file {study.csv_path.name if study.csv_path else ''}" if study.data_source == "csv"
              else _srrs2_source(study, data))
    rows = [("source", source), ("rows in the table", len(data)), ("columns", ", ".join(map(str, data.columns)))]
    per_model = []
    for model, (freq, _) in result.fits.items():
        s = freq.data_summary
        why = ("none" if not s.n_dropped else
               "; ".join(f"missing {c}: {k}" for c, k in s.dropped_by_column.items() if k))
        per_model.append({"model": model, "rows used": s.n_used, "rows dropped": s.n_dropped,
                          "why dropped": why, "data hash": s.data_hash})
    tables = [tb.key_values(rows, "tbl-data", "The table"),
              tb.generic(pd.DataFrame(per_model), "tbl-rows", "Rows used by each model")]
    factors, words = [], []
    sizes_of = factor_sizes(result.fits[label][0].design) if label is not None else {}
    for group, sizes in sizes_of.items():
        counts = sizes.value_counts().sort_index()
        slug = figs.group_slug(group)
        summary = tb.key_values(
            [("groups", len(sizes)), ("smallest group", count(sizes.min(), "row")),
             ("median group", count(sizes.median(), "row")), ("largest group", count(sizes.max(), "row")),
             ("groups with 1 row", int((sizes == 1).sum())),
             ("groups with 5 rows or fewer", int((sizes <= 5).sum()))],
            f"tbl-groups-{slug}", f"Groups: {group}")
        dist = pd.DataFrame({"rows per group": counts.index.astype(int), "groups": counts.to_numpy()})
        factors.append({"summary": summary, "tables": [
            tb.generic(dist, f"tbl-group-sizes-{slug}", f"How many {group} groups have each size", fold=True),
            tb.group_list(sizes, group, f"tbl-group-list-{slug}", f"Every {group} and its size",
                          study.settings.seed)]})
        median = "" if sizes.min() == sizes.max() else f" (median {float(sizes.median()):g})"
        words.append(f"{len(sizes):,} {group} group{'' if len(sizes) == 1 else 's'}, "
                     f"{size_range(sizes.min(), sizes.max(), 'row')}{median}")
    if crossed and len(words) > 1:
        group_text = f"{label} has {len(words)} crossed grouping factors: " + "; ".join(words) + "."
    else:
        group_text = _join(words) + "." if words else ""
    spec_cols = list(dict.fromkeys(c for m in study.models for c in m.spec.columns if c in data.columns))
    head = tb.generic(data[spec_cols].head(6), "tbl-head", "The first rows of the modelled columns", fold=False)
    return {"tables": tables, "factors": factors, "head": head, "group_text": group_text}


def factor_sizes(design: Design) -> dict[str, pd.Series]:
    """Rows per level of each of the design's grouping factors, in block order."""
    return {group: design.group_sizes(group) for group in dict.fromkeys(b.group for b in design.blocks)}


def _srrs2_source(study: Study, data: pd.DataFrame) -> str:
    excluded = data.attrs.get("excluded", {})
    left_out = ("; left out: " + ", ".join(f"state {s} ({n} homes)" for s, n in excluded.items())
                if excluded else "")
    incomplete = data.attrs.get("incomplete_rows", 0)
    why = ", ".join(f"{c} missing in {n}" for c, n in data.attrs.get("incomplete", {}).items())
    dropped = (f"; {incomplete} homes without a value some model needs are left out for every model, so that "
               f"all models use the same homes ({why})" if incomplete else "")
    where = "bundled with compare_kit" if study.data_path is None else f"in {study.data_path}"
    return f"the EPA radon survey (srrs2.dat and cty.dat {where}){left_out}{dropped}"



DEMO_LABELS = {
    "groups": "group effects", "max_abs_z_mc": "max |z| (MC)", "min_sd_ratio": "min SD ratio",
    "max_sd_ratio": "max SD ratio", "median_cond_to_pev": "median cond. SD / PEV SD",
    "fixed_max_abs_z_mc": "fixed: max |z| (MC)", "term": "term", "gls": "GLS", "gls_se": "GLS SE",
    "posterior_mean": "posterior mean", "posterior_sd": "posterior SD", "mcse": "MCSE", "z_mc": "z (MC)",
    "blup": "BLUP", "cond_sd": "cond. SD", "pev_sd": "PEV SD", "sd_ratio_posterior_to_pev": "posterior / PEV SD",
    "sd_ratio_cond_to_pev": "cond. / PEV SD", "prior": "prior on the SD", "prior_scale": "prior scale",
    "response_sds": "scale / response SD",
    "posterior_mode": "posterior mode", "posterior_median": "posterior median", "conf_low": "2.5%",
    "conf_high": "97.5%", "reml": "REML", "ml": "ML", "mode_minus_reml": "mode − REML",
    "reml_sd": "REML SD", "boundary_flag": "at boundary", "posterior_mean_sd": "posterior mean SD",
    "posterior_conf_low": "posterior 2.5%", "posterior_conf_high": "posterior 97.5%",
    "own_mean_deviation": "own mean − grand mean", "group": "factor", "level": "level", "n": "n",
}


def _models_section(result: StudyResult, roles: figs.Roles) -> list[dict[str, Any]]:
    cards = []
    for entry in result.study.models:
        freq, bayes = result.fits[entry.label]
        s = bayes.sampling
        priors = [(k, v) for k, v in (s.priors.items() if s else [])]
        prior_rows = pd.DataFrame(priors, columns=["parameter", "prior"]) if priors else pd.DataFrame()
        cards.append({
            "id": f"model-{entry.label}", "label": entry.label, "formula": str(entry.spec),
            "words": pooling_words(freq, roles.group),
            "freq_engine": frequentist_engine_words(freq.engine),
            "statsmodels": statsmodels_words(freq),
            "bayes_engine": tb.engine_text(bayes.engine),
            "bayes_formula": bayes.engine_formula or (s.formula if s else ""),
            "legend": bambi_legend(bayes),
            "structure": s.structure if s else "",
            "preset": s.prior_preset if s else "",
            "family_line": words.model_line(entry.spec) if (words := family_words(result.study)) else "",
            "priors": tb.generic(prior_rows, f"tbl-priors-{entry.label}", f"Priors of {entry.label}",
                                 fold=False) if priors else None,
        })
    return cards


def _results_section(result: StudyResult, roles: figs.Roles) -> dict[str, Any]:
    est = result.estimates
    population, long = [], []
    for label in result.fits:
        rows = est[(est["model"] == label) & est["effect"].isin(["fixed", "ran_pars"])]
        n_fixed = int(((rows["effect"] == "fixed") & (rows["engine"] == "statsmodels")).sum())
        words = family_words(result.study)
        t = tb.estimates_side_by_side(est, label, ["fixed", "ran_pars"], f"tbl-pop-{label}",
                                      f"{label}: fixed effects and variance components"
                                      + (f" (on the {words.scale} scale)" if words else ""),
                                      fold=n_fixed > tb.LONG_TABLE, ratio=words.ratio if words else "")
        (long if n_fixed > tb.LONG_TABLE else population).append(t)
    groups = []
    for label, (freq, _) in result.fits.items():
        if freq.design.blocks:
            groups += tb.group_effects(est, label, factor_sizes(freq.design), f"tbl-groups-{label}",
                                       f"{label}: every group's deviation from the population value",
                                       result.study.settings.seed)
    return {"population": population, "long": long, "groups": groups}


def _equivalence_section(result: StudyResult) -> list[dict[str, Any]]:
    out = []
    for label, cmp in result.comparisons.items():
        eq = cmp.equivalence
        main = eq[eq["effect"] != "ran_vals"]
        vals = eq[eq["effect"] == "ran_vals"]
        counts = eq["verdict"].value_counts()
        tables = [tb.equivalence(main, f"tbl-eq-{label}", f"{label}: parameter by parameter")]
        if len(vals):
            tables += tb.group_equivalence(vals, factor_sizes(result.fits[label][0].design), f"tbl-eq-vals-{label}",
                                           f"{label}: group effects", result.study.settings.seed)
        out.append({"label": label, "note": cmp.structure_note,
                    "counts": [(v, int(counts.get(v, 0)), tb.verdict_cell(v).css) for v in tb.VERDICTS
                               if counts.get(v, 0)],
                    "summary": tb.equivalence_summary(cmp.equivalence_summary, f"tbl-eqsum-{label}",
                                                      f"{label}: agreement by kind of parameter"),
                    "tables": tables})
    return out


def _shrinkage_section(result: StudyResult, roles: figs.Roles) -> dict[str, Any]:
    """Every one-factor model's shrinkage tables (with a word on shares outside 0 to 1), and per factor of
    the crossed model its words and tables."""
    seed = result.study.settings.seed
    single: list[dict[str, Any]] = []
    for i, label in enumerate(roles.single_models):
        frame = result.comparisons[label].shrinkage
        if len(frame):
            single.append({"label": label, "outside": tb.shares_outside_words(frame),
                           "tables": tb.shrinkage(frame, "tbl-shrinkage" if i == 0 else f"tbl-shrinkage-{label}",
                                                  f"{label}: every group's own, pooled and partial-pooling "
                                                  "estimates", seed)})
    crossed = []
    frame = result.comparisons[roles.crossed].shrinkage if roles.crossed else pd.DataFrame()
    for group in roles.crossed_groups:
        rows = frame[frame["group"] == group] if len(frame) else frame
        slug = figs.group_slug(group)
        summary = ""
        if len(rows):
            f, b = rows["shrinkage_freq"], rows["shrinkage_bayes"]
            summary = (f"{rows['level'].nunique():,} {group} levels: median shrinkage {tb.fmt_num(f.median(), 2)} "
                       f"(frequentist) and {tb.fmt_num(b.median(), 2)} (Bayesian); the frequentist share runs "
                       f"from {tb.fmt_num(f.min(), 2)} to {tb.fmt_num(f.max(), 2)}.")
        crossed.append({"group": group, "slug": slug, "summary": summary,
                        "tables": tb.shrinkage(rows, f"tbl-shrinkage-{slug}", f"{roles.crossed}: every {group} "
                                               "level's own, pooled and partial-pooling estimates", seed)
                        if len(rows) else []})
    return {"single": single, "crossed": crossed,
            "no_arrows": bool(roles.single_models) and roles.arrows_model is None}


def _connection_section(result: StudyResult) -> list[dict[str, Any]]:
    titles = {"conditional_equivalence": "Same model, same answer: conditional equivalence",
              "prior_flattening": "Flattening the prior: the posterior mode moves to REML",
              "boundary": "The boundary case: an SD estimated at zero",
              "glmm_approximation": "Laplace, adaptive quadrature and MCMC: how the likelihood is approximated"}
    from compare_kit.teaching import DemoData

    formulas = {str(m.spec) for m in result.study.models}
    out = []
    for key, demo in result.demos.ran().items():
        tables = [tb.generic(demo.summary, f"tbl-demo-{key}-summary", "In one line", DEMO_LABELS, fold=False)]
        if demo.fixed is not None:
            tables.append(tb.generic(demo.fixed, f"tbl-demo-{key}-fixed", "Fixed effects: GLS vs posterior",
                                     DEMO_LABELS, fold=False))
        tables.append(_demo_table(demo.table, key, result.study.settings.seed))
        derived = demo.data == DemoData.FIT and demo.formula not in formulas
        out.append({"id": f"demo-{key}", "title": titles[key], "explanation": demo.explanation,
                    "tables": tables, "formula": demo.formula, "derived": derived,
                    "constructed": demo.data == DemoData.CONSTRUCTED})
    return out


DEMO_PICKS = (tb.Pick("largest |z| (MC)", "z_mc", 10, absolute=True),
              tb.Pick("smallest group", "n", 3, largest=False), tb.Pick("largest group", "n", 3))


def _demo_table(frame: pd.DataFrame, key: str, seed: int) -> tb.DisplayTable:
    """A demonstration's table of group effects: every row, or above ``tb.MAX_LEVELS_LISTED`` rows the
    largest |z|, the smallest and largest groups and a seeded random sample."""
    if tb.most_levels(frame) <= tb.MAX_LEVELS_LISTED:
        return tb.generic(frame, f"tbl-demo-{key}", "The full table", DEMO_LABELS, fold=len(frame) > 12)
    chosen = tb.pick_rows(tb.by_level(frame) if "level" in frame.columns else frame, DEMO_PICKS, seed)
    shown = tb.generic(chosen, f"tbl-demo-{key}", f"Chosen rows of {len(frame):,}",
                       {**DEMO_LABELS, "shown": "shown because"}, fold=False)
    return replace(shown, note=f"Only chosen rows of the {len(frame):,} are shown. Every row is in "
                               f"{DEMO_FILE.format(key)}, written by compare-kit report --tables-dir DIR.")


def _demos_skipped(result: StudyResult) -> str:
    """Why the demonstrations are missing, when they are."""
    from compare_kit.study import teaching_spec

    if result.demos.ran():
        return ""
    if not result.study.settings.demos and family_words(result.study) is not None:
        return ("The demonstration is turned off in this study's file (demos = false): it compares Laplace, "
                "adaptive quadrature and MCMC on constructed binary data.")
    if not result.study.settings.demos:
        return ("The demonstrations are turned off in this study's file (demos = false): they are "
                "experiments with one random intercept (the bundled radon study shows them), and on this "
                "study's data they would add several Bayesian fits to its run time.")
    if teaching_spec(result.study) is None:
        return "The demonstrations need a model with a random intercept; this study has none."
    return "The demonstrations were not run."


def _nested_section(result: StudyResult, roles: figs.Roles) -> list[dict[str, Any]]:
    """Per nested model: its shrinkage tables, outermost factor first (states, then counties)."""
    from compare_kit.compare import nesting_parents

    out = []
    for label in roles.nested_models:
        design = result.fits[label][0].design
        parents = nesting_parents(design)
        table = result.comparisons[label].shrinkage
        depth = {}
        for i, block in enumerate(design.blocks):
            k, d = i, 0
            while k in parents:
                k, d = parents[k], d + 1
            depth[block.group] = min(d, depth.get(block.group, d))
        tables = []
        for group in sorted(depth, key=lambda g: (depth[g], g)):
            rows = table[table["group"] == group]
            toward = "the population" if depth[group] == 0 else f"their {rows['toward_group'].iloc[0]}"
            tables += tb.nested_shrinkage(rows, f"tbl-shrinkage-{label}-{group.replace(':', '-')}",
                                          f"{label}: every {group} level pulled toward {toward}",
                                          fold=len(rows) > 12, seed=result.study.settings.seed)
        out.append({"label": label, "tables": tables})
    return out


def _versions() -> list[tuple[str, str]]:
    rows = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return rows


def _reproducibility(result: StudyResult, command: str) -> dict[str, Any]:
    s = result.study.settings
    bayes = [b for _, b in result.fits.values() if isinstance(b, BayesianFit) and b.sampling is not None]
    first = bayes[0].sampling if bayes else None
    hashes = sorted({f.data_summary.data_hash for f, _ in result.fits.values()})
    settings = [("seed", s.seed), ("chains", s.chains), ("draws per chain", s.draws),
                ("tuning steps per chain", s.tune), ("sampler", s.sampler),
                ("target_accept", first.target_accept if first else ""),
                ("prior preset", s.priors),
                ("frequentist method", s.method if family_words(result.study) is None else
                 ", ".join(sorted({f"ML ({f.method})" for f, _ in result.fits.values()}))),
                ("cross-validation folds", s.cv_folds),
                ("data hash (rows used)", ", ".join(hashes))]
    study_text = ""
    if result.study.source_file and Path(result.study.source_file).is_file():
        study_text = Path(result.study.source_file).read_text(encoding="utf-8")
    return {"command": command,
            "settings": tb.key_values(settings, "tbl-settings", "Settings"),
            "versions": tb.generic(pd.DataFrame(_versions(), columns=["package", "version"]),
                                   "tbl-versions", "Package versions", fold=False),
            "study_source": Path(result.study.source_file).name if result.study.source_file else "",
            "study_text": study_text}


# ------------------------------------------------------------------ render


def render_report(result: StudyResult, *, timestamp: bool = True, command: str = "") -> str:
    """The report as one HTML string (self-contained: CSS and figures inline)."""
    fig_map, fig_problems = figs.build_figures(result)
    roles = figs.model_roles(result)
    problems, notes = collect_problems(result, fig_problems)
    described = roles.hierarchical or roles.nested or roles.crossed
    pred = result.predictive
    if timestamp:
        now = utc_timestamp()
        total = result.timings.get("total")
        took = f"; the study ran in {total:.0f} s" if total is not None else ""
        generated = f"Generated at {now}{took}"
    else:
        generated = "Generated at (timestamp left out)"
    context = {
        "title": result.study.title,
        "fitted_by": fitted_by(result),
        "frequentist_engines": frequentist_engines(result),
        "generated": generated,
        "css": Markup(tb.stylesheet("report.css")),  # package data, not user input
        "sections": SECTIONS,
        "problems": problems,
        "notes": notes,
        "roles": roles,
        "n_models": len(result.fits),
        "model_labels": list(result.fits),
        "data": _data_section(result, described, crossed=described == roles.crossed),
        "models": _models_section(result, roles),
        "results": _results_section(result, roles),
        "equivalence": _equivalence_section(result),
        "shrinkage": _shrinkage_section(result, roles),
        "crossed_slugs": [figs.group_slug(g) for g in roles.crossed_groups],
        "glmm": family_words(result.study),
        "rmsd": None if pred.discrete else tb.rmsd(pred.rmsd, "tbl-rmsd",
                                                    "In-sample RMSD (lower: predictions closer to the data)"),
        "cv": None if pred.discrete else tb.cross_validation(pred.cv, "tbl-cv", "Out-of-sample prediction error"),
        "scores": discrete_scores(pred.scores, "tbl-scores", "In-sample scores") if pred.discrete else None,
        "cv_scores": (discrete_scores(pred.cv_scores, "tbl-cv-scores", "Out-of-sample scores")
                      if pred.discrete else None),
        "loo": tb.information_criteria(pred.loo, "tbl-loo", "Information criteria and PSIS-LOO"),
        "demos": _connection_section(result),
        "demos_skipped": _demos_skipped(result),
        "nested": _nested_section(result, roles),
        "health_freq": tb.frequentist_health([f for f, _ in result.fits.values()], "tbl-health-freq",
                                             f"Frequentist fits ({frequentist_engines(result)})"),
        "health_bayes": tb.bayesian_health([b for _, b in result.fits.values()], "tbl-health-bayes",
                                           "Bayesian fits"),
        "worst": (tb.worst_diagnostics(result.diagnostics, "tbl-worst",
                                       "The least well-sampled parameters (highest R-hat, lowest ESS)")
                  if len(result.diagnostics) else None),
        "fig": {k: {"id": v.id, "title": v.title, "caption": v.caption, "notes": v.notes,
                    "svg": Markup(v.svg)}  # matplotlib output: its text is drawn as paths, comments removed
                for k, v in fig_map.items()},
        "repro": _reproducibility(result, command),
        "pooled": roles.pooled, "unpooled": roles.unpooled, "max_levels": tb.MAX_LEVELS_LISTED,
    }
    page = tb.environment().get_template("report.html.j2").render(**context)
    return glmm_text(page, context["glmm"], user_texts(result))  # a GLMM page: conditional modes, not BLUPs



def write_tables(result: StudyResult, folder: str | Path) -> list[Path]:
    """The five tidy CSVs of docs/design.md and each demonstration's table (``demo_<name>.csv``),
    written atomically (full precision)."""
    from compare_kit.io import write_csv_atomic

    folder = Path(folder)
    frames = {"estimates.csv": result.estimates, "equivalence.csv": result.equivalence,
              "shrinkage.csv": result.shrinkage, "fit_stats.csv": result.fit_stats,
              "diagnostics.csv": result.diagnostics}
    frames |= {DEMO_FILE.format(key): demo.table for key, demo in result.demos.ran().items()}
    return [write_csv_atomic(folder / name, frame) for name, frame in frames.items()]


def write_report(result_or_study: StudyResult | Study, path: str | Path, *, timestamp: bool = True,
                 tables_dir: str | Path | None = None, command: str = "",
                 say: Callable[[str], None] = lambda _m: None) -> Path:
    """Render a StudyResult (or run a Study first) and write the HTML atomically; returns the path."""
    from compare_kit.io import check_writable, write_text_atomic
    from compare_kit.study import Study, StudyResult, run_study

    path = check_writable(path)
    if isinstance(result_or_study, Study):
        result = run_study(result_or_study, say=say)
    elif isinstance(result_or_study, StudyResult):
        result = result_or_study
    else:
        raise TypeError("write_report takes a StudyResult (from run_study) or a Study (from load_study), "
                        f"not {type(result_or_study).__name__}")
    say("drawing figures and writing the report ...")
    html = render_report(result, timestamp=timestamp, command=command or _python_command(path))
    write_text_atomic(path, html)
    if tables_dir is not None:
        write_tables(result, tables_dir)
    return path


def _python_command(path: Path) -> str:
    return f"compare_kit.write_report(result, {str(path)!r})"


__all__ = ["render_report", "write_report", "write_tables"]
