"""Products with the block structure of a mixed model's Z and Lambda, for ``engines.lmm``.

Per-level Gram and cross products of a random term's columns (``bincount`` over its levels),
``Lambda'`` applied from the left to row segments, and sparse block diagonals. Written by hand:
these are the blocked products of lme4's and MixedModels.jl's method, vectorised over levels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from compare_kit.engines.lmm import ReTerm


def per_level_gram(term: ReTerm) -> np.ndarray:
    """Z_g'Z_g for every level g: shape (levels, k, k)."""
    k = term.k
    out = np.empty((term.n_levels, k, k))
    for a in range(k):
        for b in range(a, k):
            out[:, a, b] = np.bincount(term.codes, weights=term.z[:, a] * term.z[:, b],
                                       minlength=term.n_levels)
            out[:, b, a] = out[:, a, b]
    return out


def per_level_cross(term: ReTerm, m: np.ndarray) -> np.ndarray:
    """Z'M for a dense (n, c) matrix M: shape (c, q), column ``level * k + a``."""
    out = np.empty((m.shape[1], term.n_levels, term.k))
    for a in range(term.k):
        for c in range(m.shape[1]):
            out[c, :, a] = np.bincount(term.codes, weights=term.z[:, a] * m[:, c], minlength=term.n_levels)
    return out.reshape(m.shape[1], term.q)


def _pair_entries(a: ReTerm, b: ReTerm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column in ``Z_a'Z_b`` of every row's products, and the products (coefficient pairs stacked)."""
    rows, cols, vals = [], [], []
    for i in range(a.k):
        for j in range(b.k):
            rows.append(a.codes * a.k + i)
            cols.append(b.codes * b.k + j)
            vals.append(a.z[:, i] * b.z[:, j])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def pair_gram(a: ReTerm, b: ReTerm) -> np.ndarray:
    """``Z_a'Z_b`` for two random terms, dense (q_a, q_b), by ``bincount`` over the rows' level pairs."""
    rows, cols, vals = _pair_entries(a, b)
    return np.bincount(rows * b.q + cols, weights=vals, minlength=a.q * b.q).reshape(a.q, b.q)


def pair_sparse(a: ReTerm, b: ReTerm) -> sparse.csr_matrix:
    """``Z_a'Z_b`` as a sparse matrix (repeated level pairs summed)."""
    rows, cols, vals = _pair_entries(a, b)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(a.q, b.q))


def t_left(mat: np.ndarray, segments: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """``Lambda' @ mat`` for a dense ``mat`` whose row segments are random terms (others: identity)."""
    out = mat.copy()
    for start, n_levels, t in segments:
        k = t.shape[0]
        stop = start + n_levels * k
        if k == 1:
            out[start:stop] *= t[0, 0]
        else:
            seg = mat[start:stop].reshape(n_levels, k, -1)
            out[start:stop] = np.einsum("ba,lbc->lac", t, seg).reshape(n_levels * k, -1)
    return out


def lambda_sparse(segments: list[tuple[int, int, np.ndarray]], size: int) -> sparse.csr_matrix:
    """``Lambda'`` of the rest blocks as a sparse matrix (identity outside the random terms)."""
    diag = np.ones(size)
    parts_r, parts_c, parts_v = [], [], []
    for start, n_levels, t in segments:
        k = t.shape[0]
        stop = start + n_levels * k
        diag[start:stop] = 0.0
        base = start + np.arange(n_levels)[:, None, None] * k
        rows = base + np.arange(k)[None, :, None]
        cols = base + np.arange(k)[None, None, :]
        vals = np.broadcast_to(t.T, (n_levels, k, k))
        parts_r.append(np.broadcast_to(rows, (n_levels, k, k)).ravel())
        parts_c.append(np.broadcast_to(cols, (n_levels, k, k)).ravel())
        parts_v.append(vals.ravel())
    keep = np.flatnonzero(diag)
    parts_r.append(keep)
    parts_c.append(keep)
    parts_v.append(np.ones(len(keep)))
    return sparse.csr_matrix((np.concatenate(parts_v), (np.concatenate(parts_r), np.concatenate(parts_c))),
                             shape=(size, size))


def matrix_rows(mat: np.ndarray | sparse.csr_matrix, rows: slice) -> np.ndarray:
    part = mat[rows]
    return part.toarray() if sparse.issparse(part) else part


def block_diag_sparse(w: np.ndarray) -> sparse.csr_matrix:
    """The block-diagonal matrix of per-level blocks ``w`` (levels,) or (levels, k, k)."""
    if w.ndim == 1:
        return sparse.diags(w, format="csr")
    n, k, _ = w.shape
    base = np.arange(n)[:, None, None] * k
    rows = np.broadcast_to(base + np.arange(k)[None, :, None], w.shape).ravel()
    cols = np.broadcast_to(base + np.arange(k)[None, None, :], w.shape).ravel()
    return sparse.csr_matrix((w.ravel(), (rows, cols)), shape=(n * k, n * k))


__all__ = ["block_diag_sparse", "lambda_sparse", "matrix_rows", "pair_gram", "pair_sparse", "per_level_cross",
           "per_level_gram", "t_left"]
