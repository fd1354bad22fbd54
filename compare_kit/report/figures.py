"""The report's figures: plot inputs built from a StudyResult, drawn by ``plots.py``, turned into SVG.

Each builder returns a :class:`ReportFigure` (a stable id, a title, the caption
from ``plots.CAPTIONS`` plus data-specific notes, and the inline SVG). A figure
that cannot be drawn becomes a problem message for the top of the report, never
a crash and never a silent gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from compare_kit.design import Pooling
from compare_kit.engines.posterior import replicate
from compare_kit.report import plots
from compare_kit.report.plots import Source
from compare_kit.wording import count

if TYPE_CHECKING:
    from compare_kit.results import FitResult
    from compare_kit.study import StudyResult

MAX_DRAWS = 100  # thin lines per panel and source, replicated data sets in the predictive check


@dataclass(frozen=True)
class ReportFigure:
    id: str
    title: str
    caption: str
    svg: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Roles:
    """Which of the study's models plays which part in the figures."""

    hierarchical: str | None  # a model with exactly one grouping block
    unpooled: str | None
    pooled: str | None
    group: str = ""
    predictor: str | None = None  # a numeric column with a slope, for the group panels
    slope_term: str | None = None  # its canonical term name
    nested: str | None = None  # the first model with a nested grouping factor (e.g. (1 | state/county))
    nested_models: tuple[str, ...] = ()  # every such model, in study order
    crossed: str | None = None  # the first model with two or more grouping factors, none nested in another
    crossed_groups: tuple[str, ...] = ()  # its grouping factors, in the design's block order
    single_models: tuple[str, ...] = ()  # every model with one grouping block, ``hierarchical`` first
    arrows_model: str | None = None  # the first of them with a numeric random slope (the shrinkage arrows)
    arrows_slope: str | None = None  # that slope's term


def model_roles(result: StudyResult) -> Roles:
    """Pick the hierarchical, no-pooling and complete-pooling models and the panels' predictor."""
    hierarchical = unpooled = pooled = None
    for label in result.fits:  # study order
        freq = result.fits[label][0]
        design = freq.design
        if design.pooling == Pooling.PARTIAL and len(design.blocks) == 1 and hierarchical is None:
            hierarchical = label
        elif design.pooling == Pooling.NONE and unpooled is None:
            unpooled = label
        elif design.pooling == Pooling.COMPLETE and pooled is None:
            pooled = label
    if "partial_pooling" in result.fits and len(result.fits["partial_pooling"][0].design.blocks) == 1:
        hierarchical = "partial_pooling"
    nested = nested_models(result)
    crossed = crossed_models(result)
    if "partial_pooling" in crossed:
        crossed = ("partial_pooling",)
    crossed_groups = (tuple(dict.fromkeys(b.group for b in result.fits[crossed[0]][0].design.blocks))
                      if crossed else ())
    single = tuple(label for label, (freq, _) in result.fits.items()
                   if freq.design.pooling == Pooling.PARTIAL and len(freq.design.blocks) == 1)
    single = tuple(sorted(single, key=lambda label: label != hierarchical))
    with_slope = [(label, slopes[0]) for label in single if (slopes := _numeric_slopes(result, label))]
    extra = {"crossed": crossed[0] if crossed else None, "crossed_groups": crossed_groups,
             "single_models": single, "arrows_model": with_slope[0][0] if with_slope else None,
             "arrows_slope": with_slope[0][1] if with_slope else None}
    if hierarchical is None:
        return Roles(None, unpooled, pooled, nested=nested[0] if nested else None, nested_models=nested,
                     **extra)
    numeric = _numeric_columns(result, hierarchical)
    slopes = _numeric_slopes(result, hierarchical)
    predictor = slopes[0] if slopes else (numeric[0] if numeric else None)
    return Roles(hierarchical, unpooled, pooled, result.fits[hierarchical][0].design.blocks[0].group,
                 predictor, predictor, nested[0] if nested else None, nested, **extra)


def _numeric_columns(result: StudyResult, label: str) -> list[str]:
    """A model's numeric predictors that are columns of the data (no interactions, no categories)."""
    design = result.fits[label][0].design
    return [c for c in design.x.columns if c != "(Intercept)" and ":" not in c
            and c in design.data.columns and c not in design.categorical]


def _numeric_slopes(result: StudyResult, label: str) -> list[str]:
    """The numeric predictors with a random slope in a one-block model."""
    numeric = _numeric_columns(result, label)
    return [c for c in result.fits[label][0].design.blocks[0].z.columns if c in numeric]


def nested_models(result: StudyResult) -> tuple[str, ...]:
    """The study's models with a grouping factor nested in another (in study order)."""
    from compare_kit.compare import nesting_parents

    return tuple(label for label, (freq, _) in result.fits.items() if nesting_parents(freq.design))


def group_slug(group: str) -> str:
    """A grouping factor's name made safe for an HTML id (``fig-caterpillar-{slug}``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "-", group)


def crossed_models(result: StudyResult) -> tuple[str, ...]:
    """The study's models with two or more grouping factors, none nested in another (in study order)."""
    nested = set(nested_models(result))
    return tuple(label for label, (freq, _) in result.fits.items()
                 if label not in nested and len({b.group for b in freq.design.blocks}) > 1)


def panel_levels(result: StudyResult, roles: Roles) -> list[str]:
    """The study's chosen groups, else the smallest, median and largest groups (ties by name)."""
    design = result.fits[roles.hierarchical][0].design
    sizes = design.blocks[0].sizes
    wanted = [lv for lv in result.study.settings.panel_levels if lv in sizes.index]
    if wanted:
        return wanted
    return sized_levels(sizes, median=True)


def sized_levels(sizes: pd.Series, median: bool) -> list[str]:
    """The smallest and the largest level (ties by name), and the median one if ``median``."""
    order = sorted(sizes.items(), key=lambda kv: (kv[1], kv[0]))
    picks = [order[0][0], *([order[len(order) // 2][0]] if median else []), order[-1][0]]
    return list(dict.fromkeys(picks))


# ----------------------------------------------------------------- builders


def _line_draws(bayes: FitResult, level: str, intercept_cols: tuple[str, str | None],
                slope_cols: tuple[str | None, str | None], source: str, kind: Source, n: int) -> pd.DataFrame:
    """Per posterior draw, a group's intercept and slope: fixed column + the block's deviation."""
    draws = bayes.draws
    fixed = {name: draws.fixed[..., j].ravel() for j, name in enumerate(draws.fixed_names)}
    block = draws.blocks[0] if draws.blocks else None

    def value(cols: tuple[str | None, str | None]) -> np.ndarray:
        fixed_col, coef = cols
        total = fixed.get(fixed_col, 0.0) if fixed_col else 0.0
        total = np.zeros(draws.residual.size) + total
        if block is not None and coef in block.coefs:
            total = total + block.vals[:, :, block.levels.index(level), block.coefs.index(coef)].ravel()
        return total

    a, b = value(intercept_cols), value(slope_cols)
    keep = np.unique(np.linspace(0, a.size - 1, min(n, a.size)).round().astype(int))
    return pd.DataFrame({"level": level, "draw": keep, "intercept": a[keep], "slope": b[keep],
                         "source": source, "kind": kind.value})


def group_panels(result: StudyResult, roles: Roles) -> ReportFigure:
    freq, bayes = result.fits[roles.hierarchical]
    predictor = roles.predictor
    if predictor is None:
        raise ValueError("the hierarchical model has no numeric predictor to draw lines against")
    levels = panel_levels(result, roles)
    design = freq.design
    coefs = tuple(design.blocks[0].z.columns)
    lines, draws, notes = [], [], []
    partial_b = bayes.table("ran_coefs")
    partial_f = freq.table("ran_coefs")
    fixed_f = freq.table("fixed").set_index("term")["estimate"]
    fixed_b = bayes.table("fixed").set_index("term")["estimate"]

    def coef_of(table: pd.DataFrame, fixed: pd.Series, level: str, term: str) -> float:
        hit = table[(table["level"] == level) & (table["term"] == term)]
        if len(hit):
            return float(hit["estimate"].iloc[0])
        return float(fixed.get(term, 0.0))

    unpooled = result.fits.get(roles.unpooled) if roles.unpooled else None
    shrink = result.comparisons[roles.hierarchical].shrinkage
    for level in levels:
        if unpooled is not None:
            ub = unpooled[1]
            icol, scol = f"{roles.group}{level}", f"{roles.group}{level}:{predictor}"
            est = ub.table("fixed").set_index("term")
            if icol in est.index:
                slope = float(est["estimate"].get(scol, np.nan))
                lines.append({"level": level, "source": "no pooling", "kind": Source.NO_POOLING.value,
                              "intercept": float(est.loc[icol, "estimate"]), "slope": slope})
                draws.append(_line_draws(ub, level, (icol, None),
                                         (scol if scol in est.index else None, None),
                                         "no pooling", Source.NO_POOLING, MAX_DRAWS))
                note = unpooled[0].table("fixed").set_index("term")["note"].get(scol, "")
                if note:
                    notes.append(f"{level}: the no-pooling slope is not identified by the data ({note}); "
                                 "its posterior is the prior, drawn as the wide fan of faint green lines.")
        else:
            own = shrink[shrink["level"] == level].set_index("term")["no_pooling"]
            if "(Intercept)" in own.index:
                lines.append({"level": level, "source": "no pooling (own least squares)",
                              "kind": Source.NO_POOLING.value,
                              "intercept": float(own["(Intercept)"]),
                              "slope": float(own.get(predictor, fixed_f.get(predictor, np.nan)))})
        lines.append({"level": level, "source": "partial pooling (freq.)", "kind": Source.FREQUENTIST.value,
                      "intercept": coef_of(partial_f, fixed_f, level, "(Intercept)"),
                      "slope": coef_of(partial_f, fixed_f, level, predictor)})
        lines.append({"level": level, "source": "partial pooling", "kind": Source.BAYESIAN.value,
                      "intercept": coef_of(partial_b, fixed_b, level, "(Intercept)"),
                      "slope": coef_of(partial_b, fixed_b, level, predictor)})
        draws.append(_line_draws(bayes, level, ("(Intercept)", "(Intercept)" if "(Intercept)" in coefs else None),
                                 (predictor, predictor if predictor in coefs else None),
                                 "partial pooling", Source.BAYESIAN, MAX_DRAWS))
    data = design.data
    x_labels = result.study.value_labels.get(predictor)
    fig = plots.county_panels(data, design.response_label if design.response_label in data else
                              freq.spec.response.column, predictor, roles.group, levels,
                              pd.DataFrame(lines), pd.concat(draws, ignore_index=True),
                              x_labels=x_labels, seed=result.study.settings.seed, max_draws=MAX_DRAWS)
    title = f"Three {roles.group} groups: data and fitted lines"
    sizes = design.blocks[0].sizes
    if result.study.settings.panel_levels:
        chosen = "the study's chosen groups"
    elif sizes.nunique() == 1:
        chosen = f"every group has {count(int(sizes.iloc[0]), 'row')}: the first, middle and last by name"
    else:
        chosen = "the smallest, median and largest groups"
    green = (f"posterior mean and draws of the {roles.unpooled} model" if unpooled is not None else
             "the group's own least-squares line; no no-pooling model was fitted")
    caption = (plots.CAPTIONS["county_panels"] + f" Green: no pooling ({green}); "
               "vermillion: partial pooling (posterior mean and draws "
               f"of the {roles.hierarchical} model); blue: the frequentist partial-pooling line (fixed effects "
               f"plus BLUPs). Shown: {', '.join(levels)} ({chosen}).")
    return ReportFigure("fig-group-panels", title, caption, _svg(fig, "fig-group-panels"), tuple(notes))


def shrinkage_arrows(result: StudyResult, roles: Roles) -> ReportFigure:
    """The (intercept, slope) arrows of ``roles.arrows_model``, the first one-factor model with a slope."""
    if roles.arrows_model is None or roles.arrows_slope is None:
        raise ValueError("no model with one grouping factor has a random slope, so there is no "
                         "(intercept, slope) plane to draw")
    table = result.comparisons[roles.arrows_model].shrinkage
    seed = result.study.settings.seed
    fig = plots.shrinkage_arrows(table, "(Intercept)", roles.arrows_slope, seed=seed)
    own = table[table["term"] == "(Intercept)"]
    note = plots.arrow_sample_note(int(own["no_pooling"].notna().sum()), seed)
    caption = plots.CAPTIONS["shrinkage_arrows"]
    if roles.arrows_model != roles.hierarchical:
        caption += f" Drawn for the {roles.arrows_model} model, the first with a random slope."
    return ReportFigure("fig-shrinkage-arrows", "Shrinkage of intercepts and slopes", caption,
                        _svg(fig, "fig-shrinkage-arrows"), (note,) if note else ())


def shrinkage_size(result: StudyResult, roles: Roles) -> ReportFigure:
    table = result.comparisons[roles.hierarchical].shrinkage
    fig = plots.shrinkage_vs_size(table)
    return ReportFigure("fig-shrinkage-size", "Shrinkage against group size",
                        plots.CAPTIONS["shrinkage_vs_size"] + one_size_words(table), _svg(fig, "fig-shrinkage-size"))


def one_size_words(table: pd.DataFrame, group: str | None = None) -> str:
    """The caption's sentence for balanced data, where ``shrinkage_vs_size`` has no size axis ("" else)."""
    rows = table if group is None else table[table["group"] == group]
    size = plots.one_group_size(rows)
    if size is None:
        return ""
    return (f" Here every group has {count(size, 'row')}, so there is no size to plot against: the groups are "
            "spread along the axis from the least to the most shrunk, and the closed-form pooling factor, when "
            "shown, is one level line, the same for every group.")


def caterpillar(result: StudyResult, roles: Roles, term: str, fid: str | None = None,
                about: str = "") -> ReportFigure:
    """The group effects of ``roles.group`` (``about``: a sentence added to the caption)."""
    fig = plots.caterpillar(result.estimates, roles.group, term, model=roles.hierarchical)
    fid = fid or "fig-caterpillar-" + ("intercept" if term == "(Intercept)" else "slope")
    n_levels = len(result.fits[roles.hierarchical][0].design.group_sizes(roles.group))
    caption = plots.CAPTIONS["caterpillar_ranked" if n_levels > plots.MANY_LEVELS else "caterpillar"]
    title = f"Group effects: {plots.term_label(term)}"
    if about:
        title = f"Effects of each {roles.group}: {plots.term_label(term)}"
    return ReportFigure(fid, title, f"{caption} {about}".strip(), _svg(fig, fid))


def forest(result: StudyResult, roles: Roles) -> ReportFigure:
    fig = plots.fixed_effects_forest(result.estimates, model=roles.hierarchical)
    own = plots.separate_axes(result.estimates, model=roles.hierarchical)
    words = {"fixed": "fixed effects", "ran_pars": "SDs and correlations"}
    caption = plots.CAPTIONS["fixed_effects_forest"] + (
        f" The {' and the '.join(words[e] for e in own)} are on scales too different to share an axis, so each "
        "has its own: compare the two engines within a row, not lengths across rows." if own else "")
    return ReportFigure("fig-forest", "Population-level estimates", caption, _svg(fig, "fig-forest"))


def replicate_means(bayes: FitResult, keep: np.ndarray) -> np.ndarray:
    """The model's mean of every row at the flat (chain-major) draws ``keep``: (len(keep), n), built
    for those draws only (``BayesianFit.mu_at``)."""
    return bayes.mu_at(keep)


def predictive_check(result: StudyResult, roles: Roles) -> ReportFigure:
    bayes = result.fits[roles.hierarchical][1]
    if bayes.spec.family.value != "gaussian":
        return discrete_check(result, roles)
    design = bayes.design
    sigma = bayes.draws.residual.ravel()
    keep = np.unique(np.linspace(0, sigma.size - 1, min(MAX_DRAWS, sigma.size)).round().astype(int))
    mu = replicate_means(bayes, keep)
    rng = np.random.default_rng(result.study.settings.seed)
    reps = mu + rng.normal(size=(keep.size, design.n)) * sigma[keep, None]
    replicated = pd.DataFrame({"draw": np.repeat(keep, design.n), "value": reps.ravel(),
                               "source": f"{roles.hierarchical} model, replicated"})
    fig = plots.posterior_predictive(design.y, replicated, response_label=design.response_label)
    return ReportFigure("fig-ppc", "Posterior predictive check", plots.CAPTIONS["posterior_predictive"],
                        _svg(fig, "fig-ppc"))


def discrete_check(result: StudyResult, roles: Roles) -> ReportFigure:
    """The posterior predictive check of a discrete outcome: count frequencies (poisson), or each group's
    share of successes (bernoulli, binomial; the first grouping factor), observed against replicated."""
    bayes = result.fits[roles.hierarchical][1]
    design = bayes.design
    n_draws = bayes.n_draws
    keep = np.unique(np.linspace(0, n_draws - 1, min(MAX_DRAWS, n_draws)).round().astype(int))
    mu = replicate_means(bayes, keep)  # the outcome's mean: probability, expected successes or count
    rng = np.random.default_rng(result.study.settings.seed)
    reps = replicate(design, mu, slice(None), None, rng)  # counts, 0/1 outcomes, or successes of the trials
    if bayes.spec.family.value == "poisson":
        fig = plots.count_check(design.y, reps, response_label=design.response_label)
        return ReportFigure("fig-ppc", "Posterior predictive check: how often each count occurs",
                            plots.CAPTIONS["count_check"], _svg(fig, "fig-ppc"))
    trials = np.ones(design.n, dtype=int) if design.trials is None else design.trials.astype(int)
    block = design.blocks[0]
    group = block.group
    fig = plots.proportion_check(design.y, reps, trials, block.codes, group=group)
    return ReportFigure("fig-ppc", f"Posterior predictive check: each {group}'s share of successes",
                        plots.CAPTIONS["proportion_check"], _svg(fig, "fig-ppc"))


def rank_plots(result: StudyResult, roles: Roles, levels: dict[str, list[str]]) -> ReportFigure:
    """Rank plots of the fixed effects, every SD and correlation, the residual SD, and ``levels``
    (grouping factor -> a few of its levels, their first coefficient)."""
    import xarray as xr

    bayes = result.fits[roles.hierarchical][1]
    draws = bayes.draws
    variables: dict[str, Any] = {}
    labels: dict[str, str] = {}

    def add(label: str, values: np.ndarray) -> None:
        key = f"v{len(variables)}"
        variables[key] = xr.DataArray(np.asarray(values, dtype=float), dims=("chain", "draw"))
        labels[key] = label

    for j, name in enumerate(draws.fixed_names):
        add(plots.term_label(name), draws.fixed[..., j])
    for block in draws.blocks:
        for j, coef in enumerate(block.coefs):
            add(plots.term_label(f"sd__{coef}", block.group), block.sd[..., j])
        if block.cor is not None:
            add(plots.term_label(f"cor__{block.coefs[0]}.{block.coefs[-1]}", block.group), block.cor[..., 0, -1])
    if draws.residual is not None:  # a GLMM has no residual SD
        add("residual SD", draws.residual)
    for group, wanted in levels.items():
        block = next(b for b in draws.blocks if b.group == group)
        named = f"{group} " if len(levels) > 1 else ""  # one factor: the level alone, as always
        for level in wanted:
            if level in block.levels:
                add(f"{named}{level}: {plots.term_label(block.coefs[0])}",
                    block.vals[:, :, block.levels.index(level), 0])
    fig = plots.rank_plot(xr.Dataset(variables), list(variables), labels=labels, max_panels=12)
    return ReportFigure("fig-rank", f"Rank plots of the {roles.hierarchical} model's chains",
                        plots.CAPTIONS["rank_plot"], _svg(fig, "fig-rank"))


def _svg(fig: Any, fid: str) -> str:
    """Inline SVG with ids salted by the figure id (unique across figures) and no comments."""
    import re

    svg = plots.figure_to_svg(fig, salt=fid)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)  # matplotlib's text comments: data, not needed
    return re.sub(r"<svg ", f'<svg role="img" aria-labelledby="{fid}-title" ', svg, count=1)


# --------------------------------------------------------------------- all


def build_figures(result: StudyResult) -> tuple[dict[str, ReportFigure], list[str]]:
    """Every figure the report shows, by id, and a message for each that could not be drawn."""
    roles = model_roles(result)
    if roles.hierarchical is None and roles.nested is not None:
        return _run_jobs(nested_jobs(result, roles))
    if roles.hierarchical is None and roles.crossed is not None:
        return _run_jobs(crossed_jobs(result, roles))
    if roles.hierarchical is None:
        return {}, []  # nothing grouped to draw; the report says so where the figures would be
    levels = panel_levels(result, roles)
    design = result.fits[roles.hierarchical][0].design
    gaussian = design.spec.family.value == "gaussian"  # a GLMM's lines live on the link scale: no panels
    jobs: list[tuple[str, Callable[[], ReportFigure]]] = [
        *([("the group panels", lambda: group_panels(result, roles))] if gaussian else []),
        *([("the shrinkage arrows", lambda: shrinkage_arrows(result, roles))] if roles.arrows_model else []),
        ("shrinkage against group size", lambda: shrinkage_size(result, roles)),
        ("the population-level forest plot", lambda: forest(result, roles)),
    ]
    for term in design.blocks[0].z.columns[:2]:
        jobs.append((f"the caterpillar plot of {term}", lambda t=term: caterpillar(result, roles, t)))
    jobs += [("the posterior predictive check", lambda: predictive_check(result, roles)),
             ("the rank plots", lambda: rank_plots(result, roles, {roles.group: levels}))]
    return _run_jobs(jobs)


def _run_jobs(jobs: list[tuple[str, Callable[[], ReportFigure]]]) -> tuple[dict[str, ReportFigure], list[str]]:
    figures: dict[str, ReportFigure] = {}
    problems: list[str] = []
    for what, job in jobs:
        try:
            fig = job()
        except Exception as exc:  # noqa: BLE001 - a figure that fails is reported, not fatal
            problems.append(f"Figure not drawn: {what} ({type(exc).__name__}: {exc})")
            continue
        figures[fig.id] = fig
    return figures, problems


# ------------------------------------------------------------ nested models


def nested_levels(result: StudyResult, label: str) -> tuple[str, str]:
    """The outermost grouping factor of a nested model and the innermost one nested in it."""
    from compare_kit.compare import nesting_parents

    design = result.fits[label][0].design
    parents = nesting_parents(design)
    inner = max(parents, key=lambda i: len(design.blocks[i].levels))
    outer = inner
    while outer in parents:
        outer = parents[outer]
    return design.blocks[outer].group, design.blocks[inner].group


def nested_group_shrinkage(result: StudyResult, label: str, engine: str) -> ReportFigure:
    outer, inner = nested_levels(result, label)
    freq = result.fits[label][0]
    population = float(freq.table("fixed").set_index("term")["estimate"].get("(Intercept)", np.nan))
    table = result.comparisons[label].shrinkage
    fig = plots.nested_shrinkage(table, inner, engine=engine,
                                 population=population if np.isfinite(population) else None)
    who = "frequentist (BLUPs)" if engine == "freq" else "Bayesian (posterior means)"
    fid = f"fig-nested-{engine}"
    rows = table[table["group"] == inner]
    share = rows["shrinkage_freq" if engine == "freq" else "shrinkage_bayes"]
    small = rows["n"] <= 5
    note = (f"{label}: median share of the way to the {outer} for groups of 5 rows or fewer "
            f"{share[small].median():.2f}, for larger groups {share[~small].median():.2f}."
            if small.any() and (~small).any() else "")
    return ReportFigure(fid, f"{label}: {inner.split(':')[0]} toward {outer}, {who}",
                        plots.CAPTIONS["nested_shrinkage"], _svg(fig, fid), (note,) if note else ())


def nested_outer_shrinkage(result: StudyResult, label: str) -> ReportFigure:
    outer, _ = nested_levels(result, label)
    fig = plots.level_shrinkage(result.comparisons[label].shrinkage, outer)
    return ReportFigure("fig-nested-outer", f"{label}: each {outer} toward the population",
                        plots.CAPTIONS["level_shrinkage"], _svg(fig, "fig-nested-outer"))


def nested_size(result: StudyResult, label: str) -> ReportFigure:
    _, inner = nested_levels(result, label)
    outer, _ = nested_levels(result, label)
    fig = plots.shrinkage_vs_size(result.comparisons[label].shrinkage, group=inner,
                                  ylabel=f"shrinkage toward the {outer}'s estimate", unit=inner.split(":")[0])
    caption = plots.CAPTIONS["shrinkage_vs_size"].replace(
        "toward complete pooling", "toward the enclosing group's estimate") + one_size_words(
        result.comparisons[label].shrinkage, inner)
    return ReportFigure("fig-shrinkage-size", f"{label}: shrinkage of each {inner.split(':')[0]} toward its "
                        "enclosing group, against its size",
                        caption + f" Here the share is measured toward each {inner.split(':')[0]}'s {outer}, "
                        "not toward the population.",
                        _svg(fig, "fig-shrinkage-size"))


def nested_jobs(result: StudyResult, roles: Roles) -> list[tuple[str, Callable[[], ReportFigure]]]:
    """The figures of a study whose grouped models are nested: both shrinkage levels, both engines, and
    the model-level figures (forest, caterpillar of the outer factor, predictive check, rank plots)."""
    import dataclasses

    label = roles.nested
    outer, _ = nested_levels(result, label)
    as_main = dataclasses.replace(roles, hierarchical=label, group=outer)
    outer_levels = list(result.fits[label][0].design.group_sizes(outer).index)
    return [
        ("the population-level forest plot", lambda: forest(result, as_main)),
        (f"the caterpillar plot of {outer}", lambda: caterpillar(result, as_main, "(Intercept)")),
        ("the nested shrinkage figure (frequentist)", lambda: nested_group_shrinkage(result, label, "freq")),
        ("the nested shrinkage figure (Bayesian)", lambda: nested_group_shrinkage(result, label, "bayes")),
        (f"the shrinkage of each {outer}", lambda: nested_outer_shrinkage(result, label)),
        ("shrinkage against group size", lambda: nested_size(result, label)),
        ("the posterior predictive check", lambda: predictive_check(result, as_main)),
        ("the rank plots", lambda: rank_plots(result, as_main, {outer: outer_levels[:4]})),
    ]


# ----------------------------------------------------------- crossed models


def crossed_size(result: StudyResult, roles: Roles, group: str) -> ReportFigure:
    """Shrinkage of each level of one crossed factor against its size, with the closed-form factor."""
    table = result.comparisons[roles.crossed].shrinkage
    fid = f"fig-shrinkage-size-{group_slug(group)}"
    fig = plots.shrinkage_vs_size(table, group=group, unit=group)
    others = ", ".join(g for g in roles.crossed_groups if g != group)
    caption = (plots.CAPTIONS["shrinkage_vs_size"] + f" Here: each {group} of the {roles.crossed} model, "
               f"whose {group} effects are crossed with its {others} effects. The closed-form pooling factor "
               f"of a {group} with n rows is σ²/(σ² + n·τ²), τ the SD of the {group} effects and σ the "
               "residual SD: the share of the way a level's own estimate is pulled to the population value."
               if result.fits[roles.crossed][0].spec.family.value == "gaussian" else
               plots.CAPTIONS["shrinkage_vs_size"] + f" Here: each {group} of the {roles.crossed} model, "
               f"whose {group} effects are crossed with its {others} effects, on the link scale; a GLMM has no "
               "closed-form pooling factor, so no line is drawn.") + one_size_words(table, group)
    return ReportFigure(fid, f"Shrinkage of each {group} against its number of rows", caption, _svg(fig, fid))


def crossed_jobs(result: StudyResult, roles: Roles) -> list[tuple[str, Callable[[], ReportFigure]]]:
    """The figures of a study whose grouped model has crossed factors: the model-level figures (forest,
    predictive check, rank plots with the smallest and largest level of each factor) and, per factor,
    its caterpillar(s) and its shrinkage against size."""
    import dataclasses

    label = roles.crossed
    design = result.fits[label][0].design
    as_main = dataclasses.replace(roles, hierarchical=label, group=roles.crossed_groups[0])
    extremes = {g: sized_levels(design.group_sizes(g), median=False) for g in roles.crossed_groups}
    jobs: list[tuple[str, Callable[[], ReportFigure]]] = [
        ("the population-level forest plot", lambda: forest(result, as_main)),
        ("the posterior predictive check", lambda: predictive_check(result, as_main)),
        ("the rank plots", lambda: rank_plots(result, as_main, extremes)),
    ]
    for group in roles.crossed_groups:
        slug = group_slug(group)
        others = ", ".join(g for g in roles.crossed_groups if g != group)
        about = (f"Here: the {group} effects of the {label} model ({len(design.group_sizes(group)):,} "
                 f"levels), crossed with its {others} effects.")
        terms = list(dict.fromkeys(c for b in design.blocks if b.group == group for c in b.z.columns))
        slopes = [t for t in terms if t != "(Intercept)"]
        for term in [t for t in terms if t == "(Intercept)"] + slopes[:1]:
            fid = f"fig-caterpillar-{slug}" + ("" if term == "(Intercept)" else "-slope")
            jobs.append((f"the caterpillar plot of {group} ({term})",
                         lambda g=group, t=term, f=fid, a=about: caterpillar(
                             result, dataclasses.replace(as_main, group=g), t, f, a)))
        jobs.append((f"shrinkage of each {group} against its size", lambda g=group: crossed_size(result, roles, g)))
    return jobs
