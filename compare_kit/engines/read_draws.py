"""A built model's draws, under the engine's names, read back into ``CanonicalDraws``.

``BuiltModel`` is what ``fit_bayesian`` samples: the PyMC model (Bambi's backend model, compare_kit's
own, or the collapsed one) with everything needed to read its draws back. ``canonical_draws``
translates the sampler's draws to canonical names with the intercept at uncentred predictors; on the
collapsed path it also draws the group effects from their conditional normal
(``collapsed.draw_group_effects``), seeded by the fit's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compare_kit.design import INTERCEPT, Design
from compare_kit.engines.bambi_names import (
    BAMBI_INTERCEPT,
    BAMBI_RESIDUAL,
    PYMC_RESIDUAL,
    BambiNaming,
    pymc_block_names,
    pymc_fixed_name,
)
from compare_kit.engines.collapsed import GroupStats, draw_group_effects, scale_factor
from compare_kit.engines.posterior import BlockDraws, CanonicalDraws
from compare_kit.engines.pymc_models import ModelPriors, centring
from compare_kit.engines.sampling import SamplerRun
from compare_kit.errors import FitError
from compare_kit.results import EngineName


@dataclass(frozen=True)
class BuiltModel:
    """A model ready to sample, with everything needed to read its draws back."""

    engine: EngineName
    model: Any  # pymc.Model
    var_names: list[str]
    priors: ModelPriors
    prior_record: dict[str, str]
    bambi_terms: dict[str, list[str]]  # Bambi common term -> canonical columns
    structure: str
    bambi_model: Any = None  # the bambi.Model sampled (the Bambi path only)
    stats: GroupStats | None = None  # the collapsed model's sufficient statistics (method="collapsed")

    @property
    def bambi_backend(self) -> bool:
        """The model sampled is Bambi's own PyMC model (its names), not one compare_kit built."""
        return self.engine == EngineName.BAMBI and self.stats is None


def _values(run: SamplerRun, name: str) -> np.ndarray:
    da = run.idata["posterior"][name]
    rest = [d for d in da.dims if d not in ("chain", "draw")]
    return np.asarray(da.transpose("chain", "draw", *rest).values, dtype=float)


def _uncentre(fixed: np.ndarray, design: Design, center: bool) -> np.ndarray:
    """The intercept at uncentred predictors: b0 - sum_j mean(x_j) b_j, per draw."""
    means = centring(design, center)
    if not means.any():
        return fixed
    out = fixed.copy()
    out[..., list(design.x.columns).index(INTERCEPT)] -= fixed @ means
    return out


def _fixed_matrix(parts: dict[str, np.ndarray], design: Design, shape: tuple[int, ...]) -> np.ndarray:
    """The fixed columns' draws in design order, as sampled: (chain, draw, column)."""
    fixed = np.zeros((*shape, design.x.shape[1]))
    for j, name in enumerate(design.x.columns):
        fixed[..., j] = parts[name]
    return fixed


def _fixed_draws(parts: dict[str, np.ndarray], design: Design, center: bool, shape: tuple[int, ...]
                 ) -> np.ndarray:
    return _uncentre(_fixed_matrix(parts, design, shape), design, center)


def bambi_draws(run: SamplerRun, design: Design, naming: BambiNaming, built: BuiltModel) -> CanonicalDraws:
    parts: dict[str, np.ndarray] = {}
    for name, columns in built.bambi_terms.items():
        values = _values(run, name)
        values = values.reshape(*values.shape[:2], len(columns))
        parts.update({col: values[..., j] for j, col in enumerate(columns)})
    residual = _residual(run, built, BAMBI_RESIDUAL)
    fixed = _fixed_draws(parts, design, built.priors.center, _shape(run))
    blocks = []
    for block in naming.blocks:
        for j in range(len(block.coefs)):
            coords = run.idata["posterior"][block.bambi_effect(j)]
            dim = next(dd for dd in coords.dims if dd not in ("chain", "draw"))
            if tuple(str(v) for v in coords[dim].values) != block.levels:
                raise FitError(f"internal error: Bambi's levels of {block.group!r} are not in design order")
        sd = np.stack([_values(run, block.bambi_sd(j)) for j in range(len(block.coefs))], axis=-1)
        vals = np.stack([_values(run, block.bambi_effect(j)) for j in range(len(block.coefs))], axis=-1)
        blocks.append(BlockDraws(block.group, block.coefs, block.levels, sd, None, vals))
    return CanonicalDraws(tuple(design.x.columns), fixed, tuple(blocks), residual)


def _shape(run: SamplerRun) -> tuple[int, int]:
    posterior = run.idata["posterior"]
    return int(posterior.sizes["chain"]), int(posterior.sizes["draw"])


def _residual(run: SamplerRun, built: BuiltModel, name: str) -> np.ndarray | None:
    """The residual SD's draws; None for a GLMM (no residual prior, no residual SD)."""
    return None if built.priors.residual is None else _values(run, name)


def _pymc_fixed_parts(run: SamplerRun, built: BuiltModel) -> dict[str, np.ndarray]:
    """Each fixed column's draws from compare_kit's PyMC model (at centred predictors if it centres)."""
    parts: dict[str, np.ndarray] = {}
    for i, group in enumerate(built.priors.fixed):
        values = _values(run, pymc_fixed_name(i))
        values = values.reshape(*values.shape[:2], -1)
        parts.update({col: values[..., j] for j, col in enumerate(group.columns)})
    return parts


def collapsed_draws(run: SamplerRun, design: Design, naming: BambiNaming, built: BuiltModel, seed: int
                     ) -> CanonicalDraws:
    """The sampled parameters, and the group effects drawn from their conditional normal per draw."""
    parts = _pymc_fixed_parts(run, built)
    residual = _values(run, PYMC_RESIDUAL)
    shape = residual.shape
    centred = _fixed_matrix(parts, design, shape)
    (block,) = naming.blocks
    names = pymc_block_names(block)
    k = len(block.coefs)
    sd = np.stack([_values(run, f"{names.sd}_{j}") for j in range(k)], axis=-1)
    chol = _values(run, names.chol) if names.chol in run.idata["posterior"] else None
    t = scale_factor(sd, chol)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC011A95ED]))
    vals = draw_group_effects(built.stats, centred.reshape(-1, centred.shape[-1]), t.reshape(-1, k, k),
                              residual.reshape(-1), rng).reshape(*shape, len(block.levels), k)
    cor = None if chol is None else np.einsum("cdik,cdjk->cdij", chol, chol)
    fixed = _uncentre(centred, design, built.priors.center)
    return CanonicalDraws(tuple(design.x.columns), fixed,
                          (BlockDraws(block.group, block.coefs, block.levels, sd, cor, vals),), residual)


def pymc_draws(run: SamplerRun, design: Design, naming: BambiNaming, built: BuiltModel) -> CanonicalDraws:
    parts = _pymc_fixed_parts(run, built)
    residual = _residual(run, built, PYMC_RESIDUAL)
    fixed = _fixed_draws(parts, design, built.priors.center, _shape(run))
    blocks = []
    for block, cor_prior in zip(naming.blocks, built.priors.block_cor, strict=True):
        names = pymc_block_names(block)
        k = len(block.coefs)
        sd = np.stack([_values(run, f"{names.sd}_{j}") for j in range(k)], axis=-1)
        if names.effects in run.idata["posterior"]:  # a block centred on the intercept
            blocks.append(BlockDraws(block.group, block.coefs, block.levels, sd, None,
                                     _values(run, names.effects)))
            continue
        z = _values(run, names.z)  # (chain, draw, level, coef)
        if cor_prior is not None and k > 1:
            chol = _values(run, names.chol)  # (chain, draw, coef, coef), lower triangular
            scale = sd[..., :, None] * chol
            vals = np.einsum("cdlk,cdmk->cdlm", z, scale)
            cor = np.einsum("cdik,cdjk->cdij", chol, chol)
        else:
            vals = z * sd[..., None, :]
            cor = None
        blocks.append(BlockDraws(block.group, block.coefs, block.levels, sd, cor, vals))
    return CanonicalDraws(tuple(design.x.columns), fixed, tuple(blocks), residual)


def store_uncentred_intercept(run: SamplerRun, built: BuiltModel, canonical: CanonicalDraws) -> None:
    """Put the intercept at uncentred predictors into the posterior, as Bambi's own fit does."""
    if not built.priors.center:
        return
    name = (BAMBI_INTERCEPT if built.bambi_backend else
            pymc_fixed_name(next(i for i, g in enumerate(built.priors.fixed) if g.columns == (INTERCEPT,))))
    posterior = run.idata["posterior"]
    values = canonical.fixed[..., canonical.fixed_names.index(INTERCEPT)]
    posterior[name] = posterior[name].copy(data=values.reshape(posterior[name].shape))


def canonical_draws(run: SamplerRun, design: Design, naming: BambiNaming, built: BuiltModel,
                    seed: int) -> CanonicalDraws:
    """The run's draws under canonical names (the collapsed path's group effects drawn, seeded)."""
    if built.stats is not None:
        canonical = collapsed_draws(run, design, naming, built, seed)
    elif built.bambi_backend:
        canonical = bambi_draws(run, design, naming, built)
    else:
        canonical = pymc_draws(run, design, naming, built)
    store_uncentred_intercept(run, built, canonical)
    return canonical
