"""The embedded store: Ladybug 0.22 (``ladybug``, the maintained fork of Kùzu), a database file in
a directory, no server.

Everything engine-specific lives in this module and in ``cypher/kuzu/`` (the Kùzu dialect of
Cypher, which Ladybug speaks unchanged): the typed schema (one node table per label, one ``W``
relationship table with a FROM/TO pair per unit-label pair), bulk loads with ``COPY … FROM`` an
Arrow table (never ``UNWIND`` + ``MATCH`` for edges: a few hundred rows per second), and
read-only transactions for ad-hoc queries.

Why Ladybug and not Kùzu 0.11.3 (archived upstream): Kùzu's checkpoint reclaims a whole
131,072-node CSR group when the rel counts of its *changed* 1,024-node regions sum to 0, so a
delete of one network drops edges of networks stored next to it (docs/schema.md, "Deleting").
Ladybug sums over every region; ``tests/test_store_suite.py`` deletes networks in every position
across node groups and checks every other network's counts after a checkpoint and a reopen.
Ladybug's graph algorithms (WCC, k-core) sit in its ALGO extension, which is downloaded at run
time, so the array engine computes them for this store. Stores written by Kùzu (``graph.kuzu``)
are refused with a pointer to ``mgedb migrate`` (:mod:`mgedb.store.migrate`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import warnings
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pyarrow as pa

from mgedb.errors import (
    BackendUnavailable,
    QueryError,
    QueryParameterError,
    QueryTimeout,
    ReadOnlyViolation,
    StoreNeedsMigration,
)
from mgedb.store.base import BaseStore
from mgedb.store.protocol import ProgressFn, Rows
from mgedb.store.queries import (
    check_adhoc_statement,
    registry,
    split_statements,
    strip_comments_and_strings,
)
from mgedb.store.tables import UNIT_LABELS, GraphTables

__all__ = ["DB_FILE", "LEGACY_DB_FILE", "KuzuStore"]

log = logging.getLogger("mgedb.store.kuzu")

DB_FILE = "graph.lbug"
#: the file of stores written by mgedb before the move to Ladybug (Kùzu 0.11.3)
LEGACY_DB_FILE = "graph.kuzu"
_COPY_TARGETS = frozenset({"Network", "Layer", "Channel", "Metric", "LayerMetrics", *UNIT_LABELS,
                           "W",
                           "IN_CHANNEL", "IN_LAYER", "OF", "HAS_METRIC", "HAS_LAYER_METRICS"})
_COPY_LABELS = frozenset({"Network", "Layer", "Channel", "Metric", "LayerMetrics", *UNIT_LABELS})
_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|CHECKPOINT)\b", re.IGNORECASE)
_METRIC_SCHEMA = pa.schema([("key", pa.string()), ("network", pa.string()), ("name", pa.string()),
                            ("value", pa.float64()), ("normalised", pa.float64()),
                            ("engine", pa.string()), ("ord", pa.int64())])
_LAYER_SCHEMA = pa.schema([("key", pa.string()), ("network", pa.string()),
                           ("encoding", pa.string()), ("layer_id", pa.int64()),
                           ("layer_name", pa.string()), ("density", pa.float64()),
                           ("metrics_json", pa.string()), ("ord", pa.int64())])

# ``records/upsert_networks`` as a typed bulk load. Its portable form UNWINDs a parameter list, and
# Kùzu infers each field's type from the values: a column that is null in every row (e.g.
# ``dense_accuracy`` of a table that never reports it) comes out STRING, and setting it on the
# DOUBLE property is refused. Here the types come from the columns, never from the values.
_RECORD_NETWORK_TYPES: dict[str, pa.DataType] = {
    "sparsity": pa.float64(), "accuracy": pa.float64(), "dense_accuracy": pa.float64(),
    "seed": pa.int64(), "nodes": pa.int64(), "edges": pa.int64(),
}
_UPSERT_RECORD_NETWORKS = (
    "LOAD FROM rows MERGE (g:Network {key: key}) "
    "SET g.kind = 'records', g.complete = true, g.source = source, g.model = model, "
    "g.dataset = dataset, g.pruner = pruner, g.sparsity = sparsity, g.seed = seed, "
    "g.accuracy = accuracy, g.dense_accuracy = dense_accuracy, g.n_nodes = nodes, "
    "g.n_edges = edges, g.created = created, g.mgedb_version = mgedb_version"
)


def _arrow_type(dtype: Any) -> pa.DataType:
    """Column type by pandas dtype: float → DOUBLE, int → INT64, bool → BOOLEAN, else STRING."""
    if pd.api.types.is_bool_dtype(dtype):
        return pa.bool_()
    if pd.api.types.is_integer_dtype(dtype):
        return pa.int64()
    if pd.api.types.is_float_dtype(dtype):
        return pa.float64()
    return pa.string()


def _missing(v: Any) -> bool:
    return v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))


def _typed_table(frame: pd.DataFrame, types: Mapping[str, pa.DataType] | None = None
                 ) -> pa.Table:
    """``frame`` as Arrow with a type per column (``types``, else by dtype), whatever the values:
    an all-NaN float column stays DOUBLE (all null). NaN and None become null."""
    arrays: dict[str, pa.Array] = {}
    for c in frame.columns:
        t = (types or {}).get(str(c)) or _arrow_type(frame[c].dtype)
        col = frame[c]
        if pa.types.is_floating(t):
            arr = pa.array(pd.to_numeric(col, errors="coerce").astype("float64"), type=t,
                           from_pandas=True)
        elif pa.types.is_integer(t):
            arr = pa.array([None if _missing(v) else int(v) for v in col], type=t)
        elif pa.types.is_boolean(t):
            arr = pa.array([None if _missing(v) else bool(v) for v in col], type=t)
        else:
            arr = pa.array([None if _missing(v) else str(v) for v in col], type=pa.string())
        arrays[str(c)] = arr
    return pa.table(arrays)


def _kuzu() -> ModuleType:
    import ladybug

    return ladybug


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _is_write_refusal(msg: str) -> bool:
    return ("read-only transaction" in msg or "read-only database" in msg
            or "read only" in msg.lower())


def _result_rows(result: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of a driver result, one tuple at a time."""
    try:
        while result.has_next():
            yield tuple(result.get_next())
    except RuntimeError as e:
        raise QueryError(f"the embedded store failed while returning rows: {_one_line(e)}"
                         ) from None


class KuzuStore(BaseStore):
    """A :class:`~mgedb.store.base.GraphStore` in an embedded Ladybug database under ``path``."""

    kind = "embedded"
    dialect = "kuzu"

    def __init__(self, path: str | Path, *, read_only: bool = False,
                 threads: int | None = None) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.read_only = read_only
        file = self.path / DB_FILE
        if (self.path / LEGACY_DB_FILE).exists() and not file.exists():
            raise StoreNeedsMigration(
                f"the store at {self.path} was written by an older mgedb (Kùzu 0.11, whose "
                f"deletes can lose other networks' edges); convert it with `mgedb migrate --db "
                f"{self.path}`")
        if read_only and not file.exists():
            raise BackendUnavailable(f"no embedded store at {self.path}; ingest a network first "
                                     "(`mgedb ingest …`) or point --db at an existing store")
        if not read_only:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise BackendUnavailable(f"cannot create the embedded store directory "
                                         f"{self.path} ({e.strerror}); choose another --db"
                                         ) from None
        kuzu = _kuzu()
        try:
            self._db = kuzu.Database(str(file), read_only=read_only,
                                     max_num_threads=threads or 0)
            self._conn = kuzu.Connection(self._db)
        except RuntimeError as e:
            msg = str(e).strip().splitlines()[0]
            if "lock" in msg.lower():
                raise BackendUnavailable(f"the embedded store at {self.path} is in use by another "
                                         "process; wait for it to finish or use another --db"
                                         ) from None
            raise BackendUnavailable(f"cannot open the embedded store at {self.path} ({msg}); "
                                     "use another --db") from None
        self._closed = False
        self.last_timings: dict[str, float] = {}
        self.ingest_timings: dict[str, float] = {}
        if not read_only:
            self.ensure_schema()

    # -- plumbing --------------------------------------------------------------------------------
    def _execute(self, text: str, params: Mapping[str, Any] | None = None,
                 timeout: float | None = None, *, fresh: bool = False) -> Any:
        """Run one statement. ``fresh``: prepare it anew instead of through the driver's implicit
        prepared-statement cache, which keeps a statement first prepared inside a read-only
        transaction read-only for good (Ladybug 0.22); ad-hoc queries run this way."""
        if timeout is not None:
            self._conn.set_query_timeout(max(1, int(timeout * 1000)))
        try:
            if fresh and params:
                with warnings.catch_warnings():  # separate prepare + execute: "deprecated"
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return self._conn.execute(self._conn.prepare(text), dict(params))
            return self._conn.execute(text, dict(params or {}))
        except (ValueError, TypeError, OverflowError) as e:  # the driver could not bind a value
            raise QueryParameterError(f"a query parameter cannot be bound ({_one_line(e)}); give "
                                      "one type per list and numbers within 64 bits") from None
        except RuntimeError as e:
            msg = str(e).strip()
            if _is_write_refusal(msg):
                raise ReadOnlyViolation(
                    f"the query writes, but runs read-only ({msg.splitlines()[0]}); pass --write "
                    "(write=True) to allow writes") from None
            if "interrupt" in msg.lower() or "timeout" in msg.lower():
                raise QueryTimeout(f"the query ran longer than {timeout} s and was stopped; "
                                   "raise --timeout or narrow the query") from None
            if params and ("convert" in msg.lower() or "cast" in msg.lower()):
                raise QueryParameterError(
                    f"a parameter does not fit the query ({msg.splitlines()[0]}); the value of "
                    f"--param {', '.join(sorted(params))} was read as JSON: quote strings, e.g. "
                    "-p 'k=\"123\"'") from None
            raise QueryError(f"the embedded store rejected the query: {msg.splitlines()[0]}"
                             ) from None
        finally:
            if timeout is not None:
                self._conn.set_query_timeout(0)

    @staticmethod
    def _frame(result: Any) -> pd.DataFrame:
        if isinstance(result, list):
            result = result[-1]
        names = result.get_column_names()
        if not names:
            return pd.DataFrame()
        table = result.get_as_arrow()
        if table.num_columns == 0:
            return pd.DataFrame(columns=names)
        df = table.to_pandas(types_mapper=None)
        df.columns = names
        return df

    def ensure_schema(self) -> None:
        for statement in registry().get("schema/tables", "kuzu").statements:
            self._execute(statement)

    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame:
        q, p = registry().bind(name, params, self.dialect)
        return self._frame(self._execute(q.body, p, timeout))

    def _write(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        if name == "records/upsert_networks":
            registry().bind(name, params, self.dialect)  # the same parameter checks
            self._upsert_record_networks(pd.DataFrame(list((params or {})["rows"])))
            return pd.DataFrame()
        return self.run_query(name, params)

    def _upsert_record_networks(self, frame: pd.DataFrame) -> None:
        """``records/upsert_networks`` from a typed Arrow table (see ``_RECORD_NETWORK_TYPES``)."""
        if frame.empty:
            return
        rows = _typed_table(frame, _RECORD_NETWORK_TYPES)  # noqa: F841  (read by LOAD FROM rows)
        self._execute(_UPSERT_RECORD_NETWORKS)

    def query(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
              timeout: float | None = None) -> pd.DataFrame:
        """An ad-hoc Cypher query (Kùzu dialect), all rows; see :meth:`stream`."""
        with self._adhoc(text, params, write=write, timeout=timeout) as result:
            return self._frame(result)

    @contextlib.contextmanager
    def stream(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
               timeout: float | None = None) -> Iterator[Rows]:
        """An ad-hoc query's rows one by one (the database holds the result; nothing is copied
        into a frame). Read-only unless ``write``."""
        with self._adhoc(text, params, write=write, timeout=timeout) as result:
            if isinstance(result, list):
                result = result[-1]
            yield Rows(list(result.get_column_names()), _result_rows(result))

    @contextlib.contextmanager
    def _adhoc(self, text: str, params: Mapping[str, Any] | None, *, write: bool,
               timeout: float | None) -> Iterator[Any]:
        """Run an ad-hoc query; the driver's result is valid inside the block. Read-only unless
        ``write``: a single statement inside ``BEGIN TRANSACTION READ ONLY`` (the database
        refuses writes), rolled back when the block ends; statements that reach files or the
        network are refused (:func:`~mgedb.store.queries.check_adhoc_statement`)."""
        check_adhoc_statement(text, write=write)
        if write:
            if self.read_only:
                raise ReadOnlyViolation(f"the embedded store at {self.path} is open read-only; "
                                        "open it for writing (mgedb query --write)")
            yield self._execute(text, params, timeout, fresh=True)
            return
        statements = split_statements(text)
        if len(statements) != 1:
            raise QueryError(f"a read-only query must be one statement (got {len(statements)}); "
                             "run them one by one or pass --write")
        if _TX_CONTROL.match(strip_comments_and_strings(statements[0])):
            raise ReadOnlyViolation("transaction control (BEGIN/COMMIT/ROLLBACK/CHECKPOINT) is "
                                    "not allowed in a read-only query; pass --write")
        if self.read_only:
            yield self._execute(statements[0], params, timeout, fresh=True)
            return
        self._execute("BEGIN TRANSACTION READ ONLY")
        try:
            yield self._execute(statements[0], params, timeout, fresh=True)
        finally:
            with contextlib.suppress(QueryError):  # a failed query may have ended the transaction
                self._execute("ROLLBACK")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()
            self._db.close()

    # -- bulk loading ----------------------------------------------------------------------------
    def _copy(self, target: str, rows: pa.Table, from_label: str | None = None,
              to_label: str | None = None) -> None:
        """``COPY target FROM rows``: names from closed sets; the rows never enter the text."""
        if target not in _COPY_TARGETS or (from_label and from_label not in _COPY_LABELS) or (
                to_label and to_label not in _COPY_LABELS):
            raise QueryError(f"internal: {target}/{from_label}/{to_label} is not a store table")
        if rows.num_rows == 0:
            return
        opts = f" (from='{from_label}', to='{to_label}')" if from_label else ""
        self._execute(f"COPY {target} FROM rows{opts}")

    def _load_tables(self, key: str, tables: GraphTables, batch_size: int | None,
                     progress: ProgressFn | None) -> None:
        n_nodes, n_edges = tables.n_nodes, tables.n_edges
        t = time.perf_counter()
        self._copy("Layer", tables.layers)
        self._copy("Channel", tables.channels)
        self._copy("OF", tables.of, "Layer", "Network")
        done = 0
        for label, rows in tables.units.items():
            self._copy(label, rows)
            done += rows.num_rows
            if progress:
                progress("nodes", done, n_nodes)
        for label, rows in tables.in_channel.items():
            self._copy("IN_CHANNEL", rows, label, "Channel")
        for label, rows in tables.in_layer.items():
            self._copy("IN_LAYER", rows, label, "Layer")
        self.ingest_timings["nodes"] = time.perf_counter() - t
        t = time.perf_counter()
        done = 0
        if progress:
            progress("edges", 0, n_edges)
        for block in tables.edges:
            step = batch_size or block.table.num_rows
            for start in range(0, block.table.num_rows, step):
                self._copy("W", block.table.slice(start, step), block.from_label, block.to_label)
                done += min(step, block.table.num_rows - start)
                if progress:
                    progress("edges", done, n_edges)
        self.ingest_timings["edges"] = time.perf_counter() - t

    def _write_metric_rows(self, rows: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(rows[list(_METRIC_SCHEMA.names)], schema=_METRIC_SCHEMA,
                                     preserve_index=False)
        self._copy("Metric", table)
        self._copy("HAS_METRIC", pa.table({"from": table["network"], "to": table["key"]}),
                   "Network", "Metric")

    def _write_layer_rows(self, rows: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(rows[list(_LAYER_SCHEMA.names)], schema=_LAYER_SCHEMA,
                                     preserve_index=False)
        self._copy("LayerMetrics", table)
        self._copy("HAS_LAYER_METRICS", pa.table({"from": table["network"], "to": table["key"]}),
                   "Network", "LayerMetrics")

    # -- algorithms ----------------------------------------------------------------------------
    def _algo_counts(self, key: str, counts: Collection[str]) -> dict[str, float]:
        """None in the database: Ladybug's graph algorithms (WCC, k-core) live in its ALGO
        extension, which is downloaded at run time and so is not there offline; the array engine
        computes them over the graph read out of the store (Neo4j keeps them in GDS)."""
        return {}
