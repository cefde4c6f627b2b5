"""Topometrics of graph values: pure functions of a :class:`~mgedb.graph.Graph` (no DB, no torch).

* :func:`compute_mge_metrics` / :func:`normalise` — the 16 MGE topometrics (§3 of the reference
  spec), raw or under the published table's column names.
* :func:`compute_bge_metrics` / :func:`aggregate_bge` — the 10 per-layer metrics of a bipartite
  encoding (rolled / rolled-channel) and their per-network aggregates.
* :func:`compute_ramanujan` / :func:`aggregate_ramanujan` — the Ramanujan metrics per layer.
* :mod:`mgedb.metrics.registry` — the one list of metric names, families and normalisations.
* lower-level pieces (:func:`degrees`, :func:`symmetric_adjacency`, :func:`spectral_gap`, …) for
  engines that read a graph out of a database.

docs/metrics.md defines every metric in both flavours. The names below are imported on first
access (PEP 562), so importing one submodule does not import them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgedb import lazy

if TYPE_CHECKING:
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

_EXPORTS: dict[str, str] = {  # name -> the submodule that defines it
    "aggregate_bge": "bge",
    "compute_bge_metrics": "bge",
    "components": "connectivity",
    "cut_edges": "connectivity",
    "cut_nodes": "connectivity",
    "k_core": "connectivity",
    "local_counts": "local",
    "one_hop": "local",
    "strength": "local",
    "compute_mge_metrics": "mge",
    "normalise": "mge",
    "motif_estimate": "neighbourhood",
    "motif_sample_size": "neighbourhood",
    "two_hop": "neighbourhood",
    "aggregate_ramanujan": "ramanujan",
    "compute_ramanujan": "ramanujan",
    "ramanujan_layer": "ramanujan",
    "METRICS": "registry",
    "MetricSpec": "registry",
    "published_columns": "registry",
    "spec": "registry",
    "LaplacianOperator": "spectral",
    "laplacian": "spectral",
    "laplacian_operator": "spectral",
    "laplacian_radius": "spectral",
    "operator_radius": "spectral",
    "spectral_gap": "spectral",
    "spectral_radius": "spectral",
    "symmetric_adjacency": "spectral",
    "top_abs_eigenvalues": "spectral",
    "GraphView": "views",
    "closed_csr": "views",
    "degrees": "views",
    "directed_csr": "views",
    "to_igraph": "views",
}

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


__getattr__ = lazy.exports(__name__, _EXPORTS)
