"""The compiled kernels and the array engine against igraph / scipy on random multigraphs.

Every kernel of :mod:`mgedb.metrics.kernels` replaces a library call; here each one meets that call
on graphs with parallel edges, reverse pairs, loops and isolated nodes, and the counted motif
estimate meets igraph's RAND-ESU enumeration under the same seed (value and RNG state afterwards).
"""

from __future__ import annotations

import random

import igraph
import numpy as np
import pytest
import scipy.sparse as sp

from mgedb.graph import Graph
from mgedb.metrics import compute_mge_metrics, kernels, spectral
from mgedb.metrics.motifs import (
    motif_estimate_counted,
    motif_sample,
    motif_standard_error,
    vitter_sample,
)
from mgedb.metrics.neighbourhood import motif_estimate, two_hop
from mgedb.metrics.views import to_igraph


def random_multigraph(seed: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m).astype(np.int32)
    dst = rng.integers(0, n, m).astype(np.int32)
    dup = rng.integers(0, m, m // 10)  # parallel edges and reverse pairs
    src = np.concatenate([src, src[dup[: len(dup) // 2]], dst[dup[len(dup) // 2:]]])
    dst = np.concatenate([dst, dst[dup[: len(dup) // 2]], src[dup[len(dup) // 2:]]])
    return src, dst


def layered(seed: int, dims: list[int], per: int) -> Graph:
    """A simple random layered DAG (edges between consecutive partitions, every pair once)."""
    rng = np.random.default_rng(seed)
    off = np.concatenate([[0], np.cumsum(dims)])
    keys = []
    for b in range(len(dims) - 1):
        s = rng.integers(off[b], off[b + 1], per)
        t = rng.integers(off[b + 1], off[b + 2], per)
        keys.append(s * off[-1] + t)
    key = np.unique(np.concatenate(keys))
    rng.shuffle(key)  # the encoder's edge order is not sorted either
    w = np.abs(rng.normal(0, 0.1, len(key))).astype(np.float16)
    return Graph.from_edges(key // off[-1], key % off[-1], w, dims, encoding="mge")


CASES = [(s, n, m) for s, (n, m) in enumerate([(40, 60), (150, 400), (300, 1500), (500, 700)])]


@pytest.mark.parametrize(("seed", "n", "m"), CASES)
def test_graph_kernels_equal_igraph(seed: int, n: int, m: int) -> None:
    src, dst = random_multigraph(seed, n, m)
    ip, ix, _ = kernels.directed_csr_arrays(src, dst, n)
    adj = kernels.undirected_adjacency(ip, ix)
    g = to_igraph(src, dst, n)
    bridges, arts, comps = kernels.bridges_articulation_components(adj)
    assert bridges == len(g.bridges())
    assert arts == len(g.articulation_points())
    assert comps == len(g.connected_components(mode="weak"))
    assert kernels.coreness(adj).tolist() == g.coreness(mode="all")
    one, two = kernels.closed_neighbourhood_counts(ip, ix)
    closed = sp.csr_matrix((np.ones(len(src) + n), (np.concatenate([src, np.arange(n)]),
                                                     np.concatenate([dst, np.arange(n)]))),
                           shape=(n, n))
    assert one == closed.nnz
    assert two / n == pytest.approx(two_hop(closed), rel=1e-12)
    cut = kernels.two_step_split(ip, ix)
    assert 0 <= cut <= n
    halves = [kernels.closed_neighbourhood_counts(ip, ix, nodes=r) for r in ((0, cut), (cut, n))]
    assert (sum(h[0] for h in halves), sum(h[1] for h in halves)) == (one, two)


@pytest.mark.parametrize(("seed", "n", "m"), CASES)
def test_motif_root_counts_sum_to_igraph_total(seed: int, n: int, m: int) -> None:
    src, dst = random_multigraph(seed, n, m)
    ip, ix, _ = kernels.directed_csr_arrays(src, dst, n)
    adj = kernels.undirected_adjacency(ip, ix)
    counts = kernels.motif_root_counts(adj, np.arange(n))
    assert int(counts.sum()) == to_igraph(src, dst, n).motifs_randesu_no(size=4)


@pytest.mark.parametrize("seed", range(6))
def test_counted_motif_estimate_is_igraphs_under_the_same_seed(seed: int) -> None:
    n = 1000 * (seed + 1) + 17 * seed  # samples of 1 … 6 vertices
    src, dst = random_multigraph(seed, n, 3 * n)
    g = to_igraph(src, dst, n)
    rng_ig, rng_ours = random.Random(seed), random.Random(seed)
    expected = motif_estimate(g, rng_ig)
    ip, ix, _ = kernels.directed_csr_arrays(src, dst, n)
    got = motif_estimate_counted(kernels.undirected_adjacency(ip, ix), n,
                                 motif_sample(n, rng_ours))
    assert got == expected
    assert rng_ours.getstate() == rng_ig.getstate()


@pytest.mark.parametrize("size", [1, 10, 97, 1500])
def test_vitter_sample_matches_igraphs_sampler(size: int) -> None:
    # 1500 of ~12k crosses into Vitter's method A. igraph's sample is read through its estimate
    # on disjoint stars of 3…10 leaves: only a centre roots motifs (C(leaves, 3) of them)
    leaves = 3 + np.arange(1500) % 8
    centres = np.concatenate([[0], np.cumsum(leaves + 1)[:-1]])
    n = int(centres[-1] + leaves[-1] + 1)
    src = np.repeat(centres, leaves)
    dst = src + np.concatenate([np.arange(1, k + 1) for k in leaves])
    roots = np.zeros(n, dtype=np.int64)
    roots[centres] = leaves * (leaves - 1) * (leaves - 2) // 6
    sample = vitter_sample(random.Random(5), 0, n - 1, size)
    assert sample == sorted(set(sample)) and sample[0] >= 0 and sample[-1] < n
    g = igraph.Graph(n=n, edges=list(zip(src.tolist(), dst.tolist(), strict=True)))
    igraph.set_random_number_generator(random.Random(5))
    try:
        expected = g.motifs_randesu_estimate(size=4, sample=size)
    finally:
        igraph.set_random_number_generator(random)
    assert float(roots[sample].sum()) * (n / size) == expected


def test_motif_standard_error_covers_the_total() -> None:
    src, dst = random_multigraph(11, 5000, 12000)
    n = 5000
    ip, ix, _ = kernels.directed_csr_arrays(src, dst, n)
    adj = kernels.undirected_adjacency(ip, ix)
    total = int(kernels.motif_root_counts(adj, np.arange(n)).sum())
    rng = np.random.default_rng(0)
    z = []
    for _ in range(200):
        roots = np.sort(rng.choice(n, 50, replace=False))
        c = kernels.motif_root_counts(adj, roots)
        z.append((c.sum() * n / 50 - total) / motif_standard_error(c, n))
    assert abs(float(np.mean(z))) < 0.3  # unbiased
    assert 0.7 < float(np.std(z)) < 1.4  # the stated error is the actual spread


def test_fast_spectral_paths_equal_scipy() -> None:
    g = layered(3, [300, 400, 400, 200], 2500)
    a = spectral.symmetric_adjacency(g)
    ref_gap = spectral.spectral_gap(a, seed=0)
    ref_radius = spectral.spectral_radius(a, seed=0)
    products: dict[str, int] = {}
    got = compute_mge_metrics(g, only="spectral_gap,spectral_radius", seed=0, products=products)
    assert set(products) == {"spectral_gap", "spectral_radius"}
    assert all(k >= 3 for k in products.values())
    assert got["spectral_gap"] == pytest.approx(ref_gap, rel=1e-4)
    assert got["spectral_radius"] == pytest.approx(ref_radius, rel=1e-9)
    ip, ix, d = kernels.directed_csr_arrays(g.src, g.dst, g.n_nodes, g.weight)
    assert kernels.is_simple_forward(ip, ix)
    deg = kernels.sym_row_sums_f32(ip, ix, d)
    assert np.array_equal(deg, np.asarray(a.sum(axis=0)).ravel().astype(np.float64))
    x = np.random.default_rng(0).uniform(-1, 1, g.n_nodes).astype(np.float32)
    y = np.empty_like(x)
    kernels.sym_matvec(ip, kernels.unsigned(ix), d, x, y)
    assert np.allclose(y, a @ x, rtol=1e-5, atol=1e-6)
    yl = np.empty(g.n_nodes)
    kernels.sym_laplacian_matvec(ip, kernels.unsigned(ix), d, deg, x.astype(np.float64), yl)
    assert np.allclose(yl, spectral.laplacian(a) @ x.astype(np.float64), rtol=1e-9, atol=1e-9)


def test_threads_do_not_change_any_value() -> None:
    g = layered(4, [1200, 900, 900, 300], 9000)
    one = compute_mge_metrics(g, seed=2, workers=1)
    two = compute_mge_metrics(g, seed=2, workers=2)
    assert one == two


def test_exact_and_fast_motifs_agree_on_a_layered_graph() -> None:
    g = layered(5, [1500, 1200, 1200, 400], 12000)
    fast = compute_mge_metrics(g, only="motifs", seed=7)["motifs"]
    assert compute_mge_metrics(g, only="motifs", seed=7, motifs="exact")["motifs"] == fast
    assert not np.isnan(fast)
