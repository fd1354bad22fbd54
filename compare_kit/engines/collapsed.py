"""The collapsed sampler: a Gaussian model's group effects integrated out of the likelihood.

``fit_bayesian(..., method="collapsed")`` samples the same model as the standard path (Bambi's
model, or compare_kit's PyMC model for correlated effects: the same priors, read back from Bambi)
with its group effects ``b`` integrated out in closed form. NUTS then moves only the fixed effects,
the group SDs (and correlations) and the residual SD; after sampling, each kept draw gets its group
effects drawn exactly from their conditional normal given that draw. The pair (parameters, b) has
the standard path's posterior, so the ``CanonicalDraws`` and everything after them are unchanged.

This first slice covers Gaussian models with one grouping factor (any random terms on it,
correlated ``|`` or independent ``||``); ``check_collapsible`` says what else is refused and why.

**The marginal likelihood.** With ``Sigma = T T'`` the group effects' covariance (``T = diag(sd) L``,
``L`` the correlation's Cholesky factor; ``T = diag(sd)`` when independent), group ``j``'s rows are
``y_j ~ N(X_j beta, V_j)``, ``V_j = sigma^2 I + Z_j Sigma Z_j'``. With
``A_j = I + T' Z_j'Z_j T / sigma^2 = R_j R_j'`` (k x k, never below the identity), Woodbury and the
matrix determinant lemma give::

    log det V_j   = 2 n_j log sigma + 2 sum log diag R_j
    r_j' V_j^-1 r_j = (r_j'r_j - |R_j^-1 T' Z_j' r_j|^2 / sigma^2) / sigma^2,   r_j = y_j - X_j beta

so one evaluation needs only the per-group statistics ``Z_j'Z_j``, ``Z_j'X_j``, ``Z_j'r0_j`` and the
global ``X'X``, ``X'r0``, ``r0'r0`` (``r0 = y - X beta0`` at the least-squares ``beta0``: the same
algebra as ``y'y``, ``X'y``, without their cancellation when the response sits far from zero). Its
cost, gradient included, is O(groups * k^2 * (k + p) + p^2), not O(rows). The k x k Choleskys and
solves are unrolled into elementwise operations over the groups (``cholesky_entries``), the same
code for PyTensor (the log density) and NumPy (the conditional draws). No ``Sigma^-1`` is formed, so
an SD near zero is harmless.

**The conditional draws.** Given a draw, ``b_j = T a_j`` with ``a_j ~ N(A_j^-1 c_j / sigma^2,
A_j^-1)``, ``c_j = T' Z_j' r_j``: that is ``a_j = R_j^-T (R_j^-1 c_j / sigma^2 + e)``, ``e ~ N(0, I)``,
vectorised over draws and groups in chunks of ``DRAW_CHUNK`` (draws x groups), seeded by the fit's seed.

**Why written by hand, not with pymc-extras.** pymc-extras 0.15.1 (the newest on PyPI, read for this
module) has ``marginalize``/``recover`` with a closed-form Normal-Normal rule, but (1) the rule is
elementwise: it refuses a latent that is gathered or broadcast into several observations
(``broadcasted_by``: "one latent is shared across several dependents and the true marginal is a
correlated MvNormal"), which is exactly ``b[group_codes]`` in every mixed model (a centred toy model
``y ~ Normal(u[codes], sigma)`` raises ``NotImplementedError: Cannot marginalize u``); (2) Bambi's
model is non-centred, with the Deterministics ``1|g0`` and ``mu`` downstream of the offsets, and
``marginalize`` refuses a variable with a dependent Deterministic (tried on Bambi's radon
models: ``Cannot marginalize 1|g0_offset due to dependent Deterministic mu``); (3) its other route
for continuous latents is a Laplace approximation: a numerical inner optimisation and a dense Hessian
over all ``groups * k`` effects at every evaluation, with a precision matrix to be supplied; (4) it
requires pymc < 6.4 (6.4 is installed). So the marginal likelihood and the conditional draws are
written here, from the priors compare_kit already resolves from Bambi's model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from compare_kit.design import Design
from compare_kit.engines.block_algebra import per_level_cross, per_level_gram
from compare_kit.engines.lmm import ReTerm
from compare_kit.errors import FitError

# draws x groups handled at once by the conditional draws: each of the ~k^3 work arrays is this
# big (256 KiB), small enough to stay in cache (2**15 was 2.5x faster than 2**20 at 4,000 x 2,000)
DRAW_CHUNK = 2**15
SUPPORTED = ("Gaussian models with one grouping factor and any random terms on it, correlated "
             "'(1 + x | g)' or independent '(1 + x || g)'")


class Method(StrEnum):
    """How ``fit_bayesian`` samples: the group effects with the rest, or integrated out."""

    STANDARD = "standard"
    COLLAPSED = "collapsed"


@dataclass(frozen=True, eq=False)
class GroupStats:
    """The sufficient statistics of a Gaussian model with one grouping factor.

    ``x`` is the model's fixed-effect matrix (centred as the model centres it); ``r0 = y - x anchor``.
    """

    n: int
    anchor: np.ndarray  # (p,) beta0: least squares of y on x
    xtx: np.ndarray  # (p, p)
    xtr: np.ndarray  # (p,) x' r0
    rtr: float  # r0' r0
    ztz: np.ndarray  # (groups, k, k)
    ztx: np.ndarray  # (groups, k, p)
    ztr: np.ndarray  # (groups, k)

    @property
    def k(self) -> int:
        return self.ztz.shape[1]

    @property
    def groups(self) -> int:
        return self.ztz.shape[0]


def collapse_refusal(design: Design) -> str:
    """Why the collapsed sampler cannot fit ``design`` ("" when it can): the one place for the rule."""
    spec = design.spec
    # spec.family (an enum) and spec.offset come with the families work: read defensively
    family = getattr(spec, "family", None)
    name = str(getattr(family, "value", family or "gaussian"))
    if name != "gaussian":
        return (f"its family is {name}: the group effects integrate out in closed form only for a "
                "Gaussian response")
    if getattr(spec, "offset", None) is not None:
        return "it has an offset"
    if not design.blocks:
        return "it has no group effects to integrate out"
    if len({b.group for b in design.blocks}) == 1 and len(design.blocks) > 1:
        return (f"it has {len(design.blocks)} random terms on {design.blocks[0].group}; write them as one "
                f"term, e.g. '(1 + x || {design.blocks[0].group})' for independent effects")
    if len(design.blocks) > 1:
        groups = ", ".join(b.group for b in design.blocks)
        return (f"it has {len(design.blocks)} grouping factors ({groups}); crossed and nested factors "
                "are not in this slice yet")
    return ""


def check_collapsible(design: Design) -> None:
    """Raise ``FitError`` unless the collapsed sampler covers the model (``SUPPORTED``)."""
    why = collapse_refusal(design)
    if why:
        raise FitError(f"method='collapsed' cannot fit this model: {why}. It supports {SUPPORTED}; "
                       "use method='standard' (the default) for this model")


def group_stats(x: np.ndarray, z: np.ndarray, codes: np.ndarray, n_levels: int, y: np.ndarray) -> GroupStats:
    """``GroupStats`` of rows ``x`` (n, p), ``z`` (n, k), group ``codes`` and response ``y``."""
    anchor = np.linalg.lstsq(x, y, rcond=None)[0]
    r0 = y - x @ anchor
    term = ReTerm(np.asarray(codes), n_levels, z, True)
    ztx = per_level_cross(term, x).reshape(x.shape[1], n_levels, z.shape[1]).transpose(1, 2, 0)
    ztr = per_level_cross(term, r0[:, None]).reshape(n_levels, z.shape[1])
    return GroupStats(len(y), anchor, x.T @ x, x.T @ r0, float(r0 @ r0), per_level_gram(term),
                      np.ascontiguousarray(ztx), ztr)


# ------------------------------------------- k x k algebra, unrolled over groups (PyTensor or NumPy)

Entries = list[list[Any]]  # [a][b] -> an array over groups (and draws), lower triangle used


def cholesky_entries(m: Entries, sqrt: Callable[[Any], Any]) -> Entries:
    """The lower Cholesky factor of the symmetric matrices whose entries are ``m[a][b]`` (a >= b)."""
    k = len(m)
    chol: Entries = [[0.0] * k for _ in range(k)]
    for j in range(k):
        chol[j][j] = sqrt(m[j][j] - sum((chol[j][t] ** 2 for t in range(j)), 0.0))
        for i in range(j + 1, k):
            chol[i][j] = (m[i][j] - sum((chol[i][t] * chol[j][t] for t in range(j)), 0.0)) / chol[j][j]
    return chol


def forward_solve(chol: Entries, c: Sequence[Any]) -> list[Any]:
    """``R^-1 c`` for lower-triangular ``R`` given as entries."""
    out: list[Any] = []
    for a in range(len(chol)):
        out.append((c[a] - sum((chol[a][b] * out[b] for b in range(a)), 0.0)) / chol[a][a])
    return out


def backward_solve(chol: Entries, c: Sequence[Any]) -> list[Any]:
    """``R^-T c`` for lower-triangular ``R`` given as entries."""
    k = len(chol)
    out: list[Any] = [0.0] * k
    for a in reversed(range(k)):
        out[a] = (c[a] - sum((chol[b][a] * out[b] for b in range(a + 1, k)), 0.0)) / chol[a][a]
    return out


# ----------------------------------------------------------------- the log density (PyTensor)


def _combine(terms: Sequence[tuple[Any, Any]]) -> Any:
    """The sum of the products of ``terms``' pairs, leaving out structural zeros (None)."""
    return sum((x * y for x, y in terms if x is not None and y is not None), 0.0)


def whitened_system(ztz: Entries, w: Sequence[Any], t: Entries, var: Any, sqrt: Callable[[Any], Any]
                    ) -> tuple[Entries, list[Any]]:
    """Per group: the Cholesky entries of ``A = I + T' Z'Z T / var`` and ``c = T' Z'r``.

    ``ztz[i][j]`` and ``w[i]`` (``Z'r``) are arrays over the groups, ``t[c][a]`` the entries of ``T``
    (None where ``T`` is zero by construction). Every operation is elementwise over the groups, so
    PyTensor fuses the whole system into a few loops and NumPy broadcasts it over draws."""
    k = len(w)
    c = [_combine([(w[i], t[i][a]) for i in range(k)]) for a in range(k)]
    ztz_t = [[_combine([(ztz[i][j], t[j][b]) for j in range(k)]) for b in range(k)] for i in range(k)]
    a_entries = [[float(a == b) + _combine([(t[i][a], ztz_t[i][b]) for i in range(k)]) / var
                  for b in range(k)] for a in range(k)]
    return cholesky_entries(a_entries, sqrt), c


def marginal_loglik(stats: GroupStats, beta: Any, t: Any, sigma: Any, diagonal: bool = False) -> Any:
    """log p(y | beta, Sigma = t t', sigma) with the group effects integrated out (a PyTensor scalar).

    ``beta`` (p,) and ``t`` (k, k, lower triangular; ``diagonal``: zero off the diagonal) are tensors
    in the model's parametrisation.
    """
    import pytensor.tensor as pt

    k = stats.k
    delta = beta - stats.anchor
    w = [stats.ztr[:, i] - pt.dot(stats.ztx[:, i, :], delta) for i in range(k)]
    t_entries = [[t[i, j] if i == j or (i > j and not diagonal) else None for j in range(k)]
                 for i in range(k)]
    ztz = [[stats.ztz[:, i, j] for j in range(k)] for i in range(k)]
    var = sigma**2
    chol, c = whitened_system(ztz, w, t_entries, var, pt.sqrt)
    v = forward_solve(chol, c)
    log_det = 2.0 * sum(pt.sum(pt.log(chol[a][a])) for a in range(k))
    explained = sum(pt.sum(v[a] ** 2) for a in range(k))
    rss = stats.rtr - 2.0 * pt.dot(delta, stats.xtr) + pt.dot(delta, pt.dot(stats.xtx, delta))
    return -0.5 * (stats.n * np.log(2 * np.pi) + 2 * stats.n * pt.log(sigma) + log_det
                   + (rss - explained / var) / var)


def build_collapsed_model(design: Design, naming: Any, priors: Any, stats: GroupStats) -> Any:
    """The PyMC model of ``design`` with its group effects integrated out: the standard path's priors
    on the fixed effects, the SDs (and the LKJ correlation) and the residual SD, and the exact
    marginal likelihood as a ``pm.Potential``."""
    import pymc as pm
    import pytensor.tensor as pt

    from compare_kit.engines.bambi_names import PYMC_RESIDUAL
    from compare_kit.engines.pymc_models import (
        block_chol,
        block_sds,
        fixed_coefficients,
        make_rv,
        model_coords,
    )

    (block,) = naming.blocks
    column = {c: i for i, c in enumerate(design.x.columns)}
    with pm.Model(coords=model_coords(design, naming, priors)) as model:
        order: list[int] = []
        parts = []
        for group, beta in fixed_coefficients(priors):
            order += [column[c] for c in group.columns]
            parts.append(pt.atleast_1d(beta))
        beta = pt.concatenate(parts) if parts else pt.zeros(0)
        if order != sorted(order):  # the terms' columns in design order
            beta = beta[np.argsort(order)]
        sd = block_sds(block, priors.block_sd[0])
        chol = block_chol(block, priors.block_cor[0])
        t = pt.diag(sd) if chol is None else sd[:, None] * chol
        sigma = make_rv(priors.residual, PYMC_RESIDUAL)
        pm.Potential("marginal_loglik", marginal_loglik(stats, beta, t, sigma, diagonal=chol is None))
    return model


# -------------------------------------------------------------- the conditional draws (NumPy)


def _whitened(stats: GroupStats, beta: np.ndarray, t: np.ndarray, sigma: np.ndarray
              ) -> tuple[Entries, list[np.ndarray]]:
    """Per draw and group: the Cholesky entries of A_j and ``v = R_j^-1 c_j / sigma^2``, (draws, groups)."""
    groups, k, p = stats.ztx.shape
    delta = beta - stats.anchor
    zw = (stats.ztr.reshape(1, -1) - delta @ stats.ztx.reshape(groups * k, p).T).reshape(-1, groups, k)
    t_entries = [[t[:, i, j][:, None] for j in range(k)] for i in range(k)]  # broadcast over groups
    ztz = [[stats.ztz[None, :, i, j] for j in range(k)] for i in range(k)]
    var = (sigma**2)[:, None]
    chol, c = whitened_system(ztz, [zw[..., i] for i in range(k)], t_entries, var, np.sqrt)
    return chol, forward_solve(chol, [ca / var for ca in c])


def _times_t(t: np.ndarray, a: Sequence[np.ndarray]) -> np.ndarray:
    """``T a`` per draw and group: (draws, groups, k) from ``a``'s k entries (draws, groups)."""
    k = t.shape[-1]
    return np.stack([sum(t[:, i, j][:, None] * a[j] for j in range(k)) for i in range(k)], axis=-1)


def conditional_moments(stats: GroupStats, beta: np.ndarray, t: np.ndarray, sigma: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The group effects' conditional mean (draws, groups, k) and covariance (draws, groups, k, k)
    given draws of ``beta`` (draws, p), ``t`` (draws, k, k) and ``sigma`` (draws,)."""
    chol, v = _whitened(stats, beta, t, sigma)
    k = stats.k
    mean_a = np.stack(backward_solve(chol, v), axis=-1)
    eye = np.eye(k)
    # A^-1 = R^-T R^-1, column by column
    inv_cols = [np.stack(backward_solve(chol, forward_solve(chol, [np.broadcast_to(eye[a, e], v[0].shape)
                                                                   for a in range(k)])), axis=-1)
                for e in range(k)]
    a_inv = np.stack(inv_cols, axis=-1)  # (draws, groups, k, k)
    mean = _times_t(t, np.moveaxis(mean_a, -1, 0))
    cov = np.einsum("sab,sgbc,sdc->sgad", t, a_inv, t)
    return mean, cov


def draw_group_effects(stats: GroupStats, beta: np.ndarray, t: np.ndarray, sigma: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """One exact draw of the group effects per parameter draw: (draws, groups, k).

    ``beta`` (draws, p), ``t`` (draws, k, k) and ``sigma`` (draws,) as in ``conditional_moments``.
    """
    n_draws, k = len(sigma), stats.k
    out = np.empty((n_draws, stats.groups, k))
    step = max(1, DRAW_CHUNK // max(stats.groups, 1))
    for start in range(0, n_draws, step):
        s = slice(start, min(start + step, n_draws))
        chol, v = _whitened(stats, beta[s], t[s], sigma[s])
        noise = rng.standard_normal((k, *v[0].shape))
        out[s] = _times_t(t[s], backward_solve(chol, [v[i] + noise[i] for i in range(k)]))
    return out


def scale_factor(sd: np.ndarray, chol: np.ndarray | None) -> np.ndarray:
    """``T = diag(sd) L`` per draw (``L = I`` when independent): (..., k, k)."""
    if chol is None:
        return sd[..., :, None] * np.eye(sd.shape[-1])
    return sd[..., :, None] * chol
