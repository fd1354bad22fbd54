"""Estimate figures: group effects with intervals (caterpillar) and the population-level forest.
Hand-written matplotlib: the intervals come given (Wald, posterior quantiles), while seaborn's
pointplot computes its own error bars from raw observations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from compare_kit.display import term_label
from compare_kit.results import EngineName
from compare_kit.report.plots.style import (
    MANY_LEVELS,
    engine_color,
    engine_label,
    new_figure,
    pick_one,
    require_columns,
    short_text,
    styled,
)


# --------------------------------------------------------------------------- 4. caterpillar

def _engine_order(engines: Iterable[str]) -> list[str]:
    """Frequentist engines first (statsmodels, then compare_kit's own), then Bayesian, then unknown names."""
    def rank(engine: str) -> tuple[int, str]:
        known = EngineName(engine) if engine in EngineName._value2member_map_ else None
        return (9 if known is None else 0 if known.frequentist else 1, engine)

    return sorted(dict.fromkeys(engines), key=rank)


def _intervals(ax: Any, y: np.ndarray, frame: pd.DataFrame, color: str, size: float = 14) -> None:
    """Points at ``estimate`` and horizontal bars for finite intervals (points only otherwise)."""
    est = frame["estimate"].to_numpy(dtype=float)
    low = frame["conf_low"].to_numpy(dtype=float)
    high = frame["conf_high"].to_numpy(dtype=float)
    bar = np.isfinite(low) & np.isfinite(high)
    if bar.any():
        ax.hlines(y[bar], low[bar], high[bar], color=color, linewidth=1.3, alpha=0.8)
    ax.scatter(est, y, s=size, color=color, zorder=3, linewidths=0)


@styled
def caterpillar(estimates: pd.DataFrame, group: str, term: str, *, model: str | None = None,
                effect: str = "ran_vals", rows_per_column: int = 45, named: int = 3) -> Figure:
    """Group-level estimates with intervals, frequentist against Bayesian, sorted.

    One row per level (``effect`` rows of ``group`` and ``term``); each engine is a
    coloured point with its interval, slightly offset. Many levels are split over
    side-by-side columns of at most ``rows_per_column`` rows. Above ``MANY_LEVELS`` levels
    no level can be named legibly: the levels are ranked along the x axis instead
    (:func:`_ranked_caterpillar`), and only the ``named`` lowest and highest are labelled.
    Hand-written matplotlib: seaborn's pointplot cannot draw given intervals, only its own.
    """
    require_columns(estimates, ["engine", "model", "effect", "group", "level", "term", "estimate",
                         "conf_low", "conf_high"], "estimates")
    rows = estimates[(estimates["effect"] == effect) & (estimates["group"] == group)
                     & (estimates["term"] == term)]
    if rows.empty:
        raise ValueError(f"no {effect} rows for group {group!r} and term {term!r} in the estimates table")
    rows = pick_one(rows, "model", model, "estimates")
    rows = rows.assign(level=rows["level"].astype(str))
    engines = _engine_order(rows["engine"])
    by_level = rows.pivot_table(index="level", columns="engine", values="estimate", aggfunc="first",
                                dropna=False)
    key = by_level[engines[0]] if engines[0] in by_level else by_level.mean(axis=1)
    order = list(key.fillna(by_level.mean(axis=1)).sort_values(kind="stable", na_position="first").index)
    if len(order) > MANY_LEVELS:
        return _ranked_caterpillar(rows, engines, order, group, term, effect, named)

    ncol = max(1, math.ceil(len(order) / rows_per_column))
    per_col = math.ceil(len(order) / ncol)
    fig = new_figure(height=max(3.0, 0.19 * per_col + 1.5))
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
        ax.set_yticklabels([short_text(lv, 22) for lv in reversed(chunk)], fontsize=7 if per_col > 25 else 9)
        ax.set_ylim(-0.7, len(chunk) - 0.3)
        ax.grid(False, axis="y")
        ax.tick_params(axis="y", length=0)
        what = "deviation from the population value" if effect == "ran_vals" else "group coefficient"
        ax.set_xlabel(f"{term_label(term)}: {what}")
    fig.suptitle(f"{term_label(term)} by {short_text(group)}: {len(order)} groups, sorted")
    handles = [Line2D([], [], color=engine_color(e), marker="o", linewidth=1.3,
                      label=f"{engine_label(e)}, 95% interval") for e in engines]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def _light(color: str, share: float = 0.35) -> tuple[float, float, float]:
    """``color`` mixed with white: opaque, so thousands of overlapping lines make one flat colour (a PNG
    of flat colour is small; transparent lines piling up make noise, which is not)."""
    rgb = np.array(mcolors.to_rgb(color))
    return tuple(1.0 - share * (1.0 - rgb))


def _ranked_caterpillar(rows: pd.DataFrame, engines: list[str], order: list[str], group: str, term: str,
                        effect: str, named: int) -> Figure:
    """The caterpillar of many levels: one panel per engine, x = each level's rank (by the first engine's
    estimate, the same in every panel), y = its estimate (dots) and interval (one thin vertical line).
    Dots and lines are one embedded image (``rasterized``): thousands of them as vectors weigh
    megabytes. Panels after the first also draw the first engine's estimates as a line, for comparison.
    The ``named`` lowest and highest levels are labelled in the first panel, stacked 12 pt apart."""
    rank = {lv: i + 1 for i, lv in enumerate(order)}
    fig = new_figure(height=1.6 + 2.4 * len(engines))
    axes = fig.subplots(len(engines), 1, sharex=True, sharey=True, squeeze=False).ravel()
    width = 0.5 if len(order) > 1000 else 0.8
    first = rows[rows["engine"] == engines[0]].set_index("level")["estimate"]
    reference = np.array([first.get(lv, np.nan) for lv in order], dtype=float)
    what = "deviation from the population value" if effect == "ran_vals" else "group coefficient"
    for ax, engine in zip(axes, engines, strict=True):
        sub = rows[rows["engine"] == engine]
        x = sub["level"].map(rank).to_numpy(dtype=float)
        est, low, high = (sub[c].to_numpy(dtype=float) for c in ("estimate", "conf_low", "conf_high"))
        bar = np.isfinite(low) & np.isfinite(high)
        color = engine_color(engine)
        ax.vlines(x[bar], low[bar], high[bar], color=_light(color), linewidth=width, rasterized=True)
        ax.scatter(x, est, s=2, color=color, linewidths=0, zorder=3, rasterized=True)
        if engine != engines[0]:
            ax.plot(np.arange(1, len(order) + 1), reference, color=engine_color(engines[0]), linewidth=1.0,
                    zorder=4, rasterized=True)
        if effect == "ran_vals":
            ax.axhline(0.0, color="#888888", linewidth=0.8, zorder=1)
        ax.set_title(f"{engine_label(engine)}: estimate and 95% interval", fontsize=10, color=color)
        ax.grid(False, axis="x")
        ax.set_ylabel(term_label(term))
    labelled = [(lv, k, 1) for k, lv in enumerate(order[:named])]
    labelled += [(lv, k, -1) for k, lv in enumerate(reversed(order[-named:]))]
    for level, k, side in labelled:  # lowest: labels above-right, highest: below-left
        if np.isfinite(first.get(level, np.nan)):
            axes[0].annotate(short_text(level, 24), xy=(rank[level], float(first[level])),
                             xytext=(18 * side, 12 * (k + 1) * side), textcoords="offset points", fontsize=8,
                             ha="left" if side > 0 else "right", va="center",
                             bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                             arrowprops={"arrowstyle": "-", "color": "#555555", "linewidth": 0.6}, zorder=5)
    axes[0].set_xlim(0, len(order) + 1)
    axes[-1].set_xlabel(f"each {short_text(group)}, ranked by its {engine_label(engines[0])} estimate "
                        "(1 = lowest)")
    fig.suptitle(f"{term_label(term)} by {short_text(group)}, {what}: {len(order):,} groups, "
                 f"the {named} lowest and {named} highest named")
    handles = [Line2D([], [], color=engine_color(e), marker="o", markersize=3, linewidth=2,
                      markeredgewidth=0, label=f"{engine_label(e)}: estimate (dot) and 95% interval (line)")
               for e in engines]
    if len(engines) > 1:
        handles.append(Line2D([], [], color=engine_color(engines[0]), linewidth=1.0,
                              label=f"{engine_label(engines[0])} estimate, for comparison"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2))
    return fig


# --------------------------------------------------------------------------- 5. forest

@styled
def fixed_effects_forest(estimates: pd.DataFrame, *, model: str | None = None) -> Figure:
    """Fixed effects and random-effect SDs/correlations of both engines, side by side.

    Intervals that are NaN are drawn as points only; estimates that are NaN are
    written in the row as "not estimable" so they are never silently missing. A side
    whose parameters live on scales too different to share one axis (``separate_axes``:
    sleepstudy's intercept ~250 ms beside its Days slope ~10 ms) gives each parameter
    its own row and axis. Hand-written matplotlib: seaborn's pointplot cannot draw given
    intervals, only its own.
    """
    rows = _forest_rows(estimates, model)
    engines = _engine_order(rows["engine"])
    sections = [(effect, title) for effect, title in
                (("fixed", "Fixed effects"), ("ran_pars", "Random-effect SDs and correlations"))
                if (rows["effect"] == effect).any()]
    keys_of = {effect: list(dict.fromkeys(zip(rows.loc[rows["effect"] == effect, "group"],
                                              rows.loc[rows["effect"] == effect, "term"], strict=True)))
               for effect, _ in sections}
    own_axes = {effect: _scales_differ(rows[rows["effect"] == effect], effect == "fixed") for effect, _ in sections}
    fig = new_figure(height=max(2.8, 0.42 * max(len(k) for k in keys_of.values()) + 1.6
                                + 0.35 * max((len(keys_of[e]) for e, _ in sections if own_axes[e]), default=0)))
    columns = fig.subfigures(1, len(sections), squeeze=False).ravel()
    offsets = np.linspace(-0.17, 0.17, len(engines)) if len(engines) > 1 else np.zeros(1)
    for column, (effect, title) in zip(columns, sections, strict=True):
        sub = rows[rows["effect"] == effect]
        keys = keys_of[effect]
        panels = [[k] for k in keys] if own_axes[effect] else [keys]
        axes = column.subplots(len(panels), 1, squeeze=False).ravel()
        for ax, panel in zip(axes, panels, strict=True):
            _forest_panel(ax, sub, panel, engines, offsets, zero_line=effect == "fixed" and not own_axes[effect])
        axes[0].set_title(title + ("\n(each on its own axis)" if own_axes[effect] else ""))
        axes[-1].set_xlabel("estimate (95% interval)")
    handles = [Line2D([], [], color=engine_color(e), marker="o", linewidth=1.3, label=engine_label(e))
               for e in engines]
    handles.append(Line2D([], [], color="#666666", marker="o", linestyle="",
                          label="point without bar: no interval available"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


# A side of the forest plot gets one axis per parameter when its narrowest interval would be drawn shorter
# than this share of the shared axis' span (sleepstudy: Days' 3.2 ms on a 0-270 ms axis, 1.2%).
SEPARATE_AXES_BELOW = 0.03


def _forest_rows(estimates: pd.DataFrame, model: str | None) -> pd.DataFrame:
    require_columns(estimates, ["engine", "model", "effect", "group", "term", "estimate", "conf_low",
                         "conf_high"], "estimates")
    rows = estimates[estimates["effect"].isin(["fixed", "ran_pars"])]
    if rows.empty:
        raise ValueError("the estimates table has no fixed or ran_pars rows")
    return pick_one(rows, "model", model, "estimates")


def _scales_differ(sub: pd.DataFrame, with_zero: bool) -> bool:
    """Would the narrowest finite interval be drawn shorter than ``SEPARATE_AXES_BELOW`` of the axis (which
    reaches 0 when ``with_zero``: the fixed effects' side has a line at 0)?"""
    values = sub[["estimate", "conf_low", "conf_high"]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    widths = (sub["conf_high"] - sub["conf_low"]).to_numpy(dtype=float)
    widths = widths[np.isfinite(widths) & (widths > 0)]
    if len(sub[["group", "term"]].drop_duplicates()) < 2 or not len(widths) or not len(finite):
        return False
    span = (max(finite.max(), 0.0) - min(finite.min(), 0.0)) if with_zero else finite.max() - finite.min()
    return bool(widths.min() < SEPARATE_AXES_BELOW * span)


def separate_axes(estimates: pd.DataFrame, model: str | None = None) -> tuple[str, ...]:
    """The sides of ``fixed_effects_forest`` ("fixed", "ran_pars") drawn with one axis per parameter."""
    rows = _forest_rows(estimates, model)
    return tuple(e for e in ("fixed", "ran_pars") if (rows["effect"] == e).any()
                 and _scales_differ(rows[rows["effect"] == e], e == "fixed"))


def _forest_panel(ax: Any, sub: pd.DataFrame, keys: list[tuple[str, str]], engines: list[str],
                  offsets: np.ndarray, zero_line: bool) -> None:
    """The rows ``keys`` of one side of the forest plot, every engine's point and interval."""
    position = {k: len(keys) - 1 - i for i, k in enumerate(keys)}
    sub = sub[[k in position for k in zip(sub["group"], sub["term"], strict=True)]]
    for engine, offset in zip(engines, offsets, strict=True):
        part = sub[sub["engine"] == engine]
        y = np.array([position[k] for k in zip(part["group"], part["term"], strict=True)], dtype=float) + offset
        _intervals(ax, y, part, engine_color(engine), size=30)
        for yy, est in zip(y, part["estimate"].to_numpy(dtype=float), strict=True):
            if not np.isfinite(est):
                ax.text(0.02, yy, f"{engine_label(engine)}: not estimable", fontsize=7,
                        color=engine_color(engine), va="center", transform=ax.get_yaxis_transform())
    if zero_line:
        ax.axvline(0.0, color="#888888", linewidth=0.8, zorder=1)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels([short_text(term_label(t, "" if g in ("", "Residual") else g), 48)
                        for g, t in reversed(keys)])
    ax.set_ylim(-0.6, len(keys) - 0.4)
    ax.grid(False, axis="y")
    ax.tick_params(axis="y", length=0)
