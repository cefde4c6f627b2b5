"""Ramanujan metrics of a bipartite layer graph (§5 of the reference spec; Hoang et al., ICLR 2023).

For one layer graph (left = first partition, right = second):

* **delta_r** (published ``degree_bound``): drop isolated nodes; with ``d_l``, ``d_r`` the mean
  degrees of the remaining left / right nodes and ``λ₃`` the third largest ``|λ|`` of the unweighted
  symmetrised adjacency (float64; for a bipartite graph the second largest eigenvalue),
  ``Δr = (ub − λ₃) / ub`` with ``ub = √(d_l − 1) + √(d_r − 1)``. Needs both sides non-empty and
  more than 3 nodes, else NaN. ``ub = 0`` gives −inf (as published) or NaN when ``λ₃ = 0`` too; a
  mean degree below 1, where the reference would stop with a math domain error, gives NaN.
* **weighted_spectral_gap**: ``|λ|₁ − |λ|₃`` of the weighted symmetrised adjacency (float32) of
  the same isolated-free graph.
* **iterative_spectral_gap** / **imdb** (published ``iterative_degree_bound``): for every distinct
  left degree ``d ≥ 3`` (in order of first appearance), the subgraph induced by the left nodes of
  degree ``d`` and all right nodes, isolated nodes dropped; if both its mean degrees are ≥ 3, its
  weighted spectral gap and its ``Δr``. Both are averaged over the qualifying subgraphs (NaN if
  none).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mgedb.errors import UnknownMetric
from mgedb.graph import Graph, GraphSet
from mgedb.metrics.bge import aggregate_layers, layer_info
from mgedb.metrics.registry import RAMANUJAN_METRICS, RAMANUJAN_PUBLISHED
from mgedb.metrics.spectral import spectral_gap, symmetric_adjacency, top_abs_eigenvalues

__all__ = [
    "aggregate_ramanujan",
    "compute_ramanujan",
    "degree_bound",
    "ramanujan_layer",
    "resolve_ramanujan",
]

IntArray = npt.NDArray[np.int64]


def degree_bound(d_left: float, d_right: float, lam3: float) -> float:
    """``(ub − λ₃) / ub`` with ``ub = √(d_left − 1) + √(d_right − 1)`` (see the module notes)."""
    if not (d_left >= 1 and d_right >= 1) or math.isnan(lam3):
        return math.nan
    ub = math.sqrt(d_left - 1) + math.sqrt(d_right - 1)
    if ub == 0:
        return -math.inf if lam3 > 0 else math.nan
    return (ub - lam3) / ub


def _compact(src: IntArray, dst: IntArray, keep: npt.NDArray[np.bool_]
             ) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_], int]:
    """Edges with both ends kept, renumbered 0..k−1 in id order; also the edge mask and k."""
    new_id = np.cumsum(keep) - 1
    edge_ok = keep[src] & keep[dst]
    return new_id[src[edge_ok]], new_id[dst[edge_ok]], edge_ok, int(keep.sum())


def _scores(src: IntArray, dst: IntArray, w: npt.NDArray[Any], n: int, d_left: float,
            d_right: float, seed: int) -> tuple[float, float]:
    """(weighted spectral gap, Δr) of one symmetrised graph."""
    weighted = symmetric_adjacency(src, dst, w, n, dtype=np.float32)
    gap = spectral_gap(weighted, seed=seed)
    ones = symmetric_adjacency(src, dst, np.ones(len(src)), n, dtype=np.float64)
    lam3 = float(top_abs_eigenvalues(ones, 3, seed=seed, dtype=np.float64)[2])
    return gap, degree_bound(d_left, d_right, lam3)


def _iterative(src: IntArray, dst: IntArray, w: npt.NDArray[Any], n: int, n_left: int,
               deg: IntArray, seed: int) -> tuple[float, float]:
    left_deg = deg[:n_left]
    values, first = np.unique(left_deg, return_index=True)
    gaps: list[float] = []
    bounds: list[float] = []
    for d in values[np.argsort(first)]:
        if d < 3:
            continue
        keep = np.ones(n, dtype=bool)
        keep[:n_left] = left_deg == d
        dim_in = int(keep[:n_left].sum())
        s, t, ok, k = _compact(src, dst, keep)
        sub_deg = np.bincount(s, minlength=k) + np.bincount(t, minlength=k)
        nz = sub_deg > 0
        s, t, ok2, k = _compact(s, t, nz)
        sub_deg = sub_deg[nz]
        d_l = float(np.mean(sub_deg[:dim_in]))
        d_r = float(np.mean(sub_deg[dim_in:])) if k > dim_in else math.nan
        if d_l >= 3 and d_r >= 3:
            gap, bound = _scores(s, t, w[ok][ok2], k, d_l, d_r, seed)
            gaps.append(gap)
            bounds.append(bound)
    if not gaps:
        return math.nan, math.nan
    return float(np.mean(gaps)), float(np.mean(bounds))


def resolve_ramanujan(only: Iterable[str] | str | None) -> list[str]:
    """Validate Ramanujan metric names (ours or the published ones) → our names, in order."""
    if only is None:
        return list(RAMANUJAN_METRICS)
    items = only.split(",") if isinstance(only, str) else list(only)
    alias = {v: k for k, v in RAMANUJAN_PUBLISHED.items()}
    wanted = set()
    for raw in items:
        item = alias.get(raw.strip(), raw.strip())
        if not item:
            continue
        if item not in RAMANUJAN_METRICS:
            raise UnknownMetric(f"unknown Ramanujan metric {raw.strip()!r}; valid names: "
                                f"{', '.join(RAMANUJAN_METRICS)}")
        wanted.add(item)
    if not wanted:
        raise UnknownMetric(f"no metric names given; valid names: {', '.join(RAMANUJAN_METRICS)}")
    return [m for m in RAMANUJAN_METRICS if m in wanted]


def ramanujan_layer(graph: Graph, *, seed: int = 0, only: Iterable[str] | str | None = None
                    ) -> dict[str, float]:
    """``iterative_spectral_gap, imdb, delta_r, weighted_spectral_gap`` of one bipartite layer
    (or ``only`` those; the iterative pair and the whole-layer pair are computed together)."""
    names = resolve_ramanujan(only)
    n = graph.n_nodes
    n_left = int(graph.dimension[0]) if len(graph.dimension) else 0
    src = graph.src.astype(np.int64)
    dst = graph.dst.astype(np.int64)
    w = graph.weight
    deg = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)
    out: dict[str, float] = {}
    if {"iterative_spectral_gap", "imdb"} & set(names):
        out["iterative_spectral_gap"], out["imdb"] = _iterative(src, dst, w, n, n_left, deg,
                                                                seed)
    if {"delta_r", "weighted_spectral_gap"} & set(names):
        keep = deg > 0
        dim_in = int(keep[:n_left].sum())
        s, t, ok, k = _compact(src, dst, keep)
        delta_r = wgap = math.nan
        if dim_in > 0 and k - dim_in > 0 and k > 3:
            kept = deg[keep]
            wgap, delta_r = _scores(s, t, w[ok], k, float(np.mean(kept[:dim_in])),
                                    float(np.mean(kept[dim_in:])), seed)
        out["delta_r"], out["weighted_spectral_gap"] = delta_r, wgap
    return {m: out[m] for m in names}


def compute_ramanujan(graphs: GraphSet | Iterable[Graph], *, seed: int = 0,
                      only: Iterable[str] | str | None = None) -> list[dict[str, Any]]:
    """One row per layer: ``layer_id, layer_name, iterative_spectral_gap, imdb, delta_r,
    weighted_spectral_gap, edges, nodes, density, nnz, numel`` (``only``: a subset of the four
    metrics)."""
    names = resolve_ramanujan(only)
    rows = []
    for i, g in enumerate(graphs):
        info = layer_info(i, g)
        rows.append({
            "layer_id": info["layer_id"], "layer_name": info["layer_name"],
            **ramanujan_layer(g, seed=seed, only=names),
            "edges": info["n_edges"], "nodes": info["n_nodes"], "density": info["density"],
            "nnz": info["nnz"], "numel": info["numel"],
        })
    return rows


def aggregate_ramanujan(rows: Sequence[Mapping[str, Any]], how: str = "mean") -> dict[str, Any]:
    """Aggregate :func:`compute_ramanujan` rows to one row per network (``mean`` skips NaN and
    ±inf layers; ``wide`` gives ``<metric>@<layer_name>``)."""
    if how == "mean":
        finite = [{k: (v if not isinstance(v, float) or math.isfinite(v) else math.nan)
                   for k, v in r.items()} for r in rows]
        return aggregate_layers(finite, how)
    return aggregate_layers(rows, how)
