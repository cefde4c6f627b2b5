"""The one list of topometrics: name, family, normalisation, published column, graph view.

The CLI, the store and the predictor all read :data:`METRICS`; nothing else hard-codes metric names.

* ``divisor`` — how the published table (``graph_data/graph_metrics/unrolled/unrolled.csv``)
  normalises the metric: ``"N"`` (÷ #nodes), ``"E"`` (÷ #edges) or ``None`` (raw).
* ``view`` — the graph the metric is computed on: ``"directed"`` (the DAG as encoded),
  ``"undirected"`` (direction ignored, unweighted) or ``"weighted"`` (the symmetrised weighted
  adjacency ``A``, or in+out strengths).
* ``weighted`` — True when the value depends on the weights, False when it depends on the mask only.
* ``bge`` — True for the 10 metrics also computed per layer on the bipartite encodings (§4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from mgedb.errors import UnknownMetric

__all__ = [
    "BGE_METRICS",
    "INTEGER_METRICS",
    "LAYER_FIELDS",
    "METRICS",
    "MGE_METRICS",
    "RAMANUJAN_FIELDS",
    "RAMANUJAN_METRICS",
    "RAMANUJAN_PUBLISHED",
    "SIZE_METRICS",
    "MetricSpec",
    "published_columns",
    "published_order",
    "resolve",
    "spec",
]

Divisor = Literal["N", "E"]


@dataclass(frozen=True)
class MetricSpec:
    """One topometric."""

    name: str
    family: str  # size | local | neighbourhood | connectivity | spectral
    divisor: Divisor | None
    column: str  # the published (normalised) table's column name
    view: str  # directed | undirected | weighted
    weighted: bool
    bge: bool
    description: str

    @property
    def published(self) -> str:
        """Alias of :attr:`column`."""
        return self.column


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("n_nodes", "size", None, "nodes", "directed", False, False, "number of nodes"),
    MetricSpec("n_edges", "size", None, "edges", "directed", False, False, "number of edges"),
    MetricSpec("sink_nodes", "local", "N", "sink_nodes", "directed", False, False,
               "nodes with in-edges but no out-edge (see docs/metrics.md for both flavours)"),
    MetricSpec("source_nodes", "local", "N", "source_nodes", "directed", False, False,
               "nodes with out-edges but no in-edge (see docs/metrics.md for both flavours)"),
    MetricSpec("disconnected_nodes", "local", "N", "disc_nodes", "directed", False, False,
               "nodes with no edge at all"),
    MetricSpec("removable_out", "local", "E", "r-out", "directed", False, False,
               "in-edges of sink nodes (edges that lead nowhere)"),
    MetricSpec("removable_in", "local", "E", "r-in", "directed", False, False,
               "out-edges of source nodes (edges fed by nothing)"),
    MetricSpec("one_hop", "neighbourhood", "E", "1-hop_nei", "directed", False, True,
               "mean size of the closed 1-step out-neighbourhood"),
    MetricSpec("two_hop", "neighbourhood", "E", "2-hop_nei", "directed", False, False,
               "mean size of the closed 2-step out-neighbourhood"),
    MetricSpec("motifs", "neighbourhood", "E", "motif", "directed", False, True,
               "igraph RAND-ESU estimate of the number of connected 4-node subgraphs"),
    MetricSpec("strength", "local", "E", "avg_node_strength", "weighted", True, True,
               "mean in+out node strength (2·Σ|w| / n)"),
    MetricSpec("k_core", "connectivity", "E", "k-core", "undirected", False, True,
               "mean core number (degree = in + out)"),
    MetricSpec("cut_edges", "connectivity", "E", "cut-edges", "undirected", False, True,
               "number of bridges"),
    MetricSpec("cut_nodes", "connectivity", "E", "cut-nodes", "undirected", False, True,
               "number of articulation points"),
    MetricSpec("n_components", "connectivity", None, "no_connected_components", "undirected",
               False, True, "number of (weakly) connected components, isolated nodes included"),
    MetricSpec("mean_component_size", "connectivity", "N", "mean_connected_components",
               "undirected", False, True, "n_nodes / n_components"),
    MetricSpec("spectral_gap", "spectral", None, "spectral_gap", "weighted", True, True,
               "|λ|₁ − |λ|₃ of the symmetrised weighted adjacency (float32)"),
    MetricSpec("spectral_radius", "spectral", None, "spectral_radius", "weighted", True, True,
               "largest eigenvalue of the weighted Laplacian D − A"),
)

_BY_NAME = {m.name: m for m in METRICS}
#: ``n_nodes`` and ``n_edges``: always part of a result.
SIZE_METRICS: tuple[str, ...] = ("n_nodes", "n_edges")
#: The 16 MGE topometrics, in registry order.
MGE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.family != "size")
#: The metrics whose values are counts (exact integers in every engine).
INTEGER_METRICS: frozenset[str] = frozenset({
    "n_nodes", "n_edges", "sink_nodes", "source_nodes", "disconnected_nodes", "removable_out",
    "removable_in", "cut_edges", "cut_nodes", "n_components"})
#: The 10 per-layer BGE topometrics (§4 of the reference spec), in the reference's CSV order.
BGE_METRICS: tuple[str, ...] = (
    "cut_edges", "cut_nodes", "motifs", "one_hop", "strength", "k_core", "n_components",
    "mean_component_size", "spectral_gap", "spectral_radius",
)
#: Per-layer bookkeeping columns of a BGE row.
LAYER_FIELDS: tuple[str, ...] = ("layer_id", "layer_name", "n_nodes", "n_edges", "density",
                                 "nnz", "numel")
#: The Ramanujan metrics of a layer (published names: iterative_spectral_gap,
#: iterative_degree_bound, degree_bound).
RAMANUJAN_METRICS: tuple[str, ...] = ("iterative_spectral_gap", "imdb", "delta_r",
                                      "weighted_spectral_gap")
#: All columns of a Ramanujan row, in order.
RAMANUJAN_FIELDS: tuple[str, ...] = ("layer_id", "layer_name", *RAMANUJAN_METRICS, "edges",
                                     "nodes", "density", "nnz", "numel")
#: Column names of the published Ramanujan tables.
RAMANUJAN_PUBLISHED = {"iterative_spectral_gap": "iterative_spectral_gap",
                       "imdb": "iterative_degree_bound", "delta_r": "degree_bound"}

# The published unrolled table's column order (after accuracy … seed, nodes, edges).
_PUBLISHED_ORDER = (
    "sink_nodes", "source_nodes", "disconnected_nodes", "removable_out", "removable_in", "two_hop",
    "cut_edges", "motifs", "n_components", "mean_component_size", "strength", "one_hop",
    "cut_nodes", "k_core", "spectral_gap", "spectral_radius",
)


def spec(name: str) -> MetricSpec:
    """The spec of metric ``name`` (raw name); unknown names raise :class:`UnknownMetric`."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownMetric(
            f"unknown metric {name!r}; valid names: {', '.join(_BY_NAME)}"
        ) from None


def published_columns(*, sizes: bool = False) -> list[str]:
    """The published table's 16 metric columns in its order (``nodes, edges`` first if asked)."""
    cols = [_BY_NAME[n].column for n in _PUBLISHED_ORDER]
    return ["nodes", "edges", *cols] if sizes else cols


def published_order() -> tuple[str, ...]:
    """Raw metric names in the published table's column order."""
    return _PUBLISHED_ORDER


def resolve(only: Iterable[str] | str | None, allowed: Sequence[str] = MGE_METRICS) -> list[str]:
    """Validate ``only`` (names or one comma-separated string; raw or published names) → raw names.

    ``None`` means every name in ``allowed``. The order of ``allowed`` is kept. Size metrics are
    accepted and ignored (they are always computed).
    """
    if only is None:
        return list(allowed)
    items = only.split(",") if isinstance(only, str) else list(only)
    by_column = {m.column: m.name for m in METRICS}
    wanted: set[str] = set()
    valid = [*allowed, *SIZE_METRICS]
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        name = item if item in _BY_NAME else by_column.get(item, item)
        if name not in valid:
            raise UnknownMetric(f"unknown metric {item!r}; valid names: {', '.join(valid)}")
        wanted.add(name)
    if not wanted:
        raise UnknownMetric(f"no metric names given; valid names: {', '.join(valid)}")
    return [n for n in allowed if n in wanted]
