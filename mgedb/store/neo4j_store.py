"""The Neo4j 5 backend: the official ``neo4j`` driver over Bolt, GDS for graph algorithms.

Only :class:`DriverRunner` touches the driver: every query goes through a :class:`QueryRunner`
(read transactions with READ routing — the server refuses writes there —, write transactions,
auto-commit for DDL and ``CALL { … } IN TRANSACTIONS``). Tests swap in
:class:`~mgedb.store.recording.RecordingRunner`, which records query names, parameters and
transaction boundaries. Bulk data travels as ``UNWIND $rows`` batches (edges: one list per
column), one write transaction each.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from mgedb.errors import (
    BackendUnavailable,
    GdsNotInstalled,
    MgedbError,
    QueryError,
    QueryTimeout,
    ReadOnlyViolation,
)
from mgedb.metrics.registry import ALGORITHM_COUNTS
from mgedb.store.base import BaseStore
from mgedb.store.protocol import ProgressFn, Rows
from mgedb.store.queries import check_adhoc_statement, registry
from mgedb.store.tables import BGE_LABEL, GraphTables

__all__ = ["DEFAULT_BATCH", "DEFAULT_URI", "DriverRunner", "Neo4jStore", "QueryRunner",
           "Statement", "neo4j_settings", "safe_uri"]

log = logging.getLogger("mgedb.store.neo4j")

DEFAULT_URI = "bolt://localhost:7687"
DEFAULT_BATCH = 10_000
_UNIT_QUERY = {"InputPixel": "ingest/input_pixels", "ConvUnit": "ingest/conv_units",
               "Neuron": "ingest/neurons", BGE_LABEL: "ingest/bge_nodes"}
_FIX = ("start one with `make neo4j && . .neo4j/env` (Java 17 + Maven) or `docker compose -f "
        "docker/compose.yml up -d` (see docker/README.md), or set NEO4J_URI / NEO4J_USER / "
        "NEO4J_PASSWORD")


@dataclass(frozen=True)
class Statement:
    """One query to run: its registry name (``adhoc`` for user text), text and parameters."""

    name: str
    text: str
    params: dict[str, Any] = field(default_factory=dict)


class QueryRunner(Protocol):
    """The only thing that talks to the server; rows come back as plain dicts."""

    def read(self, statement: Statement, *, timeout: float | None = None
             ) -> list[dict[str, Any]]: ...
    def write(self, statements: Sequence[Statement], *, timeout: float | None = None
              ) -> list[list[dict[str, Any]]]: ...
    def autocommit(self, statement: Statement, *, timeout: float | None = None
                   ) -> list[dict[str, Any]]: ...
    def stream(self, statement: Statement, *, write: bool = False, timeout: float | None = None
               ) -> contextlib.AbstractContextManager[Rows]: ...
    def close(self) -> None: ...


def safe_uri(uri: str) -> str:
    """The URI without any ``user:password@`` part (never echo a password)."""
    return re.sub(r"//[^/@]*@", "//", uri)


def neo4j_settings(uri: str | None = None, user: str | None = None,
                   password: str | None = None, database: str | None = None
                   ) -> dict[str, str | None]:
    """Connection settings: the arguments first, then ``NEO4J_URI``, ``NEO4J_USER``,
    ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``, then defaults (localhost, user ``neo4j``)."""
    return {
        "uri": uri or os.environ.get("NEO4J_URI") or DEFAULT_URI,
        "user": user or os.environ.get("NEO4J_USER") or "neo4j",
        "password": password if password is not None else os.environ.get("NEO4J_PASSWORD"),
        "database": database or os.environ.get("NEO4J_DATABASE") or None,
    }


def _map_error(e: Exception, uri: str, user: str | None) -> MgedbError:
    from neo4j import exceptions as ne

    where = safe_uri(uri)
    if isinstance(e, ne.AuthError | ne.AuthConfigurationError):
        return BackendUnavailable(f"Neo4j at {where} refused the credentials of user {user!r}; "
                                  "set NEO4J_USER / NEO4J_PASSWORD (docker/.env for the compose "
                                  "server)")
    if isinstance(e, ne.ConfigurationError):
        return BackendUnavailable(f"invalid Neo4j connection settings for {where} "
                                  f"({type(e).__name__}); write NEO4J_URI as bolt://host:7687 or "
                                  "neo4j://host:7687 and the credentials in NEO4J_USER / "
                                  "NEO4J_PASSWORD")
    if isinstance(e, ne.ServiceUnavailable | ne.SessionExpired | ne.DatabaseUnavailable
                  | ne.UnsupportedServerProduct | OSError):
        return BackendUnavailable(f"cannot reach Neo4j at {where} ({type(e).__name__}); {_FIX}")
    code = getattr(e, "code", None) or ""
    msg = (getattr(e, "message", None) or str(e)).strip().splitlines()[0] if str(e) else code
    if "AccessMode" in code or isinstance(e, ne.ForbiddenOnReadOnlyDatabase):
        return ReadOnlyViolation(f"the query writes, but runs in a read transaction ({msg}); "
                                 "pass --write (write=True) to allow writes")
    if "TransactionTimedOut" in code or "Terminated" in code:
        return QueryTimeout(f"the query ran past its time limit and was stopped ({code}); raise "
                            "--timeout or narrow the query")
    if "DatabaseNotFound" in code:
        return BackendUnavailable(f"Neo4j at {where} has no such database ({msg}); set "
                                  "NEO4J_DATABASE or create it")
    err = QueryError(f"Neo4j at {where} rejected the query: {msg} ({code or type(e).__name__})")
    err.code = code  # type: ignore[attr-defined]
    return err


class DriverRunner:
    """A :class:`QueryRunner` on the official driver; the password stays inside the driver."""

    #: Seconds the driver retries a managed transaction on transient errors (its default, 30 s,
    #: with backoff makes a vanished server take over a minute per call to report).
    RETRY_TIME = 10.0

    def __init__(self, uri: str, user: str | None, password: str | None,
                 database: str | None = None) -> None:
        import neo4j

        self.uri = uri
        self.user = user
        self.database = database
        auth = (user or "neo4j", password) if password is not None else None
        try:
            # notifications off: the server's hints (e.g. "property key does not exist" for an
            # optional property no network has yet) would be logged as warnings on every query
            self._driver = neo4j.GraphDatabase.driver(
                uri, auth=auth, max_transaction_retry_time=self.RETRY_TIME,
                notifications_min_severity="OFF")
        except Exception as e:
            raise _map_error(e, uri, user) from None
        try:
            self._driver.verify_connectivity()
        except Exception as e:
            self._driver.close()  # close before raising: no half-open driver is left behind
            raise _map_error(e, uri, user) from None

    def __repr__(self) -> str:
        return f"DriverRunner({safe_uri(self.uri)!r}, user={self.user!r}, db={self.database!r})"

    def _session(self, read: bool) -> Any:
        import neo4j

        mode = neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS
        return self._driver.session(database=self.database, default_access_mode=mode)

    def read(self, statement: Statement, *, timeout: float | None = None
             ) -> list[dict[str, Any]]:
        import neo4j

        @neo4j.unit_of_work(metadata={"query": statement.name}, timeout=timeout)
        def work(tx: Any) -> list[dict[str, Any]]:
            return list(tx.run(statement.text, statement.params).data())

        try:
            with self._session(read=True) as s:
                return s.execute_read(work)
        except Exception as e:
            raise _map_error(e, self.uri, self.user) from None

    def write(self, statements: Sequence[Statement], *, timeout: float | None = None
              ) -> list[list[dict[str, Any]]]:
        import neo4j

        name = statements[0].name if statements else "empty"

        @neo4j.unit_of_work(metadata={"query": name}, timeout=timeout)
        def work(tx: Any) -> list[list[dict[str, Any]]]:
            return [list(tx.run(st.text, st.params).data()) for st in statements]

        try:
            with self._session(read=False) as s:
                return s.execute_write(work)
        except Exception as e:
            raise _map_error(e, self.uri, self.user) from None

    def autocommit(self, statement: Statement, *, timeout: float | None = None
                   ) -> list[dict[str, Any]]:
        import neo4j

        q = neo4j.Query(statement.text, metadata={"query": statement.name}, timeout=timeout)
        try:
            with self._session(read=False) as s:
                return list(s.run(q, statement.params).data())
        except Exception as e:
            raise _map_error(e, self.uri, self.user) from None

    @contextlib.contextmanager
    def stream(self, statement: Statement, *, write: bool = False, timeout: float | None = None
               ) -> Iterator[Rows]:
        """One explicit transaction (READ unless ``write``; committed when the block ends
        cleanly) whose records are fetched as they are consumed; ``timeout`` bounds the whole
        transaction on the server, fetching included."""
        try:
            session = self._session(read=not write)
        except Exception as e:
            raise _map_error(e, self.uri, self.user) from None
        try:
            tx = session.begin_transaction(metadata={"query": statement.name}, timeout=timeout)
            result = tx.run(statement.text, statement.params)
            columns = list(result.keys())
        except Exception as e:
            session.close()
            raise _map_error(e, self.uri, self.user) from None

        def records() -> Iterator[tuple[Any, ...]]:
            try:
                for record in result:
                    yield tuple(record.data().values())
            except Exception as e:
                raise _map_error(e, self.uri, self.user) from None

        try:
            yield Rows(columns, records())
            if write:
                try:
                    tx.commit()
                except Exception as e:
                    raise _map_error(e, self.uri, self.user) from None
        finally:
            tx.close()
            session.close()

    def close(self) -> None:
        self._driver.close()


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=list(columns))
    return pd.DataFrame.from_records(rows, columns=list(rows[0]))


class Neo4jStore(BaseStore):
    """A :class:`~mgedb.store.base.GraphStore` on a Neo4j 5 server (optionally with GDS).

    ``import_dir`` + ``import_url``: for huge graphs, edges are written as CSV into a directory the
    server reads (its ``import`` folder, e.g. ``docker/import``) and loaded with ``LOAD CSV``
    (``ingest/edges_csv``) instead of ``UNWIND`` batches.
    """

    kind = "neo4j"
    dialect = "neo4j"
    algo_provenance = "db:gds"

    def __init__(self, runner: QueryRunner, *, uri: str = DEFAULT_URI,
                 database: str | None = None, batch_size: int = DEFAULT_BATCH,
                 import_dir: Path | None = None, import_url: str = "file:///") -> None:
        self.runner = runner
        self.uri = safe_uri(uri)
        self.database = database
        self.location = self.uri + (f" (database {database})" if database else "")
        self.batch_size = batch_size
        self.import_dir = import_dir
        self.import_url = import_url
        self._gds: str | bool | None = False  # False: not probed yet
        self.last_timings: dict[str, float] = {}
        self.ingest_timings: dict[str, float] = {}

    @classmethod
    def connect(cls, uri: str | None = None, user: str | None = None,
                password: str | None = None, database: str | None = None,
                **options: Any) -> Neo4jStore:
        """Connect with :func:`neo4j_settings` (arguments, then ``NEO4J_*`` variables)."""
        s = neo4j_settings(uri, user, password, database)
        uri_ = str(s["uri"])
        if re.match(r"^https?://", uri_, re.IGNORECASE):  # the driver would try its HTTP preview
            raise BackendUnavailable(f"{safe_uri(uri_)} is Neo4j's HTTP address; mgedb talks Bolt: "
                                     "use bolt://HOST:7687 or neo4j://HOST:7687 (--uri or "
                                     "NEO4J_URI)")
        runner = DriverRunner(uri_, s["user"], s["password"], s["database"])
        return cls(runner, uri=uri_, database=s["database"], **options)

    def __repr__(self) -> str:
        return f"Neo4jStore({self.location!r})"

    # -- plumbing --------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        q = registry().get("schema/constraints", self.dialect)
        for text in q.statements:
            self.runner.autocommit(Statement(q.name, text, {}))

    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame:
        q, p = registry().bind(name, params, self.dialect)
        st = Statement(q.name, q.body, p)
        if q.mode == "read":
            rows = self.runner.read(st, timeout=timeout)
        else:
            rows = self.runner.write([st], timeout=timeout)[0]
        return _frame(rows, q.returns)

    def _write(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        q, p = registry().bind(name, params, self.dialect)
        return _frame(self.runner.write([Statement(q.name, q.body, p)])[0], q.returns)

    def _write_batches(self, name: str, rows: pa.Table, extra: Mapping[str, Any] | None = None,
                       *, progress: ProgressFn | None = None, stage: str = "",
                       done: int = 0, total: int = 0) -> int:
        """``UNWIND $rows`` in batches of ``batch_size`` rows, one write transaction each."""
        for start in range(0, rows.num_rows, self.batch_size):
            batch = rows.slice(start, self.batch_size).to_pylist()
            self._write(name, {**(extra or {}), "rows": batch})
            done += len(batch)
            if progress:
                progress(stage, done, total)
        return done

    def _write_column_batches(self, name: str, cols: pa.Table, *,
                              progress: ProgressFn | None = None, stage: str = "",
                              total: int = 0) -> None:
        """Like :meth:`_write_batches`, each column its own list parameter (``$s[i]`` …)."""
        done = 0
        for start in range(0, cols.num_rows, self.batch_size):
            batch = cols.slice(start, self.batch_size)
            self._write(name, {c: batch[c].to_numpy().tolist() for c in batch.column_names})
            done += batch.num_rows
            if progress:
                progress(stage, done, total)

    def query(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
              timeout: float | None = None) -> pd.DataFrame:
        """An ad-hoc query, all rows (columns kept when there are none); see :meth:`stream`."""
        with self.stream(text, params, write=write, timeout=timeout) as r:
            return pd.DataFrame.from_records(list(r.rows), columns=r.columns)

    @contextlib.contextmanager
    def stream(self, text: str, params: Mapping[str, Any] | None = None, *, write: bool = False,
               timeout: float | None = None) -> Iterator[Rows]:
        """An ad-hoc query's rows as the server sends them: a READ transaction (the server
        refuses writes) unless ``write``; statements that reach files or the network are refused
        (:func:`~mgedb.store.queries.check_adhoc_statement`)."""
        check_adhoc_statement(text, write=write)
        with self.runner.stream(Statement("adhoc", text, dict(params or {})), write=write,
                                timeout=timeout) as rows:
            yield rows

    def close(self) -> None:
        self.runner.close()

    # -- bulk loading ----------------------------------------------------------------------------
    def _load_tables(self, key: str, tables: GraphTables, batch_size: int | None,
                     progress: ProgressFn | None) -> None:
        if batch_size:
            self.batch_size = batch_size
        t = time.perf_counter()
        self._write_batches("ingest/layers", tables.layers.select(
            ["key", "position", "name", "kind", "shape", "size"]), {"key": key})
        self._write_batches("ingest/channels", tables.channels.select(["key", "layer", "position"]),
                            {"key": key})
        done = 0
        for label, rows in tables.units.items():
            cols = [c for c in rows.column_names if c != "network"]
            done = self._write_batches(_UNIT_QUERY[label], rows.select(cols), {"key": key},
                                       progress=progress, stage="nodes", done=done,
                                       total=tables.n_nodes)
        self.ingest_timings["nodes"] = time.perf_counter() - t
        t = time.perf_counter()
        if self.import_dir is not None:
            self._load_edges_csv(key, tables, progress)
        elif tables.edges:  # one W type for every label pair: batch across the pairs
            rows = pa.concat_tables([b.table for b in tables.edges])
            self._write_column_batches("ingest/edges",
                                       rows.rename_columns(["s", "t", "w", "k", "e"]),
                                       progress=progress, stage="edges", total=tables.n_edges)
        self.ingest_timings["edges"] = time.perf_counter() - t

    def _load_edges_csv(self, key: str, tables: GraphTables, progress: ProgressFn | None) -> None:
        assert self.import_dir is not None
        q, _ = registry().bind("ingest/edges_csv", {"url": "", "batch": 0}, self.dialect)
        done = 0
        for i, block in enumerate(tables.edges):
            name = f"mgedb-{key}-edges-{i}.csv"
            path = self.import_dir / name
            pacsv.write_csv(block.table.rename_columns(["s", "t", "w", "k", "e"]), path)
            try:
                params = {"url": self.import_url + name, "batch": self.batch_size}
                self.runner.autocommit(Statement(q.name, q.body, params))
            finally:
                path.unlink(missing_ok=True)
            done += block.table.num_rows
            if progress:
                progress("edges", done, tables.n_edges)

    def _write_metric_rows(self, rows: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(rows, preserve_index=False)
        self._write_batches("metrics/create", table)

    def _write_layer_rows(self, rows: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(rows, preserve_index=False)
        self._write_batches("records/create_layer_metrics", table)

    # -- GDS -------------------------------------------------------------------------------------
    def gds_version(self) -> str | None:
        """The GDS version, probed once with ``CALL gds.version()``; None when absent."""
        if self._gds is False:
            try:
                rows = self.run_query("gds/version")
                self._gds = str(rows.iloc[0]["version"]) if not rows.empty else None
            except QueryError as e:
                if "ProcedureNotFound" not in getattr(e, "code", "") and \
                        "gds.version" not in str(e):
                    raise
                self._gds = None
        return self._gds if isinstance(self._gds, str) else None

    def _algo_counts(self, key: str, counts: Collection[str]) -> dict[str, float]:
        """Core numbers, WCC, bridges and articulation points from GDS on a projection."""
        if self.gds_version() is None:
            names = [m for m, cs in ALGORITHM_COUNTS.items() if set(cs) & set(counts)]
            raise GdsNotInstalled(
                f"{', '.join(names)} need the Neo4j Graph Data Science plugin, which {self.uri} "
                "does not have; install it (docker/compose.yml sets NEO4J_PLUGINS="
                "'[\"graph-data-science\"]'), or compute them with the array engine "
                "(--engine array) or the embedded store (--store embedded)")
        graph = f"mgedb-{key}-{uuid.uuid4().hex[:8]}"
        values: dict[str, float] = {}
        proj = self.run_query("gds/project_network", {"key": key, "graph": graph})
        # GDS 2.13's bridges and articulation points fail (ArrayIndexOutOfBounds) on a projection
        # without relationships; such a graph has neither
        has_edges = int(proj.iloc[0]["relationships"]) > 0
        try:
            def one(query: str) -> float:
                return float(self.run_query(query, {"graph": graph}).iloc[0]["value"])

            if "k_core_sum" in counts:
                values["k_core_sum"] = one("gds/k_core_sum")
            if "components" in counts:
                values["components"] = int(one("gds/component_count"))
            if "bridges" in counts:
                values["bridges"] = int(one("gds/bridge_count")) if has_edges else 0
            if "articulation_points" in counts:
                values["articulation_points"] = (
                    int(one("gds/articulation_point_count")) if has_edges else 0)
        finally:
            self.run_query("gds/drop_graph", {"graph": graph})
        return values

    def check(self) -> dict[str, Any]:
        """Server name/version/edition, GDS version and what is missing for mgedb."""
        comp = self.run_query("server/components")
        server = comp.iloc[0].to_dict() if not comp.empty else {}
        versions = server.get("versions") or []
        version = str(versions[0]) if len(versions) else "?"
        gds = self.gds_version()
        missing = []
        major = version.split(".")[0]
        if not (major.isdigit() and int(major) >= 5):
            missing.append(f"Neo4j 5 or newer (server reports {version})")
        if gds is None:
            missing.append("the Graph Data Science plugin (k-core, components, cut-edges/nodes "
                           "in the database); docker/compose.yml installs it")
        return {"uri": self.uri, "database": self.database or "(default)",
                "server": str(server.get("name", "?")), "version": version,
                "edition": str(server.get("edition", "?")), "gds": gds or "missing",
                "missing": missing}
