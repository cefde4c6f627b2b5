"""Graphs for the store tests: a hand-computed tiny MGE and random layered graphs."""

from __future__ import annotations

import numpy as np

from mgedb.graph import EdgeKind, Graph, GraphSet, NodeKind, Partition

#: partitions of :func:`tiny_graph`: 4 input pixels (ids 0-3), 3 conv units (4-6), 2 neurons (7-8)
TINY_PARTS = (
    Partition("input", NodeKind.INPUT, (1, 2, 2)),
    Partition("conv1", NodeKind.CONV, (3, 1, 1)),
    Partition("fc", NodeKind.NEURON, (2, 1, 1)),
)
TINY_EDGES = (  # (src, dst, |w|, kind)
    (0, 4, 0.5, EdgeKind.CONV), (1, 4, 1.0, EdgeKind.CONV), (2, 5, 2.0, EdgeKind.CONV),
    (4, 7, 3.0, EdgeKind.LINEAR), (4, 8, 0.25, EdgeKind.LINEAR), (6, 8, 4.0, EdgeKind.LINEAR),
    (0, 7, 1.0, EdgeKind.SHORTCUT),
)


def tiny_graph(encoding: str = "mge") -> Graph:
    """9 nodes, 7 edges; pixel 3 is isolated, conv 5 a dead end, conv 6 fed by nothing."""
    s, d, w, k = zip(*TINY_EDGES, strict=True)
    return Graph.from_edges(s, d, w, [4, 3, 2], kind=k, encoding=encoding,
                            partitions=TINY_PARTS, meta={"model": "tiny"})


#: The metrics of :func:`tiny_graph`, by hand. Undirected view: triangle 0-4-7, pendant edges
#: 1-4, 4-8, 8-6 and the separate edge 2-5, isolated 3 → 3 components, bridges 1-4, 4-8, 6-8, 2-5,
#: articulation points 4 and 8, core numbers 2 (0, 4, 7), 1 (1, 2, 5, 6, 8), 0 (3).
TINY_METRICS = {
    "mge": {
        "n_nodes": 9, "n_edges": 7,
        "sink_nodes": 1,  # conv 5 (neurons 7, 8 are outputs)
        "source_nodes": 1,  # conv 6 (pixels are inputs)
        "disconnected_nodes": 1,  # pixel 3
        "removable_out": 1,  # in-degree of conv 5
        "removable_in": 1,  # out-degree of conv 6
        "one_hop": (9 + 7) / 9,  # 7 distinct (u, v) pairs
        "two_hop": (9 + 7 + 4 - 1) / 9,  # 4 two-step pairs, (0, 7) also direct
        "strength": 2 * 11.75 / 9,
        "k_core": 11 / 9,
        "cut_edges": 4,
        "cut_nodes": 2,
        "n_components": 3,
        "mean_component_size": 3.0,
    },
}
#: reference flavour: sinks 5, 7, 8 minus |fc| = 1; sources 0, 1, 2, 6 minus |input| = 0;
#: removable out over ids < 9 - 1 - 2 = 6 (conv 5: 1); removable in over ids > 4 (conv 6: 1)
TINY_METRICS["mge-reference"] = {**TINY_METRICS["mge"], "sink_nodes": 1, "source_nodes": 0}


def random_graph(seed: int, *, encoding: str = "mge", n_parts: int | None = None,
                 duplicates: bool = True) -> Graph:
    """A random layered graph: edges between consecutive partitions, some skip edges two
    partitions ahead, some edges inside a partition (towards higher ids, like the reference's
    stride-2 mis-wiring), optional duplicate edges, isolated nodes likely."""
    rng = np.random.default_rng(seed)
    nparts = n_parts or int(rng.integers(2, 5))
    sizes = rng.integers(1, 12, size=nparts)
    kinds = [NodeKind.INPUT] + [NodeKind.CONV] * (nparts - 2) + [NodeKind.NEURON]
    if nparts == 1:
        kinds = [NodeKind.INPUT]
    parts = tuple(Partition(f"p{i}", kinds[i] if i < len(kinds) else NodeKind.NEURON,
                            (int(sz), 1, 1)) for i, sz in enumerate(sizes))
    off = np.concatenate([[0], np.cumsum(sizes)])
    src, dst, kind = [], [], []
    for b in range(nparts - 1):
        m = int(rng.integers(0, sizes[b] * sizes[b + 1] + 1))
        src.append(rng.integers(off[b], off[b + 1], m))
        dst.append(rng.integers(off[b + 1], off[b + 2], m))
        kind.append(np.zeros(m, np.uint8))
        if b + 2 <= nparts - 1 and rng.random() < 0.5:
            m2 = int(rng.integers(0, 4))
            src.append(rng.integers(off[b], off[b + 1], m2))
            dst.append(rng.integers(off[b + 2], off[b + 3], m2))
            kind.append(np.full(m2, EdgeKind.SHORTCUT, np.uint8))
        if sizes[b + 1] > 1 and rng.random() < 0.3:
            a = rng.integers(off[b + 1], off[b + 2] - 1, 2)
            src.append(a)
            dst.append(a + 1)
            kind.append(np.zeros(2, np.uint8))
    s = np.concatenate(src) if src else np.zeros(0, np.int64)
    d = np.concatenate(dst) if dst else np.zeros(0, np.int64)
    k = np.concatenate(kind) if kind else np.zeros(0, np.uint8)
    if not duplicates and len(s):
        pairs = np.unique(np.stack([s, d], 1), axis=0, return_index=True)[1]
        s, d, k = s[np.sort(pairs)], d[np.sort(pairs)], k[np.sort(pairs)]
    w = rng.choice(np.array([0.0, 0.125, 0.5, 1.5, 2.0], np.float32), size=len(s)) \
        + rng.random(len(s)).astype(np.float32)
    return Graph.from_edges(s, d, w, [int(x) for x in sizes], kind=k, encoding=encoding,
                            partitions=parts, meta={"seed": seed})


def tiny_graphset() -> GraphSet:
    """Two bipartite layer graphs (a rolled BGE-like value)."""
    g1 = Graph.from_edges([0, 1, 2], [3, 3, 4], [0.5, 1.0, 2.0], [3, 2],
                          partitions=(Partition("l0.in", NodeKind.WEIGHT, (3, 1, 1)),
                                      Partition("l0.out", NodeKind.NEURON, (2, 1, 1))),
                          encoding="rolled")
    g2 = Graph.from_edges([0, 1], [2, 2], [3.0, 4.0], [2, 1],
                          partitions=(Partition("l1.in", NodeKind.WEIGHT, (2, 1, 1)),
                                      Partition("l1.out", NodeKind.NEURON, (1, 1, 1))),
                          encoding="rolled")
    return GraphSet(graphs=(g1, g2), encoding="rolled", meta={"model": "tiny-bge"})


def same_graph(a: Graph | GraphSet, b: Graph | GraphSet) -> bool:
    """Equal partitions, encoding, layers and edge arrays, edge for edge in the same order."""
    if isinstance(a, GraphSet) or isinstance(b, GraphSet):
        return (isinstance(a, GraphSet) and isinstance(b, GraphSet) and a.encoding == b.encoding
                and len(a) == len(b) and all(same_graph(x, y) for x, y in zip(a, b, strict=True)))
    return bool(a.partitions == b.partitions and a.encoding == b.encoding
                and a.layers == b.layers and a.n_edges == b.n_edges
                and np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)
                and np.array_equal(a.weight, b.weight) and np.array_equal(a.kind, b.kind))


def chain_graph(n: int, seed: int, *, inputs: int = 1) -> Graph:
    """``inputs`` input pixels each feeding one conv unit, ``n`` conv units in a chain
    (``n - 1`` C→C edges) and every conv unit with an even index feeding one of 2 neurons: a
    network whose ConvUnit table and rel regions grow with ``n`` (Kùzu's node groups hold
    131,072 nodes, its CSR regions 1,024), with weights drawn from ``seed`` so two chains of the
    same size are different networks."""
    rng = np.random.default_rng(seed)
    pix = np.arange(inputs, dtype=np.int64)
    conv = inputs + np.arange(n, dtype=np.int64)
    out = conv[::2]
    src = np.concatenate([pix, conv[:-1], out])
    dst = np.concatenate([conv[:inputs], conv[1:], inputs + n + (out % 2)])
    kind = np.concatenate([np.full(inputs + n - 1, EdgeKind.CONV, np.uint8),
                           np.full(len(out), EdgeKind.LINEAR, np.uint8)])
    parts = (Partition("input", NodeKind.INPUT, (1, 1, inputs)),
             Partition("conv", NodeKind.CONV, (1, 1, n)),
             Partition("fc", NodeKind.NEURON, (2, 1, 1)))
    w = rng.random(len(src)).astype(np.float32) + np.float32(0.5)
    return Graph.from_edges(src, dst, w, [inputs, n, 2], kind=kind, encoding="mge",
                            partitions=parts, meta={"seed": seed})
