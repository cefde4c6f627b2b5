"""Degree-based MGE metrics: sink/source/disconnected nodes, removable connections, 1-hop, strength.

Two flavours (docs/metrics.md has the table):

* **reference** (``mge-reference`` graphs): exactly the reference's expressions, offsets and
  off-by-ones included — ``sink = #{out = 0, in > 0} − |last partition|``, ``source = #{out > 0,
  in = 0} − |first partition|`` (both may be negative), removable out-going connections sum the
  in-degrees of sinks with ``id < n − 1 − |last partition|``, removable incoming connections the
  out-degrees of sources with ``id > |first partition|``.
* **clean** (every other encoding): a sink is a node with in-edges and no out-edge outside the
  output (last) partition, a source a node with out-edges and no in-edge outside the input (first)
  partition; removable connections sum the in-degrees of the sinks / out-degrees of the sources.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mgedb.graph import Graph

__all__ = ["local_counts", "one_hop", "strength"]


def local_counts(graph: Graph, out_deg: np.ndarray, in_deg: np.ndarray, *, reference: bool
                 ) -> dict[str, int]:
    """``sink_nodes, source_nodes, disconnected_nodes, removable_out, removable_in``."""
    n = graph.n_nodes
    first = int(graph.dimension[0]) if len(graph.dimension) else 0
    last = int(graph.dimension[-1]) if len(graph.dimension) else 0
    sink = (out_deg == 0) & (in_deg > 0)
    source = (out_deg > 0) & (in_deg == 0)
    disconnected = int(np.count_nonzero((out_deg == 0) & (in_deg == 0)))
    ids = np.arange(n)
    if reference:
        return {
            "sink_nodes": int(np.count_nonzero(sink)) - last,
            "source_nodes": int(np.count_nonzero(source)) - first,
            "disconnected_nodes": disconnected,
            "removable_out": int(in_deg[sink & (ids < (n - 1) - last)].sum()),
            "removable_in": int(out_deg[source & (ids > first)].sum()),
        }
    sink &= ids < n - last
    source &= ids >= first
    return {
        "sink_nodes": int(np.count_nonzero(sink)),
        "source_nodes": int(np.count_nonzero(source)),
        "disconnected_nodes": disconnected,
        "removable_out": int(in_deg[sink].sum()),
        "removable_in": int(out_deg[source].sum()),
    }


def one_hop(closed: sp.csr_matrix) -> float:
    """Mean closed 1-step out-neighbourhood size: ``1 + #distinct out-neighbours other than v``.

    ``closed`` is the pattern of ``A + I`` (:func:`mgedb.metrics.views.closed_csr`).
    """
    n = closed.shape[0]
    return closed.nnz / n if n else float("nan")


def strength(graph: Graph) -> float:
    """Mean in+out strength ``2·Σ|w| / n`` (weights summed in float64)."""
    n = graph.n_nodes
    if n == 0:
        return float("nan")
    return 2.0 * float(np.sum(graph.weight, dtype=np.float64)) / n
