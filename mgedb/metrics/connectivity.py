"""Connectivity metrics: cut-edges (bridges), cut-nodes (articulation points), k-core, components.

Bridges, articulation points and core numbers come from python-igraph on the directed graph, where
igraph ignores the direction (bridges of the underlying undirected multigraph; core numbers with
degree = in + out), exactly like the reference. Components are scipy's weakly connected components
of the directed graph, which equal the reference's strong components of the symmetrised graph
(isolated nodes count as components).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

if TYPE_CHECKING:
    import igraph

__all__ = ["components", "components_igraph", "cut_edges", "cut_nodes", "k_core"]


def cut_edges(g: igraph.Graph) -> int:
    """Number of bridges (direction ignored; a doubled edge is never a bridge)."""
    return len(g.bridges())


def cut_nodes(g: igraph.Graph) -> int:
    """Number of articulation points (direction ignored)."""
    return len(g.articulation_points())


def k_core(g: igraph.Graph) -> float:
    """Mean core number, degree = in + out."""
    if g.vcount() == 0:
        return math.nan
    return float(np.mean(g.coreness(mode="all")))


def components(csr: sp.csr_matrix) -> tuple[int, float]:
    """``(number of weakly connected components, n / that number)``."""
    n = csr.shape[0]
    if n == 0:
        return 0, math.nan
    count, _ = csgraph.connected_components(csr, directed=True, connection="weak")
    return int(count), n / count


def components_igraph(g: igraph.Graph) -> tuple[int, float]:
    """:func:`components` from an igraph graph (cheap once igraph has indexed the graph)."""
    n = g.vcount()
    if n == 0:
        return 0, math.nan
    count = len(g.connected_components(mode="weak"))
    return count, n / count
