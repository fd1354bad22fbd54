"""Posterior predictive checks of a discrete outcome: how often each count occurs (poisson), and each
group's share of successes (bernoulli, binomial), observed against data sets replicated from the fit.

Hand-written matplotlib: one bar or dot per count or group and the replicated data's 90% range as a line,
which keeps the SVG small whatever the number of replicated data sets.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from compare_kit.report.plots.style import BAYES_COLOR, DATA_COLOR, new_figure, short_text, styled

MAX_COUNT_BARS = 40  # counts above the 99th percentile of the observed and replicated counts share one bar


def _range(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of (draws, items): the 5%, 50% and 95% quantiles."""
    low, mid, high = np.quantile(values, [0.05, 0.5, 0.95], axis=0)
    return low, mid, high


def _legend(fig: Figure, observed: str, draws: int) -> None:
    handles = [Patch(color=DATA_COLOR, alpha=0.35, label=observed),
               Line2D([], [], color=BAYES_COLOR, marker="o", linewidth=1.5,
                      label=f"replicated: median and 90% range ({draws} data sets)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2)


@styled
def count_check(observed: np.ndarray, replicated: np.ndarray, *, response_label: str = "count") -> Figure:
    """Bars: how many rows have each count; dots and lines: the same in the replicated data sets
    (``replicated``: (draws, rows) counts). Counts above a cap share the last bar ("cap or more")."""
    obs = np.asarray(observed, dtype=int)
    reps = np.asarray(replicated, dtype=int)
    if reps.ndim != 2 or reps.shape[1] != obs.size or obs.size == 0:
        raise ValueError(f"replicated counts must be (draws, {obs.size}), got {reps.shape}")
    cap = int(min(max(obs.max(), np.quantile(reps, 0.99)), MAX_COUNT_BARS))
    bins = np.arange(cap + 1)
    freq_obs = np.bincount(np.minimum(obs, cap), minlength=cap + 1)
    freq_reps = np.stack([np.bincount(np.minimum(r, cap), minlength=cap + 1) for r in reps])
    low, mid, high = _range(freq_reps)
    fig = new_figure(height=4.0)
    ax = fig.subplots()
    ax.bar(bins, freq_obs, color=DATA_COLOR, alpha=0.35, width=0.8)
    ax.vlines(bins, low, high, color=BAYES_COLOR, linewidth=1.5)
    ax.plot(bins, mid, "o", color=BAYES_COLOR, markersize=3.5)
    ax.set_xlabel(f"{short_text(response_label)} (the last bar: {cap} or more)" if cap < obs.max()
                  or cap < reps.max() else short_text(response_label))
    ax.set_ylabel("rows with this count")
    ax.set_title("Posterior predictive check: count frequencies, observed vs replicated")
    _legend(fig, f"observed (n = {obs.size})", reps.shape[0])
    return fig


@styled
def proportion_check(observed: np.ndarray, replicated: np.ndarray, trials: np.ndarray, codes: np.ndarray,
                     *, group: str = "group") -> Figure:
    """Each group's share of successes (sum of outcomes / sum of trials), observed (bars) against the
    replicated data sets' shares (``replicated``: (draws, rows) successes); groups in order of their
    observed share. ``codes``: each row's group, 0 .. groups - 1."""
    obs = np.asarray(observed, dtype=float)
    reps = np.asarray(replicated, dtype=float)
    codes = np.asarray(codes, dtype=int)
    if reps.ndim != 2 or reps.shape[1] != obs.size or obs.size == 0:
        raise ValueError(f"replicated outcomes must be (draws, {obs.size}), got {reps.shape}")
    k = int(codes.max()) + 1
    n = np.bincount(codes, weights=trials, minlength=k)
    used = n > 0
    share_obs = np.bincount(codes, weights=obs, minlength=k)[used] / n[used]
    share_reps = np.stack([np.bincount(codes, weights=r, minlength=k)[used] / n[used] for r in reps])
    order = np.argsort(share_obs, kind="stable")
    low, mid, high = (q[order] for q in _range(share_reps))
    x = np.arange(order.size)
    fig = new_figure(height=4.0)
    ax = fig.subplots()
    ax.bar(x, share_obs[order], color=DATA_COLOR, alpha=0.35, width=0.9)
    ax.vlines(x, low, high, color=BAYES_COLOR, linewidth=1.0 if order.size > 60 else 1.5)
    ax.plot(x, mid, "o", color=BAYES_COLOR, markersize=2.0 if order.size > 60 else 3.5)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"{group} levels ({order.size:,}), in order of their observed share")
    ax.set_ylabel("share of successes")
    ax.set_title(f"Posterior predictive check: each {short_text(group)}'s share, observed vs replicated")
    _legend(fig, "observed share", reps.shape[0])
    return fig
