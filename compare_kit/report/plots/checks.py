"""Model checks: the posterior predictive density check and the chains' rank plots.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from compare_kit.report.plots.style import (
    BAND_COLOR,
    BAYES_COLOR,
    DATA_COLOR,
    EXTRA_COLORS,
    FREQ_COLOR,
    NO_POOLING_COLOR,
    Source,
    evenly_spaced,
    new_figure,
    panel_grid,
    require_columns,
    short_text,
    source_colors,
    source_kinds,
    styled,
)


# --------------------------------------------------------------------------- 6. predictive check

_GRID_POINTS = 128  # points per drawn curve: smooth enough, keeps the SVG small
_KDE_STEP = 4  # arviz_stats' KDE is binned: estimate on a 4x finer grid, draw every 4th point


def _bandwidth(observed: np.ndarray) -> float:
    """Silverman's rule on the observed values; Scott's if their IQR is 0; 1 if all are equal."""
    from arviz_stats.base import array_stats

    for rule in ("silverman", "scott"):
        bandwidth = float(array_stats.get_bw(observed, rule))
        if bandwidth > 0:
            return bandwidth
    return 1.0


def _densities(rows: np.ndarray, lo: float, hi: float, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian KDE (arviz_stats) of each row of ``rows`` on one grid over [lo, hi], one bandwidth.

    NaNs are ignored, so rows of unequal length can be NaN-padded. Values outside [lo, hi]
    are left out and each curve is scaled by the share of its values kept (a far outlier
    does not stretch the axis). A row without two distinct usable values gives a NaN curve.
    """
    from arviz_stats.base import array_stats

    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    finite = np.isfinite(rows)
    inside = finite & (rows >= lo) & (rows <= hi)
    with warnings.catch_warnings():  # arviz_stats warns for a row with one value or none: NaN curve
        warnings.filterwarnings("ignore", message="Your data appears to have a single value")
        grids, pdf, _ = array_stats.kde(np.where(inside, rows, np.nan), bw=bandwidth,
                                        custom_lims=(float(lo), float(hi)), bound_correction=False,
                                        grid_len=_KDE_STEP * (_GRID_POINTS - 1) + 1)
    # every row has the same grid (bin centres over [lo, hi]), except degenerate rows, which get zeros
    fine_grid = (lo + (np.arange(grids.shape[-1]) + 0.5) * (hi - lo) / grids.shape[-1])
    share = inside.sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
    return fine_grid[::_KDE_STEP], pdf[:, ::_KDE_STEP] * share[:, None]


@styled
def posterior_predictive(observed: Sequence[float] | np.ndarray | pd.Series, replicated: pd.DataFrame,
                         *, response_label: str = "response", max_draws: int = 100) -> Figure:
    """Density of the observed response against densities of replicated data sets.

    ``replicated`` has columns ``draw, value`` (and optionally ``source`` to show
    several models or engines in their own colours). At most ``max_draws`` draws
    per source are drawn, evenly spaced. The densities are arviz_stats' Gaussian KDEs
    on one shared grid, all with the bandwidth chosen for the observed data
    (Silverman's rule), so they are comparable. Hand-written matplotlib only for the
    drawing: one LineCollection per source keeps the SVG small, which neither
    seaborn's kdeplot nor arviz_plots' plot_ppc_dist (one line per draw, own bandwidths) do.
    """
    require_columns(replicated, ["draw", "value"], "replicated")
    obs = np.asarray(observed, dtype=float)
    obs = obs[np.isfinite(obs)]
    if obs.size == 0:
        raise ValueError("no finite observed values to draw")
    bandwidth = _bandwidth(obs)
    values = replicated["value"].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    lo = min(obs.min(), np.quantile(finite, 0.001) if finite.size else obs.min()) - 3 * bandwidth
    hi = max(obs.max(), np.quantile(finite, 0.999) if finite.size else obs.max()) + 3 * bandwidth

    # pd.unique keeps the order of appearance, as dict.fromkeys does, without a Python loop over the rows
    sources = (list(pd.unique(replicated["source"].astype(str))) if "source" in replicated
               else ["replicated"])
    # replicated data come from a posterior: Bayesian unless a kind column says otherwise
    colors = source_colors(sources, {s: Source.BAYESIAN for s in sources} | source_kinds(replicated))
    fig = new_figure(height=4.0)
    ax = fig.subplots()
    handles = []
    for source in sources:
        sub = (replicated if "source" not in replicated
               else replicated[replicated["source"].astype(str) == source])
        color = colors[source]
        keep = evenly_spaced(sorted(sub["draw"].unique()), max_draws)
        picked = sub.loc[sub["draw"].isin(keep), ["draw", "value"]]
        # one row per draw (NaN-padded if the draws differ in length), sorted by draw
        table = (picked.assign(_i=picked.groupby("draw").cumcount())
                 .pivot(index="draw", columns="_i", values="value"))
        grid, curves = _densities(table.to_numpy(dtype=float), lo, hi, bandwidth)
        segments = [np.column_stack([grid, curve]) for curve in curves if np.isfinite(curve).all()]
        ax.add_collection(LineCollection(segments, colors=color, linewidths=0.8,
                                         alpha=min(0.3, 10.0 / max(len(segments), 1))))
        handles.append(Line2D([], [], color=color, linewidth=1.0,
                              label=f"{short_text(source)} data sets ({len(segments)} draws)"))
    grid, (density,) = _densities(obs, lo, hi, bandwidth)
    ax.plot(grid, density, color=DATA_COLOR, linewidth=2.4)
    handles.insert(0, Line2D([], [], color=DATA_COLOR, linewidth=2.4, label=f"observed (n = {obs.size})"))
    ax.set_xlim(lo, hi)
    ax.autoscale(axis="y")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(short_text(response_label))
    ax.set_ylabel("density")
    ax.set_title("Posterior predictive check: observed vs replicated data")
    # below the axes, as in the other figures: inside, the highest replicated curves ran under its text
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2))
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


@styled
def rank_plot(posterior: Any, var_names: Sequence[str], *, bins: int = 20, max_panels: int = 12,
              ncols: int = 4, labels: Mapping[str, str] | None = None) -> Figure:
    """Rank histograms per chain (Vehtari et al. 2021): arviz_stats ranks, matplotlib steps.

    ``posterior`` is an arviz DataTree (its ``posterior`` group is used) or an
    xarray Dataset with dims ``chain, draw``. Vector variables are split into one
    panel per element, up to ``max_panels`` panels in all (the rest are counted in
    the title). ``labels`` renames variables in the panel titles (e.g.
    ``{"sd_0_0": "SD of county intercepts"}``). Each chain's rank counts are a step
    line; the grey band is the 95% range of a bin count when ranks are uniform.
    Deterministic: no simulation.

    (arviz_plots.plot_rank draws Δ-ECDF curves through a PlotCollection; plain rank
    histograms are easier to read in a static report and need no extra styling, so the
    bins, band and steps are hand-written numpy/matplotlib.)
    """
    from arviz_stats.base import array_stats
    from scipy import stats

    dataset = _posterior_dataset(posterior)
    var_names = [var_names] if isinstance(var_names, str) else list(var_names)
    panels, left_out = _rank_panels(dataset, var_names, max_panels, labels or {})
    if not panels:
        raise ValueError("no variables to draw")
    fig, axes, ncols = panel_grid(len(panels), ncols, 1.9, 1.0, share=False)
    n_chains = panels[0][1].shape[0]
    chain_colors = [FREQ_COLOR, BAYES_COLOR, NO_POOLING_COLOR, *EXTRA_COLORS]
    for ax, (title, draws) in zip(axes, panels, strict=False):
        chains, n_draws = draws.shape
        ranks = array_stats.compute_ranks(draws, axis=(0, 1))  # all chains' draws ranked together
        edges = np.linspace(0.5, chains * n_draws + 0.5, bins + 1)
        expected = n_draws / bins
        low, high = stats.binom.ppf([0.025, 0.975], n_draws, 1.0 / bins)
        ax.axhspan(low, high, color=BAND_COLOR, alpha=0.35, linewidth=0)
        ax.axhline(expected, color="#777777", linewidth=0.8, linestyle="--")
        for c in range(chains):
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax.stairs(counts, np.arange(bins + 1), color=chain_colors[c % len(chain_colors)],
                      linewidth=1.2, baseline=None)
        ax.set_title(short_text(title, 34), fontsize=9)
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
