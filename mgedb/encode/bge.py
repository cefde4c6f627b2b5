"""Per-layer bipartite graph encodings (BGEs) of the weighted layers: rolled, rolled-channel.

* ``rolled`` (Hoang et al., ICLR 2023): a conv weight ``(Cout, Cin/g, kh, kw)`` is one bipartite
  graph with a left node per ``(ci, a, b)`` fan-in entry (id ``ci·kh·kw + a·kw + b``) and a right
  node per output channel; edge ``(ci, a, b) → co`` iff ``W[co, ci, a, b] ≠ 0``, weight ``|w|``.
* ``rolled-channel`` (Prabhu et al., ECCV 2018): a left node per input channel and a right node per
  output channel; edge ``ci → co`` iff the kernel ``W[co, ci]`` has a nonzero, weight = its L2 norm.
  For grouped convs the left node is the real input channel of the group.
* Linear layers are the same in both: edge ``i → o`` iff ``W[o, i] ≠ 0``.

Weights are float32 (the reference rounds them to float16; differences are below 1e-3 relative).
"""

from __future__ import annotations

import numpy as np

from mgedb.graph import EdgeKind, Graph, GraphSet, LayerSpec, NodeKind, Partition
from mgedb.vocab import Encoding

__all__ = ["build_bge"]


def _layer_graph(spec: LayerSpec, w: np.ndarray, channel: bool) -> Graph:
    kind = EdgeKind.LINEAR if spec.op == "linear" else (
        EdgeKind.SHORTCUT if spec.role == "shortcut" else EdgeKind.CONV)
    if spec.op == "linear":
        o, i = np.nonzero(w)
        left = Partition(f"{spec.name}:in", NodeKind.NEURON, (w.shape[1], 1, 1))
        src, dst, weight = i, o, np.abs(w[o, i])
    elif channel:
        cout, cin_g = w.shape[:2]
        norms = np.sqrt((w.astype(np.float64) ** 2).sum(axis=(2, 3)))
        o, ci = np.nonzero(norms)
        cin = spec.in_shape[0]
        src = (o // (cout // spec.groups)) * cin_g + ci
        left = Partition(f"{spec.name}:in", NodeKind.CONV, (cin, 1, 1))
        dst, weight = o, norms[o, ci]
    else:
        cout, cin_g, kh, kw = w.shape
        o, ci, a, b = np.nonzero(w)
        left = Partition(f"{spec.name}:in", NodeKind.WEIGHT, (cin_g, kh, kw))
        src, dst, weight = ci * kh * kw + a * kw + b, o, np.abs(w[o, ci, a, b])
    right = Partition(f"{spec.name}:out", NodeKind.NEURON, (w.shape[0], 1, 1))
    order = np.lexsort((dst, src))
    g = Graph.from_edges(
        src[order], dst[order] + left.size, weight[order], [left.size, right.size],
        kind=np.full(len(src), kind, np.uint8), partitions=[left, right],
    )
    return Graph(src=g.src, dst=g.dst, weight=g.weight, kind=g.kind, partitions=g.partitions,
                 encoding=_encoding(channel), layers=(spec,))


def build_bge(layers: tuple[LayerSpec, ...], weights: list[np.ndarray], *, channel: bool
              ) -> GraphSet:
    """One bipartite graph per weighted layer, in execution order."""
    graphs = tuple(_layer_graph(s, w, channel) for s, w in zip(layers, weights, strict=True))
    return GraphSet(graphs=graphs, encoding=_encoding(channel))


def _encoding(channel: bool) -> str:
    return (Encoding.ROLLED_CHANNEL if channel else Encoding.ROLLED).value
