"""Deterministic keys: network keys, graph content digests and the integer ids of unit nodes.

* A network ingested from a checkpoint is keyed by a hash of (model, checkpoint digest, encoding,
  flavour); a network ingested from a graph file by a hash of the graph's content digest and its
  encoding. Re-ingesting the same input therefore finds the same key.
* A graph's content digest does not depend on the order of its edges: it hashes the partition
  layout, the encoding and an order-independent sum of per-edge hashes (src, dst, weight bits,
  kind).
* Every unit node has the integer id ``uid = base << 32 | idx`` where ``base`` is 31 bits of the
  network key, so uids of different networks never overlap (a clash of ``base`` is checked at
  ingest) and the nodes of one network form the uid range ``[base << 32, (base + 1) << 32)``.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import numpy.typing as npt

from mgedb.graph import Graph, GraphSet
from mgedb.vocab import flavour_of  # re-exported: the flavour is part of a network key

__all__ = ["KEY_LENGTH", "flavour_of", "graph_digest", "graph_key", "is_graph_key", "network_key",
           "uid_base", "uid_range"]

KEY_LENGTH = 20
_KEY = re.compile(rf"^[0-9a-f]{{{KEY_LENGTH}}}$")
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:KEY_LENGTH]


def network_key(model: str, digest: str, encoding: str, flavour: str) -> str:
    """Key of a network encoded from a checkpoint (``digest`` = the checkpoint file's SHA-256)."""
    return _hash("checkpoint", model, digest, encoding, flavour)


def graph_key(value: Graph | GraphSet, *, digest: str | None = None) -> str:
    """Key of a network given as a graph (file): its content digest (pass it when known) and its
    encoding."""
    return _hash("graph", digest or graph_digest(value), value.encoding)


def is_graph_key(key: str) -> bool:
    """Whether ``key`` has the shape of a key made by this module."""
    return bool(_KEY.match(key))


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser, vectorised (wrap-around arithmetic on uint64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _edge_multiset_hash(g: Graph) -> tuple[int, int]:
    with np.errstate(over="ignore"):
        s = g.src.astype(np.uint64)
        d = g.dst.astype(np.uint64)
        w = np.ascontiguousarray(g.weight, dtype=np.float32).view(np.uint32).astype(np.uint64)
        k = g.kind.astype(np.uint64)
        h = _mix(_mix(_mix(s ^ (k << np.uint64(56))) + d) + w)
        total = int(np.sum(h, dtype=np.uint64))
        squares = int(np.sum(_mix(h), dtype=np.uint64))
    return total, squares


def graph_digest(value: Graph | GraphSet) -> str:
    """SHA-256 of a graph's content (partitions, encoding, edge multiset); edge order is ignored."""
    graphs = value.graphs if isinstance(value, GraphSet) else (value,)
    h = hashlib.sha256()
    h.update(json.dumps({"set": isinstance(value, GraphSet), "encoding": value.encoding}).encode())
    for g in graphs:
        layout = [[p.name, int(p.kind), list(p.shape)] for p in g.partitions]
        total, squares = _edge_multiset_hash(g)
        h.update(json.dumps([g.encoding, layout, g.n_edges, total, squares]).encode())
    return h.hexdigest()


def uid_base(key: str) -> int:
    """The 31-bit prefix of the uids of a network's unit nodes."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def uid_range(key: str) -> tuple[int, int]:
    """``[lo, hi)``: the uids a network's unit nodes can take."""
    base = uid_base(key)
    return base << 32, (base + 1) << 32
