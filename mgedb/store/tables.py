"""The rows a graph becomes in the store, as Arrow tables (pure: no database here).

Both backends load the same tables: Kùzu with ``COPY … FROM`` an Arrow table, Neo4j with
``UNWIND $rows`` batches cut from them. Node labels follow the partition kind:

=============  ===========================================================
label          nodes
=============  ===========================================================
``InputPixel`` a pixel of the (padded) input image (partition kind INPUT)
``ConvUnit``   a feature-map position of a conv channel (kind CONV)
``Neuron``     a unit of a linear layer (kind NEURON; WEIGHT also maps here)
``BgeNode``    a node of a per-layer bipartite graph (BGE, from a GraphSet)
=============  ===========================================================
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mgedb.graph import Graph, GraphSet, LayerSpec, NodeKind, Partition
from mgedb.store.keys import uid_base

__all__ = ["BGE_LABEL", "MGE_UNIT_LABELS", "UNIT_LABELS", "Counts", "EdgeBlock", "GraphTables",
           "build_tables", "channel_key", "graph_counts", "graph_layout", "layer_key",
           "layout_partitions", "unit_label"]

#: A network's integrity counts: ``{"units": {"<partition>": n}, "edges": {"<p>><q>": n}}``
#: (unit nodes per partition index, W edges per (source, target) partition pair; a graph set
#: sums its graphs).
Counts = dict[str, dict[str, int]]

MGE_UNIT_LABELS = ("InputPixel", "ConvUnit", "Neuron")
BGE_LABEL = "BgeNode"
UNIT_LABELS = (*MGE_UNIT_LABELS, BGE_LABEL)
_LABEL_OF_KIND = {NodeKind.INPUT: 0, NodeKind.CONV: 1, NodeKind.NEURON: 2, NodeKind.WEIGHT: 2}


def unit_label(kind: NodeKind) -> str:
    """The node label of an MGE partition kind."""
    return MGE_UNIT_LABELS[_LABEL_OF_KIND[NodeKind(kind)]]


def layer_key(network: str, index: int) -> str:
    return f"{network}:{index}"


def channel_key(network: str, layer: int, channel: int) -> str:
    return f"{network}:{layer}:{channel}"


@dataclass(frozen=True)
class EdgeBlock:
    """The W edges between one pair of node labels: columns ``from, to, w, kind, eid``."""

    from_label: str
    to_label: str
    table: pa.Table


@dataclass
class GraphTables:
    """Every row of one network's graph, grouped by node label / relationship endpoint labels."""

    layers: pa.Table  # key, network, position, name, kind, shape, size
    channels: pa.Table  # key, network, layer, position
    units: dict[str, pa.Table]  # label -> uid, network, partition, idx, channel, row, col[, graph]
    in_channel: dict[str, pa.Table]  # unit label -> from (uid), to (channel key)
    in_layer: dict[str, pa.Table]  # "Channel" / unit label -> from, to (layer key)
    of: pa.Table  # from (layer key), to (network key)
    edges: list[EdgeBlock] = field(default_factory=list)

    @property
    def n_nodes(self) -> int:
        return sum(t.num_rows for t in self.units.values())

    @property
    def n_edges(self) -> int:
        return sum(b.table.num_rows for b in self.edges)


def graph_counts(value: Graph | GraphSet) -> Counts:
    """What the store must hold of ``value``: :data:`Counts`, recorded at ingest and recounted
    by ``mgedb verify``."""
    units: dict[str, int] = {}
    edges: dict[str, int] = {}
    for g in value.graphs if isinstance(value, GraphSet) else (value,):
        for i, p in enumerate(g.partitions):
            if p.size:
                units[str(i)] = units.get(str(i), 0) + p.size
        for (a, b), n in g.edge_counts_by_partition_pair().items():
            edges[f"{a}>{b}"] = edges.get(f"{a}>{b}", 0) + n
    return {"units": dict(sorted(units.items())), "edges": dict(sorted(edges.items()))}


def graph_layout(value: Graph | GraphSet) -> str:
    """JSON of what the edge arrays do not hold (partitions, layer specs, meta) for read-back."""
    graphs = value.graphs if isinstance(value, GraphSet) else (value,)
    return json.dumps({
        "set": isinstance(value, GraphSet),
        "encoding": value.encoding,
        "meta": value.meta,
        "graphs": [{
            "encoding": g.encoding,
            "partitions": [{"name": p.name, "kind": int(p.kind), "shape": list(p.shape)}
                           for p in g.partitions],
            "layers": [asdict(s) for s in g.layers],
            "meta": g.meta,
            "n_edges": g.n_edges,
        } for g in graphs],
    }, default=str)


def layout_partitions(spec: dict[str, Any]) -> tuple[tuple[Partition, ...], tuple[LayerSpec, ...]]:
    """Partitions and layer specs of one graph entry of :func:`graph_layout`."""
    parts = tuple(Partition(p["name"], NodeKind(p["kind"]),
                            (int(p["shape"][0]), int(p["shape"][1]), int(p["shape"][2])))
                  for p in spec["partitions"])
    return parts, tuple(LayerSpec.from_dict(d) for d in spec["layers"])


def _strings(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string())


def _repeat(value: str, n: int) -> pa.Array:
    return pa.array(np.full(n, value, dtype=object), pa.string())


def _join_keys(network: str, *parts: npt.NDArray[np.int64]) -> pa.Array:
    """``network:a:b`` keys for integer columns, vectorised."""
    n = len(parts[0])
    cols = [_repeat(network, n), *(pc.cast(pa.array(p), pa.string()) for p in parts)]
    return pc.binary_join_element_wise(*cols, ":")


def _pair_table(src: list[str] | pa.Array, dst: list[str] | pa.Array) -> pa.Table:
    return pa.table({"from": src, "to": dst})


def _edge_table(src_uid: npt.NDArray[np.int64], dst_uid: npt.NDArray[np.int64],
                weight: npt.NDArray[np.float32], kind: npt.NDArray[np.uint8],
                eid: npt.NDArray[np.int32]) -> pa.Table:
    return pa.table({
        "from": pa.array(src_uid),
        "to": pa.array(dst_uid),
        "w": pa.array(weight, pa.float32()),
        "kind": pa.array(kind, pa.uint8()),
        "eid": pa.array(eid, pa.int32()),
    })


def _edge_ids(m: int) -> npt.NDArray[np.int32]:
    """Edge positions in the graph's edge arrays (kept so that read-back restores the order)."""
    if m >= 2**31:
        raise ValueError(f"a graph with {m} edges is beyond the store's 2^31 edges per network")
    return np.arange(m, dtype=np.int32)


def _edge_blocks(src_uid: npt.NDArray[np.int64], dst_uid: npt.NDArray[np.int64],
                 weight: npt.NDArray[np.float32], kind: npt.NDArray[np.uint8],
                 src_lab: npt.NDArray[np.int8], dst_lab: npt.NDArray[np.int8],
                 labels: tuple[str, ...]) -> list[EdgeBlock]:
    nl = len(labels)
    code = src_lab.astype(np.int16) * nl + dst_lab
    eid = _edge_ids(len(code))
    blocks = []
    for c in np.unique(code):
        sel = code == c
        a, b = divmod(int(c), nl)
        blocks.append(EdgeBlock(labels[a], labels[b], _edge_table(
            src_uid[sel], dst_uid[sel], weight[sel], kind[sel], eid[sel])))
    return blocks


def build_tables(value: Graph | GraphSet, network: str) -> GraphTables:
    """The store rows of a graph (MGE: Input/Conv/Neuron units) or graph set (BGE: BgeNode)."""
    if isinstance(value, GraphSet):
        return _bge_tables(value, network)
    return _mge_tables(value, network)


def _mge_tables(g: Graph, network: str) -> GraphTables:
    base = np.int64(uid_base(network)) << np.int64(32)
    nodes = g.node_table()
    part_label = np.array([_LABEL_OF_KIND[p.kind] for p in g.partitions], dtype=np.int8)
    node_label = part_label[nodes["partition"]]
    uid = base + nodes["id"]

    layers = pa.table({
        "key": _strings([layer_key(network, i) for i in range(len(g.partitions))]),
        "network": _repeat(network, len(g.partitions)),
        "position": pa.array(np.arange(len(g.partitions), dtype=np.int64)),
        "name": _strings([p.name for p in g.partitions]),
        "kind": _strings([p.kind.name.lower() for p in g.partitions]),
        "shape": pa.array([list(p.shape) for p in g.partitions], pa.list_(pa.int64())),
        "size": pa.array([p.size for p in g.partitions], pa.int64()),
    })
    chan_parts = [i for i, p in enumerate(g.partitions) if part_label[i] < 2]
    ch_layer = np.concatenate([np.full(g.partitions[i].shape[0], i, np.int64)
                               for i in chan_parts] or [np.zeros(0, np.int64)])
    ch_index = np.concatenate([np.arange(g.partitions[i].shape[0], dtype=np.int64)
                               for i in chan_parts] or [np.zeros(0, np.int64)])
    channels = pa.table({"key": _join_keys(network, ch_layer, ch_index),
                         "network": _repeat(network, len(ch_layer)),
                         "layer": pa.array(ch_layer), "position": pa.array(ch_index)})
    units: dict[str, pa.Table] = {}
    in_channel: dict[str, pa.Table] = {}
    in_layer: dict[str, pa.Table] = {
        "Channel": _pair_table(channels["key"], _join_keys(network, ch_layer)),
    }
    for code, label in enumerate(MGE_UNIT_LABELS):
        sel = node_label == code
        if not sel.any():
            continue
        part = nodes["partition"][sel].astype(np.int64)
        chan = nodes["channel"][sel].astype(np.int64)
        units[label] = pa.table({
            "uid": pa.array(uid[sel]),
            "network": _repeat(network, int(sel.sum())),
            "partition": pa.array(part),
            "idx": pa.array(nodes["id"][sel]),
            "channel": pa.array(chan),
            "row": pa.array(nodes["row"][sel].astype(np.int64)),
            "col": pa.array(nodes["col"][sel].astype(np.int64)),
        })
        if code < 2:
            in_channel[label] = _pair_table(pa.array(uid[sel]), _join_keys(network, part, chan))
        else:
            in_layer[label] = _pair_table(pa.array(uid[sel]), _join_keys(network, part))
    of = _pair_table(layers["key"], _repeat(network, len(g.partitions)))
    src = g.src.astype(np.int64)
    dst = g.dst.astype(np.int64)
    edges = _edge_blocks(base + src, base + dst, np.asarray(g.weight, np.float32), g.kind,
                         node_label[src], node_label[dst], MGE_UNIT_LABELS)
    return GraphTables(layers, channels, units, in_channel, in_layer, of, edges)


def _bge_tables(gs: GraphSet, network: str) -> GraphTables:
    base = np.int64(uid_base(network)) << np.int64(32)
    sizes = np.array([g.n_nodes for g in gs.graphs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    names = [g.layers[0].name if g.layers else f"g{i}" for i, g in enumerate(gs.graphs)]
    layers = pa.table({
        "key": _strings([layer_key(network, i) for i in range(len(gs.graphs))]),
        "network": _repeat(network, len(gs.graphs)),
        "position": pa.array(np.arange(len(gs.graphs), dtype=np.int64)),
        "name": _strings(names),
        "kind": _repeat("bge", len(gs.graphs)),
        "shape": pa.array([g.dimension.tolist() for g in gs.graphs], pa.list_(pa.int64())),
        "size": pa.array(sizes),
    })
    cols: dict[str, list[npt.NDArray[np.int64]]] = {k: [] for k in
                                                    ("graph", "partition", "idx", "channel",
                                                     "row", "col")}
    srcs, dsts, ws, ks = [], [], [], []
    for i, g in enumerate(gs.graphs):
        nt = g.node_table()
        cols["graph"].append(np.full(g.n_nodes, i, np.int64))
        cols["partition"].append(nt["partition"].astype(np.int64))
        cols["idx"].append(nt["id"])
        for c in ("channel", "row", "col"):
            cols[c].append(nt[c].astype(np.int64))
        srcs.append(starts[i] + g.src.astype(np.int64))
        dsts.append(starts[i] + g.dst.astype(np.int64))
        ws.append(np.asarray(g.weight, np.float32))
        ks.append(g.kind)
    flat = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()}
    n = int(sizes.sum())
    uid = base + np.arange(n, dtype=np.int64)
    units = {BGE_LABEL: pa.table({
        "uid": pa.array(uid), "network": _repeat(network, n),
        "partition": pa.array(flat["partition"]), "idx": pa.array(flat["idx"]),
        "channel": pa.array(flat["channel"]), "row": pa.array(flat["row"]),
        "col": pa.array(flat["col"]), "graph": pa.array(flat["graph"]),
    })}
    in_layer = {BGE_LABEL: _pair_table(pa.array(uid), _join_keys(network, flat["graph"]))}
    channels = pa.table({"key": pa.array([], pa.string()), "network": pa.array([], pa.string()),
                         "layer": pa.array([], pa.int64()), "position": pa.array([], pa.int64())})
    of = _pair_table(layers["key"], _repeat(network, len(gs.graphs)))
    m = sum(len(s) for s in srcs)
    edges: list[EdgeBlock] = []
    if m:
        edges = [EdgeBlock(BGE_LABEL, BGE_LABEL, _edge_table(
            base + np.concatenate(srcs), base + np.concatenate(dsts), np.concatenate(ws),
            np.concatenate(ks), _edge_ids(m)))]
    return GraphTables(layers, channels, units, {}, in_layer, of, edges)
