"""Figures for the comparison report, drawn from tidy tables.

Every function here takes pandas DataFrames in the schemas of docs/design.md (or, for
``rank_plot``, the posterior draws as an xarray/arviz DataTree), never a fitted
model, and returns a :class:`matplotlib.figure.Figure`. Figures are created
directly (not through ``pyplot``), so nothing here touches the interactive
backend or global figure registry; ``figure_to_svg`` and ``figure_to_png_base64``
turn a figure into deterministic text for a self-contained HTML page.

Colours are the Okabe-Ito colour-blind-safe palette, used the same way in every
figure: frequentist (statsmodels) blue, Bayesian (Bambi/PyMC) vermillion, the
groups' own "no pooling" estimates green, complete pooling dark grey.

Each plotting function has a caption in ``CAPTIONS`` (keyed by function name)
that tells the reader what to look at.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import wraps
from typing import Any, ParamSpec

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch

__all__ = [
    "BAYES_COLOR", "CAPTIONS", "COMPLETE_POOLING_COLOR", "DATA_COLOR", "FREQ_COLOR",
    "NO_POOLING_COLOR", "caterpillar", "county_panels", "engine_color", "engine_label",
    "figure_to_png_base64",
    "figure_to_svg", "fixed_effects_forest", "level_shrinkage", "nested_shrinkage", "posterior_predictive",
    "rank_plot", "shrinkage_arrows", "shrinkage_vs_size", "source_color", "term_label",
]

# --------------------------------------------------------------------------- palette and style

FREQ_COLOR = "#0072B2"  # Okabe-Ito blue
BAYES_COLOR = "#D55E00"  # Okabe-Ito vermillion
NO_POOLING_COLOR = "#009E73"  # Okabe-Ito bluish green
COMPLETE_POOLING_COLOR = "#4D4D4D"
DATA_COLOR = "#1A1A1A"
BAND_COLOR = "#BBBBBB"
# further Okabe-Ito colours, for extra sources and for chains in rank plots
EXTRA_COLORS = ("#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")

FIGURE_WIDTH = 9.0  # inches; 900 px at the default 100 dpi

_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: no external fonts
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#E6E6E6",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.fonttype": "path",
    "text.usetex": False,
}

_ENGINE_LABELS = {
    "statsmodels": "frequentist (statsmodels)",
    "bambi": "Bayesian (Bambi)",
    "pymc": "Bayesian (PyMC)",
}
_BAYES_ENGINES = ("bambi", "pymc")

CAPTIONS: dict[str, str] = {
    "county_panels": (
        "Each panel is one group. Dots are the observations (jittered sideways so they do not "
        "overlap); thick lines are the fitted regression lines of each method, thin faint lines are "
        "individual posterior draws and show how uncertain a line is. Look for groups with few or "
        "one-sided observations: their own (no-pooling) line can be extreme, while the "
        "partial-pooling line stays sensible."
    ),
    "shrinkage_arrows": (
        "Each arrow starts at a group's own estimate (no pooling: intercept and slope fitted to that "
        "group alone) and ends at its partial-pooling estimate. The cross marks complete pooling "
        "(one line for everyone). Long arrows mean strong shrinkage, typical of small groups. "
        "Hollow circles are groups whose own slope cannot be estimated (e.g. all observations at one "
        "predictor value): they sit at their own intercept, at the height of the partial-pooling "
        "slope. Compare the two panels: the frequentist and Bayesian arrows should look alike."
    ),
    "shrinkage_vs_size": (
        "How far each group's estimate moved from its own value toward complete pooling (0 = not at "
        "all, 1 = all the way), against the number of observations in the group (log scale). "
        "Small groups should shrink more. Frequentist and Bayesian points should follow the same "
        "trend; the black line, when shown, is the closed-form pooling factor. Values beyond the "
        "axis range are drawn as open triangles at its edge."
    ),
    "caterpillar": (
        "Each row is one group: its estimated deviation from the population value, with a 95% "
        "interval, from the frequentist fit (BLUP ± Wald interval) and the Bayesian fit (posterior "
        "mean and equal-tailed interval). Rows are sorted by the estimate. The two engines should "
        "agree closely; Bayesian intervals are usually a little wider because they also carry the "
        "uncertainty in the variance components."
    ),
    "fixed_effects_forest": (
        "Population-level estimates of both engines side by side, with 95% intervals: fixed effects "
        "on the left, standard deviations and correlations of the random effects on the right. "
        "Points without a bar have no interval (statsmodels gives none for variance components)."
    ),
    "posterior_predictive": (
        "The black line is the distribution (kernel density) of the observed response; the faint "
        "lines are the same for data sets replicated from the fitted model. If the model captures "
        "the data, the black line lies within the bundle of faint lines."
    ),
    "rank_plot": (
        "Rank plots of the sampler's chains: the draws of all chains are ranked together and each "
        "chain's ranks are counted in bins. If the chains agree, every chain's counts stay flat "
        "inside the grey band (95% range for uniform ranks); a chain that sits high or low in some "
        "region explored a different part of the posterior."
    ),
}

_P = ParamSpec("_P")


def _styled(func: Callable[_P, Figure]) -> Callable[_P, Figure]:
    """Run a plotting function under the package style (without touching global rcParams)."""

    @wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Figure:
        with mpl.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


def _figure(height: float, width: float = FIGURE_WIDTH) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _panel_grid(n_panels: int, ncols: int, panel_height: float, extra_height: float,
                share: bool = True) -> tuple[Figure, np.ndarray, int]:
    """A figure of ``n_panels`` axes in rows of at most ``ncols``, unused cells of the last row removed;
    (figure, axes, the number of columns used)."""
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = _figure(height=panel_height * nrows + extra_height)
    axes = fig.subplots(nrows, ncols, sharex=share, sharey=share, squeeze=False).ravel()
    for extra in axes[n_panels:]:
        fig.delaxes(extra)
    return fig, axes, ncols


def engine_label(engine: str) -> str:
    """Plain-language name of an engine (``statsmodels`` -> ``frequentist (statsmodels)``)."""
    return _ENGINE_LABELS.get(engine, engine)


def engine_color(engine: str) -> str:
    """The colour of an engine: frequentist blue, Bayesian vermillion."""
    if engine in _BAYES_ENGINES:
        return BAYES_COLOR
    if engine == "statsmodels":
        return FREQ_COLOR
    return source_color(engine)


def _known_color(source: str) -> str | None:
    key = source.lower()
    if "no pool" in key or "unpooled" in key or "individual" in key:
        return NO_POOLING_COLOR
    if "complete" in key or key in ("pooled", "pooling"):
        return COMPLETE_POOLING_COLOR
    if "statsmodels" in key or "freq" in key:
        return FREQ_COLOR
    if any(word in key for word in ("bambi", "pymc", "bayes", "partial", "hierarch")):
        return BAYES_COLOR
    return None


def source_color(source: str, others: Sequence[str] = ()) -> str:
    """Colour of a line source such as ``'no pooling'``, ``'partial pooling'`` or an engine name.

    Sources that name none of the known methods get the remaining Okabe-Ito colours,
    in the order they appear among the unknown names in ``others``.
    """
    known = _known_color(source)
    if known is not None:
        return known
    unknown = [s for s in dict.fromkeys(others) if _known_color(s) is None]
    position = unknown.index(source) if source in unknown else 0
    return EXTRA_COLORS[position % len(EXTRA_COLORS)]


def _text(value: Any, limit: int = 40) -> str:
    """User text made safe for matplotlib: '$' would start mathtext; long names are cut."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def term_label(term: str, group: str = "") -> str:
    """Plain-language label for a canonical term name.

    ``sd__(Intercept)`` of group ``county`` -> ``SD of county intercepts``;
    ``cor__(Intercept).floor`` -> ``correlation: intercept, floor``;
    ``sd__Observation`` -> ``residual SD``.
    """
    def coef(name: str) -> str:
        return "intercept" if name == "(Intercept)" else name

    if term == "sd__Observation":
        return "residual SD"
    if term.startswith("sd__"):
        inner = term[4:]
        what = "intercepts" if inner == "(Intercept)" else f"{inner} slopes"
        return f"SD of {group} {what}" if group else f"SD of {what}"
    if term.startswith("cor__"):
        body = term[5:]
        if body.startswith("(Intercept)."):
            first, second = "(Intercept)", body[len("(Intercept)."):]
        else:
            first, _, second = body.partition(".")
        where = f" ({group})" if group else ""
        return f"correlation{where}: {coef(first)}, {coef(second)}"
    return "intercept" if term == "(Intercept)" else term


def _close(fig: Figure) -> None:
    """Release a figure: pyplot-managed figures are closed, plain ones are left to the GC."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


# --------------------------------------------------------------------------- output helpers

_SVG_METADATA = {"Date": None, "Creator": None, "Type": None, "Format": None}


def figure_to_svg(fig: Figure, *, salt: str = "compare_kit", close: bool = True) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog), byte-for-byte reproducible.

    Text is drawn as paths (no fonts needed), element ids are hashed with a fixed
    ``salt`` instead of a random one, and the dated/creator metadata block is left out,
    so the same figure always gives the same string. The only URLs left are the SVG
    and XLink namespace declarations. The figure is closed afterwards unless
    ``close=False``.
    """
    buffer = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path", "svg.image_inline": True}):
        fig.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    if close:
        _close(fig)
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def figure_to_png_base64(fig: Figure, *, dpi: float = 100, close: bool = True) -> str:
    """The figure as a base64-encoded PNG (for ``<img src="data:image/png;base64,...">``).

    The PNG carries no software/version text chunk and no date, so it is reproducible
    for a given matplotlib build. The figure is closed afterwards unless ``close=False``.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    if close:
        _close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- table helpers

def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {what} table lacks columns {missing}; it has {list(frame.columns)}")


def _pick_one(frame: pd.DataFrame, column: str, wanted: str | None, what: str,
              prefer: str | None = None) -> pd.DataFrame:
    """Rows of one value of ``column``: ``wanted`` if given, else the only (or preferred) value."""
    values = list(dict.fromkeys(frame[column].astype(str)))
    if wanted is None:
        if len(values) <= 1:
            return frame
        if prefer is not None and prefer in values:
            wanted = prefer
        else:
            raise ValueError(f"the {what} table holds several {column} values {values}; "
                             f"say which one with {column}=...")
    if wanted not in values:
        raise ValueError(f"{column} {wanted!r} is not in the {what} table; it has {values}")
    return frame[frame[column].astype(str) == wanted]


def _evenly(values: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` items, evenly spaced (deterministic thinning)."""
    values = list(values)
    if len(values) <= limit:
        return values
    index = np.unique(np.linspace(0, len(values) - 1, limit).round().astype(int))
    return [values[i] for i in index]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _number_label(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


# --------------------------------------------------------------------------- 1. group panels

@_styled
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
    """
    _require(data, [response, predictor, group], "data")
    _require(lines, ["level", "source", "intercept", "slope"], "lines")
    if draws is not None:
        _require(draws, ["level", "draw", "intercept", "slope", "source"], "draws")
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
    colors = {s: source_color(s, all_sources) for s in all_sources}

    fig, axes, ncols = _panel_grid(len(levels), ncols, 3.4, 0.6)

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
                keep = _evenly(sorted(sub["draw"].unique()), max_draws)
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
        ax.set_title(f"{_text(level)}  (n = {len(rows)})")
        if discrete:
            ax.set_xticks(x_values)
            labels = [_text(x_labels.get(v, x_labels.get(int(v), _number_label(v))) if x_labels else
                            _number_label(v)) for v in x_values]
            ax.set_xticklabels(labels)
            ax.grid(False, axis="x")
        ax.set_xlim(xs[0], xs[-1])
        ax.set_xlabel(_text(predictor))
    for ax in axes[: len(levels)][::ncols]:
        ax.set_ylabel(_text(response))
    # leave y limits to the data and thick lines, not to extreme draws
    y_data = pd.to_numeric(data.loc[groups.isin(levels), response]).to_numpy(dtype=float)
    y_lines = [a + b * xs for a, b, lv in zip(lines["intercept"], lines["slope"], line_level, strict=True)
               if lv in levels and np.isfinite(a) and np.isfinite(b)]
    y_all = np.concatenate([y_data[np.isfinite(y_data)], *y_lines]) if y_lines else y_data
    lo, hi = float(np.nanmin(y_all)), float(np.nanmax(y_all))
    margin = 0.08 * (hi - lo if hi > lo else 1.0)
    axes[0].set_ylim(lo - margin, hi + margin)

    handles = [Line2D([], [], color=colors[s], linewidth=2.6, label=_text(s)) for s in line_sources]
    handles += [Line2D([], [], color=colors[s], linewidth=0.8, alpha=0.6, label=f"{_text(s)}: draws")
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
    _require(shrinkage, ["group", "level", "n", "term", "no_pooling", "complete_pooling",
                         "partial_freq", "partial_bayes"], "shrinkage")
    table = _pick_one(shrinkage, "group", group, "shrinkage")
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


@_styled
def shrinkage_arrows(shrinkage: pd.DataFrame, intercept_term: str = "(Intercept)",
                     slope_term: str = "floor", *, group: str | None = None) -> Figure:
    """Arrows from each group's own (intercept, slope) to its partial-pooling estimate.

    One panel per engine with partial-pooling values (``partial_freq``,
    ``partial_bayes``). Groups whose own slope is not estimable get a hollow marker at
    their own intercept (at the partial slope's height); groups with no own estimate
    at all are counted in the panel, not silently dropped. Own estimates far outside
    the bulk are left outside the view (their arrows enter from the edge) and counted.
    """
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

    fig = _figure(height=5.3)
    axes = fig.subplots(1, len(panels), sharex=True, sharey=True, squeeze=False).ravel()
    both = np.isfinite(a0) & np.isfinite(b0)
    no_slope = np.isfinite(a0) & ~np.isfinite(b0)
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
        ax.scatter(ap[has_partial], bp[has_partial], s=18, color=color, alpha=0.9, linewidths=0,
                   zorder=4)
        ax.scatter([ac], [bc], s=90, marker="X", color=COMPLETE_POOLING_COLOR, edgecolors="white",
                   linewidths=0.8, zorder=5)
        outside = int(np.sum(arrows & ((a0 < x_lim[0]) | (a0 > x_lim[1]) |
                                       (b0 < y_lim[0]) | (b0 > y_lim[1]))))
        unseen = int(np.sum(~np.isfinite(a0) | ~has_partial))
        notes = [f"{_count(int(arrows.sum()), 'arrow')}, {int(hollow.sum())} hollow"]
        if outside:
            notes.append(f"{_count(outside, 'own estimate')} beyond the view")
        if unseen:
            notes.append(f"{_count(unseen, 'group')} without estimates to draw")
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
               label=f"no own {_text(slope_term)} slope: own intercept only"),
        *[Line2D([], [], color=color, marker="o", linestyle="",
                 label=f"partial pooling, {title.split(' (')[0]}") for _, title, color in panels],
        Line2D([], [], color=COMPLETE_POOLING_COLOR, marker="X", linestyle="", markersize=8,
               label="complete pooling"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


# --------------------------------------------------------------------------- 3. shrinkage vs size

@_styled
def shrinkage_vs_size(shrinkage: pd.DataFrame, *, group: str | None = None,
                      terms: Sequence[str] | None = None,
                      ylim: tuple[float, float] = (-0.25, 1.25), ylabel: str | None = None,
                      unit: str | None = None) -> Figure:
    """Share of shrinkage against group size, one panel per term, both engines.

    If the table has a ``pooling_factor`` column (the closed-form share expected
    from the variance components; ``compare.shrinkage_table`` fills it for a random
    intercept alone), its finite values are drawn as a line. Values outside
    ``ylim`` are drawn as open triangles on the edge, not dropped.
    """
    _require(shrinkage, ["group", "level", "n", "term", "shrinkage_freq", "shrinkage_bayes"], "shrinkage")
    table = _pick_one(shrinkage, "group", group, "shrinkage")
    terms = list(dict.fromkeys(table["term"])) if terms is None else list(terms)
    has_curve = ("pooling_factor" in table.columns
                 and bool(np.isfinite(pd.to_numeric(table["pooling_factor"], errors="coerce")).any()))
    fig = _figure(height=4.2)
    axes = fig.subplots(1, len(terms), sharey=True, squeeze=False).ravel()
    lo, hi = ylim
    series = [(col, label, color, marker, dodge) for col, label, color, marker, dodge in
              (("shrinkage_freq", "frequentist", FREQ_COLOR, "o", 0.94),
               ("shrinkage_bayes", "Bayesian", BAYES_COLOR, "s", 1.06))
              if pd.to_numeric(table[col], errors="coerce").notna().any()]
    if len(series) == 1:  # nothing to dodge from
        series = [(col, label, color, marker, 1.0) for col, label, color, marker, _ in series]
    for ax, term in zip(axes, terms, strict=True):
        rows = table[table["term"] == term]
        n = rows["n"].to_numpy(dtype=float)
        if has_curve:
            order = np.argsort(n, kind="stable")
            pf = pd.to_numeric(rows["pooling_factor"], errors="coerce").to_numpy(dtype=float)[order]
            ok = np.isfinite(pf)
            if ok.any():
                ax.plot(n[order][ok], pf[ok], color="black", linewidth=1.4, zorder=2)
        # groups that have no share to draw at all (usually: no own estimate)
        drawn = np.zeros(len(rows), dtype=bool)
        for col, _, color, marker, dodge in series:
            value = rows[col].to_numpy(dtype=float)
            finite = np.isfinite(value) & np.isfinite(n) & (n > 0)
            drawn |= finite
            inside = finite & (value >= lo) & (value <= hi)
            ax.scatter(n[inside] * dodge, value[inside], s=20, color=color, marker=marker,
                       alpha=0.7, linewidths=0, zorder=3)
            for beyond, edge, tri in ((finite & (value < lo), lo, "v"), (finite & (value > hi), hi, "^")):
                ax.scatter(n[beyond] * dodge, np.full(int(beyond.sum()), edge), s=28, marker=tri,
                           facecolors="none", edgecolors=color, linewidths=1.0, zorder=3, clip_on=False)
        for level_y in (0.0, 1.0):
            ax.axhline(level_y, color="#888888", linewidth=0.8, linestyle="--", zorder=1)
        ax.set_xscale("log")
        ax.set_ylim(lo - 0.03, hi + 0.03)
        title = term_label(str(term))
        missing = int(np.sum(~drawn))
        if missing:
            title += f"\n({_count(missing, 'group')} without an own estimate, not shown)"
        ax.set_title(title)
        per = _text(unit) if unit else _text(rows["group"].iloc[0]) if len(rows) else "group"
        ax.set_xlabel(f"observations per {per} (log scale)")
    for level_y, words in ((0.0, "none"), (1.0, "complete\npooling")):
        axes[-1].text(1.02, level_y, words, transform=axes[-1].get_yaxis_transform(), ha="left",
                      va="center", fontsize=8, color="#555555")
    axes[0].set_ylabel(ylabel or "shrinkage toward complete pooling")
    handles = [Line2D([], [], color=c, marker=m, linestyle="", label=lab) for _, lab, c, m, _ in series]
    if has_curve:
        handles.append(Line2D([], [], color="black", linewidth=1.4, label="closed-form pooling factor"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


# --------------------------------------------------------------------------- 4. caterpillar

def _engine_order(engines: Iterable[str]) -> list[str]:
    rank = {"statsmodels": 0, "bambi": 1, "pymc": 2}
    return sorted(dict.fromkeys(engines), key=lambda e: (rank.get(e, 9), e))


def _intervals(ax: Any, y: np.ndarray, frame: pd.DataFrame, color: str, size: float = 14) -> None:
    """Points at ``estimate`` and horizontal bars for finite intervals (points only otherwise)."""
    est = frame["estimate"].to_numpy(dtype=float)
    low = frame["conf_low"].to_numpy(dtype=float)
    high = frame["conf_high"].to_numpy(dtype=float)
    bar = np.isfinite(low) & np.isfinite(high)
    if bar.any():
        ax.hlines(y[bar], low[bar], high[bar], color=color, linewidth=1.3, alpha=0.8)
    ax.scatter(est, y, s=size, color=color, zorder=3, linewidths=0)


@_styled
def caterpillar(estimates: pd.DataFrame, group: str, term: str, *, model: str | None = None,
                effect: str = "ran_vals", rows_per_column: int = 45) -> Figure:
    """Group-level estimates with intervals, frequentist against Bayesian, sorted.

    One row per level (``effect`` rows of ``group`` and ``term``); each engine is a
    coloured point with its interval, slightly offset. Many levels are split over
    side-by-side columns of at most ``rows_per_column`` rows.
    """
    _require(estimates, ["engine", "model", "effect", "group", "level", "term", "estimate",
                         "conf_low", "conf_high"], "estimates")
    rows = estimates[(estimates["effect"] == effect) & (estimates["group"] == group)
                     & (estimates["term"] == term)]
    if rows.empty:
        raise ValueError(f"no {effect} rows for group {group!r} and term {term!r} in the estimates table")
    rows = _pick_one(rows, "model", model, "estimates", prefer="partial_pooling")
    rows = rows.assign(level=rows["level"].astype(str))
    engines = _engine_order(rows["engine"])
    by_level = rows.pivot_table(index="level", columns="engine", values="estimate", aggfunc="first",
                                dropna=False)
    key = by_level[engines[0]] if engines[0] in by_level else by_level.mean(axis=1)
    order = list(key.fillna(by_level.mean(axis=1)).sort_values(kind="stable", na_position="first").index)

    ncol = max(1, math.ceil(len(order) / rows_per_column))
    per_col = math.ceil(len(order) / ncol)
    fig = _figure(height=max(3.0, 0.19 * per_col + 1.5))
    axes = fig.subplots(1, ncol, sharex=True, squeeze=False).ravel()
    offsets = np.linspace(-0.18, 0.18, len(engines)) if len(engines) > 1 else np.zeros(1)
    for k, ax in enumerate(axes):
        chunk = order[k * per_col:(k + 1) * per_col]
        position = {lv: i for i, lv in enumerate(reversed(chunk))}
        for engine, offset in zip(engines, offsets, strict=True):
            sub = rows[(rows["engine"] == engine) & rows["level"].isin(chunk)]
            y = sub["level"].map(position).to_numpy(dtype=float) + offset
            _intervals(ax, y, sub, engine_color(engine))
        if effect == "ran_vals":
            ax.axvline(0.0, color="#888888", linewidth=0.8, zorder=1)
        ax.set_yticks(range(len(chunk)))
        ax.set_yticklabels([_text(lv, 22) for lv in reversed(chunk)], fontsize=7 if per_col > 25 else 9)
        ax.set_ylim(-0.7, len(chunk) - 0.3)
        ax.grid(False, axis="y")
        ax.tick_params(axis="y", length=0)
        what = "deviation from the population value" if effect == "ran_vals" else "group coefficient"
        ax.set_xlabel(f"{term_label(term)}: {what}")
    fig.suptitle(f"{term_label(term)} by {_text(group)}: {len(order)} groups, sorted")
    handles = [Line2D([], [], color=engine_color(e), marker="o", linewidth=1.3,
                      label=f"{engine_label(e)}, 95% interval") for e in engines]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


# --------------------------------------------------------------------------- 5. forest

@_styled
def fixed_effects_forest(estimates: pd.DataFrame, *, model: str | None = None) -> Figure:
    """Fixed effects and random-effect SDs/correlations of both engines, side by side.

    Intervals that are NaN are drawn as points only; estimates that are NaN are
    written in the row as "not estimable" so they are never silently missing.
    """
    _require(estimates, ["engine", "model", "effect", "group", "term", "estimate", "conf_low",
                         "conf_high"], "estimates")
    rows = estimates[estimates["effect"].isin(["fixed", "ran_pars"])]
    if rows.empty:
        raise ValueError("the estimates table has no fixed or ran_pars rows")
    rows = _pick_one(rows, "model", model, "estimates", prefer="partial_pooling")
    engines = _engine_order(rows["engine"])
    sections = [(effect, title) for effect, title in
                (("fixed", "Fixed effects"), ("ran_pars", "Random-effect SDs and correlations"))
                if (rows["effect"] == effect).any()]
    counts = [rows.loc[rows["effect"] == effect, ["group", "term"]].drop_duplicates().shape[0]
              for effect, _ in sections]
    fig = _figure(height=max(2.8, 0.42 * max(counts) + 1.6))
    axes = fig.subplots(1, len(sections), squeeze=False).ravel()
    offsets = np.linspace(-0.17, 0.17, len(engines)) if len(engines) > 1 else np.zeros(1)
    for ax, (effect, title) in zip(axes, sections, strict=True):
        sub = rows[rows["effect"] == effect]
        keys = list(dict.fromkeys(zip(sub["group"], sub["term"], strict=True)))
        position = {k: len(keys) - 1 - i for i, k in enumerate(keys)}
        for engine, offset in zip(engines, offsets, strict=True):
            part = sub[sub["engine"] == engine]
            y = np.array([position[k] for k in zip(part["group"], part["term"], strict=True)],
                         dtype=float) + offset
            _intervals(ax, y, part, engine_color(engine), size=30)
            for yy, est in zip(y, part["estimate"].to_numpy(dtype=float), strict=True):
                if not np.isfinite(est):
                    ax.text(0.02, yy, f"{engine_label(engine)}: not estimable", fontsize=7,
                            color=engine_color(engine), va="center", transform=ax.get_yaxis_transform())
        if effect == "fixed":
            ax.axvline(0.0, color="#888888", linewidth=0.8, zorder=1)
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels([_text(term_label(t, "" if g in ("", "Residual") else g), 48)
                            for g, t in reversed(keys)])
        ax.set_ylim(-0.6, len(keys) - 0.4)
        ax.grid(False, axis="y")
        ax.tick_params(axis="y", length=0)
        ax.set_title(title)
        ax.set_xlabel("estimate (95% interval)")
    handles = [Line2D([], [], color=engine_color(e), marker="o", linewidth=1.3, label=engine_label(e))
               for e in engines]
    handles.append(Line2D([], [], color="#666666", marker="o", linestyle="",
                          label="point without bar: no interval available"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


# --------------------------------------------------------------------------- 6. predictive check

def _kde(values: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel density of ``values`` on ``grid`` (fixed bandwidth, numpy only)."""
    values = values[np.isfinite(values)]
    if values.size == 0 or bandwidth <= 0:
        return np.zeros_like(grid)
    z = (grid[:, None] - values[None, :]) / bandwidth
    return np.exp(-0.5 * z * z).sum(axis=1) / (values.size * bandwidth * math.sqrt(2 * math.pi))


def _silverman_bandwidth(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size < 2:
        return 1.0
    sd = float(np.std(values, ddof=1))
    iqr = float(np.subtract(*np.quantile(values, [0.75, 0.25]))) / 1.349
    spread = min(sd, iqr) if iqr > 0 else sd
    return 1.06 * (spread if spread > 0 else 1.0) * values.size ** (-0.2)


@_styled
def posterior_predictive(observed: Sequence[float] | np.ndarray | pd.Series, replicated: pd.DataFrame,
                         *, response_label: str = "response", max_draws: int = 100) -> Figure:
    """Density of the observed response against densities of replicated data sets.

    ``replicated`` has columns ``draw, value`` (and optionally ``source`` to show
    several models or engines in their own colours). At most ``max_draws`` draws
    per source are drawn, evenly spaced. Every curve uses the bandwidth chosen for
    the observed data (Silverman's rule), so they are comparable.
    """
    _require(replicated, ["draw", "value"], "replicated")
    obs = np.asarray(observed, dtype=float)
    obs = obs[np.isfinite(obs)]
    if obs.size == 0:
        raise ValueError("no finite observed values to draw")
    bandwidth = _silverman_bandwidth(obs)
    values = replicated["value"].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    lo = min(obs.min(), np.quantile(finite, 0.001) if finite.size else obs.min()) - 3 * bandwidth
    hi = max(obs.max(), np.quantile(finite, 0.999) if finite.size else obs.max()) + 3 * bandwidth
    grid = np.linspace(lo, hi, 128)  # smooth enough, keeps the SVG small

    sources = (list(dict.fromkeys(replicated["source"].astype(str))) if "source" in replicated
               else ["replicated"])
    fig = _figure(height=4.0)
    ax = fig.subplots()
    handles = []
    for source in sources:
        sub = (replicated if "source" not in replicated
               else replicated[replicated["source"].astype(str) == source])
        color = BAYES_COLOR if source == "replicated" else source_color(source, sources)
        keep = _evenly(sorted(sub["draw"].unique()), max_draws)
        segments = [np.column_stack([grid, _kde(part.to_numpy(dtype=float), grid, bandwidth)])
                    for _, part in sub[sub["draw"].isin(keep)].groupby("draw", sort=True)["value"]]
        ax.add_collection(LineCollection(segments, colors=color, linewidths=0.8,
                                         alpha=min(0.3, 10.0 / max(len(segments), 1))))
        handles.append(Line2D([], [], color=color, linewidth=1.0,
                              label=f"{_text(source)} data sets ({len(segments)} draws)"))
    density = _kde(obs, grid, bandwidth)
    ax.plot(grid, density, color=DATA_COLOR, linewidth=2.4)
    handles.insert(0, Line2D([], [], color=DATA_COLOR, linewidth=2.4, label=f"observed (n = {obs.size})"))
    ax.set_xlim(lo, hi)
    ax.autoscale(axis="y")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(_text(response_label))
    ax.set_ylabel("density")
    ax.set_title("Posterior predictive check: observed vs replicated data")
    ax.legend(handles=handles, loc="upper right")
    return fig


# --------------------------------------------------------------------------- 7. rank plot

def _posterior_dataset(posterior: Any) -> Any:
    """The posterior group as an xarray Dataset, from a DataTree, a Dataset or a mapping."""
    import xarray as xr

    if isinstance(posterior, xr.DataTree):
        node = posterior["posterior"] if "posterior" in posterior.children else posterior
        return node.to_dataset()
    if isinstance(posterior, xr.Dataset):
        return posterior
    if isinstance(posterior, Mapping):
        return xr.Dataset(dict(posterior))
    raise TypeError(f"rank_plot needs an arviz DataTree or xarray Dataset, not {type(posterior).__name__}")


def _rank_panels(dataset: Any, var_names: Sequence[str], max_panels: int,
                 labels: Mapping[str, str]) -> tuple[list[tuple[str, np.ndarray]], int]:
    """(title, draws[chain, draw]) per scalar element, and how many were left out."""
    panels: list[tuple[str, np.ndarray]] = []
    total = 0
    for name in var_names:
        if name not in dataset:
            raise ValueError(f"variable {name!r} is not in the posterior; it has {list(dataset.data_vars)}")
        da = dataset[name]
        if "chain" not in da.dims or "draw" not in da.dims:
            raise ValueError(f"variable {name!r} needs dims 'chain' and 'draw'; it has {da.dims}")
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        da = da.transpose("chain", "draw", *extra)
        values = np.asarray(da.values, dtype=float)
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        coords = [np.asarray(da[d].values) if d in da.coords else np.arange(da.sizes[d]) for d in extra]
        index = list(np.ndindex(*[len(c) for c in coords])) if extra else [()]
        total += len(index)
        for j, idx in enumerate(index):
            if len(panels) >= max_panels:
                break
            label = ", ".join(str(c[i]) for c, i in zip(coords, idx, strict=True))
            shown = labels.get(name, name)
            panels.append((f"{shown}[{label}]" if label else shown, flat[:, :, j]))
    return panels, total - len(panels)


@_styled
def rank_plot(posterior: Any, var_names: Sequence[str], *, bins: int = 20, max_panels: int = 12,
              ncols: int = 4, labels: Mapping[str, str] | None = None) -> Figure:
    """Rank histograms per chain (Vehtari et al. 2021), drawn with numpy/matplotlib.

    ``posterior`` is an arviz DataTree (its ``posterior`` group is used) or an
    xarray Dataset with dims ``chain, draw``. Vector variables are split into one
    panel per element, up to ``max_panels`` panels in all (the rest are counted in
    the title). ``labels`` renames variables in the panel titles (e.g.
    ``{"sd_0_0": "SD of county intercepts"}``). Each chain's rank counts are a step
    line; the grey band is the 95% range of a bin count when ranks are uniform.
    Deterministic: no simulation.

    (arviz_plots.plot_rank draws Δ-ECDF curves through a PlotCollection; plain rank
    histograms are easier to read in a static report and need no extra styling.)
    """
    from scipy import stats

    dataset = _posterior_dataset(posterior)
    var_names = [var_names] if isinstance(var_names, str) else list(var_names)
    panels, left_out = _rank_panels(dataset, var_names, max_panels, labels or {})
    if not panels:
        raise ValueError("no variables to draw")
    fig, axes, ncols = _panel_grid(len(panels), ncols, 1.9, 1.0, share=False)
    n_chains = panels[0][1].shape[0]
    chain_colors = [FREQ_COLOR, BAYES_COLOR, NO_POOLING_COLOR, *EXTRA_COLORS]
    for ax, (title, draws) in zip(axes, panels, strict=False):
        chains, n_draws = draws.shape
        ranks = stats.rankdata(draws.ravel(), method="average").reshape(draws.shape)
        edges = np.linspace(0.5, chains * n_draws + 0.5, bins + 1)
        expected = n_draws / bins
        low, high = stats.binom.ppf([0.025, 0.975], n_draws, 1.0 / bins)
        ax.axhspan(low, high, color=BAND_COLOR, alpha=0.35, linewidth=0)
        ax.axhline(expected, color="#777777", linewidth=0.8, linestyle="--")
        for c in range(chains):
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax.stairs(counts, np.arange(bins + 1), color=chain_colors[c % len(chain_colors)],
                      linewidth=1.2, baseline=None)
        ax.set_title(_text(title, 34), fontsize=9)
        ax.set_xlim(0, bins)
        ax.set_xticks([0, bins / 2, bins], ["low", "", "high"])
        ax.set_ylim(0, max(high * 1.5, expected * 2))
        ax.grid(False)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[: len(panels)][::ncols]:
        ax.set_ylabel("draws per bin", fontsize=8)
    heading = f"Rank plots, {n_chains} chains"
    if left_out:
        heading += f" (first {len(panels)} parameters shown, {left_out} more not shown)"
    fig.suptitle(heading)
    handles = [Line2D([], [], color=chain_colors[c % len(chain_colors)], linewidth=1.2,
                      label=f"chain {c + 1}") for c in range(n_chains)]
    handles.append(Patch(color=BAND_COLOR, alpha=0.35, label="95% range if uniform"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
    return fig


# --------------------------------------------------------------------------- 8. nested shrinkage

_NESTED_ENGINES = {"freq": ("partial_freq", "complete_pooling", "frequentist (statsmodels BLUPs)", FREQ_COLOR),
                   "bayes": ("partial_bayes", "complete_pooling_bayes", "Bayesian (posterior means)", BAYES_COLOR)}


def _arrow(ax: Any, x0: float, y0: float, x1: float, y1: float, color: str = "#555555") -> None:
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=7, linewidth=0.7,
                                 color=color, alpha=0.6, shrinkA=0, shrinkB=1.5, zorder=2))


@_styled
def nested_shrinkage(shrinkage: pd.DataFrame, group: str, *, engine: str = "freq", term: str = "(Intercept)",
                     population: float | None = None, ncols: int = 4) -> Figure:
    """Groups of a nested factor pulled toward their enclosing group, one panel per enclosing level.

    ``shrinkage`` is ``compare.shrinkage_table``'s frame; the rows of ``group`` (e.g.
    ``county:state``) and ``term`` are drawn. In each panel (one enclosing level, e.g. a
    state) every group is an arrow from its own estimate (green dot) to its partial-pooling
    estimate (``engine``: ``"freq"`` BLUP-based, ``"bayes"`` posterior means), at its size
    (log scale); the solid line is the enclosing level's own partial-pooling estimate, the
    target the arrows point to, and the dotted line the population value, when given.
    """
    _require(shrinkage, ["group", "level", "n", "term", "no_pooling", "toward_level", "partial_freq",
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
    fig, axes, ncols = _panel_grid(len(outer), ncols, 2.7, 1.0)
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
        ax.set_title(f"{_text(level, 24)}: {len(sub)} groups", fontsize=10)
        ax.set_xscale("log")
        ax.set_xlim(*x_lim)
        ax.set_ylim(*y_lim)
    inner = group.split(":")[0]
    for c in range(ncols):  # the lowest panel of each column carries the axis label
        lowest = max(i for i in range(len(outer)) if i % ncols == c)
        axes[lowest].set_xlabel(f"{_text(inner, 16)} size (log scale)")
        axes[lowest].xaxis.set_tick_params(labelbottom=True)
    for ax in axes[: len(outer)][::ncols]:
        ax.set_ylabel(term_label(term))
    heading = f"{_text(inner)} estimates pulled toward their {_text(rows['toward_group'].iloc[0])}: {title}"
    if beyond_total:
        heading += f"\n({_count(beyond_total, 'own estimate')} beyond the view, drawn as open triangles at the edge)"
    fig.suptitle(heading)
    handles = [Line2D([], [], color=NO_POOLING_COLOR, marker="o", linestyle="", label="own estimate (no pooling)"),
               Line2D([], [], color=color, marker="o", linestyle="", label="partial pooling"),
               Line2D([], [], color=COMPLETE_POOLING_COLOR, linewidth=1.4,
                      label=f"the {_text(rows['toward_group'].iloc[0])}'s partial-pooling estimate (target)")]
    if population is not None:
        handles.append(Line2D([], [], color="#999999", linewidth=1.0, linestyle=":", label="population value"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


@_styled
def level_shrinkage(shrinkage: pd.DataFrame, group: str, *, term: str = "(Intercept)") -> Figure:
    """The levels of one grouping factor pulled toward the population: one panel per engine.

    Each row is a level (sorted by its own estimate): an arrow from its own estimate (green
    dot) to its partial-pooling estimate; the vertical line is the value the rows are pulled
    toward (``complete_pooling``, ``complete_pooling_bayes``). Meant for a factor with few
    levels (e.g. states), where every level can be named.
    """
    _require(shrinkage, ["group", "level", "n", "term", "no_pooling", "partial_freq", "partial_bayes",
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
    fig = _figure(height=max(2.8, 0.36 * len(rows) + 1.6))
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
        ax.set_yticklabels([f"{_text(lv, 20)} (n = {int(n)})" for lv, n in zip(rows["level"], rows["n"], strict=True)])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.grid(False, axis="y")
        ax.tick_params(axis="y", length=0)
        ax.set_xlabel(f"{term_label(term)} of each {_text(group)}")
    fig.suptitle(f"{_text(group)} estimates pulled toward the population")
    handles = [Line2D([], [], color=NO_POOLING_COLOR, marker="o", linestyle="", label="own estimate (no pooling)"),
               *[Line2D([], [], color=c, marker="o", linestyle="", label=f"partial pooling, {t.split(' (')[0]}")
                 for _, _, t, c in panels],
               Line2D([], [], color=COMPLETE_POOLING_COLOR, linewidth=1.4, label="population value (target)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


CAPTIONS["nested_shrinkage"] = (
    "One panel per enclosing group (here: per state). Each arrow is one nested group (a county): it starts "
    "at the county's own estimate (green: the mean of its homes' residuals from the fixed part) and ends at "
    "its partial-pooling estimate (fixed part + state effect + county effect), drawn at the county's number "
    "of homes. The solid line is the state's own partial-pooling estimate, the value the counties are pulled "
    "toward; the dotted line is the population value. Look for long arrows at the left (counties with few "
    "homes are pulled almost onto their state's line) and short ones at the right (large counties keep "
    "their own value), and compare the two engines' figures: they should look alike.")
CAPTIONS["level_shrinkage"] = (
    "Each row is one state: an arrow from its own estimate (green: the precision-weighted mean of its "
    "counties' own estimates) to its partial-pooling estimate (fixed intercept + state effect); the vertical "
    "line is the population value (the fixed intercept) the states are pulled toward. With thousands of "
    "homes per state the arrows are short: a state's own data outweigh what the other states say. Both "
    "panels measure toward the same line (the frequentist fixed intercept), as in the shrinkage table; "
    "the two panels should look alike.")
