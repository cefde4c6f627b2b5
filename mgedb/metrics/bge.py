"""Per-layer topometrics of the bipartite encodings (rolled / rolled-channel, §4 of the spec).

Every layer graph gets the 10 metrics of the reference's ``process_graph_topometrics`` with the
same formulas as on the MGE, plus its density, nnz and numel. One ``random.Random(seed)`` drives
the motif samples of all layers in order, as the reference's single ``random.seed(seed)`` did (most
layers have fewer than 1000 nodes, so their sample is empty and their motif value NaN).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mgedb.graph import Graph, GraphSet
from mgedb.metrics.mge import compute_metrics_on_view
from mgedb.metrics.motifs import MotifMode
from mgedb.metrics.registry import BGE_METRICS, resolve
from mgedb.metrics.views import GraphView

__all__ = ["aggregate_bge", "aggregate_layers", "compute_bge_metrics", "layer_info"]


def layer_info(index: int, graph: Graph) -> dict[str, Any]:
    """``layer_id, layer_name, n_nodes, n_edges, density, nnz, numel`` of one layer graph.

    nnz / numel come from the graph's :class:`~mgedb.graph.LayerSpec` (nonzero weights / all
    weights of the layer); without one, nnz = #edges and numel = |left| · |right|.
    """
    if graph.layers:
        layer = graph.layers[0]
        name, nnz, numel = layer.name, int(layer.nnz), int(layer.numel)
    else:
        dims = [int(d) for d in graph.dimension]
        name, nnz = f"layer{index}", graph.n_edges
        numel = dims[0] * dims[1] if len(dims) == 2 else 0
    return {
        "layer_id": index, "layer_name": name, "n_nodes": graph.n_nodes,
        "n_edges": graph.n_edges, "density": nnz / numel if numel else math.nan,
        "nnz": nnz, "numel": numel,
    }


def compute_bge_metrics(graphs: GraphSet | Iterable[Graph], *, seed: int = 0,
                        only: Sequence[str] | str | None = None,
                        motifs: MotifMode = "fast") -> list[dict[str, Any]]:
    """One row per layer: :func:`layer_info` and the 10 BGE metrics (or ``only`` those);
    ``motifs`` as in :func:`~mgedb.metrics.compute_mge_metrics`."""
    names = resolve(only, BGE_METRICS)
    rng = random.Random(seed)
    rows = []
    for i, g in enumerate(graphs):
        values = compute_metrics_on_view(GraphView(g), names, reference=False, rng=rng, seed=seed,
                                         motifs=motifs)
        rows.append({**layer_info(i, g), **values})
    return rows


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def aggregate_layers(rows: Sequence[Mapping[str, Any]], how: str = "mean") -> dict[str, Any]:
    """Per-layer rows → one row per network.

    ``mean``: ``n_layers`` and the mean over layers of every numeric column (NaN layers skipped; NaN
    when no layer has a value). ``wide``: every value of every layer as ``<metric>@<layer_name>``.
    """
    skip = {"layer_id", "layer_name"}
    if how == "mean":
        keys = [k for k in (rows[0] if rows else {}) if k not in skip]
        out: dict[str, Any] = {"n_layers": len(rows)}
        for k in keys:
            out[k] = _nanmean([float(r[k]) for r in rows])
        return out
    if how == "wide":
        out = {}
        seen: set[str] = set()
        for r in rows:
            name = str(r["layer_name"])
            label = name if name not in seen else f"{name}#{r['layer_id']}"
            seen.add(name)
            for k, v in r.items():
                if k not in skip:
                    out[f"{k}@{label}"] = v
        return out
    raise ValueError(f"unknown aggregation {how!r}; use 'mean' or 'wide'")


def aggregate_bge(rows: Sequence[Mapping[str, Any]], how: str = "mean") -> dict[str, Any]:
    """Aggregate :func:`compute_bge_metrics` rows to one row per network (see
    :func:`aggregate_layers`)."""
    return aggregate_layers(rows, how)
