"""The store protocol: what every graph store offers, and the values it returns.

:class:`GraphStore` is the interface the CLI, the study and the predictor program against
(embedded Kùzu and Neo4j implement it through :class:`~mgedb.store.base.BaseStore`);
:class:`NetworkInfo` is a stored network's metadata and :class:`MetricValues` a metric result
with its provenance. The small value helpers at the end turn driver/pandas values (NaN, NumPy
scalars) into plain Python values for the ``(:Network)`` properties.

The store package, by module:

* ``protocol`` (this one) — :class:`GraphStore`, :class:`NetworkInfo`, :class:`MetricValues`;
* ``base`` — :class:`~mgedb.store.base.BaseStore`: ingest, read back, list, delete, metric
  values (the CRUD every backend shares, on a few backend primitives);
* ``engine`` — the database metric engine: computing topometrics with the query files, flavour
  parameters, and comparing engines (:func:`~mgedb.store.engine.compare_engines`);
* ``records`` — the predictor's record table in the store (``write_records``/``read_records``);
* ``tables`` — a graph as Arrow node/edge tables; ``keys`` — network keys and unit ids;
* ``queries`` — the registry of ``cypher/`` files (dialect overrides fall back to shared files);
* ``kuzu_store`` / ``neo4j_store`` — the backends; ``recording`` — a recording Neo4j runner.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from mgedb.graph import Graph, GraphSet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GraphStore", "MetricValues", "NetworkInfo", "ProgressFn", "Rows"]

_S = TypeVar("_S")

#: ``progress(stage, done, total)``: called as ingestion advances (units of rows).
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Rows:
    """An ad-hoc query's result as it streams: column names and an iterator of value tuples,
    consumed once inside the ``with`` block of :meth:`GraphStore.stream`."""

    columns: list[str]
    rows: Iterator[tuple[Any, ...]]


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
        dims = tuple(int(d) for d in dim) if dim is not None and present(dim) else ()
        return NetworkInfo(
            key=str(row["key"]), kind=str(row.get("kind") or ""),
            complete=bool(row.get("complete")), encoding=opt_str(row.get("encoding")),
            flavour=opt_str(row.get("flavour")),
            dimension=dims,
            n_nodes=opt_int(row.get("n_nodes")), n_edges=opt_int(row.get("n_edges")),
            layout=opt_str(row.get("layout")),
            props={k: plain(v) for k, v in row.items() if k != "layout"},
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
    def verify(self, key: str) -> list[str]: ...
    def set_metrics(self, key: str, metrics: Mapping[str, float], *,
                    engine: str = "array") -> None: ...
    def get_metrics(self, key: str) -> dict[str, float]: ...
    def read_graph(self, key: str) -> Graph | GraphSet: ...
    def compute_metrics(self, key: str, only: Iterable[str] | str | None = None, *,
                        seed: int = 0) -> MetricValues: ...
    def query(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
              timeout: float | None = None) -> pd.DataFrame: ...
    def stream(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
               timeout: float | None = None) -> contextlib.AbstractContextManager[Rows]: ...
    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame: ...
    def write_records(self, records: pd.DataFrame, layers: pd.DataFrame | None = None) -> int: ...
    def read_records(self, source: str | None = None) -> pd.DataFrame: ...
    def read_layers(self, source: str | None = None) -> pd.DataFrame: ...
    def close(self) -> None: ...
    def __enter__(self: _S) -> _S: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


# -- value helpers (driver / pandas values → plain Python) -----------------------------------
def present(v: Any) -> bool:
    """Not None and not a float NaN (what pandas and the drivers use for a missing value)."""
    if v is None:
        return False
    return not (isinstance(v, float) and math.isnan(v))


def plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def opt_str(v: Any) -> str | None:
    return None if not present(v) else str(v)


def opt_int(v: Any) -> int | None:
    return None if not present(v) else int(v)


def opt_float(v: Any) -> float | None:
    if not present(v):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def mgedb_version() -> str:
    from mgedb import __version__

    return __version__


def nan_if_none(v: Any) -> float:
    """``None`` (a missing value from the database) as NaN, anything else as a float."""
    return math.nan if v is None else float(v)
