"""PyMC models that compare_kit builds itself, where Bambi cannot express the spec.

Bambi's group effects are independent (its ``(1 + x | g)`` is lme4's
``(1 + x || g)``). A spec with correlated group effects (``(1 + floor | county)``)
is built here: the same fixed-effect columns as the design, every group
block non-centred (``u = z @ (diag(sd) L)^T`` with ``z ~ Normal(0, 1)``, ``L`` the
Cholesky factor of the correlation matrix), an LKJ prior on each correlated
block's correlation matrix, and the same priors Bambi resolved for every other
parameter, so that only the correlation differs. The observed outcome follows the design's family
(``observe``): Normal with the residual SD, or Bernoulli, Binomial (the rows' trials) on the logit of
the linear predictor, Poisson on its log; the offset, if any, is added to the linear predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from compare_kit.design import INTERCEPT, Design, nesting_parents
from compare_kit.engines.bambi_names import (
    PYMC_RESIDUAL,
    RESPONSE,
    BambiNaming,
    BlockNames,
    pymc_block_names,
    pymc_fixed_name,
)
from compare_kit.engines.priors import Prior
from compare_kit.family import Family


@dataclass(frozen=True)
class FixedGroup:
    """Fixed-effect columns sharing one prior (one spec term)."""

    key: str  # canonical prior key: the term label
    prior: Prior
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ModelPriors:
    """Every prior of a model, resolved to numbers."""

    fixed: tuple[FixedGroup, ...]
    block_sd: tuple[tuple[Prior, ...], ...]  # per block, per coefficient
    block_cor: tuple[Prior | None, ...]  # per block: LKJ prior if correlated, else None
    residual: Prior | None  # the residual SD's; None for a GLMM (no residual SD)
    center: bool  # the intercept prior applies at centred predictors (Bambi's default)


def make_rv(prior: Prior, name: str, **kwargs: object) -> pt.TensorVariable:
    """A PyMC random variable from a ``Prior`` (inside a model context)."""
    return getattr(pm, prior.dist)(name, **prior.kwargs, **kwargs)


def centring(design: Design, center: bool) -> np.ndarray:
    """Column means subtracted from the non-intercept columns (zeros when not centring)."""
    means = design.x.mean(axis=0).to_numpy(dtype=float, copy=True)
    if not center or INTERCEPT not in design.x.columns:
        return np.zeros(design.x.shape[1])
    means[list(design.x.columns).index(INTERCEPT)] = 0.0
    return means


def lkj_cholesky(raw: pt.TensorVariable, k: int, eta: float
                 ) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Cholesky factor of a k x k correlation matrix from k(k-1)/2 free values, and its log prior.

    The free values are mapped by ``tanh`` to canonical partial correlations and
    then, row by row, to the Cholesky factor ``L`` (Stan's construction). The log
    density is the LKJ(eta) density of ``L`` plus the log Jacobian of the map, so
    that ``L @ L.T`` is LKJ(eta) distributed. (PyMC's own ``LKJCorr`` builds a
    scan that takes tens of seconds to compile; this graph is a few scalars.)
    """
    cpc = pt.tanh(raw)
    log_jac = pt.sum(pt.log1p(-(cpc**2)))
    rows = [[pt.constant(1.0)] + [pt.constant(0.0)] * (k - 1)]
    log_lkj = pt.constant(0.0)
    n = 0
    for i in range(1, k):
        row = []
        sum_sqs = pt.constant(0.0)
        for j in range(i):
            value = cpc[n] if j == 0 else cpc[n] * pt.sqrt(1.0 - sum_sqs)
            if j > 0:
                log_jac = log_jac + 0.5 * pt.log1p(-sum_sqs)
            row.append(value)
            sum_sqs = sum_sqs + value**2
            n += 1
        diag = pt.sqrt(1.0 - sum_sqs)
        row.append(diag)
        row += [pt.constant(0.0)] * (k - 1 - i)
        rows.append(row)
        log_lkj = log_lkj + (k - i - 1 + 2.0 * (eta - 1.0)) * pt.log(diag)
    chol = pt.stack([pt.stack(r) for r in rows])
    return chol, log_lkj + log_jac


def enclosing_intercept_blocks(design: Design) -> tuple[int, ...]:
    """Blocks to centre on the fixed intercept: random intercepts alone on a factor that encloses
    another block's factor (``state`` in ``(1 | state/county)``), in a model with an intercept.

    Such groups are few and each rests on many rows, so their effects are well determined while
    the split between them and the fixed intercept is not: non-centred, NUTS crawls along that
    ridge (divergences, R-hat 1.03-1.15 on the survey's 7 states). Centred on the intercept,
    ``a_g ~ Normal(b0, sd)`` with ``u_g = a_g - b0``, the ridge is gone; the model is the same.
    """
    if INTERCEPT not in design.x.columns:
        return ()
    enclosing = set(nesting_parents(design).values())
    return tuple(i for i in sorted(enclosing) if list(design.blocks[i].z.columns) == [INTERCEPT])


def model_coords(design: Design, naming: BambiNaming, priors: ModelPriors) -> dict[str, list[str]]:
    """The dims of compare_kit's PyMC models: each fixed group's columns, each block's levels and
    coefficients."""
    coords: dict[str, list[str]] = {}
    for i, group in enumerate(priors.fixed):
        coords[f"{pymc_fixed_name(i)}_dim"] = list(group.columns)
    for block in naming.blocks:
        names = pymc_block_names(block)
        coords[names.level_dim] = list(block.levels)
        coords[names.coef_dim] = list(block.coefs)
    return coords


def fixed_coefficients(priors: ModelPriors) -> list[tuple[FixedGroup, pt.TensorVariable]]:
    """Each fixed group's coefficients, a random variable under its prior (inside a model context)."""
    out = []
    for i, group in enumerate(priors.fixed):
        name = pymc_fixed_name(i)
        out.append((group, make_rv(group.prior, name, dims=f"{name}_dim")))
    return out


def block_sds(block: BlockNames, sd_priors: tuple[Prior, ...]) -> pt.TensorVariable:
    """One block's SDs, a vector of random variables under their priors (inside a model context)."""
    return pt.stack([make_rv(p, f"{pymc_block_names(block).sd}_{j}") for j, p in enumerate(sd_priors)])


def block_chol(block: BlockNames, cor_prior: Prior | None) -> pt.TensorVariable | None:
    """The Cholesky factor of a correlated block's correlation matrix under its LKJ prior (inside a
    model context); None for an independent block."""
    k = len(block.coefs)
    if cor_prior is None or k < 2:
        return None
    name = pymc_block_names(block).chol
    raw = pm.Flat(f"{name}_free", shape=k * (k - 1) // 2)
    chol, log_density = lkj_cholesky(raw, k, float(cor_prior.kwargs["eta"]))
    pm.Potential(f"{name}_lkj", log_density)
    return pm.Deterministic(name, chol)


def build_pymc_model(design: Design, naming: BambiNaming, priors: ModelPriors,
                     centred: tuple[int, ...] = ()) -> pm.Model:
    """The mixed model of ``design`` in PyMC: correlated blocks with an LKJ prior, blocks listed in
    ``centred`` (random intercepts, see ``enclosing_intercept_blocks``) centred on the fixed intercept,
    every other block non-centred."""
    x = design.x.to_numpy(dtype=float) - centring(design, priors.center)
    col_index = {c: i for i, c in enumerate(design.x.columns)}
    with pm.Model(coords=model_coords(design, naming, priors)) as model:
        mu = pt.zeros(design.n)
        intercept = None
        for group, beta in fixed_coefficients(priors):
            cols = [col_index[c] for c in group.columns]
            mu = mu + pt.dot(x[:, cols], beta)
            if INTERCEPT in group.columns:
                intercept = beta[list(group.columns).index(INTERCEPT)]
        for b, (block, design_block, sd_priors, cor_prior) in enumerate(zip(
                naming.blocks, design.blocks, priors.block_sd, priors.block_cor, strict=True)):
            names = pymc_block_names(block)
            sd = block_sds(block, sd_priors)
            if b in centred:
                level = pm.Normal(names.centred, mu=intercept, sigma=sd[0], dims=names.level_dim)
                u = pm.Deterministic(names.effects, (level - intercept)[:, None],
                                     dims=(names.level_dim, names.coef_dim))
                mu = mu + u[design_block.codes, 0]
                continue
            z = pm.Normal(names.z, 0.0, 1.0, dims=(names.level_dim, names.coef_dim))
            chol = block_chol(block, cor_prior)
            u = z * sd if chol is None else pt.dot(z, (sd[:, None] * chol).T)
            zmat = design_block.z.to_numpy(dtype=float)
            mu = mu + (zmat * u[design_block.codes]).sum(axis=1)
        observe(design, priors, mu)
    return model


def observe(design: Design, priors: ModelPriors, eta: pt.TensorVariable) -> None:
    """The observed outcome given the linear predictor ``eta`` (X b + Z u; the design's offset is added
    here), of the design's family with its canonical link (inside a model context)."""
    if design.offset is not None:
        eta = eta + design.offset
    match design.family:
        case Family.BERNOULLI:
            pm.Bernoulli(RESPONSE, logit_p=eta, observed=design.y)
        case Family.BINOMIAL:
            pm.Binomial(RESPONSE, n=design.trials, logit_p=eta, observed=design.y)
        case Family.POISSON:
            pm.Poisson(RESPONSE, mu=pt.exp(eta), observed=design.y)
        case _:
            assert priors.residual is not None  # a Gaussian model has its residual prior
            pm.Normal(RESPONSE, mu=eta, sigma=make_rv(priors.residual, PYMC_RESIDUAL), observed=design.y)
