"""Spectral metrics of the symmetrised weighted adjacency: spectral gap, Laplacian spectral radius.

Works on any square scipy sparse matrix, so the database engine can reuse it on an adjacency it read
out of a database. Precision follows the reference (§3, §8.6–8.7 of the reference spec):

* ``A`` is the symmetrised weighted adjacency in **float32** (``|w|`` already float16-rounded in
  ``mge-reference`` graphs); each undirected pair carries the weight of its *first* edge (igraph
  ``as_undirected(combine_edges="first")``), a self-loop ``2w`` on the diagonal.
* spectral gap = ``|λ|₁ − |λ|₃`` of ``A`` (first minus *third* largest magnitude), ARPACK in
  float32.
* spectral radius = largest eigenvalue of ``L = D − A`` with ``D`` = column sums of the float32
  ``A`` (accumulated in float32, then cast) and ``L`` in float64.

ARPACK gets a start vector drawn from ``numpy.random.default_rng(seed)`` (the reference's was
unseeded), runs with BLAS limited to one thread (OpenBLAS threads only add contention on these
memory-bound matrix–vector products), and small matrices (≤ ``DENSE_MAX`` nodes) are solved densely.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

from mgedb.errors import MetricError
from mgedb.graph import Graph

__all__ = [
    "DENSE_MAX",
    "GAP_TOL",
    "RADIUS_TOL",
    "LaplacianOperator",
    "gap_of_operator",
    "laplacian",
    "laplacian_operator",
    "laplacian_radius",
    "one_blas_thread",
    "operator_radius",
    "radius_of_operator",
    "spectral_gap",
    "spectral_radius",
    "symmetric_adjacency",
    "top_abs_eigenvalues",
]

#: Matrices with at most this many rows are diagonalised densely (exact, no ARPACK).
DENSE_MAX = 600
#: ARPACK relative tolerance of the adjacency eigenvalues (float32 arithmetic; docs/metrics.md).
GAP_TOL = 1e-5
#: ARPACK relative tolerance for the largest Laplacian eigenvalue (float64 arithmetic).
RADIUS_TOL = 1e-5

Sparse = Any  # a scipy.sparse matrix or array
_Which = Literal["LM", "SM", "LA", "SA", "BE"]  # eigsh's `which`


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (re-entrant; a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def symmetric_adjacency(src: npt.ArrayLike | Graph, dst: npt.ArrayLike | None = None,
                        weight: npt.ArrayLike | None = None, n: int | None = None,
                        *, dtype: npt.DTypeLike = np.float32) -> sp.csr_matrix:
    """The symmetrised weighted adjacency of a directed edge list (CSR, ``dtype``).

    Call it with a :class:`~mgedb.graph.Graph`, or with ``src, dst, weight, n``. Direction is
    dropped; several edges between the same two nodes (either direction) keep the weight of the
    first one in edge order; a self-loop puts ``2w`` on the diagonal.
    """
    if isinstance(src, Graph):
        g = src
        src, dst, weight, n = g.src, g.dst, g.weight, g.n_nodes
    if dst is None or weight is None or n is None:
        raise TypeError("symmetric_adjacency needs a Graph or src, dst, weight and n")
    s = np.asarray(src)
    t = np.asarray(dst)
    w = np.asarray(weight).astype(dtype, copy=False)
    loops = int(np.count_nonzero(s == t))
    # Fast path: both arcs of every edge in one COO → CSR conversion (a loop's 2 copies sum to 2w).
    a = sp.csr_matrix((np.concatenate([w, w]), (np.concatenate([s, t]), np.concatenate([t, s]))),
                      shape=(n, n))
    if a.nnz == 2 * len(w) - loops:
        return a
    # Some node pair has several edges and they were summed: keep the first one's weight instead.
    lo, hi = np.minimum(s, t), np.maximum(s, t)
    _, first = np.unique(lo.astype(np.int64) * n + hi, return_index=True)
    upper = sp.csr_matrix((w[first], (lo[first], hi[first])), shape=(n, n))
    a = (upper + upper.T).tocsr()
    a.sort_indices()
    return a


def laplacian(a: Sparse) -> sp.csr_matrix:
    """``L = D − A`` in float64, ``D`` = column sums of ``A`` accumulated in ``A``'s dtype."""
    a = sp.csr_matrix(a)
    n = a.shape[0]
    d = _degrees(a)
    # Append the diagonal as one extra entry at the end of every row (no sparse binop: an existing
    # diagonal entry −a_ii and the appended d_i are summed by every product: L_ii = d_i − a_ii).
    idx = np.int64 if a.nnz + n > 2**31 - 2 else np.int32
    indptr = a.indptr.astype(idx) + np.arange(n + 1, dtype=idx)
    diag_pos = indptr[1:] - 1
    off_diag = np.ones(a.nnz + n, dtype=bool)
    off_diag[diag_pos] = False
    data = np.empty(a.nnz + n, dtype=np.float64)
    data[off_diag] = -a.data
    data[diag_pos] = d
    indices = np.empty(a.nnz + n, dtype=idx)
    indices[off_diag] = a.indices
    indices[diag_pos] = np.arange(n)
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


def _dense_eigvalsh(m: Sparse) -> npt.NDArray[np.float64]:
    with one_blas_thread():
        return np.asarray(np.linalg.eigvalsh(m.toarray().astype(np.float64)))


def _start_vector(n: int, seed: int, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, n).astype(dtype)


def _eigsh(m: Sparse, k: int, which: _Which, tol: float, seed: int) -> npt.NDArray[np.float64]:
    n = m.shape[0]
    v0 = _start_vector(n, seed, m.dtype)
    attempts: tuple[dict[str, Any], ...] = (
        {}, {"ncv": min(n - 1, max(4 * k + 1, 40)), "maxiter": 100 * n},
    )
    last: Exception | None = None
    with one_blas_thread():
        for extra in attempts:
            try:
                vals = eigsh(m, k=k, which=which, tol=tol, v0=v0, return_eigenvectors=False,
                             **extra)
                return np.asarray(vals, dtype=np.float64)
            except (ArpackNoConvergence, ArpackError) as e:
                last = e
    raise MetricError(
        f"the eigensolver did not converge on a {n}×{n} matrix ({last}); "
        "retry with another --seed"
    )


def _check_finite(m: Sparse) -> None:
    if not np.isfinite(m.data).all():
        raise MetricError(f"the {m.shape[0]}×{m.shape[0]} adjacency holds NaN or infinite "
                          "weights; the spectral metrics need finite weights: fix the network's "
                          "weights, or leave spectral_gap/spectral_radius out with --only")


def top_abs_eigenvalues(a: Sparse, k: int = 3, *, seed: int = 0, tol: float = GAP_TOL,
                        dtype: npt.DTypeLike = np.float32) -> npt.NDArray[np.float64]:
    """The ``k`` largest eigenvalue magnitudes of the symmetric matrix ``a``, descending.

    Computed in ``dtype`` (float32 = the reference's precision); NaN-padded when ``a`` has fewer
    than ``k`` rows.
    """
    m = sp.csr_matrix(a, dtype=dtype)
    _check_finite(m)
    n = m.shape[0]
    out = np.full(k, np.nan)
    if n == 0:
        return out
    if m.nnz == 0:
        out[: min(k, n)] = 0.0
        return out
    dense = n <= max(DENSE_MAX, k + 1)
    vals = _dense_eigvalsh(m) if dense else _eigsh(m, k, "LM", tol, seed)
    mags = np.sort(np.abs(vals))[::-1][:k]
    out[: len(mags)] = mags
    return out


def spectral_gap(a: Sparse, *, seed: int = 0, tol: float = GAP_TOL,
                 dtype: npt.DTypeLike = np.float32) -> float:
    """``|λ|₁ − |λ|₃`` of the symmetric matrix ``a`` (NaN with fewer than 3 nodes)."""
    top = top_abs_eigenvalues(a, 3, seed=seed, tol=tol, dtype=dtype)
    return float(top[0] - top[2])


def gap_of_operator(op: LinearOperator, *, seed: int = 0, tol: float = GAP_TOL) -> float:
    """``|λ|₁ − |λ|₃`` of a symmetric operator too big for the dense path (ARPACK in the
    operator's dtype: float32 for ``A``, as the reference)."""
    mags = np.sort(np.abs(_eigsh(op, 3, "LM", tol, seed)))[::-1]
    return float(mags[0] - mags[2])


def radius_of_operator(op: LinearOperator, *, seed: int = 0, tol: float = RADIUS_TOL) -> float:
    """The largest eigenvalue of a symmetric positive semi-definite operator (float64 ARPACK)."""
    return float(_eigsh(op, 1, "LA", tol, seed)[0])


def _degrees(a: Sparse) -> npt.NDArray[np.float64]:
    """Column sums of ``a`` accumulated in ``a``'s dtype (float32 for ``A``), then float64."""
    return np.asarray(a.sum(axis=0)).ravel().astype(np.float64)


@dataclass(frozen=True)
class LaplacianOperator:
    """``L = D − A`` kept as its parts (``d`` float64, ``a`` float64 CSR), never formed."""

    d: npt.NDArray[np.float64]
    a: sp.csr_matrix

    def matvec(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x = np.asarray(x, dtype=np.float64).ravel()
        return np.asarray(self.d * x - self.a @ x)

    def linear_operator(self) -> LinearOperator:
        n = len(self.d)
        return LinearOperator((n, n), matvec=self.matvec, dtype=np.float64)

    def dense(self) -> npt.NDArray[np.float64]:
        return np.diag(self.d) - self.a.toarray()


def laplacian_operator(a: Sparse) -> LaplacianOperator:
    """The Laplacian of the adjacency ``a`` as an operator (``D`` as in :func:`laplacian`); it
    holds a float64 copy of ``a``, so the caller may drop ``a``."""
    m = sp.csr_matrix(a)
    _check_finite(m)
    return LaplacianOperator(_degrees(m), m.astype(np.float64))


def operator_radius(lap: LaplacianOperator, *, seed: int = 0, tol: float = RADIUS_TOL) -> float:
    """The largest eigenvalue of a :class:`LaplacianOperator`."""
    n = len(lap.d)
    if n == 0:
        return math.nan
    if lap.a.nnz == 0:
        return 0.0
    if n <= DENSE_MAX:
        with one_blas_thread():
            return float(np.linalg.eigvalsh(lap.dense())[-1])
    return float(_eigsh(lap.linear_operator(), 1, "LA", tol, seed)[0])


def laplacian_radius(lap: Sparse, *, seed: int = 0, tol: float = RADIUS_TOL) -> float:
    """The largest eigenvalue of the symmetric positive semi-definite matrix ``lap``."""
    m = sp.csr_matrix(lap, dtype=np.float64)
    _check_finite(m)
    n = m.shape[0]
    if n == 0:
        return math.nan
    if m.nnz == 0:
        return 0.0
    if n <= DENSE_MAX:
        return float(_dense_eigvalsh(m)[-1])
    return float(_eigsh(m, 1, "LA", tol, seed)[0])


def spectral_radius(a: Sparse, *, seed: int = 0, tol: float = RADIUS_TOL) -> float:
    """The largest eigenvalue of the Laplacian ``D − A`` of the adjacency ``a``."""
    return operator_radius(laplacian_operator(a), seed=seed, tol=tol)
