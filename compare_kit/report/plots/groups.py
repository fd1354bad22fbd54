"""Group-level figures: each group's data and lines, shrinkage arrows, shrinkage against group size,
and nested (state/county) shrinkage. The shrinkage-against-size points are a seaborn scatterplot
(hue = engine); the other figures are hand-written matplotlib, each docstring says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import MaxNLocator

from compare_kit.display import term_label
from compare_kit.report.plots.style import (
    MANY_LEVELS,
    BAYES_COLOR,
    COMPLETE_POOLING_COLOR,
    DATA_COLOR,
    FREQ_COLOR,
    NO_POOLING_COLOR,
    count_text,
    evenly_spaced,
    new_figure,
    number_label,
    panel_grid,
    pick_one,
    require_columns,
    short_text,
    source_colors,
    source_kinds,
    styled,
)
from compare_kit.report.plots.captions import CAPTIONS


# --------------------------------------------------------------------------- 1. group panels

@styled
def county_panels(data: pd.DataFrame, response: str, predictor: str, group: str,
                  levels: Sequence[Any], lines: pd.DataFrame, draws: pd.DataFrame | None = None,
                  *, x_labels: Mapping[Any, str] | None = None, seed: int = 0,
                  max_draws: int = 100, ncols: int = 3) -> Figure:
    """Observations and fitted lines for a few groups, one panel each (the tutorial's figure).

    Parameters
    ----------
    data : DataFrame
        The raw table; ``response``, ``predictor`` and ``group`` name its columns.
    levels : sequence
        The groups to show, one panel each, in this order.
    lines : DataFrame
        Columns ``level, source, intercept, slope``: one thick line per source and level.
    draws : DataFrame, optional
        Columns ``level, draw, intercept, slope, source``: thin lines for posterior draws
        (at most ``max_draws`` per level and source, evenly spaced, so no randomness).
    x_labels : mapping, optional
        Tick labels for the predictor's values, e.g. ``{0: "basement", 1: "first floor"}``.
    seed : int
        Seeds the sideways jitter of the points.

    Hand-written matplotlib: seaborn's FacetGrid/relplot make their own pyplot figure sized per panel
    (not the report's fixed width), stripplot jitters with numpy's global random state (not ``seed``),
    and many draws as one LineCollection per panel keep the SVG small.
    """
    require_columns(data, [response, predictor, group], "data")
    require_columns(lines, ["level", "source", "intercept", "slope"], "lines")
    if draws is not None:
        require_columns(draws, ["level", "draw", "intercept", "slope", "source"], "draws")
    levels = [str(level) for level in levels]
    if not levels:
        raise ValueError("give at least one level to show")
    groups = data[group].astype(str)
    absent = [level for level in levels if not (groups == level).any()]
    if absent:
        raise ValueError(f"levels {absent} are not in column {group!r} "
                         f"(it has e.g. {sorted(groups.unique())[:5]})")

    x_all = pd.to_numeric(data[predictor], errors="raise").to_numpy(dtype=float)
    x_values = np.unique(x_all[np.isfinite(x_all)])
    discrete = len(x_values) <= 10
    span = float(x_values.max() - x_values.min()) if len(x_values) > 1 else 1.0
    pad = 0.2 * span if discrete else 0.05 * span
    xs = np.array([x_values.min() - pad, x_values.max() + pad])  # straight lines: two points

    line_sources = list(dict.fromkeys(lines["source"].astype(str)))
    draw_sources = [] if draws is None else list(dict.fromkeys(draws["source"].astype(str)))
    all_sources = list(dict.fromkeys(line_sources + draw_sources))
    colors = source_colors(all_sources, source_kinds(lines, draws))

    fig, axes, ncols = panel_grid(len(levels), ncols, 3.4, 0.6)

    rng = np.random.default_rng(seed)
    line_level = lines["level"].astype(str)
    draw_level = None if draws is None else draws["level"].astype(str)
    for ax, level in zip(axes, levels, strict=False):
        rows = data[groups == level]
        x = pd.to_numeric(rows[predictor]).to_numpy(dtype=float)
        y = pd.to_numeric(rows[response]).to_numpy(dtype=float)
        jitter = rng.normal(0.0, 0.03 * span, size=len(x)) if discrete else 0.0
        if draws is not None:
            for source in draw_sources:
                sub = draws[(draw_level == level) & (draws["source"].astype(str) == source)]
                keep = evenly_spaced(sorted(sub["draw"].unique()), max_draws)
                sub = sub[sub["draw"].isin(keep)]
                segments = [np.column_stack([xs, a + b * xs])
                            for a, b in zip(sub["intercept"], sub["slope"], strict=True)]
                ax.add_collection(LineCollection(segments, colors=colors[source], linewidths=0.7,
                                                 alpha=min(0.25, 8.0 / max(len(segments), 1))))
        for source in line_sources:
            sub = lines[(line_level == level) & (lines["source"].astype(str) == source)]
            for a, b in zip(sub["intercept"], sub["slope"], strict=True):
                if np.isfinite(a) and np.isfinite(b):
                    ax.plot(xs, a + b * xs, color=colors[source], linewidth=2.6, solid_capstyle="round")
        ax.scatter(x + jitter, y, s=30, color=DATA_COLOR, alpha=0.85, linewidths=0, zorder=3)
        ax.set_title(f"{short_text(level)}  (n = {len(rows)})")
        if discrete:
            ax.set_xticks(x_values)
            labels = [short_text(x_labels.get(v, x_labels.get(int(v), number_label(v))) if x_labels else
                            number_label(v)) for v in x_values]
            ax.set_xticklabels(labels)
            ax.grid(False, axis="x")
        ax.set_xlim(xs[0], xs[-1])
        ax.set_xlabel(short_text(predictor))
    for ax in axes[: len(levels)][::ncols]:
        ax.set_ylabel(short_text(response))
    # leave y limits to the data and thick lines, not to extreme draws
    y_data = pd.to_numeric(data.loc[groups.isin(levels), response]).to_numpy(dtype=float)
    y_lines = [a + b * xs for a, b, lv in zip(lines["intercept"], lines["slope"], line_level, strict=True)
               if lv in levels and np.isfinite(a) and np.isfinite(b)]
    y_all = np.concatenate([y_data[np.isfinite(y_data)], *y_lines]) if y_lines else y_data
    lo, hi = float(np.nanmin(y_all)), float(np.nanmax(y_all))
    margin = 0.08 * (hi - lo if hi > lo else 1.0)
    axes[0].set_ylim(lo - margin, hi + margin)

    handles = [Line2D([], [], color=colors[s], linewidth=2.6, label=short_text(s)) for s in line_sources]
    handles += [Line2D([], [], color=colors[s], linewidth=0.8, alpha=0.6, label=f"{short_text(s)}: draws")
                for s in draw_sources]
    handles.append(Line2D([], [], color=DATA_COLOR, marker="o", linestyle="", markersize=5,
                          label="observations"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
    return fig


# --------------------------------------------------------------------------- 2. shrinkage arrows

_PARTIAL = (("partial_freq", "frequentist (statsmodels BLUPs)", FREQ_COLOR),
            ("partial_bayes", "Bayesian (posterior means)", BAYES_COLOR))


def _wide_shrinkage(shrinkage: pd.DataFrame, group: str | None, terms: Sequence[str]) -> pd.DataFrame:
    """One row per level, columns (value column, term)."""
    require_columns(shrinkage, ["group", "level", "n", "term", "no_pooling", "complete_pooling",
                         "partial_freq", "partial_bayes"], "shrinkage")
    table = pick_one(shrinkage, "group", group, "shrinkage")
    missing = [t for t in terms if not (table["term"] == t).any()]
    if missing:
        raise ValueError(f"terms {missing} are not in the shrinkage table; it has "
                         f"{sorted(table['term'].unique())}")
    table = table[table["term"].isin(terms)].assign(level=lambda f: f["level"].astype(str))
    return table.pivot(index="level", columns="term",
                       values=["n", "no_pooling", "complete_pooling", "partial_freq", "partial_bayes"])


def _robust_limits(core: np.ndarray, extra: np.ndarray) -> tuple[float, float]:
    """Limits that show all of ``core`` and the bulk of ``extra`` (outliers may fall outside)."""
    core = core[np.isfinite(core)]
    extra = extra[np.isfinite(extra)]
    lo, hi = (core.min(), core.max()) if core.size else (np.inf, -np.inf)
    if extra.size:
        q1, q3 = np.quantile(extra, [0.25, 0.75])
        fence = 2.0 * (q3 - q1)
        inside = extra[(extra >= q1 - fence) & (extra <= q3 + fence)]
        if inside.size:
            lo, hi = min(lo, inside.min()), max(hi, inside.max())
    if not np.isfinite(lo):
        lo, hi = 0.0, 1.0
    margin = 0.06 * (hi - lo if hi > lo else 1.0)
    return float(lo - margin), float(hi + margin)


ARROW_SAMPLE = 100  # groups drawn at random when there are too many arrows to see ...
ARROW_LONGEST = 20  # ... plus the longest arrows, which the eye looks for first


def arrow_sample_note(total: int, seed: int) -> str:
    """What the shrinkage arrows show of ``total`` groups (empty when every group is drawn)."""
    if total <= ARROW_SAMPLE + ARROW_LONGEST:
        return ""
    return (f"{total:,} groups are too many arrows to see: drawn are {ARROW_SAMPLE} groups picked at random "
            f"(seed {seed}) and the {ARROW_LONGEST} with the longest arrows.")


def _arrow_sample(lengths: np.ndarray, seed: int) -> np.ndarray:
    """Which groups to draw: all if few, else the longest arrows and a seeded random sample of the rest.
    ``lengths`` is NaN for a group with nothing to draw."""
    drawable = np.flatnonzero(np.isfinite(lengths))
    shown = np.zeros(lengths.size, dtype=bool)
    if drawable.size <= ARROW_SAMPLE + ARROW_LONGEST:
        shown[drawable] = True
        return shown
    by_length = drawable[np.argsort(-lengths[drawable], kind="stable")]
    shown[by_length[:ARROW_LONGEST]] = True
    rest = by_length[ARROW_LONGEST:]
    shown[np.random.default_rng(seed).choice(np.sort(rest), ARROW_SAMPLE, replace=False)] = True
    return shown


@styled
def shrinkage_arrows(shrinkage: pd.DataFrame, intercept_term: str = "(Intercept)",
                     slope_term: str | None = None, *, group: str | None = None, seed: int = 0) -> Figure:
    """Arrows from each group's own (intercept, slope) to its partial-pooling estimate.

    One panel per engine with partial-pooling values (``partial_freq``,
    ``partial_bayes``). Groups whose own slope is not estimable get a hollow marker at
    their own intercept (at the partial slope's height); groups with no own estimate
    at all are counted in the panel, not silently dropped. Own estimates far outside
    the bulk are left outside the view (their arrows enter from the edge) and counted.
    ``slope_term`` may be left out when the table holds one term besides the intercept.
    More than ``ARROW_SAMPLE + ARROW_LONGEST`` groups are too many arrows to see: the
    longest ``ARROW_LONGEST`` (in view units, either panel) and ``ARROW_SAMPLE`` others
    picked at random with ``seed`` are drawn, the same groups in both panels, and the
    heading says so (``arrow_sample_note``).
    Hand-written matplotlib: seaborn has no arrows (the tutorial's figure is one arrow per group).
    """
    if slope_term is None:
        others = list(dict.fromkeys(t for t in shrinkage["term"].astype(str) if t != intercept_term))
        if len(others) != 1:
            raise ValueError(f"say which slope to draw with slope_term=...; the table's terms are {others}")
        slope_term = others[0]
    wide = _wide_shrinkage(shrinkage, group, [intercept_term, slope_term])
    a0 = wide[("no_pooling", intercept_term)].to_numpy(dtype=float)
    b0 = wide[("no_pooling", slope_term)].to_numpy(dtype=float)
    ac = float(np.nanmean(wide[("complete_pooling", intercept_term)].to_numpy(dtype=float)))
    bc = float(np.nanmean(wide[("complete_pooling", slope_term)].to_numpy(dtype=float)))
    panels = [(col, title, color) for col, title, color in _PARTIAL
              if wide[(col, intercept_term)].notna().any()]
    if not panels:
        raise ValueError("the shrinkage table has no partial-pooling estimates to draw")

    x_lim = _robust_limits(np.concatenate([*(wide[(c, intercept_term)].to_numpy(dtype=float)
                                             for c, _, _ in panels), [ac]]), a0)
    y_lim = _robust_limits(np.concatenate([*(wide[(c, slope_term)].to_numpy(dtype=float)
                                             for c, _, _ in panels), [bc]]), b0)

    fig = new_figure(height=5.3)
    axes = fig.subplots(1, len(panels), sharex=True, sharey=True, squeeze=False).ravel()
    lengths = np.full(a0.size, np.nan)
    for col, _, _ in panels:  # in view units; a hollow group's arrow is horizontal, at the partial slope
        ap, bp = (wide[(col, t)].to_numpy(dtype=float) for t in (intercept_term, slope_term))
        dx = (ap - a0) / (x_lim[1] - x_lim[0])
        dy = (bp - np.where(np.isfinite(b0), b0, bp)) / (y_lim[1] - y_lim[0])
        lengths = np.fmax(lengths, np.hypot(dx, dy))
    shown = _arrow_sample(lengths, seed)
    both = np.isfinite(a0) & np.isfinite(b0) & shown
    no_slope = np.isfinite(a0) & ~np.isfinite(b0) & shown
    for ax, (col, title, color) in zip(axes, panels, strict=True):
        ap = wide[(col, intercept_term)].to_numpy(dtype=float)
        bp = wide[(col, slope_term)].to_numpy(dtype=float)
        has_partial = np.isfinite(ap) & np.isfinite(bp)
        arrows = both & has_partial
        for i in np.flatnonzero(arrows):
            ax.add_patch(FancyArrowPatch((a0[i], b0[i]), (ap[i], bp[i]), arrowstyle="-|>",
                                         mutation_scale=8, linewidth=0.7, color="#555555",
                                         alpha=0.55, shrinkA=0, shrinkB=2, zorder=2))
        ax.scatter(a0[arrows], b0[arrows], s=18, color=NO_POOLING_COLOR, alpha=0.75, linewidths=0,
                   zorder=3)
        hollow = no_slope & has_partial
        for i in np.flatnonzero(hollow):
            ax.plot([a0[i], ap[i]], [bp[i], bp[i]], color="#999999", linewidth=0.6,
                    linestyle=":", zorder=1)
        ax.scatter(a0[hollow], bp[hollow], s=22, facecolors="none", edgecolors=NO_POOLING_COLOR,
                   linewidths=1.0, zorder=3)
        drawn = has_partial & shown
        ax.scatter(ap[drawn], bp[drawn], s=18, color=color, alpha=0.9, linewidths=0, zorder=4)
        ax.scatter([ac], [bc], s=90, marker="X", color=COMPLETE_POOLING_COLOR, edgecolors="white",
                   linewidths=0.8, zorder=5)
        outside = int(np.sum(arrows & ((a0 < x_lim[0]) | (a0 > x_lim[1]) |
                                       (b0 < y_lim[0]) | (b0 > y_lim[1]))))
        unseen = int(np.sum(~np.isfinite(a0) | ~has_partial))
        notes = [f"{count_text(int(arrows.sum()), 'arrow')}, {int(hollow.sum())} hollow"]
        if outside:
            notes.append(f"{count_text(outside, 'own estimate')} beyond the view")
        if unseen:
            notes.append(f"{count_text(unseen, 'group')} without estimates to draw")
        ax.text(0.01, 0.01, "; ".join(notes), transform=ax.transAxes, fontsize=8, color="#555555",
                ha="left", va="bottom")
        ax.set_title(title, color=color)
        ax.set_xlabel(f"{term_label(intercept_term)}")
        ax.set_xlim(*x_lim)
        ax.set_ylim(*y_lim)
    axes[0].set_ylabel(f"{term_label(slope_term)} slope")

    handles = [
        Line2D([], [], color=NO_POOLING_COLOR, marker="o", linestyle="", label="no pooling (group alone)"),
        Line2D([], [], color=NO_POOLING_COLOR, marker="o", markerfacecolor="none", linestyle="",
               label=f"no own {short_text(slope_term)} slope: own intercept only"),
        *[Line2D([], [], color=color, marker="o", linestyle="",
                 label=f"partial pooling, {title.split(' (')[0]}") for _, title, color in panels],
        Line2D([], [], color=COMPLETE_POOLING_COLOR, marker="X", linestyle="", markersize=8,
               label="complete pooling"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    note = arrow_sample_note(int(np.isfinite(lengths).sum()), seed)
    if note:
        fig.suptitle(note, fontsize=9, color="#555555")
    return fig


# --------------------------------------------------------------------------- 3. shrinkage vs size

_SHARE_SERIES = (("shrinkage_freq", "frequentist", FREQ_COLOR, "o", 0.94),
                 ("shrinkage_bayes", "Bayesian", BAYES_COLOR, "s", 1.06))


@styled
def shrinkage_vs_size(shrinkage: pd.DataFrame, *, group: str | None = None,
                      terms: Sequence[str] | None = None,
                      ylim: tuple[float, float] = (-0.25, 1.25), ylabel: str | None = None,
                      unit: str | None = None) -> Figure:
    """Share of shrinkage against group size, one panel per term, both engines.

    The points are one seaborn scatterplot per panel, hue (and marker) = engine, coloured
    from the engine palette; the two engines are dodged sideways (x times 0.94 and 1.06).
    If the table has a ``pooling_factor`` column (the closed-form share expected
    from the variance components; ``compare.shrinkage_table`` fills it for a random
    intercept alone), its finite values are drawn as a line. Values outside
    ``ylim`` are drawn as open triangles on the edge, not dropped (matplotlib: seaborn
    fills the markers it colours by hue). Above ``MANY_LEVELS`` groups the points are
    smaller and become one embedded image (``rasterized``), which keeps the SVG small. When every group
    has the same size (balanced data) there is no size axis to draw against: the groups are spread along
    a linear axis in order of their frequentist share instead (``one_size``), and the axis says so.
    """
    import seaborn as sns

    require_columns(shrinkage, ["group", "level", "n", "term", "shrinkage_freq", "shrinkage_bayes"], "shrinkage")
    table = pick_one(shrinkage, "group", group, "shrinkage")
    terms = list(dict.fromkeys(table["term"])) if terms is None else list(terms)
    has_curve = ("pooling_factor" in table.columns
                 and bool(np.isfinite(pd.to_numeric(table["pooling_factor"], errors="coerce")).any()))
    fig = new_figure(height=4.2)
    axes = fig.subplots(1, len(terms), sharey=True, squeeze=False).ravel()
    lo, hi = ylim
    series = [(col, label, color, marker, dodge) for col, label, color, marker, dodge in _SHARE_SERIES
              if pd.to_numeric(table[col], errors="coerce").notna().any()]
    if len(series) == 1:  # nothing to dodge from
        series = [(col, label, color, marker, 1.0) for col, label, color, marker, _ in series]
    engines = [label for _, label, _, _, _ in series]
    palette = {label: color for _, label, color, _, _ in series}
    markers = {label: marker for _, label, _, marker, _ in series}
    one_size = one_group_size(table)
    for ax, term in zip(axes, terms, strict=True):
        rows = table[table["term"] == term]
        n = rows["n"].to_numpy(dtype=float)
        if one_size is not None:  # balanced: x is the group's rank by frequentist share (1 = least shrunk)
            rows = rows.sort_values("shrinkage_freq", kind="stable")
            n = np.arange(1.0, len(rows) + 1)
        many = len(rows) > MANY_LEVELS
        if has_curve:
            pf = pd.to_numeric(rows["pooling_factor"], errors="coerce").to_numpy(dtype=float)
            ok = np.isfinite(pf)
            if ok.any() and one_size is not None:  # one size, one pooling factor: a level line
                ax.axhline(float(np.median(pf[ok])), color="black", linewidth=1.4, zorder=2)
            elif ok.any():  # one vertex per distinct (size, factor): thousands of groups share a few sizes
                curve = np.unique(np.column_stack([n[ok], pf[ok]]), axis=0)
                ax.plot(curve[:, 0], curve[:, 1], color="black", linewidth=1.4, zorder=2)
        # one long table: a row per group and engine with a finite share (frequentist rows first)
        def dodged(dodge: float) -> np.ndarray:  # sideways: x 0.94 / 1.06 on a log axis, +-0.15 of a rank
            return n + (dodge - 1.0) * 2.5 if one_size is not None else n * dodge

        points = pd.concat([pd.DataFrame({"row": np.arange(len(rows)), "engine": label, "n": dodged(dodge),
                                          "share": rows[col].to_numpy(dtype=float)})
                            for col, label, _, _, dodge in series], ignore_index=True)
        points = points[np.isfinite(points["share"]) & np.isfinite(points["n"]) & (points["n"] > 0)]
        inside = points[points["share"].between(lo, hi)]
        if not inside.empty:
            sns.scatterplot(data=inside, x="n", y="share", hue="engine", style="engine", hue_order=engines,
                            style_order=engines, palette=palette, markers=markers, s=8 if many else 20,
                            alpha=0.5 if many else 0.7, linewidth=0, legend=False, ax=ax, zorder=3,
                            rasterized=many)
        for beyond, edge, tri in ((points["share"] < lo, lo, "v"), (points["share"] > hi, hi, "^")):
            out = points[beyond]
            ax.scatter(out["n"], np.full(len(out), edge), s=28, marker=tri, facecolors="none",
                       edgecolors=out["engine"].map(palette).tolist(), linewidths=1.0, zorder=3,
                       clip_on=False, rasterized=many)
        for level_y in (0.0, 1.0):
            ax.axhline(level_y, color="#888888", linewidth=0.8, linestyle="--", zorder=1)
        if one_size is None:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(lo - 0.03, hi + 0.03)
        title = term_label(str(term))
        # groups that have no share to draw at all (usually: no own estimate)
        missing = len(rows) - points["row"].nunique()
        if missing:
            title += f"\n({count_text(missing, 'group')} without an own estimate, not shown)"
        ax.set_title(title)
        per = short_text(unit) if unit else short_text(rows["group"].iloc[0]) if len(rows) else "group"
        ax.set_xlabel(f"observations per {per} (log scale)" if one_size is None else
                      f"each {per} ({count_text(one_size, 'row')} each), least to most shrunk")
        ax.set_ylabel("")
    for level_y, words in ((0.0, "none"), (1.0, "complete\npooling")):
        axes[-1].text(1.02, level_y, words, transform=axes[-1].get_yaxis_transform(), ha="left",
                      va="center", fontsize=8, color="#555555")
    axes[0].set_ylabel(ylabel or "shrinkage toward complete pooling")
    handles = [Line2D([], [], color=palette[e], marker=markers[e], linestyle="", label=e) for e in engines]
    if has_curve:
        handles.append(Line2D([], [], color="black", linewidth=1.4, label="closed-form pooling factor"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def one_group_size(shrinkage: pd.DataFrame) -> int | None:
    """The one size every group of a shrinkage table has (balanced data), else None."""
    sizes = pd.to_numeric(shrinkage["n"], errors="coerce").dropna().unique()
    return int(sizes[0]) if len(sizes) == 1 and len(shrinkage) > 1 else None


# --------------------------------------------------------------------------- 8. nested shrinkage

_NESTED_ENGINES = {"freq": ("partial_freq", "complete_pooling", "frequentist (statsmodels BLUPs)", FREQ_COLOR),
                   "bayes": ("partial_bayes", "complete_pooling_bayes", "Bayesian (posterior means)", BAYES_COLOR)}


def _arrow(ax: Any, x0: float, y0: float, x1: float, y1: float, color: str = "#555555") -> None:
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=7, linewidth=0.7,
                                 color=color, alpha=0.6, shrinkA=0, shrinkB=1.5, zorder=2))


@styled
def nested_shrinkage(shrinkage: pd.DataFrame, group: str, *, engine: str = "freq", term: str = "(Intercept)",
                     population: float | None = None, ncols: int = 4) -> Figure:
    """Groups of a nested factor pulled toward their enclosing group, one panel per enclosing level.

    ``shrinkage`` is ``compare.shrinkage_table``'s frame; the rows of ``group`` (e.g.
    ``county:state``) and ``term`` are drawn. In each panel (one enclosing level, e.g. a
    state) every group is an arrow from its own estimate (green dot) to its partial-pooling
    estimate (``engine``: ``"freq"`` BLUP-based, ``"bayes"`` posterior means), at its size
    (log scale); the solid line is the enclosing level's own partial-pooling estimate, the
    target the arrows point to, and the dotted line the population value, when given.
    Hand-written matplotlib: seaborn has no arrows, and its FacetGrid would make its own pyplot figure.
    """
    require_columns(shrinkage, ["group", "level", "n", "term", "no_pooling", "toward_level", "partial_freq",
                         "partial_bayes", "complete_pooling", "complete_pooling_bayes"], "shrinkage")
    if engine not in _NESTED_ENGINES:
        raise ValueError(f"engine must be 'freq' or 'bayes', not {engine!r}")
    part_col, target_col, title, color = _NESTED_ENGINES[engine]
    rows = shrinkage[(shrinkage["group"] == group) & (shrinkage["term"] == term)]
    if rows.empty or not rows["toward_level"].astype(str).ne("").any():
        raise ValueError(f"no nested rows of {group!r} and {term!r} in the shrinkage table")
    if not pd.to_numeric(rows[part_col], errors="coerce").notna().any():
        raise ValueError(f"the shrinkage table has no {part_col} values to draw")
    outer = sorted(rows["toward_level"].astype(str).unique())
    fig, axes, ncols = panel_grid(len(outer), ncols, 2.7, 1.0)
    own_all = rows["no_pooling"].to_numpy(dtype=float)
    core = np.concatenate([rows[part_col].to_numpy(dtype=float), rows[target_col].to_numpy(dtype=float),
                           [population] if population is not None else []])
    y_lim = _robust_limits(core, own_all)
    n_all = rows["n"].to_numpy(dtype=float)
    x_lim = (max(0.7, float(np.nanmin(n_all)) * 0.8), float(np.nanmax(n_all)) * 1.25)
    beyond_total = 0
    for ax, level in zip(axes, outer, strict=False):
        sub = rows[rows["toward_level"].astype(str) == level]
        n = sub["n"].to_numpy(dtype=float)
        own = sub["no_pooling"].to_numpy(dtype=float)
        part = sub[part_col].to_numpy(dtype=float)
        target = float(np.nanmean(sub[target_col].to_numpy(dtype=float)))
        if population is not None:
            ax.axhline(population, color="#999999", linewidth=1.0, linestyle=":", zorder=1)
        ax.axhline(target, color=COMPLETE_POOLING_COLOR, linewidth=1.4, zorder=1)
        ok = np.isfinite(own) & np.isfinite(part)
        shown_own = np.clip(own, y_lim[0], y_lim[1])
        for x, y0, y1 in zip(n[ok], shown_own[ok], part[ok], strict=True):
            _arrow(ax, x, y0, x, y1)
        inside = ok & (own >= y_lim[0]) & (own <= y_lim[1])
        ax.scatter(n[inside], own[inside], s=12, color=NO_POOLING_COLOR, alpha=0.75, linewidths=0, zorder=3)
        clipped = ok & ~inside
        beyond_total += int(clipped.sum())
        ax.scatter(n[clipped], shown_own[clipped], s=18, marker="^", facecolors="none",
                   edgecolors=NO_POOLING_COLOR, linewidths=0.9, zorder=3, clip_on=False)
        ax.scatter(n[ok], part[ok], s=12, color=color, alpha=0.9, linewidths=0, zorder=4)
        ax.set_title(f"{short_text(level, 24)}: {len(sub)} groups", fontsize=10)
        ax.set_xscale("log")
        ax.set_xlim(*x_lim)
        ax.set_ylim(*y_lim)
    inner = group.split(":")[0]
    for c in range(ncols):  # the lowest panel of each column carries the axis label
        lowest = max(i for i in range(len(outer)) if i % ncols == c)
        axes[lowest].set_xlabel(f"{short_text(inner, 16)} size (log scale)")
        axes[lowest].xaxis.set_tick_params(labelbottom=True)
    for ax in axes[: len(outer)][::ncols]:
        ax.set_ylabel(term_label(term))
    heading = f"{short_text(inner)} estimates pulled toward their {short_text(rows['toward_group'].iloc[0])}: {title}"
    if beyond_total:
        heading += f"\n({count_text(beyond_total, 'own estimate')} beyond the view, drawn as open triangles at the edge)"
    fig.suptitle(heading)
    handles = [Line2D([], [], color=NO_POOLING_COLOR, marker="o", linestyle="", label="own estimate (no pooling)"),
               Line2D([], [], color=color, marker="o", linestyle="", label="partial pooling"),
               Line2D([], [], color=COMPLETE_POOLING_COLOR, linewidth=1.4,
                      label=f"the {short_text(rows['toward_group'].iloc[0])}'s partial-pooling estimate (target)")]
    if population is not None:
        handles.append(Line2D([], [], color="#999999", linewidth=1.0, linestyle=":", label="population value"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


@styled
def level_shrinkage(shrinkage: pd.DataFrame, group: str, *, term: str = "(Intercept)") -> Figure:
    """The levels of one grouping factor pulled toward the population: one panel per engine.

    Each row is a level (sorted by its own estimate): an arrow from its own estimate (green
    dot) to its partial-pooling estimate; the vertical line is the value the rows are pulled
    toward (``complete_pooling``, ``complete_pooling_bayes``). Meant for a factor with few
    levels (e.g. states), where every level can be named.
    Hand-written matplotlib: seaborn has no arrows.
    """
    require_columns(shrinkage, ["group", "level", "n", "term", "no_pooling", "partial_freq", "partial_bayes",
                         "complete_pooling"], "shrinkage")
    rows = shrinkage[(shrinkage["group"] == group) & (shrinkage["term"] == term)]
    if rows.empty:
        raise ValueError(f"no rows of {group!r} and {term!r} in the shrinkage table")
    rows = rows.assign(level=rows["level"].astype(str)).sort_values("no_pooling", kind="stable")
    panels = [(part, target if target in rows else "complete_pooling", title, color)
              for part, target, title, color in _NESTED_ENGINES.values()
              if pd.to_numeric(rows[part], errors="coerce").notna().any()]
    if not panels:
        raise ValueError("the shrinkage table has no partial-pooling estimates to draw")
    fig = new_figure(height=max(2.8, 0.36 * len(rows) + 1.6))
    axes = fig.subplots(1, len(panels), sharey=True, sharex=True, squeeze=False).ravel()
    y = np.arange(len(rows))[::-1].astype(float)
    for ax, (part_col, target_col, title, color) in zip(axes, panels, strict=True):
        own = rows["no_pooling"].to_numpy(dtype=float)
        part = rows[part_col].to_numpy(dtype=float)
        target = float(np.nanmean(rows[target_col].to_numpy(dtype=float)))
        ax.axvline(target, color=COMPLETE_POOLING_COLOR, linewidth=1.4, zorder=1)
        for yy, a, b in zip(y, own, part, strict=True):
            if np.isfinite(a) and np.isfinite(b):
                ax.add_patch(FancyArrowPatch((a, yy), (b, yy), arrowstyle="-|>", mutation_scale=9,
                                             linewidth=1.0, color="#555555", shrinkA=0, shrinkB=2, zorder=2))
        ax.scatter(own, y, s=30, color=NO_POOLING_COLOR, linewidths=0, zorder=3)
        ax.scatter(part, y, s=30, color=color, linewidths=0, zorder=4)
        ax.set_title(title, color=color)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{short_text(lv, 20)} (n = {int(n)})" for lv, n in zip(rows["level"], rows["n"], strict=True)])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.grid(False, axis="y")
        ax.tick_params(axis="y", length=0)
        ax.set_xlabel(f"{term_label(term)} of each {short_text(group)}")
    fig.suptitle(f"{short_text(group)} estimates pulled toward the population")
    handles = [Line2D([], [], color=NO_POOLING_COLOR, marker="o", linestyle="", label="own estimate (no pooling)"),
               *[Line2D([], [], color=c, marker="o", linestyle="", label=f"partial pooling, {t.split(' (')[0]}")
                 for _, _, t, c in panels],
               Line2D([], [], color=COMPLETE_POOLING_COLOR, linewidth=1.4, label="population value (target)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


CAPTIONS["nested_shrinkage"] = (
    "One panel per enclosing group. Each arrow is one nested group: it starts at the group's own estimate "
    "(green: the mean of its rows' residuals from the fixed part) and ends at its partial-pooling estimate "
    "(fixed part + enclosing group's effect + its own effect), drawn at the group's number of rows. The "
    "solid line is the enclosing group's own partial-pooling estimate, the value its nested groups are "
    "pulled toward; the dotted line is the population value. Look for long arrows at the left (groups with "
    "few rows are pulled almost onto the enclosing group's line) and short ones at the right (large groups "
    "keep their own value), and compare the two engines' figures: they should look alike.")
CAPTIONS["level_shrinkage"] = (
    "Each row is one enclosing group: an arrow from its own estimate (green: the precision-weighted mean of "
    "its nested groups' own estimates) to its partial-pooling estimate (fixed intercept + its effect); the "
    "vertical line is the population value (the fixed intercept) the groups are pulled toward. Groups with "
    "many rows have short arrows: their own data outweigh what the other groups say. Both panels measure "
    "toward the same line (the frequentist fixed intercept), as in the shrinkage table; the two panels "
    "should look alike.")
