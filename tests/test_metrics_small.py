"""MGE topometrics on hand-checkable graphs, in both flavours where they differ."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import mgedb.metrics.spectral as spectral_mod
from mgedb.errors import MgedbError, UnknownMetric
from mgedb.graph import Graph, GraphSet
from mgedb.metrics import (
    compute_mge_metrics,
    laplacian,
    motif_estimate,
    normalise,
    published_columns,
    spectral_gap,
    spectral_radius,
    symmetric_adjacency,
    to_igraph,
    top_abs_eigenvalues,
)


def graph(edges: list[tuple[int, int]], dims: list[int], weights: list[float] | None = None,
          encoding: str = "mge") -> Graph:
    src, dst = zip(*edges, strict=True) if edges else ((), ())
    w = np.ones(len(edges)) if weights is None else np.asarray(weights)
    return Graph.from_edges(np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), w, dims,
                            encoding=encoding)


# A 2-layer net: input {0,1,2}, hidden {3,4,5}, output {6,7}. Node 2 is isolated, hidden node 4 a
# sink, hidden node 5 a source; the undirected graph is a tree on the other 7 nodes.
NET = [(0, 3), (1, 3), (1, 4), (3, 6), (3, 7), (5, 7)]
NET_DIMS = [3, 3, 2]
NET_W = [0.5, 0.25, 1.0, 2.0, 0.125, 4.0]


def test_two_layer_net_clean_flavour() -> None:
    r = compute_mge_metrics(graph(NET, NET_DIMS, NET_W))
    assert r["n_nodes"] == 8 and r["n_edges"] == 6
    assert r["sink_nodes"] == 1 and r["removable_out"] == 1  # node 4 (outputs 6, 7 excluded)
    assert r["source_nodes"] == 1 and r["removable_in"] == 1  # node 5 (inputs 0, 1 excluded)
    assert r["disconnected_nodes"] == 1  # node 2
    assert r["one_hop"] == pytest.approx(1 + 6 / 8)
    assert r["two_hop"] == pytest.approx((4 + 5 + 1 + 3 + 1 + 2 + 1 + 1) / 8)
    assert r["cut_edges"] == 6  # a tree: every edge is a bridge
    assert r["cut_nodes"] == 3  # nodes 1, 3, 7
    assert r["k_core"] == pytest.approx(7 / 8)  # core number 1 except the isolated node
    assert r["n_components"] == 2 and r["mean_component_size"] == 4.0
    assert r["strength"] == pytest.approx(2 * sum(NET_W) / 8)
    assert math.isnan(r["motifs"])  # fewer than 1000 nodes: empty sample


def test_two_layer_net_reference_flavour() -> None:
    r = compute_mge_metrics(graph(NET, NET_DIMS, NET_W, encoding="mge-reference"))
    assert r["sink_nodes"] == 3 - 2  # {4, 6, 7} minus the output partition size
    assert r["source_nodes"] == 3 - 3  # {0, 1, 5} minus the input partition size
    assert r["disconnected_nodes"] == 1
    assert r["removable_out"] == 1  # sink 4 < n - 1 - 2 = 5
    assert r["removable_in"] == 1  # source 5 > 3
    # the flavour can also be forced
    assert compute_mge_metrics(graph(NET, NET_DIMS), reference=True)["source_nodes"] == 0


def test_reference_off_by_ones() -> None:
    # node 2 = dimension[0] is a source; the reference's "> dimension[0]" skips it
    g = [(0, 3), (2, 4), (3, 5)]
    clean = compute_mge_metrics(graph(g, [2, 2, 2]), only=["source_nodes", "removable_in"])
    ref = compute_mge_metrics(graph(g, [2, 2, 2], encoding="mge-reference"),
                              only="source_nodes,removable_in")
    assert (clean["source_nodes"], clean["removable_in"]) == (1, 1)
    assert (ref["source_nodes"], ref["removable_in"]) == (0, 0)
    # node 2 = n - 1 - dimension[-1] is a sink; the reference's "< n - 1 - dimension[-1]" skips it
    g = [(0, 1), (0, 2), (1, 3)]
    clean = compute_mge_metrics(graph(g, [1, 2, 1]), only=["sink_nodes", "removable_out"])
    ref = compute_mge_metrics(graph(g, [1, 2, 1], encoding="mge-reference"),
                              only=["sink_nodes", "removable_out"])
    assert (clean["sink_nodes"], clean["removable_out"]) == (1, 1)
    assert (ref["sink_nodes"], ref["removable_out"]) == (1, 0)


def test_reference_counts_can_be_negative() -> None:
    # an output neuron without in-edge makes the reference's sink count negative
    r = compute_mge_metrics(graph([(0, 1), (1, 2)], [1, 1, 2], encoding="mge-reference"),
                            only=["sink_nodes"])
    assert r["sink_nodes"] == -1


def test_path() -> None:
    r = compute_mge_metrics(graph([(0, 1), (1, 2), (2, 3)], [1, 1, 1, 1]))
    assert r["one_hop"] == pytest.approx(7 / 4)
    assert r["two_hop"] == pytest.approx(9 / 4)
    assert (r["cut_edges"], r["cut_nodes"], r["n_components"]) == (3, 2, 1)
    assert r["k_core"] == 1.0
    assert (r["sink_nodes"], r["source_nodes"], r["disconnected_nodes"]) == (0, 0, 0)
    phi = (1 + 5**0.5) / 2  # P4: eigenvalues ±φ, ±1/φ
    assert r["spectral_gap"] == pytest.approx(phi - 1 / phi, rel=1e-6)
    assert r["spectral_radius"] == pytest.approx(2 + 2**0.5, rel=1e-9)


@pytest.mark.parametrize("k", [2, 5, 9])
def test_star(k: int) -> None:
    w = np.arange(1, k + 1, dtype=float) / 4
    r = compute_mge_metrics(graph([(0, i) for i in range(1, k + 1)], [1, k], list(w)))
    assert (r["cut_edges"], r["cut_nodes"]) == (k, 1)
    assert r["k_core"] == 1.0
    assert r["one_hop"] == pytest.approx(1 + k / (k + 1))
    assert r["two_hop"] == pytest.approx(r["one_hop"])
    assert r["strength"] == pytest.approx(2 * w.sum() / (k + 1))
    # weighted star: adjacency ±‖w‖ and zeros
    assert r["spectral_gap"] == pytest.approx(np.linalg.norm(w), rel=1e-6)
    unit = compute_mge_metrics(graph([(0, i) for i in range(1, k + 1)], [1, k]))
    assert unit["spectral_radius"] == pytest.approx(k + 1, rel=1e-9)  # Laplacian of K_{1,k}


@pytest.mark.parametrize(("a", "b"), [(2, 3), (3, 3), (4, 7)])
@pytest.mark.parametrize("encoding", ["mge", "mge-reference"])
def test_complete_bipartite(a: int, b: int, encoding: str) -> None:
    edges = [(i, a + j) for i in range(a) for j in range(b)]
    r = compute_mge_metrics(graph(edges, [a, b], encoding=encoding))
    assert (r["sink_nodes"], r["source_nodes"], r["disconnected_nodes"]) == (0, 0, 0)
    assert (r["removable_out"], r["removable_in"]) == (0, 0)
    assert (r["cut_edges"], r["cut_nodes"], r["n_components"]) == (0, 0, 1)
    assert r["k_core"] == min(a, b)
    assert r["one_hop"] == pytest.approx(1 + a * b / (a + b))
    # spectrum of K_{a,b}: ±√(ab) and zeros; Laplacian 0, a, b, a + b
    assert r["spectral_gap"] == pytest.approx((a * b) ** 0.5, rel=1e-6)
    assert r["spectral_radius"] == pytest.approx(a + b, rel=1e-9)


def test_symmetric_adjacency_first_weight_and_loops() -> None:
    a = symmetric_adjacency(np.array([0, 1, 0, 2]), np.array([1, 0, 1, 2]),
                            np.array([3.0, 5.0, 7.0, 2.0]), 3).toarray()
    # 0–1 appears three times (both directions): the first weight (3) wins; a loop counts twice
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, [[0, 3, 0], [3, 0, 0], [0, 0, 4]])
    lap = laplacian(a)
    np.testing.assert_array_equal(lap.toarray(), [[3, -3, 0], [-3, 3, 0], [0, 0, 0]])


def test_arpack_path_agrees_with_dense() -> None:
    rng = np.random.default_rng(1)
    n = spectral_mod.DENSE_MAX + 60
    m = 6 * n
    s, t = rng.integers(0, n, m), rng.integers(0, n, m)
    a = symmetric_adjacency(s, t, rng.random(m), n)
    dense = np.sort(np.abs(np.linalg.eigvalsh(a.toarray().astype(np.float64))))[::-1][:3]
    np.testing.assert_allclose(top_abs_eigenvalues(a, 3), dense, rtol=2e-5)
    assert spectral_gap(a) == pytest.approx(dense[0] - dense[2], rel=1e-4)
    lap = laplacian(a).toarray()
    assert spectral_radius(a) == pytest.approx(np.linalg.eigvalsh(lap)[-1], rel=1e-7)
    assert spectral_gap(a, seed=0) == spectral_gap(a, seed=0)  # seeded start vector


def test_tiny_and_empty_graphs() -> None:
    r = compute_mge_metrics(graph([(0, 1)], [1, 1]))
    assert math.isnan(r["spectral_gap"])  # needs 3 eigenvalues
    assert r["spectral_radius"] == pytest.approx(2.0)
    r = compute_mge_metrics(graph([], [2, 2]))
    assert (r["n_edges"], r["disconnected_nodes"], r["n_components"]) == (0, 4, 4)
    assert (r["spectral_gap"], r["spectral_radius"], r["strength"]) == (0.0, 0.0, 0.0)


def test_only_computes_only_those(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object, **__: object) -> float:
        raise AssertionError("eigensolver called although not asked")

    monkeypatch.setattr(spectral_mod, "spectral_gap", boom)
    monkeypatch.setattr(spectral_mod, "laplacian_radius", boom)
    r = compute_mge_metrics(graph(NET, NET_DIMS), only="sink_nodes, cut-edges")
    assert list(r) == ["n_nodes", "n_edges", "sink_nodes", "cut_edges"]


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(UnknownMetric, match=r"unknown metric 'bogus'.*spectral_radius"):
        compute_mge_metrics(graph(NET, NET_DIMS), only=["sink_nodes", "bogus"])


def test_normalise_matches_published_table() -> None:
    raw = compute_mge_metrics(graph(NET, NET_DIMS, NET_W))
    norm = normalise(raw)
    assert list(norm) == published_columns(sizes=True)
    n, e = 8.0, 6.0
    assert norm["sink_nodes"] == raw["sink_nodes"] / n
    assert norm["mean_connected_components"] == raw["mean_component_size"] / n
    assert norm["1-hop_nei"] == raw["one_hop"] / e
    assert norm["avg_node_strength"] == raw["strength"] / e
    assert norm["no_connected_components"] == raw["n_components"]
    assert norm["spectral_radius"] == raw["spectral_radius"]
    partial = normalise({"n_nodes": 4, "n_edges": 0, "cut_edges": 0})
    assert list(partial) == ["nodes", "edges", "cut-edges"] and math.isnan(partial["cut-edges"])


def test_motif_estimate_seeded_and_private() -> None:
    rng = np.random.default_rng(0)
    n, m = 1500, 6000
    s = rng.integers(0, n - 1, m)
    t = np.minimum(s + rng.integers(1, 40, m), n - 1)
    g = to_igraph(s, t, n)
    state = random.getstate()
    first = motif_estimate(g, random.Random(3))
    assert random.getstate() == state  # the global random module is left alone
    assert motif_estimate(g, random.Random(3)) == first
    # equals igraph's own estimate after random.seed(3), as the reference called it
    random.seed(3)
    assert g.motifs_randesu_estimate(size=4, sample=int(0.001 * n)) == first
    random.setstate(state)
    assert first > 0


def test_symmetric_adjacency_of_a_graph_and_graphset_guard() -> None:
    g = graph(NET, NET_DIMS, NET_W)
    a = symmetric_adjacency(g)
    b = symmetric_adjacency(g.src, g.dst, g.weight, g.n_nodes)
    assert (a != b).nnz == 0 and a[3, 7] == a[7, 3] == np.float32(0.125)
    with pytest.raises(TypeError, match="needs a Graph"):
        symmetric_adjacency(g.src)
    with pytest.raises(MgedbError, match="compute_bge_metrics"):
        compute_mge_metrics(GraphSet(graphs=(g,), encoding="rolled"))  # type: ignore[arg-type]
