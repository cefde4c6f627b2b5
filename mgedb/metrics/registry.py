"""The one list of topometrics: what each is, how each engine computes it, how it is normalised.

The CLI, the store's metric engine and the predictor all read :data:`METRICS`; nothing else
hard-codes metric names. Adding a metric = its spec here, its kernel in the array engine task its
spec names (:mod:`mgedb.metrics.engine`) and, unless it is ``array_only``, its query file(s) under
``cypher/metrics/`` (tests/test_registry.py checks that the three agree).

* ``divisor`` — how the published table (``graph_data/graph_metrics/unrolled/unrolled.csv``)
  normalises the metric: ``"N"`` (÷ #nodes), ``"E"`` (÷ #edges) or ``None`` (raw).
* ``view`` — the graph the metric is computed on: ``"directed"`` (the DAG as encoded),
  ``"undirected"`` (direction ignored, unweighted) or ``"weighted"`` (the symmetrised weighted
  adjacency ``A``, or in+out strengths).
* ``weighted`` — True when the value depends on the weights, False when it depends on the mask only.
* ``bge`` — True for the 10 metrics also computed per layer on the bipartite encodings (§4).
* ``kind`` — ``"integer"`` (a count: exactly equal in every engine) or ``"float"``.
* ``array`` — the task of the array engine that computes it in-process
  (:data:`mgedb.metrics.engine.TASKS`: ``local``, ``hop``, ``graph``, ``spectral_gap``,
  ``spectral_radius``; ``size`` for the two counts every result has).
* ``db`` — how the database computes it (:class:`DbPath`: query files ``metrics/…`` and/or raw
  graph-algorithm counts ``algo:…`` of the backend, and how their values combine), or None for
  a metric that is explicitly ``array_only`` (the database engine then computes it in-process over
  the graph read out of the store); a metric with neither makes ``--engine db|both`` fail.
* ``compared`` — False for the motif estimate (a random sample): not part of the database
  engine's default set nor of the engine comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mgedb.errors import UnknownMetric

__all__ = [
    "ALGORITHM_COUNTS",
    "ARRAY_ONLY",
    "BGE_METRICS",
    "DB_QUERIES",
    "INTEGER_METRICS",
    "LAYER_FIELDS",
    "METRICS",
    "MGE_METRICS",
    "RAMANUJAN_FIELDS",
    "RAMANUJAN_METRICS",
    "RAMANUJAN_PUBLISHED",
    "SIZE_METRICS",
    "DbPath",
    "MetricSpec",
    "metrics_of_task",
    "published_columns",
    "published_order",
    "resolve",
    "spec",
]

Divisor = Literal["N", "E"]
Kind = Literal["integer", "float"]
#: ``combine(values, n)``: the metric from its sources' values (``values[source]``) and the node
#: count ``n``.
Combine = Callable[[Mapping[str, float], float], float]


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _value(source: str) -> Combine:
    return lambda v, n: v[source]


@dataclass(frozen=True)
class DbPath:
    """How the database computes a metric.

    ``sources`` are query files (``metrics/sink_nodes``: one row with a ``value``; the flavour's
    parameters, :func:`mgedb.store.engine.flavour_params`, are keyed by the file's base name) or
    raw graph-algorithm counts of the backend (``algo:k_core_sum``, ``algo:components``,
    ``algo:bridges``, ``algo:articulation_points``); ``per_partition`` sources run once per source
    partition (``$partition``) and are summed; ``combine`` makes the metric from the values.
    """

    sources: tuple[str, ...]
    combine: Combine
    per_partition: tuple[str, ...] = ()

    @property
    def algorithm(self) -> bool:
        """Whether the metric needs the backend's graph algorithms."""
        return any(s.startswith("algo:") for s in self.sources)


def _query(name: str) -> DbPath:
    """A metric that is the value of one query file ``metrics/<name>``."""
    q = f"metrics/{name}"
    return DbPath((q,), _value(q))


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
    kind: Kind = "float"
    array: str = ""  # the array engine's task (mgedb.metrics.engine.TASKS) or "size"
    db: DbPath | None = None
    array_only: bool = False
    compared: bool = True

    @property
    def published(self) -> str:
        """Alias of :attr:`column`."""
        return self.column


_OUT = "metrics/out_pairs"
_TWO = ("metrics/two_step_pairs", "metrics/two_step_direct_pairs")

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("n_nodes", "size", None, "nodes", "directed", False, False, "number of nodes",
               kind="integer", array="size", db=_query("n_nodes")),
    MetricSpec("n_edges", "size", None, "edges", "directed", False, False, "number of edges",
               kind="integer", array="size", db=_query("n_edges")),
    MetricSpec("sink_nodes", "local", "N", "sink_nodes", "directed", False, False,
               "nodes with in-edges but no out-edge (see docs/metrics.md for both flavours)",
               kind="integer", array="local", db=_query("sink_nodes")),
    MetricSpec("source_nodes", "local", "N", "source_nodes", "directed", False, False,
               "nodes with out-edges but no in-edge (see docs/metrics.md for both flavours)",
               kind="integer", array="local", db=_query("source_nodes")),
    MetricSpec("disconnected_nodes", "local", "N", "disc_nodes", "directed", False, False,
               "nodes with no edge at all",
               kind="integer", array="local", db=_query("disconnected_nodes")),
    MetricSpec("removable_out", "local", "E", "r-out", "directed", False, False,
               "in-edges of sink nodes (edges that lead nowhere)",
               kind="integer", array="local", db=_query("removable_out")),
    MetricSpec("removable_in", "local", "E", "r-in", "directed", False, False,
               "out-edges of source nodes (edges fed by nothing)",
               kind="integer", array="local", db=_query("removable_in")),
    MetricSpec("one_hop", "neighbourhood", "E", "1-hop_nei", "directed", False, True,
               "mean size of the closed 1-step out-neighbourhood",
               array="hop",
               db=DbPath((_OUT,), lambda v, n: _ratio(n + v[_OUT], n))),
    MetricSpec("two_hop", "neighbourhood", "E", "2-hop_nei", "directed", False, False,
               "mean size of the closed 2-step out-neighbourhood",
               array="hop",
               db=DbPath((_OUT, *_TWO),
                         lambda v, n: _ratio(n + v[_OUT] + v[_TWO[0]] - v[_TWO[1]], n),
                         per_partition=_TWO)),
    MetricSpec("motifs", "neighbourhood", "E", "motif", "directed", False, True,
               "igraph RAND-ESU estimate of the number of connected 4-node subgraphs",
               array="graph", array_only=True, compared=False),
    MetricSpec("strength", "local", "E", "avg_node_strength", "weighted", True, True,
               "mean in+out node strength (2·Σ|w| / n)",
               array="local",
               db=DbPath(("metrics/weight_sum",),
                         lambda v, n: _ratio(2.0 * v["metrics/weight_sum"], n))),
    MetricSpec("k_core", "connectivity", "E", "k-core", "undirected", False, True,
               "mean core number (degree = in + out)",
               array="graph",
               db=DbPath(("algo:k_core_sum",), lambda v, n: _ratio(v["algo:k_core_sum"], n))),
    MetricSpec("cut_edges", "connectivity", "E", "cut-edges", "undirected", False, True,
               "number of bridges",
               kind="integer", array="graph",
               db=DbPath(("algo:bridges",), _value("algo:bridges"))),
    MetricSpec("cut_nodes", "connectivity", "E", "cut-nodes", "undirected", False, True,
               "number of articulation points",
               kind="integer", array="graph",
               db=DbPath(("algo:articulation_points",), _value("algo:articulation_points"))),
    MetricSpec("n_components", "connectivity", None, "no_connected_components", "undirected",
               False, True, "number of (weakly) connected components, isolated nodes included",
               kind="integer", array="graph",
               db=DbPath(("algo:components",), _value("algo:components"))),
    MetricSpec("mean_component_size", "connectivity", "N", "mean_connected_components",
               "undirected", False, True, "n_nodes / n_components",
               array="graph",
               db=DbPath(("algo:components",), lambda v, n: _ratio(n, v["algo:components"]))),
    MetricSpec("spectral_gap", "spectral", None, "spectral_gap", "weighted", True, True,
               "|λ|₁ − |λ|₃ of the symmetrised weighted adjacency (float32)",
               array="spectral_gap", array_only=True),
    MetricSpec("spectral_radius", "spectral", None, "spectral_radius", "weighted", True, True,
               "largest eigenvalue of the weighted Laplacian D − A",
               array="spectral_radius", array_only=True),
)

_BY_NAME = {m.name: m for m in METRICS}
#: ``n_nodes`` and ``n_edges``: always part of a result.
SIZE_METRICS: tuple[str, ...] = ("n_nodes", "n_edges")
#: The 16 MGE topometrics, in registry order.
MGE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.family != "size")
#: The metrics whose values are counts (exact integers in every engine).
INTEGER_METRICS: frozenset[str] = frozenset(m.name for m in METRICS if m.kind == "integer")
#: Metrics the database does not compute (computed in-process over the graph read out of it).
ARRAY_ONLY: tuple[str, ...] = tuple(m.name for m in METRICS if m.array_only)
#: Every query file a metric's database path runs.
DB_QUERIES: frozenset[str] = frozenset(
    s for m in METRICS if m.db for s in m.db.sources if not s.startswith("algo:"))
#: The raw graph-algorithm count each algorithm metric needs (``k_core`` → ``k_core_sum``, …).
ALGORITHM_COUNTS: dict[str, tuple[str, ...]] = {
    m.name: tuple(s.removeprefix("algo:") for s in m.db.sources)
    for m in METRICS if m.db and m.db.algorithm}
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


def metrics_of_task(task: str) -> tuple[str, ...]:
    """The metrics the array engine's ``task`` computes (registry order)."""
    return tuple(m.name for m in METRICS if m.array == task)


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
