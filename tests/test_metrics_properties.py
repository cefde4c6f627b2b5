"""Hypothesis properties of the MGE topometrics on random layered graphs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgedb.graph import Graph
from mgedb.metrics import compute_mge_metrics, normalise
from mgedb.metrics.registry import METRICS, published_columns

nx = pytest.importorskip("networkx")

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def layered(draw: st.DrawFn, dense: bool = False) -> Graph:
    """A random layered DAG: edges between consecutive partitions, sometimes skipping one."""
    dims = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    off = np.concatenate([[0], np.cumsum(dims)])
    pairs = []
    for b in range(len(dims) - 1):
        for target in (b + 1, b + 2):
            if target >= len(dims) or (target == b + 2 and dense):
                continue
            for u in range(off[b], off[b + 1]):
                for v in range(off[target], off[target + 1]):
                    pairs.append((u, v))
    if dense:
        chosen = pairs
    else:
        mask = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
        chosen = [p for p, keep in zip(pairs, mask, strict=True) if keep]
    w = draw(st.lists(st.floats(0.0, 4.0, width=16), min_size=len(chosen),
                      max_size=len(chosen)))
    src = np.array([p[0] for p in chosen], dtype=np.int64)
    dst = np.array([p[1] for p in chosen], dtype=np.int64)
    return Graph.from_edges(src, dst, np.array(w), dims,
                            encoding=draw(st.sampled_from(["mge", "mge-reference"])))


def relabel(g: Graph, perm: np.ndarray) -> Graph:
    return Graph.from_edges(perm[g.src], perm[g.dst], g.weight, g.dimension.tolist(),
                            encoding=g.encoding)


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=rel, abs=1e-9)


@SETTINGS
@given(layered())
def test_one_hop_is_one_plus_m_over_n(g: Graph) -> None:
    r = compute_mge_metrics(g, only=["one_hop", "strength"])
    assert r["one_hop"] == pytest.approx(1 + g.n_edges / g.n_nodes)
    assert r["strength"] == pytest.approx(2 * float(np.sum(g.weight, dtype=np.float64)) / g.n_nodes)


@SETTINGS
@given(layered(), st.randoms(use_true_random=False))
def test_invariant_under_relabelling(g: Graph, rnd: object) -> None:
    # any permutation of all ids: every metric of the undirected / weighted / out-neighbourhood
    # views is unchanged (sink/source depend on the partition layout, motifs on the id order)
    perm = np.arange(g.n_nodes)
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    names = ["one_hop", "two_hop", "strength", "k_core", "cut_edges", "cut_nodes",
             "n_components", "mean_component_size", "spectral_gap", "spectral_radius"]
    a = compute_mge_metrics(g, only=names)
    b = compute_mge_metrics(relabel(g, perm), only=names)
    for k in names:
        # the Laplacian's degrees are float32 sums (as in the reference): order-dependent rounding
        assert close(a[k], b[k], rel=1e-6 if k.startswith("spectral") else 1e-9), k


@SETTINGS
@given(layered(), st.randoms(use_true_random=False))
def test_clean_flavour_invariant_under_relabelling_within_partitions(g: Graph, rnd: object
                                                                     ) -> None:
    perm = np.arange(g.n_nodes)
    off = g.offsets
    for b in range(len(g.dimension)):
        block = perm[off[b]:off[b + 1]].copy()
        rnd.shuffle(block)  # type: ignore[attr-defined]
        perm[off[b]:off[b + 1]] = block
    clean = Graph.from_edges(g.src, g.dst, g.weight, g.dimension.tolist(), encoding="mge")
    names = ["sink_nodes", "source_nodes", "disconnected_nodes", "removable_out",
             "removable_in", "n_components"]
    assert compute_mge_metrics(clean, only=names) == compute_mge_metrics(relabel(clean, perm),
                                                                         only=names)


@SETTINGS
@given(layered(dense=True))
def test_dense_net_has_no_sinks_or_sources(g: Graph) -> None:
    r = compute_mge_metrics(g, only=["sink_nodes", "source_nodes", "removable_out",
                                     "removable_in", "disconnected_nodes", "n_components"])
    assert (r["sink_nodes"], r["source_nodes"], r["disconnected_nodes"]) == (0, 0, 0)
    assert (r["removable_out"], r["removable_in"], r["n_components"]) == (0, 0, 1)


@SETTINGS
@given(layered())
def test_agrees_with_networkx(g: Graph) -> None:
    r = compute_mge_metrics(g, only=["cut_edges", "cut_nodes", "k_core", "n_components",
                                     "two_hop", "sink_nodes", "source_nodes"])
    und = nx.Graph()
    und.add_nodes_from(range(g.n_nodes))
    und.add_edges_from(zip(g.src.tolist(), g.dst.tolist(), strict=True))
    assert r["cut_edges"] == sum(1 for _ in nx.bridges(und))
    assert r["cut_nodes"] == sum(1 for _ in nx.articulation_points(und))
    assert r["k_core"] == pytest.approx(np.mean(list(nx.core_number(und).values())))
    assert r["n_components"] == nx.number_connected_components(und)
    di = nx.DiGraph()
    di.add_nodes_from(range(g.n_nodes))
    di.add_edges_from(zip(g.src.tolist(), g.dst.tolist(), strict=True))
    two = [len(nx.single_source_shortest_path_length(di, v, cutoff=2)) for v in di]
    assert r["two_hop"] == pytest.approx(np.mean(two))
    out_deg = np.array([di.out_degree(v) for v in range(g.n_nodes)])
    in_deg = np.array([di.in_degree(v) for v in range(g.n_nodes)])
    sinks = np.flatnonzero((out_deg == 0) & (in_deg > 0))
    sources = np.flatnonzero((out_deg > 0) & (in_deg == 0))
    if g.encoding == "mge-reference":
        assert r["sink_nodes"] == len(sinks) - g.dimension[-1]
        assert r["source_nodes"] == len(sources) - g.dimension[0]
    else:
        assert r["sink_nodes"] == int((sinks < g.offsets[-2]).sum())
        assert r["source_nodes"] == int((sources >= g.offsets[1]).sum())


@SETTINGS
@given(layered())
def test_spectral_agrees_with_dense_eigenvalues(g: Graph) -> None:
    r = compute_mge_metrics(g, only=["spectral_gap", "spectral_radius"])
    a = np.zeros((g.n_nodes, g.n_nodes))
    for s, t, w in zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist(), strict=True):
        a[s, t] = a[t, s] = w  # unique edges, no loops
    mags = np.sort(np.abs(np.linalg.eigvalsh(a)))[::-1]
    gap = mags[0] - mags[2] if g.n_nodes >= 3 else math.nan
    assert close(r["spectral_gap"], gap) or r["spectral_gap"] == pytest.approx(gap, abs=1e-5)
    radius = np.linalg.eigvalsh(np.diag(a.sum(axis=0)) - a)[-1]
    assert r["spectral_radius"] == pytest.approx(radius, rel=1e-6, abs=1e-9)


@SETTINGS
@given(layered())
def test_normalise_divides_as_registered(g: Graph) -> None:
    raw = compute_mge_metrics(g, only=[m.name for m in METRICS if m.family != "spectral"])
    norm = normalise(raw)
    assert [c for c in published_columns() if c in norm] == [c for c in norm
                                                              if c not in ("nodes", "edges")]
    for m in METRICS:
        if m.column not in norm or m.family == "size":
            continue
        div = {"N": g.n_nodes, "E": g.n_edges, None: 1}[m.divisor]
        if div:
            assert close(norm[m.column] * div, float(raw[m.name])), m.name
        else:
            assert math.isnan(norm[m.column])


@SETTINGS
@given(layered())
def test_component_paths_agree(g: Graph) -> None:
    scipy_path = compute_mge_metrics(g, only=["n_components", "mean_component_size"])
    igraph_path = compute_mge_metrics(g, only=["n_components", "mean_component_size", "k_core"])
    assert scipy_path["n_components"] == igraph_path["n_components"]
    assert scipy_path["mean_component_size"] == igraph_path["mean_component_size"]
