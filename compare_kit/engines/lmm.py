"""compare_kit's own (RE)ML engine for linear mixed models: lme4's profiled criterion over theta.

Written by hand because no Python library fits crossed and nested mixed models by
lme4's method (statsmodels' MixedLM spans crossed factors with one dense group).
The method is that of lme4 (Bates, Maechler, Bolker & Walker 2015, JSS, sections 3.4-3.6)
and MixedModels.jl (Bates, Alday & Kokandakar 2025): the random effects are ``b = Lambda u``
with ``u ~ N(0, sigma^2 I)`` and ``Lambda`` block diagonal, one lower-triangular ``T_j``
per random term repeated over its levels; theta holds the entries of the ``T_j``, the
fixed effects and sigma are profiled out, and the criterion is read off one blocked
Cholesky factor of ``[Lambda'Z'Z Lambda + I, Lambda'Z'X, Lambda'Z'y; ...; ..., y'y]``.

Blocks are ordered by number of random effects, largest first (MixedModels.jl's order):
the first block's diagonal stays block diagonal (one k-by-k factor per level), and
everything after it is one dense Schur complement, downdated by a sparse product when
the first block is large. Evaluating the criterion costs a batch of small Choleskys and
one dense Cholesky of the smaller factors, whatever the number of rows.

The boundary is a bound: theta's diagonal entries are bounded below by 0 and searched by
a bounded optimiser, so a variance at zero is found, not approached (``optimize``, on
``engines.bounded_search``, which the GLMM engine shares).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import linalg, sparse

from compare_kit.engines.block_algebra import (
    block_diag_sparse,
    lambda_sparse,
    matrix_rows,
    pair_gram,
    pair_sparse,
    per_level_cross,
    per_level_gram,
    t_left,
)
from compare_kit.engines.bounded_search import FAILED_DEVIANCE, BoundedSearch, Optimum

_LOG_2PI = float(np.log(2 * np.pi))
DENSE_CROSS_LIMIT = 2_000_000  # entries of the cross block kept dense below this size ...
DENSE_FILL = 0.05  # ... and when at least this share of them is non-zero (InstEval 20k: 2.6%, sparse 21 ms
# an evaluation against 30-38 ms dense; radon and subjects x items designs are full)
PROGRESS_SECONDS = 5.0  # a watched search says how far it got this often
NUMERICAL_FAILURES = (np.linalg.LinAlgError, ValueError, FloatingPointError)  # how a factor fails to exist


@dataclass(frozen=True, eq=False)
class ReTerm:
    """One random term: its grouping factor's codes, its Z columns and whether they correlate."""

    codes: np.ndarray  # (n,) level index of every row
    n_levels: int
    z: np.ndarray  # (n, k) random-coefficient columns
    correlated: bool

    @property
    def k(self) -> int:
        return self.z.shape[1]

    @property
    def q(self) -> int:
        return self.n_levels * self.k

    @cached_property
    def theta_index(self) -> tuple[tuple[int, int], ...]:
        """Positions in ``T`` of this term's theta entries, column by column (lme4's order)."""
        if not self.correlated:
            return tuple((i, i) for i in range(self.k))
        return tuple((i, j) for j in range(self.k) for i in range(j, self.k))

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, Z-matrix columns and values of the sparse ``Z`` of this term."""
        n, k = self.z.shape
        rows = np.repeat(np.arange(n), k)
        cols = (self.codes[:, None] * k + np.arange(k)[None, :]).ravel()
        return rows, cols, self.z.ravel()

    def sparse_z(self) -> sparse.csr_matrix:
        rows, cols, vals = self.columns()
        return sparse.csr_matrix((vals, (rows, cols)), shape=(self.z.shape[0], self.q))


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # numpy's and scipy's BLAS are loaded by now (imported above)


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Run the fit on one BLAS thread.

    Measured on 2 cores (bench notes in bench/README.md): an evaluation costs the same or less on
    one thread even for InstEval's 1,145-wide Schur complement (43-46 ms against 47-56 ms idle), and
    under load two threads were 7-10 times slower (numpy's and scipy's OpenBLAS pools contend: a
    Cholesky went from 8 ms to 0.5 s). Radon's fit halves (thread start-up dominates small blocks).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


@dataclass(eq=False)
class _Watch:
    """Progress of a watched search: evaluations so far and the best value, said every so often."""

    say: Callable[[str], None]
    every: float
    began: float
    evaluations: int = 0
    best: float = FAILED_DEVIANCE
    last: float = field(default_factory=time.perf_counter)

    def evaluated(self, deviance: float, what: str) -> None:
        self.evaluations += 1
        self.best = min(self.best, deviance)
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            best = f", best {what} {-0.5 * self.best:.3f}" if self.best < FAILED_DEVIANCE else ""
            self.say(f"  compare_kit's engine: {self.evaluations} evaluations of the criterion{best} "
                     f"({now - self.began:.0f} s)")


@dataclass(frozen=True, eq=False)
class Factor:
    """The blocked Cholesky factor at one theta (blocks in the engine's internal order)."""

    l11: np.ndarray  # (levels of block 1, k1, k1)
    lr1: np.ndarray | sparse.csr_matrix  # (q_rest, q1)
    lrr: np.ndarray  # (q_rest, q_rest) lower triangular
    ts: tuple[np.ndarray, ...]  # T of every term, internal order
    deviance: float
    pwrss: float
    logdet: float  # log|L|^2 of the random effects (and, for REML, of the fixed effects' block)


class LinearMixedModel:
    """The profiled (RE)ML criterion of ``y ~ X beta + Z b`` for any number of random terms.

    Parameters
    ----------
    y, x : ndarray
        Response (n,) and full-rank fixed-effect matrix (n, p).
    terms : list of ReTerm
        The random terms, in the design's order (theta follows this order).
    reml : bool
        REML criterion if True, else -2 log-likelihood.
    """

    def __init__(self, y: np.ndarray, x: np.ndarray, terms: list[ReTerm], reml: bool) -> None:
        self._setup(y, x, terms, reml, None)

    def _setup(self, y: np.ndarray, x: np.ndarray, terms: list[ReTerm], reml: bool,
               layout: LinearMixedModel | None) -> None:
        if not terms:
            raise ValueError("a mixed model needs at least one random term")
        self.y = np.asarray(y, dtype=float)
        self.x = np.asarray(x, dtype=float).reshape(len(self.y), -1)
        self.terms = list(terms)
        self.reml = reml
        self.n, self.p = self.x.shape
        self.order = sorted(range(len(terms)), key=lambda i: -terms[i].q)  # stable: ties keep order
        offsets, pos = [], 0
        for term in terms:
            offsets.append(pos)
            pos += len(term.theta_index)
        self._theta_offsets = offsets
        self.n_theta = pos
        self.lower = np.array([0.0 if r == c else -np.inf for t in terms for r, c in t.theta_index])
        self._watch: _Watch | None = None
        self._build_cross_products(layout)

    def reweighted(self, sqrt_w: np.ndarray, y: np.ndarray) -> LinearMixedModel:
        """This model on rows scaled by ``sqrt_w``, with the (scaled) response ``y``: one step of the
        GLMM engine's PIRLS (``engines.glmm``). Its cross block is held as this model's (dense or
        sparse), and its products are formed by ``bincount`` over the rows' levels (no sparse products)."""
        new = LinearMixedModel.__new__(LinearMixedModel)
        terms = [ReTerm(t.codes, t.n_levels, t.z * sqrt_w[:, None], t.correlated) for t in self.terms]
        new._setup(y, self.x * sqrt_w[:, None], terms, self.reml, self)
        return new

    # ----------------------------------------------------------- structure
    def _build_cross_products(self, layout: LinearMixedModel | None) -> None:
        """The Gram matrix's blocks; with ``layout``, its choice of a dense or sparse cross block is kept."""
        first = self.terms[self.order[0]]
        rest = [self.terms[i] for i in self.order[1:]]
        xy = np.column_stack([self.x, self.y])
        self.q1 = first.q
        self.q_random_rest = sum(t.q for t in rest)
        self.q_rest = self.q_random_rest + self.p + 1
        self.a11 = per_level_gram(first)
        z_rest = [t.sparse_z() for t in rest] if layout is None else []
        a_rr = np.zeros((self.q_rest, self.q_rest))
        starts = np.cumsum([0] + [t.q for t in rest])
        for a, ta in enumerate(rest):
            sa = slice(starts[a], starts[a + 1])
            for b in range(a, len(rest)):
                sb = slice(starts[b], starts[b + 1])
                block = (z_rest[a].T @ z_rest[b]).toarray() if layout is None else pair_gram(ta, rest[b])
                a_rr[sa, sb] = block
                a_rr[sb, sa] = block.T
            a_rr[self.q_random_rest:, sa] = per_level_cross(ta, xy)
            a_rr[sa, self.q_random_rest:] = a_rr[self.q_random_rest:, sa].T
        a_rr[self.q_random_rest:, self.q_random_rest:] = xy.T @ xy
        self.a_rr = a_rr
        x1 = per_level_cross(first, xy)  # (p+1, q1)
        self._rest_starts = starts
        if layout is not None:
            self.dense_cross = layout.dense_cross
            self.a_r1 = (np.vstack([pair_gram(ta, first) for ta in rest] + [x1]) if self.dense_cross else
                         sparse.vstack([pair_sparse(ta, first) for ta in rest] + [sparse.csr_matrix(x1)]).tocsr())
            return
        if rest:
            z1 = first.sparse_z()
            r1 = sparse.vstack([za.T @ z1 for za in z_rest] + [sparse.csr_matrix(x1)]).tocsr()
        else:
            r1 = sparse.csr_matrix(x1)
        size = self.q_rest * self.q1
        self.dense_cross = size <= DENSE_CROSS_LIMIT and r1.nnz >= DENSE_FILL * size
        self.a_r1 = r1.toarray() if self.dense_cross else r1

    def ts(self, theta: np.ndarray) -> list[np.ndarray]:
        """T of every term, in the design's order."""
        out = []
        for term, off in zip(self.terms, self._theta_offsets, strict=True):
            t = np.zeros((term.k, term.k))
            for value, (r, c) in zip(theta[off:off + len(term.theta_index)], term.theta_index, strict=True):
                t[r, c] = value
            out.append(t)
        return out

    def relative_covariances(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per term (design order), ``T T'``: the random coefficients' covariance over sigma^2."""
        return [t @ t.T for t in self.ts(np.asarray(theta, dtype=float))]

    def theta_of(self, relative_covs: list[np.ndarray]) -> np.ndarray:
        """theta whose ``T T'`` are ``relative_covs`` (a Cholesky factor per term; singular allowed)."""
        theta = []
        for term, cov in zip(self.terms, relative_covs, strict=True):
            cov = np.atleast_2d(np.asarray(cov, dtype=float))
            if not term.correlated:
                cov = np.diag(np.diag(cov))
            t = lower_root(cov)
            theta += [t[r, c] for r, c in term.theta_index]
        return np.array(theta)

    def theta_positions(self, term: int) -> range:
        """Where term ``term``'s entries lie in theta (in its ``theta_index`` order)."""
        start = self._theta_offsets[term]
        return range(start, start + len(self.terms[term].theta_index))

    def start(self) -> np.ndarray:
        """lme4's start: every T the identity."""
        return self.theta_of([np.eye(t.k) for t in self.terms])

    # ----------------------------------------------------------- criterion
    def factor(self, theta: np.ndarray) -> Factor:
        """The blocked Cholesky factor at ``theta``; raises LinAlgError when it does not exist."""
        ts_design = self.ts(np.asarray(theta, dtype=float))
        ts = tuple(ts_design[i] for i in self.order)
        t1 = ts[0]
        k1 = t1.shape[0]
        m11 = np.einsum("ba,gbc,cd->gad", t1, self.a11, t1) + np.eye(k1)
        l11 = np.linalg.cholesky(m11)
        segments = [(int(self._rest_starts[j]), self.terms[i].n_levels, ts[j + 1])
                    for j, i in enumerate(self.order[1:])]
        if k1 == 1:
            w1 = t1[0, 0] / l11[:, 0, 0]  # Lambda_1 L11^{-T}, one number per level
        else:
            w1 = np.einsum("ab,gcb->gac", t1, np.linalg.inv(l11))  # T1 @ inv(L11_g)'
        if self.dense_cross:
            if k1 == 1:
                right = self.a_r1 * w1[None, :]
            else:
                n1 = len(w1)
                right = np.einsum("rgc,gcd->rgd", self.a_r1.reshape(self.q_rest, n1, k1), w1)
                right = right.reshape(self.q_rest, n1 * k1)
            lr1 = t_left(right, segments)
            down = lr1 @ lr1.T
        else:
            lr1 = lambda_sparse(segments, self.q_rest) @ (self.a_r1 @ block_diag_sparse(w1))
            down = (lr1 @ lr1.T).toarray()
        if all(t.shape[0] == 1 for _, _, t in segments):
            lam = np.ones(self.q_rest)  # every rest term scalar: Lambda' A Lambda is a diagonal scaling
            for start, n_levels, t in segments:
                lam[start:start + n_levels] = t[0, 0]
            s = self.a_rr * lam[:, None]
            s *= lam[None, :]
        else:
            s = t_left(t_left(self.a_rr, segments).T, segments).T
        s -= down
        diag = np.arange(self.q_random_rest)
        s[diag, diag] += 1.0
        lrr = linalg.cholesky(s, lower=True, overwrite_a=True, check_finite=False)
        pwrss = float(lrr[-1, -1] ** 2)
        logdet = 2.0 * float(np.log(np.einsum("gii->gi", l11)).sum())
        lrr_diag = np.diag(lrr)
        logdet += 2.0 * float(np.log(lrr_diag[:self.q_random_rest]).sum())
        if self.reml:
            dof = self.n - self.p
            logdet += 2.0 * float(np.log(lrr_diag[self.q_random_rest:self.q_random_rest + self.p]).sum())
        else:
            dof = self.n
        deviance = logdet + dof * (1.0 + _LOG_2PI + np.log(pwrss / dof))
        return Factor(l11, lr1, lrr, ts, float(deviance), pwrss, logdet)

    def deviance(self, theta: np.ndarray) -> float:
        """-2 REML criterion or -2 log-likelihood at ``theta``, beta and sigma profiled out."""
        return self.factor(theta).deviance

    def loglik(self, theta: np.ndarray) -> float:
        return -0.5 * self.deviance(theta)

    def sigma2(self, theta: np.ndarray) -> float:
        """The profiled residual variance at ``theta``."""
        dof = self.n - self.p if self.reml else self.n
        return self.factor(theta).pwrss / dof

    def ml_deviance(self, theta: np.ndarray, sigma: float) -> float:
        """-2 log-likelihood at ``theta`` and ``sigma``, beta profiled out (the ML criterion only);
        ``FAILED_DEVIANCE`` where the factor does not exist."""
        if self.reml:
            raise ValueError("ml_deviance is the ML criterion: build the LinearMixedModel with reml=False")
        try:
            f = self.factor(theta)
        except NUMERICAL_FAILURES:
            return FAILED_DEVIANCE
        value = f.logdet + self.n * (_LOG_2PI + 2 * np.log(sigma)) + f.pwrss / np.float64(sigma) ** 2
        return float(value) if np.isfinite(value) else FAILED_DEVIANCE

    def watch(self, say: Callable[[str], None], every: float | None = None) -> None:
        """Call ``say`` with the search's progress every ``every`` seconds (``PROGRESS_SECONDS``)."""
        self._watch = _Watch(say, PROGRESS_SECONDS if every is None else every, time.perf_counter())

    def safe_deviance(self, theta: np.ndarray) -> float:
        try:
            value = self.deviance(theta)
        except NUMERICAL_FAILURES:
            value = FAILED_DEVIANCE
        value = value if np.isfinite(value) else FAILED_DEVIANCE
        if self._watch is not None:
            self._watch.evaluated(value, "REML logLik" if self.reml else "logLik")
        return value

    # ----------------------------------------------------------- solution
    def solve(self, theta: np.ndarray, sigma2: float | None = None) -> LmmSolution:
        """Fixed effects, conditional modes and their uncertainties at ``theta``, read off the factor.

        ``sigma2`` is the residual variance to scale them by (default: the profiled one at ``theta``).

        ``cond_var`` is lme4's ``condVar`` (given beta); ``pev`` is Henderson's prediction-error
        variance (beta estimated too), from the same inverse, and ``cov_b_beta`` the covariance
        of each effect's error with beta's.
        """
        theta = np.asarray(theta, dtype=float)
        f = self.factor(theta)
        qr, p = self.q_random_rest, self.p
        dof = self.n - p if self.reml else self.n
        sigma2 = f.pwrss / dof if sigma2 is None else float(sigma2)
        blocks = self._blocks(f)
        l_rr, l_xr, l_xx, l_r1, l_x1 = blocks.l_rr, blocks.l_xr, blocks.l_xx, blocks.l_r1, blocks.l_x1
        l11_inv = blocks.l11_inv
        beta, u_r, u_1 = self._modes(blocks, None)
        l_xx_inv = linalg.solve_triangular(l_xx, np.eye(p), lower=True) if p else np.zeros((0, 0))
        cov_beta = sigma2 * l_xx_inv.T @ l_xx_inv
        # G' = L_ZZ^-T L_XZ': the X rows of L^-1 restricted to Z are -L_XX^-1 G
        g_r, g_1 = self._back_solve(l11_inv, l_r1, l_rr, l_x1.T, l_xr.T)
        h_1 = (l_xx_inv @ g_1.T) if p else np.zeros((0, self.q1))
        h_r = (l_xx_inv @ g_r.T) if p else np.zeros((0, qr))
        k1 = f.l11.shape[1]
        n1 = f.l11.shape[0]
        m_inv_1 = np.einsum("gba,gbc->gac", l11_inv, l11_inv) + self._downdate_gram(l11_inv, l_r1, l_rr, k1)
        l_rr_inv = linalg.solve_triangular(l_rr, np.eye(qr), lower=True) if qr else np.zeros((0, 0))
        per_term_u = [u_1.reshape(n1, k1)]
        per_term_minv = [m_inv_1]
        per_term_h = [h_1.reshape(p, n1, k1)]
        for j, i in enumerate(self.order[1:]):
            term = self.terms[i]
            cols = slice(int(self._rest_starts[j]), int(self._rest_starts[j + 1]))
            block = l_rr_inv[:, cols].reshape(qr, term.n_levels, term.k)
            per_term_minv.append(np.einsum("mga,mgb->gab", block, block))
            per_term_u.append(u_r[cols].reshape(term.n_levels, term.k))
            per_term_h.append(h_r[:, cols].reshape(p, term.n_levels, term.k))
        out_b, out_cond, out_pev, out_cross = [None] * len(self.terms), [None] * len(self.terms), \
            [None] * len(self.terms), [None] * len(self.terms)
        for pos, i in enumerate(self.order):
            t = f.ts[pos]
            u, minv, h = per_term_u[pos], per_term_minv[pos], per_term_h[pos]
            out_b[i] = u @ t.T
            hh = np.einsum("mga,mgb->gab", h, h)
            out_cond[i] = sigma2 * np.einsum("ab,gbc,dc->gad", t, minv, t)
            out_pev[i] = sigma2 * np.einsum("ab,gbc,dc->gad", t, minv + hh, t)
            cross = -np.einsum("mga,mc->gac", h, l_xx_inv) if p else np.zeros((h.shape[1], h.shape[2], 0))
            out_cross[i] = sigma2 * np.einsum("ab,gbc->gac", t, cross)
        return LmmSolution(theta, sigma2, beta, cov_beta, f.deviance, tuple(out_b), tuple(out_cond),
                           tuple(out_pev), tuple(out_cross))

    def _blocks(self, f: Factor) -> _FactorBlocks:
        qr, p = self.q_random_rest, self.p
        lr1 = f.lr1.toarray() if sparse.issparse(f.lr1) and self.q1 * (qr + p + 1) <= DENSE_CROSS_LIMIT else f.lr1
        return _FactorBlocks(
            l_rr=f.lrr[:qr, :qr], l_xr=f.lrr[qr:qr + p, :qr], l_xx=f.lrr[qr:qr + p, qr:qr + p],
            l_yr=f.lrr[-1, :qr], l_yx=f.lrr[-1, qr:qr + p], l_r1=lr1[:qr],
            l_x1=np.asarray(matrix_rows(lr1, slice(qr, qr + p))),
            l_y1=np.asarray(matrix_rows(lr1, slice(qr + p, qr + p + 1))).ravel(),
            l11_inv=np.linalg.inv(f.l11))  # (levels, k1, k1), lower triangular

    def _modes(self, blocks: _FactorBlocks, beta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """beta (the GLS estimate unless given) and the modes ``u`` of the rest blocks and of the first."""
        if beta is None:
            beta = linalg.solve_triangular(blocks.l_xx.T, blocks.l_yx, lower=False) if self.p else np.zeros(0)
        u_r, u_1 = self._back_solve(blocks.l11_inv, blocks.l_r1, blocks.l_rr, blocks.l_y1 - blocks.l_x1.T @ beta,
                                    blocks.l_yr - blocks.l_xr.T @ beta)
        return beta, u_r, u_1

    def modes(self, f: Factor, beta: np.ndarray | None = None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """beta (the GLS estimate, or ``beta`` when given) and the spherical modes ``u`` at ``f``.

        ``u`` minimises ``||y - X beta - Z Lambda u||^2 + ||u||^2`` given beta: one array per term
        (design order), shape (levels, k); the random effects are ``b = u @ T'``. This is the step
        of the GLMM engine's PIRLS (``engines.glmm``), on rows weighted by the IRLS weights.
        """
        beta, u_r, u_1 = self._modes(self._blocks(f), beta)
        out: list[np.ndarray] = [np.empty(0)] * len(self.terms)
        first = self.terms[self.order[0]]
        out[self.order[0]] = u_1.reshape(first.n_levels, first.k)
        for j, i in enumerate(self.order[1:]):
            term = self.terms[i]
            out[i] = u_r[int(self._rest_starts[j]):int(self._rest_starts[j + 1])].reshape(term.n_levels, term.k)
        return beta, tuple(out)

    def _back_solve(self, l11_inv: np.ndarray, l_r1: np.ndarray | sparse.csr_matrix, l_rr: np.ndarray,
                    c_1: np.ndarray, c_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``L_ZZ' [v_1; v_R] = [c_1; c_R]`` for one or more right-hand sides (columns)."""
        v_r = linalg.solve_triangular(l_rr.T, c_r, lower=False) if len(c_r) else c_r
        rhs = c_1 - (l_r1.T @ v_r if len(c_r) else 0.0)
        n1, k1, _ = l11_inv.shape
        shaped = np.asarray(rhs).reshape(n1, k1, -1)
        v_1 = np.einsum("gba,gbc->gac", l11_inv, shaped).reshape(np.shape(rhs))
        return v_r, v_1

    def _downdate_gram(self, l11_inv: np.ndarray, l_r1: np.ndarray | sparse.csr_matrix, l_rr: np.ndarray,
                       k1: int) -> np.ndarray:
        """Per level of the first term, ``V_g' V_g`` with ``V = L_RR^-1 L_R1 L11^-1`` (in column chunks)."""
        n1 = l11_inv.shape[0]
        out = np.zeros((n1, k1, k1))
        if not self.q_random_rest:
            return out
        step = max(1, 4096 // k1)
        for start in range(0, n1, step):
            stop = min(n1, start + step)
            cols = slice(start * k1, stop * k1)
            part = l_r1[:, cols]
            part = part.toarray() if sparse.issparse(part) else np.asarray(part)
            part = np.einsum("rgb,gba->rga", part.reshape(-1, stop - start, k1), l11_inv[start:stop])
            v = linalg.solve_triangular(l_rr, part.reshape(-1, (stop - start) * k1), lower=True)
            v = v.reshape(-1, stop - start, k1)
            out[start:stop] = np.einsum("mga,mgb->gab", v, v)
        return out

    # ------------------------------------------------------------ optimum
    def optimize(self, start: np.ndarray | None = None) -> Optimum:
        """The bounded optimum of the criterion (theta's diagonal >= 0), its boundary found exactly.

        SLSQP with lme4's bounds from ``start`` (lme4's Lambda = I by default); when that ends
        near the zero bound, again from ``start / 4``, and the better end wins. Each diagonal
        entry then left near 0 is tried at exactly 0 (``BoundedSearch.optimize``).
        """
        begin = self.start() if start is None else np.asarray(start, dtype=float)
        return self.search().optimize((begin, begin / 4))

    def search(self) -> BoundedSearch:
        """The bounded search over theta on this criterion."""
        return BoundedSearch(self.safe_deviance, self.lower)

    def snap_to_bound(self, theta: np.ndarray) -> Optimum:
        """Put near-zero diagonal entries of ``theta`` at exactly 0 where the criterion allows it
        (``BoundedSearch.snap_to_bound``)."""
        return self.search().snap_to_bound(theta)

    def improvable_by(self, theta: np.ndarray, step: float = 1e-3) -> float:
        """The largest log-likelihood gain from a small feasible step in one theta entry (0 at a maximum)."""
        theta = np.asarray(theta, dtype=float)
        base = self.loglik(theta)
        gain = 0.0
        for i in range(self.n_theta):
            for sign in (1.0, -1.0):
                trial = theta.copy()
                trial[i] += sign * step * max(1.0, abs(trial[i]))
                if trial[i] < self.lower[i]:
                    continue
                value = -0.5 * self.safe_deviance(trial)
                gain = max(gain, float(value - base))
        return gain


@dataclass(frozen=True, eq=False)
class _FactorBlocks:
    """The blocks of a ``Factor`` that the solutions read (Z rest, X and y rows; the first block's inverse)."""

    l_rr: np.ndarray
    l_xr: np.ndarray
    l_xx: np.ndarray
    l_yr: np.ndarray
    l_yx: np.ndarray
    l_r1: np.ndarray | sparse.csr_matrix
    l_x1: np.ndarray
    l_y1: np.ndarray
    l11_inv: np.ndarray


@dataclass(frozen=True, eq=False)
class LmmSolution:
    """Everything the criterion gives at one theta; per-term tuples follow the design's term order."""

    theta: np.ndarray
    sigma2: float
    beta: np.ndarray
    cov_beta: np.ndarray
    deviance: float
    b: tuple[np.ndarray, ...]  # (levels, k) conditional modes
    cond_var: tuple[np.ndarray, ...]  # (levels, k, k) given beta (lme4's condVar)
    pev: tuple[np.ndarray, ...]  # (levels, k, k) Henderson's prediction-error variance
    cov_b_beta: tuple[np.ndarray, ...]  # (levels, k, p)


def lower_root(cov: np.ndarray) -> np.ndarray:
    """A lower-triangular ``T`` with ``T T' = cov``; zeros, and rounding-level remainders, stay zeros."""
    k = cov.shape[0]
    t = np.zeros((k, k))
    for j in range(k):
        d = cov[j, j] - t[j, :j] @ t[j, :j]
        # a remainder at rounding level of the variance is a zero (a correlation of +-1)
        t[j, j] = np.sqrt(d) if d > 1e-12 * cov[j, j] else 0.0
        for i in range(j + 1, k):
            r = cov[i, j] - t[i, :j] @ t[j, :j]
            t[i, j] = r / t[j, j] if t[j, j] > 0 else 0.0
    return t


__all__ = ["FAILED_DEVIANCE", "NUMERICAL_FAILURES", "LinearMixedModel", "LmmSolution", "Optimum", "ReTerm", "lower_root", "one_blas_thread"]
