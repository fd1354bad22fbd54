"""PSIS-LOO of a Bayesian fit over chunks of rows: its typed results (``Elpd``, ``Loo``) and the computation.

``BayesianFit.loo`` and ``BayesianFit.psis_loo`` call ``psis_loo`` here. PSIS smooths each row's importance
weights on its own, so chunking the rows is exact; the numbers are arviz_stats' (``psislw`` per row).
"""

from __future__ import annotations

import contextlib

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from compare_kit.design import Design
    from compare_kit.engines.posterior import CanonicalDraws


@dataclass(frozen=True)
class Elpd:
    """PSIS-LOO's totals and pointwise values, as arviz_stats' ``loo`` computes them."""

    elpd: float  # sum of elpd_i
    se: float  # sqrt(n var(elpd_i))
    p: float  # effective number of parameters: lppd - elpd
    elpd_i: np.ndarray  # (n,) each row's leave-one-out log predictive density
    pareto_k: np.ndarray  # (n,) the Pareto shape of each row's importance weights
    good_k: float  # min(1 - 1 / log10(S), 0.7): above it a row's estimate is unreliable
    n_samples: int
    r_eff: float  # relative efficiency of the draws: mean ESS / S of sigma (Gaussian) or of the first fixed effect


@dataclass(frozen=True)
class Loo:
    """PSIS-LOO of a Bayesian fit and each row's leave-one-out mean prediction."""

    elpd: Elpd
    predictions: np.ndarray
    warnings: tuple[str, ...]


def psis_loo(draws: CanonicalDraws, design: Design, chunk_rows: int | None = None) -> Loo:
    """PSIS-LOO of the draws' model on the design's rows, ``chunk_rows`` rows at a time (default: the
    draws x rows block of ``results.CHUNK_BYTES``); see ``BayesianFit.psis_loo``."""
    import warnings

    from arviz_stats.base import array_stats
    from scipy.special import logsumexp, softmax

    from compare_kit.engines.posterior import pointwise_chunks

    n = design.n
    anchor = reff_anchor(draws)  # (chain, draw)
    n_samples = draws.size
    r_eff = (1.0 if anchor is None or anchor.shape[0] == 1 else
             float(array_stats.ess(anchor, method="mean", chain_axis=0, draw_axis=1)) / n_samples)
    elpd_i, p_i, pareto_k, predictions = (np.empty(n) for _ in range(4))
    unsmoothed = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for rows, mu, log_lik in pointwise_chunks(draws, design, chunk_rows):
            log_lik = np.ascontiguousarray(log_lik.T)  # (rows, draws)
            log_weights, pareto_k[rows], raw = smoothed_log_weights(log_lik, r_eff)
            unsmoothed += raw
            elpd_i[rows] = logsumexp(log_weights + log_lik, axis=1)
            p_i[rows] = logsumexp(log_lik, axis=1) - np.log(n_samples) - elpd_i[rows]
            predictions[rows] = (softmax(log_weights, axis=1) * mu.T).sum(axis=1)
    good_k = min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7
    notes = [str(w.message) for w in caught]
    if unsmoothed:
        notes.append(f"PSIS could not smooth {unsmoothed} of {n} rows: their largest importance ratios tie (a "
                     "chain stuck at one point, or draws where the row's outcome is impossible), so their raw "
                     "importance weights are used (equal weights where a draw makes the outcome impossible: an "
                     "optimistic, in-sample value) and their Pareto k is left empty; check the sampler's health")
    bad = int((pareto_k > good_k).sum())
    if bad:
        notes.append(f"Pareto k above {good_k:.2f} for {bad} of {n} rows: PSIS-LOO is unreliable for them "
                     "(leaving one of them out changes the posterior too much for importance sampling)")
    elpd = Elpd(float(elpd_i.sum()), float(np.sqrt(n * np.var(elpd_i, ddof=1))) if n > 1 else 0.0,
                float(p_i.sum()), elpd_i, pareto_k, good_k, n_samples, r_eff)
    return Loo(elpd, predictions, tuple(dict.fromkeys(notes)))


def reff_anchor(draws: CanonicalDraws) -> np.ndarray | None:
    """The draws whose mean ESS sets PSIS's r_eff: the residual SD of a Gaussian model (as before);
    a GLMM has none, so its first fixed effect (the intercept when there is one), else the first
    group SD; None for a model with neither (r_eff 1)."""
    if draws.residual is not None:
        return draws.residual
    if draws.fixed.shape[-1]:
        return draws.fixed[..., 0]
    return draws.blocks[0].sd[..., 0] if draws.blocks else None


def smoothed_log_weights(log_lik: np.ndarray, r_eff: float) -> tuple[np.ndarray, np.ndarray, int]:
    """arviz_stats' PSIS log weights of each row of ``log_lik`` (rows, draws), their Pareto k, and how many
    rows it could not smooth: a row whose largest importance ratios tie has no tail to fit (arviz_stats
    raises), e.g. a chain stuck at one point, or draws where the row's outcome is impossible (log-likelihood
    -inf). Such a row gets its raw importance weights, normalised, where they are all finite, else equal
    weights (its in-sample density, an upper bound), and a Pareto k of NaN."""
    from arviz_stats.base import array_stats
    from scipy.special import logsumexp

    try:
        log_weights, k = array_stats.psislw(log_lik, r_eff=r_eff, axis=-1)
    except ValueError:  # some row's tail is flat: smooth row by row
        log_weights, k = np.full_like(log_lik, np.nan), np.full(len(log_lik), np.nan)
        for i, row in enumerate(log_lik):
            with contextlib.suppress(ValueError):
                log_weights[i], k[i] = array_stats.psislw(row, r_eff=r_eff, axis=-1)
    failed = ~np.isfinite(log_weights).all(axis=1)  # raised, or NaN weights from -inf log-likelihoods
    for i in np.flatnonzero(failed):
        row = log_lik[i]
        ratios = -row if np.isfinite(row).all() else np.zeros_like(row)
        log_weights[i], k[i] = ratios - logsumexp(ratios), np.nan
    return log_weights, k, int(failed.sum())
