"""Views of one graph that several metrics share, each computed once: degrees, CSR, igraph, ``A``.

Building a python-igraph graph is the costliest non-spectral step (every edge passes through Python
objects), so :class:`GraphView` builds it at most once and the metric families reuse it; it can be
dropped (:meth:`GraphView.release`) before the eigensolves to keep the peak memory down.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from mgedb.graph import Graph
from mgedb.metrics.spectral import symmetric_adjacency

if TYPE_CHECKING:
    import igraph

__all__ = ["GraphView", "closed_csr", "degrees", "directed_csr", "to_igraph"]

#: Edges converted to Python ints at a time while streaming them into igraph.
IGRAPH_CHUNK = 65_536


def degrees(graph: Graph) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Out- and in-degree of every node (multi-edges counted, a self-loop counts in both)."""
    n = graph.n_nodes
    return (np.bincount(graph.src, minlength=n).astype(np.int64),
            np.bincount(graph.dst, minlength=n).astype(np.int64))


def directed_csr(graph: Graph) -> sp.csr_matrix:
    """The directed adjacency pattern (row = source), duplicate edges merged (int32 counts)."""
    n = graph.n_nodes
    return sp.csr_matrix((np.ones(graph.n_edges, dtype=np.int32), (graph.src, graph.dst)),
                         shape=(n, n))


def closed_csr(graph: Graph) -> sp.csr_matrix:
    """The directed pattern plus the identity (``A + I``, duplicates merged, int8 counts).

    Row ``v`` lists the closed 1-step out-neighbourhood ``{v} ∪ N⁺(v)``.
    """
    n = graph.n_nodes
    ids = np.arange(n, dtype=graph.src.dtype)
    return sp.csr_matrix((np.ones(graph.n_edges + n, dtype=np.int8),
                          (np.concatenate([graph.src, ids]), np.concatenate([graph.dst, ids]))),
                         shape=(n, n))


def _edge_pairs(src: npt.NDArray[Any], dst: npt.NDArray[Any]) -> Iterator[tuple[int, int]]:
    for s in range(0, len(src), IGRAPH_CHUNK):
        yield from zip(src[s:s + IGRAPH_CHUNK].tolist(), dst[s:s + IGRAPH_CHUNK].tolist(),
                       strict=True)


def to_igraph(src: npt.NDArray[Any], dst: npt.NDArray[Any], n: int) -> igraph.Graph:
    """A directed python-igraph graph on ``n`` nodes with the given edges (no attributes).

    The installed python-igraph (limited-API wheel) converts every edge through a Python pair; a
    generator of pairs fed in one call is the fastest route measured (a list of tuples needs all
    tuples at once, a NumPy array goes through ``tolist()``, several ``add_edges`` calls re-index
    the graph each time) and keeps only one pair alive at a time.
    """
    import igraph

    return igraph.Graph(n=n, edges=_edge_pairs(src, dst), directed=True)


class GraphView:
    """Lazily computed, cached views of one graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.n = graph.n_nodes
        self.m = graph.n_edges

    @cached_property
    def out_in(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return degrees(self.graph)

    @cached_property
    def closed(self) -> sp.csr_matrix:
        return closed_csr(self.graph)

    @cached_property
    def igraph(self) -> igraph.Graph:
        return to_igraph(self.graph.src, self.graph.dst, self.n)

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        g = self.graph
        return symmetric_adjacency(g.src, g.dst, g.weight, self.n, dtype=np.float32)

    def release(self, *names: str) -> None:
        """Forget cached views (e.g. ``"igraph"``) so their memory can be freed."""
        for name in names:
            self.__dict__.pop(name, None)
