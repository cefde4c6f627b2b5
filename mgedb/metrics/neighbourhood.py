"""Neighbourhood metrics of the directed graph: 2-hop out-neighbourhood, 4-node motif estimate.

The motif estimate is igraph's ``motifs_randesu_estimate(size=4, sample=int(0.001·n))``; igraph
draws the vertex sample from the Python RNG object installed with
``igraph.set_random_number_generator``; :func:`motif_estimate` installs a private
``random.Random`` for the call and restores the module ``random`` (python-igraph's default)
afterwards, so the global ``random`` state is never touched.
With ``random.Random(seed)`` it reproduces the reference run that called ``random.seed(seed)`` right
before the estimate. An empty sample (fewer than 1000 nodes) gives NaN (the reference crashed, or
returned INT64_MIN with igraph 0.11).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import scipy.sparse as sp

if TYPE_CHECKING:
    import igraph

_product_nnz: Callable[..., Any] | None
try:  # the exact nnz count scipy runs before every sparse product (no product is formed)
    from scipy.sparse._sparsetools import csr_matmat_maxnnz as _product_nnz
except ImportError:  # pragma: no cover - private scipy API; fall back to forming the product
    _product_nnz = None

__all__ = ["motif_estimate", "motif_sample_size", "two_hop"]

_CHUNK_ROWS = 16384


def two_hop(closed: sp.csr_matrix) -> float:
    """Mean size of the closed 2-step out-neighbourhood ``{v} ∪ N⁺(v) ∪ N⁺(N⁺(v))``.

    ``closed`` is the pattern ``B = A + I`` (:func:`mgedb.metrics.views.closed_csr`); row ``v`` of
    ``B²`` holds exactly that set, so the sum of the sizes is the number of nonzeros of ``B²``,
    counted without forming the product (igraph's ``neighborhood_size(order=2, mode="out")`` gives
    the same numbers, a few times slower).
    """
    n = closed.shape[0]
    if n == 0:
        return math.nan
    b = sp.csr_matrix(closed)
    if _product_nnz is not None:
        total = int(_product_nnz(n, n, b.indptr, b.indices, b.indptr, b.indices))
    else:  # pragma: no cover
        total = sum((b[i:i + _CHUNK_ROWS] @ b).nnz for i in range(0, n, _CHUNK_ROWS))
    return total / n


def motif_sample_size(n: int) -> int:
    """The reference's sample size rule: ``int(0.001 · n)``."""
    return int(0.001 * n)


def motif_estimate(g: igraph.Graph, rng: random.Random) -> float:
    """igraph's estimate of the number of connected 4-node subgraphs, sampling with ``rng``.

    ``rng`` is used (and advanced) only when the sample is not empty; NaN when it is.
    """
    import igraph

    sample = motif_sample_size(g.vcount())
    if sample == 0:
        return math.nan
    igraph.set_random_number_generator(rng)
    try:
        est = g.motifs_randesu_estimate(size=4, sample=sample)
    finally:
        igraph.set_random_number_generator(random)
    return float(est)
