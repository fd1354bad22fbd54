"""R-hat and ESS for many quantities at once (NumPy core, no model knowledge).

The same estimators as ``arviz_stats`` (Vehtari et al. 2021: rank-normalised split
R-hat, bulk ESS, tail ESS from the 5% and 95% quantile indicators, with Geyer's
initial monotone sequence), vectorised over the last axis. arviz_stats loops in
Python over quantities, about 10 ms each; a mixed model with 85 groups has
hundreds of them. ``tests/engines/test_bayesian_diagnostics.py`` checks these
functions against arviz_stats to 1e-8.

Arrays are ``(chain, draw, quantity)``.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtri

TAIL_PROBS = (0.05, 0.95)


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain cut in two halves (the middle draw of an odd chain is dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each quantity over all its draws (Blom's offset 3/8)."""
    c, d, p = x.shape
    ranks = _average_ranks(np.ascontiguousarray(x.reshape(c * d, p).T)).T
    return ndtri((ranks - 3 / 8) / (c * d - 2 * 3 / 8 + 1)).reshape(c, d, p)


def _average_ranks(rows: np.ndarray) -> np.ndarray:
    """1-based ranks along each row, ties sharing their average rank (scipy's "average").

    One unstable argsort per row (several times faster than scipy's rankdata here);
    ties are resolved afterwards, so the sort order among equal values does not matter.
    """
    n_rows, n = rows.shape
    order = np.argsort(rows, axis=1)
    ordered = np.take_along_axis(rows, order, axis=1)
    new_group = np.ones_like(ordered, dtype=bool)
    new_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    position = np.arange(n, dtype=float)
    first = np.maximum.accumulate(np.where(new_group, position, 0.0), axis=1)
    ends = np.ones_like(new_group)
    ends[:, :-1] = new_group[:, 1:]
    last = np.minimum.accumulate(np.where(ends, position, n)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty_like(ordered)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    return ranks


def _rhat(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), axis=0, ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1), axis=0)
    return np.sqrt((between / within + n - 1) / n)


def rhat(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat: the larger of the bulk and the folded (tail) value."""
    x = np.asarray(x, dtype=float)
    return _rhat_rank(_split(x), None) if x.shape[0] > 1 and x.shape[1] >= 4 else _nan(x)


def _rhat_rank(split: np.ndarray, z_split: np.ndarray | None) -> np.ndarray:
    z_split = _z_scale(split) if z_split is None else z_split
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[-1]), axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(_rhat(z_split), _rhat(_z_scale(folded)))


def _nan(x: np.ndarray) -> np.ndarray:
    return np.full(x.shape[-1], np.nan)


def diagnose(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk ESS and tail ESS together, sharing the rank normalisation."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4:
        return _nan(x), _nan(x), _nan(x)
    split = _split(x)
    z_split = _z_scale(split)
    r = _rhat_rank(split, z_split) if x.shape[0] > 1 else _nan(x)
    return r, _ess(z_split), ess_tail(x)


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of each quantity of ``x`` (already split), Geyer's initial monotone sequence."""
    c, n, p = x.shape
    total = c * n
    constant = (x.max(axis=(0, 1)) - x.min(axis=(0, 1))) < np.finfo(float).resolution
    centred = x - x.mean(axis=1, keepdims=True)
    m = next_fast_len(2 * n)
    f = rfft(centred, n=m, axis=1)
    acov = irfft(f * np.conjugate(f), n=m, axis=1)[:, :n] / n  # (chain, lag, quantity)
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if c > 1:
        var_plus = var_plus + np.var(x.mean(axis=1), axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # (lag, quantity)
    rho[0] = 1.0
    n_pairs = n // 2
    pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2, p)
    sums = pairs.sum(axis=1)  # (pair, quantity)
    # the initial positive sequence stops at the first pair j >= 1 whose sum is <= 0,
    # or at the last pair j with 2j - 1 < n - 3
    j_max = max((j for j in range(n_pairs) if 2 * j - 1 < n - 3), default=0)
    idx = np.arange(n_pairs)[:, None]
    stop = (sums <= 0) & (idx >= 1) & (idx <= j_max)
    last = np.where(stop.any(axis=0), stop.argmax(axis=0), j_max)
    if sums[0].min() <= 0:
        last = np.where(sums[0] <= 0, 0, last)
    monotone = np.minimum.accumulate(sums, axis=0)
    kept = np.where(idx < last, monotone, 0.0).sum(axis=0)
    even = pairs[last, 0, np.arange(p)]
    extra = np.where((even > 0) | (sums[last, np.arange(p)] >= 0), even, 0.0)
    tau = -1.0 + 2.0 * kept + extra
    tau = np.maximum(tau, 1.0 / np.log10(total))
    ess = total / tau
    ess = np.where(np.isnan(rho).any(axis=0), np.nan, ess)
    return np.where(constant, float(total), ess)


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk ESS: ESS of the rank-normalised split chains."""
    x = np.asarray(x, dtype=float)
    return _ess(_z_scale(_split(x))) if x.shape[1] >= 4 else _nan(x)


def ess_tail(x: np.ndarray, probs: tuple[float, float] = TAIL_PROBS) -> np.ndarray:
    """Tail ESS: the smaller ESS of the indicators of the 5% and 95% quantiles."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4:
        return _nan(x)
    quantiles = np.quantile(x.reshape(-1, x.shape[-1]), probs, axis=0)
    out = [_ess(_split((x <= q).astype(float))) for q in quantiles]
    return np.minimum(*out)
