"""The ingest/CRUD base both backends share: :class:`BaseStore`.

A store holds networks as multipartite graphs (docs/schema.md): a ``(:Network)`` node with the
metadata, ``(:Layer)``/``(:Channel)`` nodes, one unit node per graph node and one ``[:W]`` edge per
graph edge, plus ``(:Metric)`` nodes. :class:`BaseStore` implements
:class:`~mgedb.store.protocol.GraphStore` on top of a few backend primitives (run a named query,
bulk-load tables, raw graph-algorithm counts), so the embedded (Kùzu) and the Neo4j backend
differ only where their databases do. Its two other bases: the database metric engine
(:mod:`mgedb.store.engine`) and the record table (:mod:`mgedb.store.records`).
"""

from __future__ import annotations

import json
import logging
import time
from abc import abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from mgedb.errors import BackendUnavailable, MgedbError, StoreIntegrityError, UnknownNetwork
from mgedb.graph import Graph, GraphSet
from mgedb.store.engine import DbMetricEngine
from mgedb.store.integrity import compare_counts, counts_json, recount, verify
from mgedb.store.keys import graph_digest, graph_key, uid_base, uid_range
from mgedb.store.protocol import (
    NetworkInfo,
    ProgressFn,
    mgedb_version,
    nan_if_none,
    now_iso,
    opt_float,
    opt_int,
    opt_str,
    plain,
)
from mgedb.store.records import RecordTable
from mgedb.store.tables import (
    GraphTables,
    build_tables,
    graph_counts,
    graph_layout,
    layout_partitions,
)
from mgedb.vocab import flavour_of

__all__ = ["NETWORK_FIELDS", "BaseStore", "ingest_key", "network_props"]

log = logging.getLogger("mgedb.store")
_S = TypeVar("_S")

_META_FIELDS = ("source", "model", "dataset", "pruner", "sparsity", "seed", "classes",
                "input_shape", "accuracy", "dense_accuracy", "created", "checkpoint")
_FLOAT_FIELDS = ("sparsity", "accuracy", "dense_accuracy")
_INT_FIELDS = ("seed", "classes")
_DELETE_BATCH = 50_000


#: Every property of a ``(:Network)`` node (``network/begin`` sets them all; unset ones null).
NETWORK_FIELDS = ("key", "kind", "uid_base", "source", "model", "dataset", "pruner", "sparsity",
                  "seed", "encoding", "flavour", "classes", "input_shape", "accuracy",
                  "dense_accuracy", "created", "mgedb_version", "digest", "checkpoint",
                  "dimension", "n_nodes", "n_edges", "layout", "extra", "counts")


def ingest_key(graph: Graph | GraphSet, meta: dict[str, Any]) -> tuple[str, str | None]:
    """The store key of ``graph`` — ``meta["key"]`` (taken out of ``meta``) when given, else the
    graph's content key — and its digest (None when the key was given)."""
    given = meta.pop("key", None)
    digest = None if given else graph_digest(graph)
    return str(given or graph_key(graph, digest=digest)), digest


def network_props(key: str, graph: Graph | GraphSet, meta: dict[str, Any],
                  metrics_only: bool = False, digest: str | None = None) -> dict[str, Any]:
    """The ``(:Network)`` properties of ``graph`` stored under ``key`` (all but ``key`` and
    ``complete``; see :data:`NETWORK_FIELDS`): what ``meta`` gives (its fields are taken out of
    it, the rest goes to ``extra`` as JSON), the encoder's provenance, digest, sizes, layout and
    integrity counts."""
    digest = digest or graph_digest(graph)
    is_set = isinstance(graph, GraphSet)
    graphs = graph.graphs if isinstance(graph, GraphSet) else (graph,)
    # the encoder's provenance (model, classes, pruner, seed, …) fills what meta leaves out
    known = dict(graph.meta)
    if "sparsity_target" in known:
        known["sparsity"] = known.pop("sparsity_target")
    for name in ("model", "classes", "pruner", "sparsity", "seed", "dataset", "input_shape"):
        if name in known and meta.get(name) is None:
            meta[name] = known[name]
    encoding = str(meta.pop("encoding", None) or graph.encoding)
    flavour = meta.pop("flavour", None) or flavour_of(encoding)
    props: dict[str, Any] = {
        "kind": "metrics" if metrics_only else ("bge" if is_set else "mge"),
        "encoding": encoding,
        "flavour": str(flavour),
        "uid_base": uid_base(key),
        "created": now_iso(),
        "mgedb_version": mgedb_version(),
        "digest": digest,
        "n_nodes": sum(g.n_nodes for g in graphs),
        "n_edges": sum(g.n_edges for g in graphs),
        "dimension": None if is_set else [int(d) for d in graphs[0].dimension],
        "layout": graph_layout(graph),
        "counts": None if metrics_only else counts_json(graph_counts(graph)),
    }
    for name in _META_FIELDS:
        if name in meta:
            props[name] = meta.pop(name)
    for name in _FLOAT_FIELDS:
        if name in props:
            props[name] = opt_float(props[name])
    for name in _INT_FIELDS:
        if name in props:
            props[name] = opt_int(props[name])
    if "input_shape" in props and props["input_shape"] is not None:
        props["input_shape"] = [int(x) for x in props["input_shape"]]
    for name in ("source", "model", "dataset", "pruner", "checkpoint", "created"):
        if name in props:
            props[name] = opt_str(props[name])
    props["extra"] = json.dumps({k: plain(v) for k, v in meta.items()}, default=str) \
        if meta else None
    return props


# -- the shared implementation ------------------------------------------------------------------
class BaseStore(DbMetricEngine, RecordTable):
    """:class:`~mgedb.store.protocol.GraphStore` in terms of a handful of backend primitives."""

    kind: str = ""
    location: str = ""
    dialect: str = "neo4j"
    #: seconds per step of the last :meth:`ingest` call
    ingest_timings: dict[str, float]

    # -- backend primitives ----------------------------------------------------------------------
    @abstractmethod
    def ensure_schema(self) -> None: ...

    @abstractmethod
    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame:
        """Run a registry query (read queries in a read transaction) and return its rows."""

    @abstractmethod
    def _write(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one write query of the registry in its own write transaction."""

    @abstractmethod
    def _load_tables(self, key: str, tables: GraphTables, batch_size: int | None,
                     progress: ProgressFn | None) -> None:
        """Bulk-load the layer, channel, unit and edge rows of one network."""

    @abstractmethod
    def _write_metric_rows(self, rows: pd.DataFrame) -> None:
        """Create Metric nodes (+ HAS_METRIC) from rows: key, network, name, value, normalised,
        engine, ord (existing ones with those keys were deleted)."""

    @abstractmethod
    def _write_layer_rows(self, rows: pd.DataFrame) -> None:
        """Create LayerMetrics nodes (+ HAS_LAYER_METRICS) from rows: key, network, encoding,
        layer_id, layer_name, density, metrics_json, ord."""

    @abstractmethod
    def query(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
              timeout: float | None = None) -> pd.DataFrame: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- networks --------------------------------------------------------------------------------
    def network(self, key: str) -> NetworkInfo:
        """Metadata of network ``key`` (:class:`UnknownNetwork` if absent)."""
        rows = self.run_query("network/get", {"key": key})
        if rows.empty:
            raise UnknownNetwork(f"no network {key!r} in the {self.kind} store at "
                                 f"{self.location}; list them with `mgedb ls`")
        return NetworkInfo.from_row({str(k): v for k, v in rows.iloc[0].to_dict().items()})

    def has_network(self, key: str, *, complete: bool = True) -> bool:
        rows = self.run_query("network/get", {"key": key})
        if rows.empty:
            return False
        return bool(rows.iloc[0]["complete"]) or not complete

    def list_networks(self, kind: str | None = None) -> pd.DataFrame:
        """One row per network: key, kind, complete, model, encoding, flavour, source, n_nodes,
        n_edges, created."""
        return self.run_query("network/list", {"kind": kind})

    def delete(self, key: str) -> bool:
        """Remove a network: exactly its units, edges, layers, channels, metrics and node. The
        network is marked incomplete first, in a transaction of its own, so an interrupted delete
        never leaves a half network marked complete."""
        if self.run_query("network/get", {"key": key}).empty:
            return False
        self._write("network/incomplete", {"key": key})
        for name in ("network/delete_units", "network/delete_parts"):
            while True:
                rows = self._write(name, {"key": key, "limit": _DELETE_BATCH})
                if rows.empty or int(rows.iloc[0]["deleted"]) == 0:
                    break
        self._write("network/delete", {"key": key})
        return True

    def verify(self, key: str) -> list[str]:
        """Recount network ``key`` in the database: every difference from the counts it recorded
        at ingest, one line each (empty: intact). See :mod:`mgedb.store.integrity`."""
        rows = self.run_query("network/get", {"key": key})
        if rows.empty:
            raise UnknownNetwork(f"no network {key!r} in the {self.kind} store at "
                                 f"{self.location}; list them with `mgedb ls`")
        return verify(self, key, {str(k): v for k, v in rows.iloc[0].to_dict().items()})

    def record_counts(self, key: str) -> None:
        """Record what the database holds of ``key`` as its counts (``mgedb migrate``: networks
        of older stores, once their totals matched)."""
        found = recount(self, key)
        self._write("network/set_counts", {"key": key, "counts": counts_json(
            {"units": found["units"], "edges": found["edges"]})})

    def _begin(self, key: str, props: Mapping[str, Any]) -> None:
        params: dict[str, Any] = dict.fromkeys(NETWORK_FIELDS)
        params.update(props, key=key)
        self._write("network/begin", params)

    def ingest(self, graph: Graph | GraphSet, meta: Mapping[str, Any] | None = None, *,
               batch_size: int | None = None, progress: ProgressFn | None = None,
               metrics: Mapping[str, float] | None = None, metrics_only: bool = False) -> str:
        """Store a network (idempotent: an already complete network is left as it is).

        The key is ``meta["key"]`` when given (checkpoints: :func:`~mgedb.store.keys.network_key`),
        else the graph's content key (:func:`~mgedb.store.keys.graph_key`). The Network node is
        written first with ``complete = false`` and marked complete last; any failure (including
        Ctrl-C) removes what was written, and a leftover from a killed process is replaced.
        ``metrics_only`` stores the Network node and its metrics, not the unit graph.
        """
        meta = dict(meta or {})
        key, digest = ingest_key(graph, meta)
        existing = self.run_query("network/get", {"key": key})
        if not existing.empty:
            row = {str(k): v for k, v in existing.iloc[0].to_dict().items()}
            if not bool(row["complete"]):
                log.warning("network %s is incomplete (interrupted ingest or delete); replacing "
                            "it", key)
            else:
                problems = verify(self, key, row)
                if not problems:
                    log.info("network %s is already stored; nothing to do", key)
                    return key
                log.warning("network %s is marked complete but fails verification (%s); "
                            "replacing it", key, problems[0])
            self.delete(key)
        props = network_props(key, graph, meta, metrics_only, digest)
        if not metrics_only:
            clash = self.run_query("network/uid_clash", {"key": key, "uid_base": props["uid_base"]})
            if not clash.empty:
                raise StoreIntegrityError(
                    f"networks {key!r} and {clash.iloc[0]['key']!r} share a uid prefix (a 31-bit "
                    "hash clash); delete the other one with `mgedb rm` or use another store")
        self.ingest_timings = timings = {}
        try:
            t = time.perf_counter()
            self._begin(key, props)
            if not metrics_only:
                tables = build_tables(graph, key)
                timings["tables"] = time.perf_counter() - t
                self._load_tables(key, tables, batch_size, progress)
                t = time.perf_counter()
                problems = compare_counts(graph_counts(graph), recount(self, key))
                timings["verify"] = time.perf_counter() - t
                if problems:
                    raise StoreIntegrityError(
                        f"ingest of {key}: the database does not hold what was loaded "
                        f"({problems[0]}); nothing was kept — report this as a bug")
            t = time.perf_counter()
            if metrics:
                self.set_metrics(key, metrics)
            self._write("network/complete", {"key": key})
            timings["complete"] = time.perf_counter() - t
        except BackendUnavailable:
            # the server is gone: a cleanup would only wait out the driver's retries again; the
            # network is not marked complete and the next ingest of it replaces the leftover
            log.error("ingest of %s failed: the database is unreachable; the partial network is "
                      "not marked complete and is replaced by the next ingest", key)
            raise
        except BaseException:
            log.error("ingest of %s failed; removing the partial network", key)
            try:
                self.delete(key)
            except Exception as cleanup:  # the original error matters more
                log.error("could not remove partial network %s (%s); `mgedb rm %s` removes it",
                          key, cleanup, key)
            raise
        return key

    _network_props = staticmethod(network_props)

    # -- metrics ---------------------------------------------------------------------------------
    def set_metrics(self, key: str, metrics: Mapping[str, float], *, engine: str = "array"
                    ) -> None:
        """Store (or overwrite) metric values of a network, with their normalised values."""
        if self.run_query("network/get", {"key": key}).empty:
            raise UnknownNetwork(f"no network {key!r} to attach metrics to; ingest it first")
        rows = _metric_rows(key, metrics, engine)
        if rows.empty:
            return
        self._write("metrics/delete_keys", {"keys": rows["key"].tolist()})
        self._write_metric_rows(rows)

    def get_metrics(self, key: str) -> dict[str, float]:
        rows = self.run_query("metrics/get", {"key": key})
        return {str(r["name"]): nan_if_none(r["value"]) for r in rows.to_dict("records")}

    # -- graphs ----------------------------------------------------------------------------------
    def read_graph(self, key: str) -> Graph | GraphSet:
        """The stored graph of a network, edge for edge in the ingested order (``W.eid``)."""
        info = self.network(key)
        if info.kind not in ("mge", "bge") or not info.layout:
            raise StoreIntegrityError(f"network {key!r} has no stored graph (kind {info.kind!r}); "
                                      "ingest it without --metrics-only")
        if not info.complete:
            raise StoreIntegrityError(f"network {key!r} is incomplete; `mgedb rm {key}` and "
                                      "ingest it again")
        lo, _ = uid_range(key)
        rows = self.run_query("graph/edges", {"key": key, "lo": lo})
        if rows.empty:
            rows = pd.DataFrame({"src": [], "dst": [], "w": [], "kind": [], "eid": []})
        order = np.argsort(rows["eid"].to_numpy(dtype=np.int64), kind="stable")
        src = rows["src"].to_numpy(dtype=np.int64)[order]
        dst = rows["dst"].to_numpy(dtype=np.int64)[order]
        w = rows["w"].to_numpy(dtype=np.float32)[order]
        k = rows["kind"].to_numpy(dtype=np.uint8)[order]
        layout = json.loads(info.layout)
        graphs = []
        node0 = edge0 = 0
        for spec_ in layout["graphs"]:
            parts, layers = layout_partitions(spec_)
            size = sum(p.size for p in parts)
            e = slice(edge0, edge0 + int(spec_["n_edges"]))
            graphs.append(Graph(src=_ids(src[e] - node0, size), dst=_ids(dst[e] - node0, size),
                                weight=w[e].copy(), kind=k[e].copy(), partitions=parts,
                                encoding=spec_["encoding"], layers=layers,
                                meta=spec_.get("meta") or {}))
            node0 += size
            edge0 = e.stop
        if edge0 != len(src):
            raise StoreIntegrityError(f"network {key!r}: the store holds {len(src)} edges, its "
                                      f"layout {edge0}; `mgedb rm {key}` and ingest it again")
        if layout["set"]:
            return GraphSet(graphs=tuple(graphs), encoding=layout["encoding"],
                            meta=layout.get("meta") or {})
        return graphs[0]


def _ids(a: np.ndarray, n: int) -> np.ndarray:
    return a.astype(np.int32 if n < 2**31 - 1 else np.int64)


def _metric_rows(key: str, metrics: Mapping[str, float], engine: str) -> pd.DataFrame:
    from mgedb.metrics.registry import MGE_METRICS, SIZE_METRICS

    order = {m: i for i, m in enumerate((*SIZE_METRICS, *MGE_METRICS))}
    n_nodes = metrics.get("n_nodes")
    n_edges = metrics.get("n_edges")
    rows = []
    for i, (name, value) in enumerate(metrics.items()):
        v = opt_float(value)
        div = _metric_divisor(name)
        denom = {"N": n_nodes, "E": n_edges}.get(div) if div else None
        normalised = v if div is None else (
            v / float(denom) if v is not None and denom else None)
        rows.append({"key": f"{key}#{name}", "network": key, "name": str(name), "value": v,
                     "normalised": normalised, "engine": engine,
                     "ord": order.get(name, len(order) + i)})
    return pd.DataFrame(rows, columns=["key", "network", "name", "value", "normalised", "engine",
                                       "ord"])


def _metric_divisor(name: str) -> str | None:
    """``"N"``/``"E"`` for a known metric normalised by nodes/edges; None otherwise."""
    from mgedb.metrics.registry import spec

    try:
        return spec(name).divisor
    except MgedbError:  # not a registry metric (e.g. a record column): stored as given
        return None
