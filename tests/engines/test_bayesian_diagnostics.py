"""compare_kit's vectorised R-hat and ESS agree with arviz_stats (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest
from arviz_stats.base.array import array_stats

from compare_kit.engines.diagnostics import diagnose, ess_bulk, ess_tail, rhat


def _draws(chains: int, draws: int, seed: int) -> np.ndarray:
    """Quantities with assorted behaviour: iid, autocorrelated, shifted chains, discrete, constant."""
    rng = np.random.default_rng(seed)
    iid = rng.normal(size=(chains, draws))
    ar = np.zeros((chains, draws))
    for t in range(1, draws):
        ar[:, t] = 0.9 * ar[:, t - 1] + rng.normal(size=chains)
    shifted = rng.normal(size=(chains, draws)) + np.arange(chains)[:, None] * 0.5
    heavy = rng.standard_cauchy(size=(chains, draws))
    discrete = rng.integers(0, 3, size=(chains, draws)).astype(float)
    walk = rng.normal(size=(chains, draws)).cumsum(axis=1)
    anti = np.where(np.arange(draws) % 2, 1.0, -1.0) * 0.9 + rng.normal(size=(chains, draws)) * 0.1
    const = np.full((chains, draws), 2.5)
    return np.stack([iid, ar, shifted, heavy, discrete, walk, anti, const], axis=-1)


@pytest.mark.parametrize(("chains", "draws", "seed"), [(4, 1000, 0), (2, 301, 1), (3, 17, 2), (1, 200, 3)])
def test_matches_arviz_stats(chains: int, draws: int, seed: int) -> None:
    x = _draws(chains, draws, seed)
    expected_bulk = array_stats.ess(x, chain_axis=0, draw_axis=1, method="bulk")
    expected_tail = array_stats.ess(x, chain_axis=0, draw_axis=1, method="tail", prob=(0.05, 0.95))
    np.testing.assert_allclose(ess_bulk(x), expected_bulk, rtol=1e-8)
    np.testing.assert_allclose(ess_tail(x), expected_tail, rtol=1e-8)
    if chains > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            expected_rhat = array_stats.rhat(x, chain_axis=0, draw_axis=1)
        np.testing.assert_allclose(rhat(x), expected_rhat, rtol=1e-8)
    else:
        assert np.isnan(rhat(x)).all()
    together = diagnose(x)
    np.testing.assert_array_equal(together[0], rhat(x))
    np.testing.assert_array_equal(together[1], ess_bulk(x))
    np.testing.assert_array_equal(together[2], ess_tail(x))


def test_flags_what_it_should() -> None:
    x = _draws(4, 1000, 5)
    r, bulk = rhat(x), ess_bulk(x)
    assert r[0] < 1.01 and bulk[0] > 3000  # iid
    assert r[2] > 1.05  # chains centred in different places
    assert bulk[1] < 1000  # AR(0.9): about 4000 * 0.1 / 1.9
    assert bulk[5] < 100  # random walk
    assert bulk[6] > 4000  # antithetic draws beat independent ones


def test_average_ranks_match_scipy_with_ties() -> None:
    from scipy import stats

    from compare_kit.engines.diagnostics import _average_ranks

    rng = np.random.default_rng(7)
    rows = np.concatenate([rng.integers(0, 5, size=(6, 50)).astype(float), rng.normal(size=(2, 50))])
    np.testing.assert_array_equal(_average_ranks(rows), stats.rankdata(rows, method="average", axis=1))
