"""Topometrics of graph values: pure functions of a :class:`~mgedb.graph.Graph` (no DB, no torch).

* :func:`compute_mge_metrics` / :func:`normalise` — the 16 MGE topometrics (§3 of the reference
  spec), raw or under the published table's column names.
* :func:`compute_bge_metrics` / :func:`aggregate_bge` — the 10 per-layer metrics of a bipartite
  encoding (rolled / rolled-channel) and their per-network aggregates.
* :func:`compute_ramanujan` / :func:`aggregate_ramanujan` — the Ramanujan metrics per layer.
* :mod:`mgedb.metrics.registry` — the one list of metric names, families and normalisations.
* lower-level pieces (:func:`degrees`, :func:`symmetric_adjacency`, :func:`spectral_gap`, …) for
  engines that read a graph out of a database.

docs/metrics.md defines every metric in both flavours.
"""

from mgedb.metrics.bge import aggregate_bge, compute_bge_metrics
from mgedb.metrics.connectivity import components, cut_edges, cut_nodes, k_core
from mgedb.metrics.local import local_counts, one_hop, strength
from mgedb.metrics.mge import compute_mge_metrics, normalise
from mgedb.metrics.neighbourhood import motif_estimate, motif_sample_size, two_hop
from mgedb.metrics.ramanujan import aggregate_ramanujan, compute_ramanujan, ramanujan_layer
from mgedb.metrics.registry import METRICS, MetricSpec, published_columns, spec
from mgedb.metrics.spectral import (
    LaplacianOperator,
    laplacian,
    laplacian_operator,
    laplacian_radius,
    operator_radius,
    spectral_gap,
    spectral_radius,
    symmetric_adjacency,
    top_abs_eigenvalues,
)
from mgedb.metrics.views import GraphView, closed_csr, degrees, directed_csr, to_igraph

__all__ = [
    "METRICS",
    "GraphView",
    "LaplacianOperator",
    "MetricSpec",
    "aggregate_bge",
    "aggregate_ramanujan",
    "closed_csr",
    "components",
    "compute_bge_metrics",
    "compute_mge_metrics",
    "compute_ramanujan",
    "cut_edges",
    "cut_nodes",
    "degrees",
    "directed_csr",
    "k_core",
    "laplacian",
    "laplacian_operator",
    "laplacian_radius",
    "local_counts",
    "motif_estimate",
    "motif_sample_size",
    "normalise",
    "one_hop",
    "operator_radius",
    "published_columns",
    "ramanujan_layer",
    "spec",
    "spectral_gap",
    "spectral_radius",
    "strength",
    "symmetric_adjacency",
    "to_igraph",
    "top_abs_eigenvalues",
    "two_hop",
]
