"""The :class:`GraphStore` protocol and what both backends share.

A store holds networks as multipartite graphs (docs/schema.md): a ``(:Network)`` node with the
metadata, ``(:Layer)``/``(:Channel)`` nodes, one unit node per graph node and one ``[:W]`` edge per
graph edge, plus ``(:Metric)`` nodes. :class:`BaseStore` implements the protocol on top of a few
backend primitives (run a named query, bulk-load tables, run graph algorithms), so the embedded
(Kùzu) and the Neo4j backend differ only where their databases do.
"""

from __future__ import annotations

import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd

from mgedb.errors import BackendUnavailable, MgedbError, StoreIntegrityError, UnknownNetwork
from mgedb.graph import Graph, GraphSet
from mgedb.metrics.registry import INTEGER_METRICS
from mgedb.store.keys import flavour_of, graph_digest, graph_key, uid_base, uid_range
from mgedb.store.tables import GraphTables, build_tables, graph_layout, layout_partitions

__all__ = [
    "ARRAY_ONLY",
    "FLAVOURS",
    "RECORD_META",
    "BaseStore",
    "GraphStore",
    "MetricValues",
    "Mismatch",
    "NetworkInfo",
    "ProgressFn",
    "compare_engines",
    "flavour_params",
]

log = logging.getLogger("mgedb.store")
_S = TypeVar("_S")

#: ``progress(stage, done, total)``: called as ingestion advances (units of rows).
ProgressFn = Callable[[str, int, int], None]
FLAVOURS = ("mge", "mge-reference")
#: Metrics the database does not compute: the motif estimate (igraph's sampler) and the two
#: eigenvalue metrics (the Python spectral module, over the adjacency read out of the store).
ARRAY_ONLY = ("motifs", "spectral_gap", "spectral_radius")
#: Metadata columns of a record table; every other column is a metric.
RECORD_META = ("key", "source", "model", "dataset", "pruner", "sparsity", "seed", "accuracy",
               "dense_accuracy", "nodes", "edges")
_SPECTRAL = frozenset({"spectral_gap", "spectral_radius"})
_META_FIELDS = ("source", "model", "dataset", "pruner", "sparsity", "seed", "classes",
                "input_shape", "accuracy", "dense_accuracy", "created", "checkpoint")
_FLOAT_FIELDS = ("sparsity", "accuracy", "dense_accuracy")
_INT_FIELDS = ("seed", "classes")
_DELETE_BATCH = 50_000


@dataclass(frozen=True)
class NetworkInfo:
    """A stored network's metadata (the properties of its ``(:Network)`` node)."""

    key: str
    kind: str  # "mge" (a Graph), "bge" (a GraphSet), "metrics" (metrics only), "records"
    complete: bool
    encoding: str | None = None
    flavour: str | None = None
    dimension: tuple[int, ...] = ()
    n_nodes: int | None = None
    n_edges: int | None = None
    layout: str | None = None
    props: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> NetworkInfo:
        dim = row.get("dimension")
        dims = tuple(int(d) for d in dim) if dim is not None and _present(dim) else ()
        return NetworkInfo(
            key=str(row["key"]), kind=str(row.get("kind") or ""),
            complete=bool(row.get("complete")), encoding=_opt_str(row.get("encoding")),
            flavour=_opt_str(row.get("flavour")),
            dimension=dims,
            n_nodes=_opt_int(row.get("n_nodes")), n_edges=_opt_int(row.get("n_edges")),
            layout=_opt_str(row.get("layout")),
            props={k: _plain(v) for k, v in row.items() if k != "layout"},
        )


class MetricValues(dict[str, float]):
    """Metric values by raw name, with where each came from in :attr:`provenance`.

    Provenance values: ``"db"`` (a Cypher query), ``"db:gds"`` / ``"db:kuzu-algo"`` (a graph
    algorithm inside the database), ``"array"`` (the in-process engine over the graph read out of
    the store: motifs, spectra, and cut-edges/nodes where the database has no algorithm).
    """

    def __init__(self, values: Mapping[str, float] | None = None,
                 provenance: Mapping[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.provenance: dict[str, str] = dict(provenance or {})


@dataclass(frozen=True)
class Mismatch:
    """One metric on which two engines disagree beyond its tolerance."""

    name: str
    db: float
    array: float
    tolerance: str

    def __str__(self) -> str:
        return f"{self.name}: db={self.db!r} array={self.array!r} ({self.tolerance})"


def compare_engines(db: Mapping[str, float], array: Mapping[str, float], *,
                    rel_tol: float = 1e-9, spectral_rel_tol: float = 1e-6) -> list[Mismatch]:
    """Metrics present in both results that differ: counts exactly, spectra to ``spectral_rel_tol``
    (both use the same module, but ARPACK start vectors and summation order differ), every other
    float to ``rel_tol`` (sums taken in another order). NaN equals NaN; the motif estimate is not
    compared (the database does not compute it)."""
    out: list[Mismatch] = []
    for name in db:
        if name not in array or name == "motifs":
            continue
        a, b = float(db[name]), float(array[name])
        if math.isnan(a) and math.isnan(b):
            continue
        if name in INTEGER_METRICS:
            if a != b:
                out.append(Mismatch(name, a, b, "exact"))
            continue
        tol = spectral_rel_tol if name in _SPECTRAL else rel_tol
        if not math.isclose(a, b, rel_tol=tol, abs_tol=0.0):
            out.append(Mismatch(name, a, b, f"rel {tol:g}"))
    return out


def flavour_params(flavour: str, dimension: Sequence[int]) -> dict[str, dict[str, int]]:
    """Parameters of the degree-based queries for a flavour (docs/metrics.md, docs/schema.md).

    ``mge``: sinks outside the output partition, sources outside the input partition, no offsets.
    ``mge-reference``: the reference's formulas — whole-graph counts minus the output / input
    partition size, and its off-by-one id bounds for the removable connections.
    """
    if flavour not in FLAVOURS:
        raise StoreIntegrityError(f"unknown metric flavour {flavour!r}; use one of "
                                  f"{', '.join(FLAVOURS)}")
    dims = [int(d) for d in dimension]
    n = sum(dims)
    first = dims[0] if dims else 0
    last = dims[-1] if dims else 0
    if flavour == "mge-reference":
        return {
            "sink_nodes": {"below": n, "offset": last},
            "source_nodes": {"first": 0, "offset": first},
            "removable_out": {"below": n - 1 - last},
            "removable_in": {"above": first},
        }
    return {
        "sink_nodes": {"below": n - last, "offset": 0},
        "source_nodes": {"first": first, "offset": 0},
        "removable_out": {"below": n - last},
        "removable_in": {"above": first - 1},
    }


@runtime_checkable
class GraphStore(Protocol):
    """What every store offers (embedded Kùzu, Neo4j); a context manager."""

    kind: str
    location: str

    def ensure_schema(self) -> None: ...
    def ingest(self, graph: Graph | GraphSet, meta: Mapping[str, Any] | None = None, *,
               batch_size: int | None = None, progress: ProgressFn | None = None,
               metrics: Mapping[str, float] | None = None, metrics_only: bool = False) -> str: ...
    def has_network(self, key: str, *, complete: bool = True) -> bool: ...
    def network(self, key: str) -> NetworkInfo: ...
    def list_networks(self, kind: str | None = None) -> pd.DataFrame: ...
    def delete(self, key: str) -> bool: ...
    def set_metrics(self, key: str, metrics: Mapping[str, float], *,
                    engine: str = "array") -> None: ...
    def get_metrics(self, key: str) -> dict[str, float]: ...
    def read_graph(self, key: str) -> Graph | GraphSet: ...
    def compute_metrics(self, key: str, only: Iterable[str] | str | None = None, *,
                        seed: int = 0) -> MetricValues: ...
    def query(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
              timeout: float | None = None) -> pd.DataFrame: ...
    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame: ...
    def write_records(self, records: pd.DataFrame, layers: pd.DataFrame | None = None) -> int: ...
    def read_records(self, source: str | None = None) -> pd.DataFrame: ...
    def read_layers(self, source: str | None = None) -> pd.DataFrame: ...
    def close(self) -> None: ...
    def __enter__(self: _S) -> _S: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


# -- small value helpers ------------------------------------------------------------------------
def _present(v: Any) -> bool:
    """Not None and not a float NaN (what pandas and the drivers use for a missing value)."""
    if v is None:
        return False
    return not (isinstance(v, float) and math.isnan(v))


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _opt_str(v: Any) -> str | None:
    return None if not _present(v) else str(v)


def _opt_int(v: Any) -> int | None:
    return None if not _present(v) else int(v)


def _opt_float(v: Any) -> float | None:
    if not _present(v):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version() -> str:
    from mgedb import __version__

    return __version__


def _metric_divisor(name: str) -> str | None:
    """``"N"``/``"E"`` for a known metric normalised by nodes/edges; None otherwise."""
    from mgedb.metrics.registry import spec

    try:
        return spec(name).divisor
    except MgedbError:  # not a registry metric (e.g. a record column): stored as given
        return None


# -- the shared implementation ------------------------------------------------------------------
class BaseStore(ABC):
    """:class:`GraphStore` in terms of a handful of backend primitives."""

    kind: str = ""
    location: str = ""
    dialect: str = "neo4j"
    #: provenance label of the metrics computed by graph algorithms inside the database
    algo_provenance: str = "db"
    #: seconds per metric (or step) of the last :meth:`compute_metrics` call
    last_timings: dict[str, float]
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
    def _algo_metrics(self, key: str, info: NetworkInfo, names: Sequence[str], n: int
                      ) -> tuple[dict[str, float], list[str]]:
        """k-core / components / cut metrics in the database (``n`` = node count): (values, the
        names this backend cannot compute, left to the array engine)."""

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
        """Remove a network: exactly its units, edges, layers, channels, metrics and node."""
        if self.run_query("network/get", {"key": key}).empty:
            return False
        for name in ("network/delete_units", "network/delete_parts"):
            while True:
                rows = self._write(name, {"key": key, "limit": _DELETE_BATCH})
                if rows.empty or int(rows.iloc[0]["deleted"]) == 0:
                    break
        self._write("network/delete", {"key": key})
        return True

    def _begin(self, key: str, props: Mapping[str, Any]) -> None:
        params = {
            "key": key, "kind": None, "uid_base": None, "source": None, "model": None,
            "dataset": None, "pruner": None, "sparsity": None, "seed": None, "encoding": None,
            "flavour": None, "classes": None, "input_shape": None, "accuracy": None,
            "dense_accuracy": None, "created": None, "mgedb_version": None, "digest": None,
            "checkpoint": None, "dimension": None, "n_nodes": None, "n_edges": None,
            "layout": None, "extra": None,
        }
        params.update(props)
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
        given = meta.pop("key", None)
        digest = None if given else graph_digest(graph)
        key = str(given or graph_key(graph, digest=digest))
        existing = self.run_query("network/get", {"key": key})
        if not existing.empty:
            if bool(existing.iloc[0]["complete"]):
                log.info("network %s is already stored; nothing to do", key)
                return key
            log.warning("network %s is incomplete (interrupted ingest); replacing it", key)
            self.delete(key)
        props = self._network_props(key, graph, meta, metrics_only, digest)
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

    def _network_props(self, key: str, graph: Graph | GraphSet, meta: dict[str, Any],
                       metrics_only: bool, digest: str | None = None) -> dict[str, Any]:
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
            "created": _now(),
            "mgedb_version": _version(),
            "digest": digest,
            "n_nodes": sum(g.n_nodes for g in graphs),
            "n_edges": sum(g.n_edges for g in graphs),
            "dimension": None if is_set else [int(d) for d in graphs[0].dimension],
            "layout": graph_layout(graph),
        }
        for name in _META_FIELDS:
            if name in meta:
                props[name] = meta.pop(name)
        for name in _FLOAT_FIELDS:
            if name in props:
                props[name] = _opt_float(props[name])
        for name in _INT_FIELDS:
            if name in props:
                props[name] = _opt_int(props[name])
        if "input_shape" in props and props["input_shape"] is not None:
            props["input_shape"] = [int(x) for x in props["input_shape"]]
        for name in ("source", "model", "dataset", "pruner", "checkpoint", "created"):
            if name in props:
                props[name] = _opt_str(props[name])
        props["extra"] = json.dumps({k: _plain(v) for k, v in meta.items()}, default=str) \
            if meta else None
        return props

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
        return {str(r["name"]): _nan_if_none(r["value"]) for r in rows.to_dict("records")}

    def compute_metrics(self, key: str, only: Iterable[str] | str | None = None, *,
                        seed: int = 0) -> MetricValues:
        """The MGE topometrics of a stored network, computed by the database (see
        :class:`MetricValues` for what is not), under the raw names of
        :func:`mgedb.metrics.compute_mge_metrics`; the default is every metric except the motif
        estimate."""
        from mgedb.metrics.registry import MGE_METRICS, resolve

        info = self.network(key)
        if not info.complete:
            raise StoreIntegrityError(f"network {key!r} is incomplete (an interrupted ingest); "
                                      f"remove it with `mgedb rm {key}` and ingest it again")
        if info.kind != "mge":
            raise StoreIntegrityError(
                f"network {key!r} is of kind {info.kind!r}; topometrics in the database need an "
                "MGE unit graph (ingest it without --metrics-only and with an mge encoding)")
        default = [m for m in MGE_METRICS if m != "motifs"]
        names = default if only is None else resolve(only, MGE_METRICS)
        if only is None:
            log.info("motifs: computed by the array engine only (igraph sampler), not in the DB")
        flavour = info.flavour or "mge"
        values: dict[str, float] = {}
        prov: dict[str, str] = {}
        timings: dict[str, float] = {}

        def db(name: str, query: str, params: Mapping[str, Any] | None = None) -> float:
            t = time.perf_counter()
            rows = self.run_query(query, {"key": key, **(params or {})})
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
            v = rows.iloc[0]["value"] if not rows.empty else 0
            return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        n = int(db("n_nodes", "metrics/n_nodes"))
        values["n_nodes"] = n
        values["n_edges"] = int(db("n_edges", "metrics/n_edges"))
        prov.update(n_nodes="db", n_edges="db")
        fp = flavour_params(flavour, info.dimension)
        for name in ("sink_nodes", "source_nodes", "disconnected_nodes", "removable_out",
                     "removable_in"):
            if name in names:
                values[name] = int(db(name, f"metrics/{name}", fp.get(name)))
                prov[name] = "db"
        if "one_hop" in names or "two_hop" in names:
            s1 = db("one_hop", "metrics/out_pairs")
            if "one_hop" in names:
                values["one_hop"] = (n + s1) / n if n else math.nan
                prov["one_hop"] = "db"
            if "two_hop" in names:  # per source partition: the distinct pairs stay bounded
                s2 = s12 = 0.0
                for p in range(len(info.dimension)):
                    s2 += db("two_hop", "metrics/two_step_pairs", {"partition": p})
                    s12 += db("two_hop", "metrics/two_step_direct_pairs", {"partition": p})
                values["two_hop"] = (n + s1 + s2 - s12) / n if n else math.nan
                prov["two_hop"] = "db"
        if "strength" in names:
            values["strength"] = 2.0 * db("strength", "metrics/weight_sum") / n if n else math.nan
            prov["strength"] = "db"
        algo = [m for m in ("k_core", "n_components", "mean_component_size", "cut_edges",
                            "cut_nodes") if m in names]
        fallback: list[str] = []
        if algo:
            t = time.perf_counter()
            got, fallback = self._algo_metrics(key, info, algo, n)
            timings["algorithms"] = time.perf_counter() - t
            values.update(got)
            prov.update(dict.fromkeys(got, self.algo_provenance))
        array = [m for m in names if m in ARRAY_ONLY] + fallback
        if array:
            t = time.perf_counter()
            graph = self.read_graph(key)
            if not isinstance(graph, Graph):
                raise StoreIntegrityError(f"network {key!r} holds a graph set, not an MGE")
            from mgedb.metrics import compute_mge_metrics

            got_array = compute_mge_metrics(graph, only=array, seed=seed,
                                            reference=flavour == "mge-reference")
            timings["array"] = time.perf_counter() - t
            for m in array:
                values[m] = got_array[m]
                prov[m] = "array"
            if fallback:
                log.info("%s: no algorithm in the %s database; computed by the array engine over "
                         "the graph read out of the store", ", ".join(fallback), self.kind)
        self.last_timings = timings
        ordered = {m: values[m] for m in ("n_nodes", "n_edges", *names) if m in values}
        return MetricValues(ordered, {m: prov[m] for m in ordered})

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

    # -- records (the predictor's table) ---------------------------------------------------------
    def write_records(self, records: pd.DataFrame, layers: pd.DataFrame | None = None) -> int:
        """Upsert metrics-only networks (kind ``records``) keyed by ``key``; returns #records.

        Columns :data:`RECORD_META` are metadata; every other column is a numeric metric stored as
        a ``(:Metric)`` node under its column name (``r-out``, ``2-hop_nei``, … are kept verbatim:
        metric names are values, not property keys). ``layers`` rows (``key, encoding, layer_id,
        layer_name, density`` + any float columns) become ``(:LayerMetrics)`` nodes whose metric
        columns are kept as a JSON map. Rewriting a key replaces its metrics and layer rows.
        """
        missing = [c for c in ("key",) if c not in records.columns]
        if missing:
            raise StoreIntegrityError("write_records: the record table has no 'key' column")
        if records["key"].duplicated().any():
            dup = records.loc[records["key"].duplicated(), "key"].iloc[0]
            raise StoreIntegrityError(f"write_records: key {dup!r} appears twice; keys must be "
                                      "unique")
        keys = [str(k) for k in records["key"]]
        if not keys:
            return 0
        clash = self.list_networks()
        graph_keys = set(clash.loc[clash["kind"] != "records", "key"]) if not clash.empty else set()
        bad = sorted(set(keys) & graph_keys)
        if bad:
            raise StoreIntegrityError(f"write_records: key {bad[0]!r} belongs to an ingested "
                                      "network; record keys must differ from network keys")
        now, version = _now(), _version()
        net_rows = []
        for r in records.to_dict("records"):
            net_rows.append({
                "key": str(r["key"]), "source": _opt_str(r.get("source")),
                "model": _opt_str(r.get("model")), "dataset": _opt_str(r.get("dataset")),
                "pruner": _opt_str(r.get("pruner")), "sparsity": _opt_float(r.get("sparsity")),
                "seed": _opt_int(r.get("seed")), "accuracy": _opt_float(r.get("accuracy")),
                "dense_accuracy": _opt_float(r.get("dense_accuracy")),
                "nodes": _opt_int(r.get("nodes")), "edges": _opt_int(r.get("edges")),
                "created": now, "mgedb_version": version,
            })
        metric_cols = [c for c in records.columns if c not in RECORD_META]
        for i in range(0, len(net_rows), 5_000):
            self._write("records/upsert_networks", {"rows": net_rows[i:i + 5_000]})
        self._write("records/delete_metrics", {"keys": keys})
        if metric_cols:
            long = records[["key", *metric_cols]].melt(id_vars="key", var_name="name",
                                                       value_name="value")
            order = {c: i for i, c in enumerate(metric_cols)}
            values = pd.to_numeric(long["value"], errors="coerce").astype("float64")
            rows = pd.DataFrame({
                "key": long["key"].astype(str) + "#" + long["name"].astype(str),
                "network": long["key"].astype(str),
                "name": long["name"].astype(str),
                "value": values.where(values.notna(), None),
                "normalised": values.where(values.notna(), None),
                "engine": "records",
                "ord": long["name"].map(order).astype("int64"),
            })
            self._write_metric_rows(rows)
        if layers is not None and not layers.empty:
            self._write_layer_rows(_layer_rows(layers))
        return len(keys)

    def read_records(self, source: str | None = None) -> pd.DataFrame:
        """The record table written by :meth:`write_records` (all sources, or one)."""
        nets = self.run_query("records/read_networks", {"source": source})
        if nets.empty:
            return pd.DataFrame({c: [] for c in RECORD_META})
        mets = self.run_query("records/read_metrics", {"source": source})
        out = nets.reindex(columns=list(RECORD_META)).copy()
        if not mets.empty:
            names = (mets[["name", "ord"]].drop_duplicates("name").sort_values(["ord", "name"])
                     ["name"].tolist())
            wide = mets.pivot_table(index="key", columns="name", values="value", aggfunc="first",
                                    dropna=False)
            wide = wide.reindex(columns=names)
            out = out.merge(wide, left_on="key", right_index=True, how="left")
            for c in names:
                out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        for c in ("sparsity", "accuracy", "dense_accuracy"):
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        for c in ("seed", "nodes", "edges"):
            out[c] = pd.to_numeric(out[c], errors="coerce")
        return out.reset_index(drop=True)

    def read_layers(self, source: str | None = None) -> pd.DataFrame:
        """The per-layer rows written with :meth:`write_records` (JSON metric maps expanded)."""
        rows = self.run_query("records/read_layer_metrics", {"source": source})
        base_cols = ["key", "encoding", "layer_id", "layer_name", "density"]
        if rows.empty:
            return pd.DataFrame({c: [] for c in base_cols})
        maps = [json.loads(s) if isinstance(s, str) else {} for s in rows["metrics_json"]]
        cols: list[str] = []
        for m in maps:
            cols += [c for c in m if c not in cols]
        extra = pd.DataFrame([{c: _nan_if_none(m.get(c)) for c in cols} for m in maps],
                             columns=cols, dtype="float64")
        out = pd.concat([rows[base_cols].reset_index(drop=True), extra], axis=1)
        out["density"] = pd.to_numeric(out["density"], errors="coerce").astype("float64")
        return out


def _ids(a: np.ndarray, n: int) -> np.ndarray:
    return a.astype(np.int32 if n < 2**31 - 1 else np.int64)


def _nan_if_none(v: Any) -> float:
    return math.nan if v is None else float(v)


def _metric_rows(key: str, metrics: Mapping[str, float], engine: str) -> pd.DataFrame:
    from mgedb.metrics.registry import MGE_METRICS, SIZE_METRICS

    order = {m: i for i, m in enumerate((*SIZE_METRICS, *MGE_METRICS))}
    n_nodes = metrics.get("n_nodes")
    n_edges = metrics.get("n_edges")
    rows = []
    for i, (name, value) in enumerate(metrics.items()):
        v = _opt_float(value)
        div = _metric_divisor(name)
        denom = {"N": n_nodes, "E": n_edges}.get(div) if div else None
        normalised = v if div is None else (
            v / float(denom) if v is not None and denom else None)
        rows.append({"key": f"{key}#{name}", "network": key, "name": str(name), "value": v,
                     "normalised": normalised, "engine": engine,
                     "ord": order.get(name, len(order) + i)})
    return pd.DataFrame(rows, columns=["key", "network", "name", "value", "normalised", "engine",
                                       "ord"])


def _layer_rows(layers: pd.DataFrame) -> pd.DataFrame:
    need = ("key", "encoding", "layer_id")
    missing = [c for c in need if c not in layers.columns]
    if missing:
        raise StoreIntegrityError(f"write_records: the layer table lacks {', '.join(missing)}")
    fixed = ("key", "encoding", "layer_id", "layer_name", "density")
    metric_cols = [c for c in layers.columns if c not in fixed]
    values = layers[metric_cols].apply(pd.to_numeric, errors="coerce").astype("float64")
    maps = [json.dumps({c: (None if math.isnan(x) else x) for c, x in zip(metric_cols, row,
                                                                          strict=True)})
            for row in values.itertuples(index=False, name=None)]
    key = layers["key"].astype(str)
    enc = layers["encoding"].astype(str)
    lid = pd.to_numeric(layers["layer_id"], errors="raise").astype("int64")
    density = pd.to_numeric(layers["density"], errors="coerce") if "density" in layers \
        else pd.Series(np.nan, index=layers.index)
    return pd.DataFrame({
        "key": key + "#" + enc + "#" + lid.astype(str),
        "network": key, "encoding": enc, "layer_id": lid,
        "layer_name": layers["layer_name"].astype(str) if "layer_name" in layers else "",
        "density": density.astype("float64").where(density.notna(), None),
        "metrics_json": maps,
        "ord": np.arange(len(layers), dtype=np.int64),
    })
