"""Per-layer BGE metrics, Ramanujan metrics and their per-network aggregates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mgedb.errors import UnknownMetric
from mgedb.graph import Graph, GraphSet, LayerSpec, NodeKind, Partition
from mgedb.metrics import (
    aggregate_bge,
    aggregate_ramanujan,
    compute_bge_metrics,
    compute_ramanujan,
    ramanujan_layer,
)
from mgedb.metrics.ramanujan import degree_bound
from mgedb.metrics.registry import BGE_METRICS, RAMANUJAN_FIELDS


def layer(name: str, edges: list[tuple[int, int]], left: int, right: int,
          weights: list[float] | None = None, nnz: int | None = None) -> Graph:
    """A bipartite layer graph: left ids 0..left-1, right ids left..left+right-1."""
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    w = np.ones(len(edges)) if weights is None else np.asarray(weights)
    parts = [Partition(f"{name}:in", NodeKind.NEURON, (left, 1, 1)),
             Partition(f"{name}:out", NodeKind.NEURON, (right, 1, 1))]
    g = Graph.from_edges(src, dst, w, [left, right], encoding="rolled", partitions=parts)
    spec = LayerSpec(name=name, op="linear", role="main", weight_shape=(right, left),
                     in_shape=(left,), out_shape=(right,),
                     nnz=len(edges) if nnz is None else nnz)
    return Graph(src=g.src, dst=g.dst, weight=g.weight, kind=g.kind, partitions=g.partitions,
                 encoding="rolled", layers=(spec,))


def complete(name: str, a: int, b: int, weight: float = 1.0) -> Graph:
    return layer(name, [(i, a + j) for i in range(a) for j in range(b)], a, b,
                 [weight] * (a * b))


def two_k33(name: str) -> Graph:
    """Two disjoint K_{3,3}: 3-regular bipartite, spectrum ±3 (twice each) and zeros."""
    edges = [(i, 6 + j) for i in range(3) for j in range(3)]
    edges += [(3 + i, 9 + j) for i in range(3) for j in range(3)]
    return layer(name, edges, 6, 6)


def matching(name: str, k: int) -> Graph:
    return layer(name, [(i, k + i) for i in range(k)], k, k)


def test_bge_rows() -> None:
    gs = GraphSet(graphs=(complete("fc1", 3, 4, 0.5), matching("fc2", 4)), encoding="rolled")
    rows = compute_bge_metrics(gs)
    assert [r["layer_name"] for r in rows] == ["fc1", "fc2"]
    assert [r["layer_id"] for r in rows] == [0, 1]
    k34, m4 = rows
    assert (k34["nnz"], k34["numel"], k34["density"]) == (12, 12, 1.0)
    assert (k34["cut_edges"], k34["cut_nodes"], k34["n_components"]) == (0, 0, 1)
    assert k34["k_core"] == 3 and k34["one_hop"] == pytest.approx(1 + 12 / 7)
    assert k34["strength"] == pytest.approx(2 * 12 * 0.5 / 7)
    assert k34["spectral_gap"] == pytest.approx(0.5 * 12**0.5, rel=1e-6)
    assert k34["spectral_radius"] == pytest.approx(0.5 * 7, rel=1e-9)
    assert math.isnan(k34["motifs"])  # fewer than 1000 nodes
    assert (m4["cut_edges"], m4["cut_nodes"], m4["n_components"]) == (4, 0, 4)
    assert m4["mean_component_size"] == 2.0 and m4["density"] == pytest.approx(4 / 16)
    assert set(BGE_METRICS) <= set(k34)


def test_bge_only_and_unknown() -> None:
    gs = GraphSet(graphs=(complete("fc1", 3, 4),), encoding="rolled")
    row = compute_bge_metrics(gs, only="cut_edges")[0]
    assert "spectral_gap" not in row and row["cut_edges"] == 0
    with pytest.raises(UnknownMetric, match="sink_nodes"):
        compute_bge_metrics(gs, only=["sink_nodes"])  # not a BGE metric


def test_bge_motif_stream_is_seeded() -> None:
    rng = np.random.default_rng(0)
    edges = sorted({(int(i), int(1000 + j)) for i, j in zip(rng.integers(0, 1000, 8000),
                                                             rng.integers(0, 200, 8000),
                                                             strict=True)})
    big = layer("big", edges, 1000, 200)
    gs = GraphSet(graphs=(big, big), encoding="rolled")
    a = compute_bge_metrics(gs, seed=5, only=["motifs"])
    b = compute_bge_metrics(gs, seed=5, only=["motifs"])
    assert [r["motifs"] for r in a] == [r["motifs"] for r in b]
    assert a[0]["motifs"] > 0
    # one random stream over the layers: the second layer's sample continues the first's
    assert a[0]["motifs"] != a[1]["motifs"]


def test_aggregate_bge() -> None:
    rows = compute_bge_metrics(GraphSet(graphs=(complete("a", 3, 4), matching("b", 4)),
                                        encoding="rolled"))
    mean = aggregate_bge(rows, "mean")
    assert mean["n_layers"] == 2
    assert mean["cut_edges"] == 2.0 and mean["n_components"] == 2.5
    assert math.isnan(mean["motifs"])  # no layer has a value
    wide = aggregate_bge(rows, "wide")
    assert wide["cut_edges@a"] == 0 and wide["cut_edges@b"] == 4
    assert wide["density@b"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="mean"):
        aggregate_bge(rows, "median")


def test_ramanujan_complete_bipartite() -> None:
    r = ramanujan_layer(complete("k", 4, 5, 2.0))
    # K_{4,5}: λ = ±√20 and zeros → λ₃ = 0, Δr = 1; weighted gap 2·√20
    assert r["delta_r"] == pytest.approx(1.0)
    assert r["weighted_spectral_gap"] == pytest.approx(2 * 20**0.5, rel=1e-6)
    assert r["imdb"] == pytest.approx(1.0)  # one subgraph: every left node has degree 5
    assert r["iterative_spectral_gap"] == pytest.approx(2 * 20**0.5, rel=1e-6)


def test_ramanujan_regular_bipartite() -> None:
    r = ramanujan_layer(two_k33("k33"))
    ub = 2 * 2**0.5  # √(3−1) + √(3−1); λ₃ = 3
    assert r["delta_r"] == pytest.approx((ub - 3) / ub)
    assert r["imdb"] == pytest.approx((ub - 3) / ub)
    assert r["weighted_spectral_gap"] == pytest.approx(0.0, abs=1e-6)


def test_ramanujan_edge_cases() -> None:
    r = ramanujan_layer(matching("m", 5))  # d_l = d_r = 1 → ub = 0, λ₃ = 1 → −inf (published)
    assert r["delta_r"] == -math.inf
    assert math.isnan(r["imdb"]) and math.isnan(r["iterative_spectral_gap"])  # no degree ≥ 3
    assert math.isnan(ramanujan_layer(matching("m", 1))["delta_r"])  # 2 nodes: not > 3
    assert math.isnan(degree_bound(0.5, 4.0, 1.0))  # the reference's math domain error
    assert math.isnan(degree_bound(1.0, 1.0, 0.0))  # 0 / 0
    # isolated nodes are dropped before the degrees are averaged
    sparse = layer("s", [(0, 10), (0, 11), (0, 12), (1, 10), (1, 11), (1, 12)], 8, 5)
    assert ramanujan_layer(sparse)["delta_r"] == pytest.approx(
        degree_bound(3.0, 2.0, 0.0))


def test_compute_ramanujan_rows_and_aggregate() -> None:
    gs = GraphSet(graphs=(complete("a", 4, 5), matching("b", 5), two_k33("c")),
                  encoding="rolled")
    rows = compute_ramanujan(gs)
    assert list(rows[0]) == list(RAMANUJAN_FIELDS)
    assert [r["nodes"] for r in rows] == [9, 10, 12]
    mean = aggregate_ramanujan(rows, "mean")
    ub = 2 * 2**0.5
    assert mean["delta_r"] == pytest.approx((1.0 + (ub - 3) / ub) / 2)  # −inf layer skipped
    assert aggregate_ramanujan(rows, "wide")["delta_r@b"] == -math.inf
    only = compute_ramanujan(gs, only="degree_bound")
    assert "imdb" not in only[0] and "delta_r" in only[0]
    with pytest.raises(UnknownMetric, match="imdb"):
        compute_ramanujan(gs, only=["spectral_gap"])
