"""Canonical posterior draws -> the tidy estimates table and per-parameter diagnostics.

Engines translate their draws into ``CanonicalDraws`` (canonical names, the
intercept at uncentred predictors); everything after that is shared: ran_coefs
are computed per draw (fixed + deviation) and then summarised like every other
quantity (posterior mean, posterior SD, equal-tailed interval), and R-hat, bulk
and tail ESS come from the same draws.

The rows' quantities follow the design's family: the linear predictor ``eta`` (X b + Z u + offset,
on the link scale), the mean ``mu`` on the response scale, in the outcome's units (``E[y]``:
gaussian ``eta``; bernoulli the probability ``expit(eta)``; binomial the expected successes,
``trials * expit(eta)``; poisson the expected count ``exp(eta)``, the offset included), the
pointwise log-likelihood (Normal with the residual SD; Bernoulli, Binomial with the row's trials,
Poisson) and replicated outcomes of the same family. A GLMM has no residual SD
(``CanonicalDraws.residual`` is None) and so no ``sd__Observation`` row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
from scipy import special, stats

from compare_kit.design import Design
from compare_kit.family import Family
from compare_kit.labels import parameter_label
from compare_kit.results import (
    CHUNK_BYTES,
    RESIDUAL_GROUP,
    RESIDUAL_TERM,
    Effect,
    cor_term,
    make_estimates,
    sd_term,
    validate_diagnostics,
)
from compare_kit.settings import ESS_LIMIT, RHAT_LIMIT
from compare_kit.wording import count


@dataclass(frozen=True, eq=False)
class BlockDraws:
    """Draws of one grouping block: SDs, correlations and group deviations."""

    group: str
    coefs: tuple[str, ...]
    levels: tuple[str, ...]
    sd: np.ndarray  # (chain, draw, coef)
    cor: np.ndarray | None  # (chain, draw, coef, coef) when correlated
    vals: np.ndarray  # (chain, draw, level, coef)


@dataclass(frozen=True, eq=False)
class CanonicalDraws:
    """All draws of one fit under canonical names. ``residual`` is the residual SD of a Gaussian model;
    None for the other families, which have none."""

    fixed_names: tuple[str, ...]
    fixed: np.ndarray  # (chain, draw, column)
    blocks: tuple[BlockDraws, ...]
    residual: np.ndarray | None  # (chain, draw); None for a GLMM

    @property
    def shape(self) -> tuple[int, int]:
        """(chains, draws per chain)."""
        return int(self.fixed.shape[0]), int(self.fixed.shape[1])

    @property
    def size(self) -> int:
        """Draws over all chains."""
        return self.shape[0] * self.shape[1]


_LOG_2PI = float(np.log(2 * np.pi))


def posterior_mu(draws: CanonicalDraws, design: Design) -> np.ndarray:
    """Per draw, the mean of every row of ``design`` on the response scale (``mean_of_draws``):
    (chain, draw, row)."""
    return mean_of_draws(draws, design, slice(None), slice(None)).reshape(*draws.shape, design.n)


def linear_predictor(draws: CanonicalDraws, design: Design, draw_index: np.ndarray | slice,
                     rows: np.ndarray | slice) -> np.ndarray:
    """``eta = X b + Z u + offset`` of the ``rows`` of ``design`` at the draws ``draw_index`` (flat,
    chain-major): (draws, rows), on the link scale. Only the selected draws and rows are built."""
    x = design.x[list(draws.fixed_names)].to_numpy()[rows]
    fixed = draws.fixed.reshape(-1, draws.fixed.shape[-1])[draw_index]
    eta = fixed @ x.T
    for block_draws, block in zip(draws.blocks, design.blocks, strict=True):
        z = block.z[list(block_draws.coefs)].to_numpy()[rows]  # (rows, k)
        vals = block_draws.vals.reshape(-1, *block_draws.vals.shape[2:])[draw_index]  # (draws, level, k)
        eta = eta + np.einsum("snk,nk->sn", vals[:, block.codes[rows], :], z)
    if design.offset is not None:
        eta = eta + design.offset[rows]
    return eta


def response_mean(design: Design, eta: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """The mean ``E[y]`` of the ``rows`` given their linear predictor ``eta`` (draws, rows), in the
    outcome's units: gaussian ``eta``, bernoulli ``expit(eta)``, binomial ``trials * expit(eta)``
    (expected successes), poisson ``exp(eta)``."""
    match design.family:
        case Family.BERNOULLI:
            return special.expit(eta)
        case Family.BINOMIAL:
            assert design.trials is not None  # a binomial design always has its trials
            return design.trials[rows] * special.expit(eta)
        case Family.POISSON:
            return np.exp(eta)
    return eta


def mean_of_draws(draws: CanonicalDraws, design: Design, draw_index: np.ndarray | slice,
                  rows: np.ndarray | slice) -> np.ndarray:
    """The model's mean of the ``rows`` of ``design`` on the response scale (``response_mean``) at the
    draws ``draw_index`` (flat, chain-major): (draws, rows). Only the selected draws and rows are
    built, so a caller can work in chunks."""
    return response_mean(design, linear_predictor(draws, design, draw_index, rows), rows)


def normal_log_likelihood(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Pointwise Normal log-likelihood of ``y`` per draw: (chain, draw, row); ``sigma`` is (chain, draw)."""
    sigma = sigma[:, :, None]
    return -0.5 * _LOG_2PI - np.log(sigma) - 0.5 * ((y[None, None, :] - mu) / sigma) ** 2


def family_log_likelihood(design: Design, eta: np.ndarray, rows: np.ndarray | slice,
                          sigma: np.ndarray | None) -> np.ndarray:
    """Pointwise log-likelihood of the ``rows`` of ``design`` per draw, from their linear predictor
    ``eta`` (draws, rows): Normal (``sigma``: (draws,)), Bernoulli, Binomial with the rows' trials,
    Poisson. The logit families are computed from ``eta`` with ``log_expit`` (scipy's ``logpmf``
    on ``expit(eta)`` gives -inf once ``expit`` rounds to 1, beyond eta = 37)."""
    y = design.y[rows]
    match design.family:
        case Family.BERNOULLI:
            return y * special.log_expit(eta) + (1 - y) * special.log_expit(-eta)
        case Family.BINOMIAL:
            assert design.trials is not None
            n = design.trials[rows]
            log_choose = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
            return log_choose + y * special.log_expit(eta) + (n - y) * special.log_expit(-eta)
        case Family.POISSON:
            return stats.poisson.logpmf(y, np.exp(eta))
    assert sigma is not None  # a Gaussian model has its residual SD
    return normal_log_likelihood(y, eta[None], sigma.reshape(1, -1))[0]


POISSON_RATE_LIMIT = 1e15  # numpy's Poisson sampler refuses rates near 1e19; no count table reaches this


def replicate(design: Design, mu: np.ndarray, rows: np.ndarray | slice, sigma: np.ndarray | None,
              rng: np.random.Generator) -> np.ndarray:
    """Replicated outcomes of the ``rows`` from their means ``mu`` (draws, rows), of the design's
    family: ``mu + sigma * N(0, 1)`` (gaussian, ``sigma``: (draws,)), 0/1 draws, successes out of the
    rows' trials, counts."""
    match design.family:
        case Family.BERNOULLI:
            return rng.binomial(1, mu).astype(float)
        case Family.BINOMIAL:
            assert design.trials is not None
            n = design.trials[rows]
            return rng.binomial(n.astype(np.int64), mu / n).astype(float)
        case Family.POISSON:  # a rate beyond POISSON_RATE_LIMIT (a stuck or diverged chain) is drawn at the limit
            return rng.poisson(np.minimum(mu, POISSON_RATE_LIMIT)).astype(float)
    assert sigma is not None
    return mu + sigma.reshape(-1, 1) * rng.standard_normal(mu.shape)


def pointwise_chunks(draws: CanonicalDraws, design: Design, chunk_rows: int | None = None
                     ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """The rows of ``design`` in chunks: ``(rows, mu, log_lik)``, both (draws, rows), draws flat
    (chain-major); ``mu`` on the response scale (``mean_of_draws``), ``log_lik`` of the design's
    family. A chunk holds ``chunk_rows`` rows (default: ``CHUNK_BYTES`` of draws x rows), so
    row-wise work (PSIS-LOO, the arviz tree's log-likelihood) never needs the full ``mu``."""
    sigma = None if draws.residual is None else draws.residual.reshape(-1)
    n, n_samples = design.n, draws.size
    step = chunk_rows or max(1, CHUNK_BYTES // (8 * n_samples))
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        eta = linear_predictor(draws, design, slice(None), rows)
        yield rows, response_mean(design, eta, rows), family_log_likelihood(design, eta, rows, sigma)


def _key(effect: Effect, term: str, group: str = "", level: str = "") -> dict[str, str]:
    return {"effect": effect.value, "group": group, "level": level, "term": term}


def stack_draws(draws: CanonicalDraws) -> tuple[list[dict[str, str]], np.ndarray]:
    """Every summarised quantity as one (chain, draw, quantity) array with its keys."""
    keys: list[dict[str, str]] = []
    arrays: list[np.ndarray] = []
    for j, name in enumerate(draws.fixed_names):
        keys.append(_key(Effect.FIXED, name))
        arrays.append(draws.fixed[..., j])
    for block in draws.blocks:
        for j, coef in enumerate(block.coefs):
            keys.append(_key(Effect.RAN_PARS, sd_term(coef), block.group))
            arrays.append(block.sd[..., j])
        if block.cor is not None:
            for i in range(len(block.coefs)):
                for j in range(i + 1, len(block.coefs)):
                    keys.append(_key(Effect.RAN_PARS, cor_term(block.coefs[i], block.coefs[j]), block.group))
                    arrays.append(block.cor[..., i, j])
    if draws.residual is not None:  # a GLMM has no residual SD
        keys.append(_key(Effect.RAN_PARS, RESIDUAL_TERM, RESIDUAL_GROUP))
        arrays.append(draws.residual)
    for block in draws.blocks:
        for j, coef in enumerate(block.coefs):
            for li, level in enumerate(block.levels):
                keys.append(_key(Effect.RAN_VALS, coef, block.group, level))
                arrays.append(block.vals[..., li, j])
    for (group, level, coef), values in _ran_coefs(draws).items():
        keys.append(_key(Effect.RAN_COEFS, coef, group, level))
        arrays.append(values)
    return keys, np.stack(arrays, axis=-1)


def _ran_coefs(draws: CanonicalDraws) -> dict[tuple[str, str, str], np.ndarray]:
    """Fixed + every block's deviation, per draw (lme4's ``coef()``), by group, term, level."""
    fixed = {name: draws.fixed[..., j] for j, name in enumerate(draws.fixed_names)}
    out: dict[tuple[str, str, str], np.ndarray] = {}
    for block in draws.blocks:
        for j, coef in enumerate(block.coefs):
            for li, level in enumerate(block.levels):
                key = (block.group, level, coef)
                base = out.get(key, fixed.get(coef, 0.0))
                out[key] = base + block.vals[..., li, j]
    return out


def equal_tailed(flat: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The equal-tailed posterior interval at ``level`` of each column of ``flat`` (draws, quantity)."""
    tail = (1 - level) / 2
    low, high = np.quantile(flat, [tail, 1 - tail], axis=0)
    return low, high


def summarise(keys: list[dict[str, str]], values: np.ndarray, *, engine: str, model: str,
              notes: Mapping[tuple[str, str], str], conf_level: float = 0.95
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimates (mean, SD, equal-tailed interval) of every quantity; diagnostics of the parameters."""
    flat = values.reshape(-1, values.shape[-1])
    low, high = equal_tailed(flat, conf_level)
    mean = flat.mean(axis=0)
    sd = flat.std(axis=0, ddof=1) if flat.shape[0] > 1 else np.zeros(flat.shape[1])
    rows: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        rows.append({"engine": engine, "model": model, **key, "estimate": mean[i], "std_error": sd[i],
                     "conf_low": low[i], "conf_high": high[i], "conf_level": conf_level,
                     "note": notes.get((key["effect"], key["term"]), "")})
    estimates = make_estimates(rows)
    # diagnostics are per parameter; ran_coefs are sums of parameters, not parameters
    params = np.array([k["effect"] != Effect.RAN_COEFS for k in keys])
    diagnostics = pd.DataFrame([{"engine": engine, "model": model, **k}
                                for k, keep in zip(keys, params, strict=True) if keep])
    diagnostics["rhat"], diagnostics["ess_bulk"], diagnostics["ess_tail"] = _diagnose(values[..., params])
    return estimates, validate_diagnostics(diagnostics)


def _diagnose(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk ESS and tail ESS from arviz, one per quantity (NaN if constant)."""
    import xarray as xr

    draws = xr.DataArray(values, dims=("chain", "draw", "quantity"))
    constant = np.ptp(values.reshape(-1, values.shape[-1]), axis=0) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        found = (azs.rhat(draws), azs.ess(draws, method="bulk"), azs.ess(draws, method="tail"))
    return tuple(np.where(constant, np.nan, np.asarray(a, dtype=float)) for a in found)


def _name(row: pd.Series) -> str:
    """A diagnostics row's readable name, grouping factor included (``s intercept [1530]``)."""
    return parameter_label(row["term"], row["group"], row["level"])


def health_flags(diagnostics: pd.DataFrame, divergences: int, saturation: int, chains: int,
                 draws: int) -> tuple[str, ...]:
    """Warnings a user must see: R-hat > 1.01, ESS < 400, divergences, tree-depth saturation."""
    flags: list[str] = []
    if divergences:
        flags.append(f"{count(divergences, 'divergent transition')} after tuning: the posterior may be "
                     "biased; raise target_accept or reparameterise")
    if saturation:
        flags.append(f"{count(saturation, 'draw')} hit the maximum tree depth: sampling was inefficient")
    if chains < 2:
        flags.append("R-hat needs at least 2 chains; convergence was not checked")
    else:
        bad = diagnostics["rhat"] > RHAT_LIMIT
        if bad.any():
            worst = diagnostics.loc[diagnostics["rhat"].idxmax()]
            flags.append(f"R-hat > {RHAT_LIMIT} for {count(int(bad.sum()), 'quantity', 'quantities')} (worst "
                         f"{_name(worst)}: {worst['rhat']:.3f}); run longer chains")
    for col, what in (("ess_bulk", "bulk"), ("ess_tail", "tail")):
        low = diagnostics[col] < ESS_LIMIT
        if low.any():
            worst = diagnostics.loc[diagnostics[col].idxmin()]
            flags.append(f"{what} ESS < {ESS_LIMIT} for {count(int(low.sum()), 'quantity', 'quantities')} (lowest "
                         f"{_name(worst)}: {worst[col]:.0f} of {chains * draws} draws); "
                         "run more draws")
    return tuple(flags)
