"""A fit's draws as an ArviZ DataTree under canonical names (``BayesianFit.posterior``).

Built from ``CanonicalDraws``, so the Bambi path and compare_kit's PyMC path give the same
tree. The names (``posterior_names``):

=================================  =========================  ====================================
posterior variable                 dims                       tidy table row
=================================  =========================  ====================================
``Intercept``                      chain, draw                fixed ``(Intercept)``
``floor``, ``countyAITKIN``        chain, draw                fixed, the same term
``sd__(Intercept)|county``         chain, draw                ran_pars ``sd__(Intercept)``, county
``cor__(Intercept).floor|county``  chain, draw                ran_pars ``cor__(Intercept).floor``
``sigma`` (Gaussian models only)   chain, draw                ran_pars ``sd__Observation``
``1|county``, ``floor|county``     chain, draw, ``county``    ran_vals, one per level
=================================  =========================  ====================================

A random-effect name is Bambi's spelling with the user's names (``1`` for the intercept, else the
column), ``|`` and the grouping factor; an SD or correlation is the tidy term, ``|`` and the factor
(the prior keys' spelling), unique across factors. The levels' dim is named after the factor and
its coords are the level names. A name already taken keeps its tidy spelling (a data column called
``Intercept`` leaves the intercept ``(Intercept)``; one called ``sigma`` leaves the residual SD
``sd__Observation``); any other clash (with ``chain``, ``draw`` or another name) gets a trailing
``_``. Every variable's attrs hold its tidy ``effect``, ``group`` and ``term``.

A GLMM (bernoulli, binomial, poisson) has no residual SD and so no ``sigma``.
Beside ``posterior`` the tree has ``sample_stats`` (the sampler's own), ``observed_data``, and the
row-wise groups ``log_likelihood`` (pointwise, of the model's family: Normal, Bernoulli, Binomial
with the rows' trials, Poisson with the offset) and ``posterior_predictive`` (replicated outcomes of
the same family, seeded: measurements, 0/1, successes, counts), each named after the response with
dim ``__obs__`` (the rows used, in order).
The row-wise groups are (chain, draw, row) arrays: above ``ROW_WISE_BYTES`` they are left out, and
``row_wise_note`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from compare_kit.design import INTERCEPT, Design
from compare_kit.engines.posterior import CanonicalDraws, pointwise_chunks, replicate
from compare_kit.results import RESIDUAL_GROUP, RESIDUAL_TERM, Effect, cor_term, group_key, sd_term

# the largest row-wise groups (log_likelihood and posterior_predictive together) the tree carries
ROW_WISE_BYTES = 512 * 2**20
SAMPLE_DIMS = ("chain", "draw")
OBS_DIM = "__obs__"  # Bambi's name for the rows
ARVIZ_INTERCEPT = "Intercept"  # Bambi's and ArviZ's name of the intercept
ARVIZ_RESIDUAL = "sigma"


@dataclass(frozen=True)
class BlockVariables:
    """One block's posterior variables: group effects per coefficient, SDs, correlations."""

    dim: str
    effects: tuple[str, ...]  # per coefficient, e.g. "1|county", "floor|county"
    sds: tuple[str, ...]  # per coefficient, e.g. "sd__(Intercept)|county"
    cors: tuple[tuple[int, int, str], ...]  # (i, j, name), i < j, when correlated


@dataclass(frozen=True)
class PosteriorNames:
    """Every variable and dim name of a fit's canonical tree."""

    fixed: tuple[str, ...]  # per fixed column
    blocks: tuple[BlockVariables, ...]
    residual: str | None  # None: a GLMM, no residual SD
    response: str  # the row-wise groups' variable
    obs_dim: str


def effect_name(coef: str, group: str) -> str:
    """Bambi's spelling of a coefficient's group effects with the user's names: ``1|county``."""
    return group_key("1" if coef == INTERCEPT else coef, group)


def posterior_names(draws: CanonicalDraws, response: str) -> PosteriorNames:
    """The names of ``draws``' variables in the tree (the rule in the module's docstring)."""
    taken = set(SAMPLE_DIMS)

    def claim(name: str, taken_form: str | None = None) -> str:
        if name in taken and taken_form is not None:
            name = taken_form
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    # the data's own column names first: the intercept and sigma give way to them
    own = {c: claim(c) for c in draws.fixed_names if c != INTERCEPT}
    if INTERCEPT in draws.fixed_names:
        own[INTERCEPT] = claim(ARVIZ_INTERCEPT, INTERCEPT)
    fixed = tuple(own[c] for c in draws.fixed_names)
    residual = None if draws.residual is None else claim(ARVIZ_RESIDUAL, RESIDUAL_TERM)
    blocks: list[tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[int, int, str], ...]]] = []
    for block in draws.blocks:
        k = len(block.coefs)
        cors = (tuple((i, j, claim(group_key(cor_term(block.coefs[i], block.coefs[j]), block.group)))
                      for i in range(k) for j in range(i + 1, k)) if block.cor is not None else ())
        blocks.append((tuple(claim(effect_name(c, block.group)) for c in block.coefs),
                       tuple(claim(group_key(sd_term(c), block.group)) for c in block.coefs), cors))
    dims: dict[str, str] = {}
    for block in draws.blocks:
        if block.group not in dims:
            dims[block.group] = claim(block.group)
    obs_dim = OBS_DIM + ("_" if response == OBS_DIM else "")
    return PosteriorNames(fixed, tuple(BlockVariables(dims[b.group], *parts)
                                       for b, parts in zip(draws.blocks, blocks, strict=True)),
                          residual, response, obs_dim)


def row_wise_bytes(draws: CanonicalDraws, design: Design) -> int:
    """The bytes of ``log_likelihood`` and ``posterior_predictive`` together."""
    return 2 * 8 * draws.size * design.n


def row_wise_note(draws: CanonicalDraws, design: Design, budget: int | None = None) -> str:
    """Why the tree leaves out its row-wise groups (over ``budget``, default ``ROW_WISE_BYTES``);
    empty when it carries them."""
    budget = ROW_WISE_BYTES if budget is None else budget
    size = row_wise_bytes(draws, design)
    if size <= budget:
        return ""
    return (f"log_likelihood and posterior_predictive are left out of the posterior tree: "
            f"{draws.size} draws x {design.n} rows would take {_size(size)} "
            f"(the budget is {_size(budget)}, compare_kit.engines.arviz_tree.ROW_WISE_BYTES). "
            "bayes.loo and bayes.psis_loo() compute PSIS-LOO in chunks of rows instead; "
            "bayes.to_arviz(row_wise=True) builds the full tree anyway")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _attrs(effect: Effect, term: str, group: str = "") -> dict[str, str]:
    return {"effect": effect.value, "group": group, "term": term}


def posterior_dataset(draws: CanonicalDraws, names: PosteriorNames, chain: np.ndarray, draw: np.ndarray,
                      attrs: dict[str, Any]) -> xr.Dataset:
    """The ``posterior`` group: views of the canonical draws, no copies."""
    data: dict[str, xr.DataArray] = {}
    for j, (column, name) in enumerate(zip(draws.fixed_names, names.fixed, strict=True)):
        data[name] = xr.DataArray(draws.fixed[..., j], dims=SAMPLE_DIMS,
                                  attrs=_attrs(Effect.FIXED, column))
    for block, var in zip(draws.blocks, names.blocks, strict=True):
        for j, coef in enumerate(block.coefs):
            data[var.sds[j]] = xr.DataArray(block.sd[..., j], dims=SAMPLE_DIMS,
                                            attrs=_attrs(Effect.RAN_PARS, sd_term(coef), block.group))
        for i, j, name in var.cors:
            data[name] = xr.DataArray(block.cor[..., i, j], dims=SAMPLE_DIMS,  # type: ignore[index]
                                      attrs=_attrs(Effect.RAN_PARS, cor_term(block.coefs[i], block.coefs[j]),
                                                   block.group))
    if names.residual is not None and draws.residual is not None:
        data[names.residual] = xr.DataArray(draws.residual, dims=SAMPLE_DIMS,
                                            attrs=_attrs(Effect.RAN_PARS, RESIDUAL_TERM, RESIDUAL_GROUP))
    coords: dict[str, Any] = {"chain": chain, "draw": draw}
    for block, var in zip(draws.blocks, names.blocks, strict=True):
        coords[var.dim] = np.asarray(block.levels, dtype=object)
        for j, coef in enumerate(block.coefs):
            data[var.effects[j]] = xr.DataArray(block.vals[..., j], dims=(*SAMPLE_DIMS, var.dim),
                                                attrs=_attrs(Effect.RAN_VALS, coef, block.group))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def row_wise_datasets(draws: CanonicalDraws, design: Design, names: PosteriorNames, seed: int,
                      coords: dict[str, Any]) -> tuple[xr.Dataset, xr.Dataset]:
    """``log_likelihood`` and ``posterior_predictive`` (y_rep of the model's family, seeded), filled a
    chunk of rows at a time, so only the two results are ever (chain, draw, n)."""
    chains, per_chain = draws.shape
    log_lik = np.empty((chains * per_chain, design.n))
    replicated = np.empty_like(log_lik)
    sigma = None if draws.residual is None else draws.residual.reshape(-1)
    rng = np.random.default_rng(seed)
    for rows, mu, chunk in pointwise_chunks(draws, design):
        log_lik[:, rows] = chunk
        replicated[:, rows] = replicate(design, mu, rows, sigma, rng)
    dims = (*SAMPLE_DIMS, names.obs_dim)
    shape = (chains, per_chain, design.n)
    return (xr.Dataset({names.response: (dims, log_lik.reshape(shape))}, coords=coords),
            xr.Dataset({names.response: (dims, replicated.reshape(shape))}, coords=coords))


def canonical_tree(draws: CanonicalDraws, design: Design, *, sampler_tree: Any = None, seed: int = 0,
                   row_wise: bool | None = None) -> xr.DataTree:
    """The fit's DataTree under canonical names (see the module docstring).

    ``row_wise``: include ``log_likelihood`` and ``posterior_predictive`` (True), leave them out (False),
    or include them within ``ROW_WISE_BYTES`` (None); the root's ``attrs["row_wise_note"]`` says why they
    are absent. ``sampler_tree`` lends its ``sample_stats``, the posterior's attrs and the chain and draw
    coords.
    """
    names = posterior_names(draws, design.response_label)
    chains, per_chain = draws.shape
    chain, draw = np.arange(chains), np.arange(per_chain)
    attrs: dict[str, Any] = {}
    groups: dict[str, xr.Dataset] = {}
    if sampler_tree is not None and "posterior" in sampler_tree.children:
        raw = sampler_tree["posterior"]
        chain, draw = raw["chain"].values, raw["draw"].values
        attrs = dict(raw.attrs)
    groups["posterior"] = posterior_dataset(draws, names, chain, draw, attrs)
    if sampler_tree is not None and "sample_stats" in sampler_tree.children:
        groups["sample_stats"] = sampler_tree["sample_stats"].to_dataset()
    rows = {names.obs_dim: np.arange(design.n)}
    if row_wise is None:
        note = row_wise_note(draws, design)
    else:
        note = "" if row_wise else "log_likelihood and posterior_predictive were left out (row_wise=False)"
    if not note:
        log_lik, replicated = row_wise_datasets(draws, design, names, seed,
                                                {"chain": chain, "draw": draw, **rows})
        groups["log_likelihood"], groups["posterior_predictive"] = log_lik, replicated
    groups["observed_data"] = xr.Dataset({names.response: ((names.obs_dim,), design.y)}, coords=rows)
    tree = xr.DataTree.from_dict(groups)
    tree.attrs["row_wise_note"] = note
    return tree
