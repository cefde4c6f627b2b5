"""The graph value: a multipartite (or bipartite) directed graph as flat NumPy arrays.

Node ids are partition-major, then channel, row, col: partition ``b`` holds the ids
``offsets[b] … offsets[b + 1] - 1`` and node ``(c, r, q)`` of a partition of shape ``(C, H, W)`` is
``offsets[b] + c·H·W + r·W + q``. Edges are COO arrays (``src``, ``dst``, ``weight`` = |w| as
float32, ``kind`` = :class:`EdgeKind`) in construction order; :meth:`Graph.sorted` gives the
(src, dst) order.

This module is pure NumPy: no torch, no database.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mgedb.atomic import atomic_write
from mgedb.errors import GraphFileError
from mgedb.vocab import Encoding

__all__ = [
    "ENCODINGS",
    "EdgeKind",
    "Graph",
    "GraphSet",
    "LayerSpec",
    "NodeKind",
    "Partition",
    "export_arrays",
    "load_graph",
    "save_graph",
]

FORMAT = "mgedb-graph/1"
ENCODINGS: tuple[str, ...] = Encoding.values()

IntArray = npt.NDArray[np.integer[Any]]
FloatArray = npt.NDArray[np.floating[Any]]


class EdgeKind(IntEnum):
    """What an edge stands for."""

    CONV = 0
    LINEAR = 1
    SHORTCUT = 2
    SKIP = 3


class NodeKind(IntEnum):
    """What a node stands for."""

    INPUT = 0
    CONV = 1
    NEURON = 2
    WEIGHT = 3  # a (channel, tap) left node of a rolled bipartite graph


@dataclass(frozen=True)
class Partition:
    """One block of nodes: a layer's output (or the input), shaped ``(channels, rows, cols)``."""

    name: str
    kind: NodeKind
    shape: tuple[int, int, int]

    @property
    def size(self) -> int:
        c, h, w = self.shape
        return c * h * w


@dataclass(frozen=True)
class LayerSpec:
    """One weighted layer (Conv2d or Linear) of the traced network, in execution order."""

    name: str
    op: str  # "conv" | "linear"
    role: str  # "main" | "shortcut"
    weight_shape: tuple[int, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    nnz: int = 0
    partition: int = -1  # the partition its edges end in (-1: none, e.g. in a BGE)

    @property
    def numel(self) -> int:
        return int(np.prod(self.weight_shape))

    @property
    def density(self) -> float:
        return self.nnz / self.numel if self.numel else 0.0

    @staticmethod
    def from_dict(d: dict[str, Any]) -> LayerSpec:
        """The inverse of ``dataclasses.asdict`` (JSON lists back to tuples)."""

        def ints(k: str) -> tuple[int, ...]:
            return tuple(int(x) for x in d[k])

        def pair(k: str, default: tuple[int, int]) -> tuple[int, int]:
            a, b = (int(x) for x in d.get(k, default))
            return (a, b)

        return LayerSpec(
            name=str(d["name"]), op=str(d["op"]), role=str(d["role"]),
            weight_shape=ints("weight_shape"), in_shape=ints("in_shape"),
            out_shape=ints("out_shape"), stride=pair("stride", (1, 1)),
            padding=pair("padding", (0, 0)), dilation=pair("dilation", (1, 1)),
            groups=int(d.get("groups", 1)), nnz=int(d.get("nnz", 0)),
            partition=int(d.get("partition", -1)),
        )


def _id_dtype(n: int) -> type[np.integer[Any]]:
    return np.int32 if n < 2**31 - 1 else np.int64


@dataclass(frozen=True, eq=False)
class Graph:
    """An immutable directed graph whose nodes are grouped in partitions (layers)."""

    src: IntArray
    dst: IntArray
    weight: FloatArray
    kind: npt.NDArray[np.uint8]
    partitions: tuple[Partition, ...]
    encoding: str = "mge"
    layers: tuple[LayerSpec, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = len(self.src)
        if not (len(self.dst) == len(self.weight) == len(self.kind) == m):
            raise ValueError("src, dst, weight and kind must have the same length")
        for a in (self.src, self.dst, self.weight, self.kind):
            a.setflags(write=False)

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def from_edges(
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        weight: npt.ArrayLike,
        dimension: Sequence[int],
        *,
        kind: npt.ArrayLike | None = None,
        encoding: str = "mge",
        partitions: Sequence[Partition] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Graph:
        """A graph from edge arrays and partition sizes (shapes unknown → ``(size, 1, 1)``)."""
        dims = [int(d) for d in dimension]
        if partitions is None:
            partitions = [
                Partition(f"p{i}", NodeKind.INPUT if i == 0 else NodeKind.NEURON, (d, 1, 1))
                for i, d in enumerate(dims)
            ]
        n = sum(dims)
        idt = _id_dtype(n)
        s = np.asarray(src).astype(idt, copy=False)
        t = np.asarray(dst).astype(idt, copy=False)
        k = (
            np.full(len(s), EdgeKind.CONV, np.uint8)
            if kind is None
            else np.asarray(kind, dtype=np.uint8)
        )
        return Graph(
            src=s,
            dst=t,
            weight=np.asarray(weight).astype(np.float32, copy=False),
            kind=k,
            partitions=tuple(partitions),
            encoding=encoding,
            meta=dict(meta or {}),
        )

    # -- sizes -----------------------------------------------------------------------------------
    @cached_property
    def dimension(self) -> npt.NDArray[np.int64]:
        """Node count of every partition, in id order."""
        return np.array([p.size for p in self.partitions], dtype=np.int64)

    @cached_property
    def offsets(self) -> npt.NDArray[np.int64]:
        """First node id of every partition, plus the total node count at the end."""
        return np.concatenate([[0], np.cumsum(self.dimension)]).astype(np.int64)

    @property
    def n_nodes(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_edges(self) -> int:
        return len(self.src)

    # -- node table ------------------------------------------------------------------------------
    @cached_property
    def node_partition(self) -> npt.NDArray[np.int32]:
        return np.repeat(np.arange(len(self.partitions), dtype=np.int32), self.dimension)

    def node_table(self) -> dict[str, npt.NDArray[Any]]:
        """Per-node columns: ``id, partition, kind, channel, row, col``."""
        parts = self.node_partition
        kinds = np.array([p.kind for p in self.partitions], dtype=np.uint8)[parts]
        local = np.arange(self.n_nodes, dtype=np.int64) - self.offsets[:-1][parts]
        shapes = np.array([p.shape for p in self.partitions], dtype=np.int64).reshape(-1, 3)
        h, w = shapes[parts, 1], shapes[parts, 2]
        return {
            "id": np.arange(self.n_nodes, dtype=np.int64),
            "partition": parts,
            "kind": kinds,
            "channel": (local // (h * w)).astype(np.int32),
            "row": ((local // w) % h).astype(np.int32),
            "col": (local % w).astype(np.int32),
        }

    def partition_of(self, ids: IntArray) -> npt.NDArray[np.int64]:
        """Partition index of each node id."""
        return np.searchsorted(self.offsets, ids, side="right") - 1

    # -- derived views ---------------------------------------------------------------------------
    def sorted(self) -> Graph:
        """The same graph with edges in (src, dst) order."""
        order = np.lexsort((self.dst, self.src))
        return self._with_edges(
            self.src[order], self.dst[order], self.weight[order], self.kind[order]
        )

    def _with_edges(
        self, src: IntArray, dst: IntArray, weight: FloatArray, kind: npt.NDArray[np.uint8]
    ) -> Graph:
        return Graph(
            src=src,
            dst=dst,
            weight=weight,
            kind=kind,
            partitions=self.partitions,
            encoding=self.encoding,
            layers=self.layers,
            meta=dict(self.meta),
        )

    def edge_counts_by_partition_pair(self) -> dict[tuple[int, int], int]:
        """Number of edges per (source partition, target partition)."""
        ps, pt = self.partition_of(self.src), self.partition_of(self.dst)
        nb = len(self.partitions)
        counts = np.bincount(ps * nb + pt, minlength=nb * nb).reshape(nb, nb)
        rows, cols = np.nonzero(counts)
        return {(int(a), int(b)): int(counts[a, b]) for a, b in zip(rows, cols, strict=True)}

    def edge_counts_by_kind(self) -> dict[str, int]:
        counts = np.bincount(self.kind, minlength=len(EdgeKind))
        return {k.name.lower(): int(counts[k]) for k in EdgeKind if counts[k]}

    def summary(self) -> dict[str, Any]:
        """Partition sizes, node/edge counts, edges per kind and per partition pair."""
        return {
            "encoding": self.encoding,
            "n_nodes": self.n_nodes,
            "n_edges": self.n_edges,
            "partitions": [
                {"index": i, "name": p.name, "kind": p.kind.name.lower(), "shape": list(p.shape),
                 "size": p.size}
                for i, p in enumerate(self.partitions)
            ],
            "edges_by_kind": self.edge_counts_by_kind(),
            "edges_by_partition_pair": {
                f"{a}->{b}": c for (a, b), c in sorted(self.edge_counts_by_partition_pair().items())
            },
            **({"meta": self.meta} if self.meta else {}),
        }


@dataclass(frozen=True, eq=False)
class GraphSet:
    """Several independent graphs of one network, e.g. the per-layer bipartite graphs of a BGE."""

    graphs: tuple[Graph, ...]
    encoding: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Graph]:
        return iter(self.graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def summary(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "n_graphs": len(self.graphs),
            "n_nodes": sum(g.n_nodes for g in self.graphs),
            "n_edges": sum(g.n_edges for g in self.graphs),
            "layers": [
                {"layer": g.layers[0].name if g.layers else str(i), "n_nodes": g.n_nodes,
                 "n_edges": g.n_edges, "dimension": g.dimension.tolist()}
                for i, g in enumerate(self.graphs)
            ],
            **({"meta": self.meta} if self.meta else {}),
        }


# -- one-file persistence ------------------------------------------------------------------------
def _header(g: Graph) -> dict[str, Any]:
    return {
        "encoding": g.encoding,
        "partitions": [{"name": p.name, "kind": int(p.kind), "shape": list(p.shape)}
                       for p in g.partitions],
        "layers": [asdict(layer) for layer in g.layers],
        "meta": g.meta,
    }


def _check_arrays(h: dict[str, Any], arrays: dict[str, Any], parts: tuple[Partition, ...]
                  ) -> str | None:
    """What is wrong with one graph of a file (None: nothing): ids that are not integers or
    fall outside the partitions, edge kinds and encodings mgedb does not know, weights that are
    not floats, arrays of different lengths. (Any float weight round-trips, NaN included.)"""
    if h.get("encoding") not in {e.value for e in Encoding}:
        known = ", ".join(e.value for e in Encoding)
        return f"unknown encoding {h.get('encoding')!r} (one of {known})"
    n = sum(p.size for p in parts)
    m = len(arrays["src"])
    if any(len(arrays[k]) != m for k in ("dst", "weight", "kind")):
        return "src, dst, weight and kind differ in length"
    for name in ("src", "dst"):
        a = np.asarray(arrays[name])
        if not np.issubdtype(a.dtype, np.integer):
            return f"{name} holds {a.dtype} values; node ids must be integers"
        if m and (int(a.min()) < 0 or int(a.max()) >= n):
            bad = int(a.min()) if int(a.min()) < 0 else int(a.max())
            return (f"{name} has node id {bad}, outside 0..{n - 1} (the partitions hold {n} "
                    "nodes)")
    kind = np.asarray(arrays["kind"])
    if not np.issubdtype(kind.dtype, np.integer) or (m and (int(kind.min()) < 0 or int(
            kind.max()) > max(EdgeKind))):
        known = ", ".join(f"{k.value} {k.name.lower()}" for k in EdgeKind)
        return f"unknown edge kind (use {known})"
    if not np.issubdtype(np.asarray(arrays["weight"]).dtype, np.floating):
        return f"weight holds {np.asarray(arrays['weight']).dtype} values; weights must be floats"
    return None


def _from_header(h: dict[str, Any], arrays: dict[str, Any], path: Path | None = None) -> Graph:
    parts = tuple(
        Partition(p["name"], NodeKind(p["kind"]), (int(p["shape"][0]), int(p["shape"][1]),
                                                   int(p["shape"][2])))
        for p in h["partitions"]
    )
    problem = _check_arrays(h, arrays, parts)
    if problem:
        raise GraphFileError(f"{path}: {problem}; re-create it with `mgedb encode`")
    return Graph(
        src=arrays["src"], dst=arrays["dst"], weight=arrays["weight"], kind=arrays["kind"],
        partitions=parts, encoding=h["encoding"],
        layers=tuple(LayerSpec.from_dict(d) for d in h["layers"]), meta=h.get("meta", {}),
    )


def save_graph(path: str | Path, value: Graph | GraphSet, *, compress: bool = False) -> Path:
    """Write a graph (or a set of graphs) to one ``.npz`` file, losslessly."""
    path = Path(path)
    graphs = value.graphs if isinstance(value, GraphSet) else (value,)
    arrays: dict[str, Any] = {}
    for i, g in enumerate(graphs):
        for name in ("src", "dst", "weight", "kind"):
            arrays[f"g{i}.{name}"] = getattr(g, name)
    header = {
        "format": FORMAT,
        "set": isinstance(value, GraphSet),
        "encoding": value.encoding,
        "meta": value.meta,
        "graphs": [_header(g) for g in graphs],
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with atomic_write(path) as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return path


def load_graph(path: str | Path) -> Graph | GraphSet:
    """Read what :func:`save_graph` wrote."""
    path = Path(path)
    try:
        # np.load is given our own handle, closed even when NpzFile fails on a damaged zip
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if "header" not in z.files:
                raise GraphFileError(
                    f"{path}: not an mgedb graph file (no header); write one with `mgedb encode`"
                )
            header = json.loads(bytes(z["header"]).decode())
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                fmt = header.get("format") if isinstance(header, dict) else None
                raise GraphFileError(f"{path}: unknown graph format {fmt!r}")
            graphs = tuple(
                _from_header(h, {k: z[f"g{i}.{k}"] for k in ("src", "dst", "weight", "kind")},
                             path)
                for i, h in enumerate(header["graphs"])
            )
            if header["set"]:
                return GraphSet(graphs=graphs, encoding=header["encoding"], meta=header["meta"])
            return graphs[0]
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            zipfile.BadZipFile) as e:  # json.JSONDecodeError and UnicodeDecodeError: ValueError
        raise GraphFileError(
            f"{path}: cannot read graph file ({type(e).__name__}: {_first_line(e)}); re-create it "
            "with `mgedb encode`"
        ) from None


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else "no detail"


def export_arrays(value: Graph | GraphSet) -> dict[str, Any]:
    """Plain arrays for other tools: int64 ``src``/``dst``, float32 ``weight``, ``dimension``.

    A set of per-layer graphs is exported as one disjoint union (graph ``i``'s nodes follow graph
    ``i − 1``'s), with ``graph_ptr`` giving each graph's first partition in ``dimension``.
    """
    graphs = value.graphs if isinstance(value, GraphSet) else (value,)
    node_base = np.cumsum([0] + [g.n_nodes for g in graphs])
    bases = list(zip(graphs, node_base[:-1], strict=True))
    arrays: dict[str, Any] = {
        "src": np.concatenate([g.src.astype(np.int64) + b for g, b in bases]),
        "dst": np.concatenate([g.dst.astype(np.int64) + b for g, b in bases]),
        "weight": np.concatenate([g.weight for g in graphs]).astype(np.float32),
        "kind": np.concatenate([g.kind for g in graphs]),
        "dimension": np.concatenate([g.dimension for g in graphs]).astype(np.int64),
    }
    if isinstance(value, GraphSet):
        arrays["graph_ptr"] = np.cumsum([0] + [len(g.partitions) for g in graphs]).astype(np.int64)
    return arrays
