"""Estimate figures: group effects with intervals (caterpillar) and the population-level forest.
Hand-written matplotlib: the intervals come given (Wald, posterior quantiles), while seaborn's
pointplot computes its own error bars from raw observations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from compare_kit.display import term_label
from compare_kit.report.plots.style import (
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


@styled
def caterpillar(estimates: pd.DataFrame, group: str, term: str, *, model: str | None = None,
                effect: str = "ran_vals", rows_per_column: int = 45) -> Figure:
    """Group-level estimates with intervals, frequentist against Bayesian, sorted.

    One row per level (``effect`` rows of ``group`` and ``term``); each engine is a
    coloured point with its interval, slightly offset. Many levels are split over
    side-by-side columns of at most ``rows_per_column`` rows.
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


# --------------------------------------------------------------------------- 5. forest

@styled
def fixed_effects_forest(estimates: pd.DataFrame, *, model: str | None = None) -> Figure:
    """Fixed effects and random-effect SDs/correlations of both engines, side by side.

    Intervals that are NaN are drawn as points only; estimates that are NaN are
    written in the row as "not estimable" so they are never silently missing.
    Hand-written matplotlib: seaborn's pointplot cannot draw given intervals, only its own.
    """
    require_columns(estimates, ["engine", "model", "effect", "group", "term", "estimate", "conf_low",
                         "conf_high"], "estimates")
    rows = estimates[estimates["effect"].isin(["fixed", "ran_pars"])]
    if rows.empty:
        raise ValueError("the estimates table has no fixed or ran_pars rows")
    rows = pick_one(rows, "model", model, "estimates")
    engines = _engine_order(rows["engine"])
    sections = [(effect, title) for effect, title in
                (("fixed", "Fixed effects"), ("ran_pars", "Random-effect SDs and correlations"))
                if (rows["effect"] == effect).any()]
    counts = [rows.loc[rows["effect"] == effect, ["group", "term"]].drop_duplicates().shape[0]
              for effect, _ in sections]
    fig = new_figure(height=max(2.8, 0.42 * max(counts) + 1.6))
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
        ax.set_yticklabels([short_text(term_label(t, "" if g in ("", "Residual") else g), 48)
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
