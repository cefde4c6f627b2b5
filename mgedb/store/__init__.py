"""The graph store: networks as multipartite graphs in a graph database, queryable with Cypher.

:func:`open_store` opens the embedded store (Kùzu, a directory, the default) or a Neo4j 5 server
(``--store neo4j`` / ``MGEDB_STORE=neo4j``); both implement :class:`GraphStore`. docs/schema.md
describes the graph model and the query files; :mod:`mgedb.store.protocol` lists the modules of
the package and what each holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mgedb.errors import BackendUnavailable
from mgedb.store.engine import Mismatch, compare_engines, flavour_params
from mgedb.store.keys import graph_key, network_key
from mgedb.store.protocol import GraphStore, MetricValues, NetworkInfo
from mgedb.vocab import StoreKind

__all__ = ["STORE_KINDS", "GraphStore", "MetricValues", "Mismatch", "NetworkInfo",
           "compare_engines", "default_db_path", "flavour_params", "graph_key", "network_key",
           "open_store"]

STORE_KINDS: tuple[str, ...] = StoreKind.values()


def default_db_path() -> Path:
    """``MGEDB_DB`` if set, else ``<user data dir>/mgedb/store`` (platformdirs)."""
    env = os.environ.get("MGEDB_DB")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("mgedb")) / "store"


def open_store(kind: str | None = None, db: Path | str | None = None, *,
               read_only: bool = False, **neo4j_options: Any) -> GraphStore:
    """Open a store (a context manager): ``kind`` = ``embedded`` (default, or ``MGEDB_STORE``) with
    its directory ``db``, or ``neo4j`` with ``uri``, ``user``, ``password``, ``database`` (else the
    ``NEO4J_*`` variables) and ``batch_size`` / ``import_dir`` / ``import_url``."""
    kind = (kind or os.environ.get("MGEDB_STORE") or StoreKind.EMBEDDED).lower()
    if kind not in STORE_KINDS:
        raise BackendUnavailable(f"unknown store {kind!r}; use one of {', '.join(STORE_KINDS)} "
                                 "(--store or MGEDB_STORE)")
    if kind == StoreKind.EMBEDDED:
        from mgedb.store.kuzu_store import KuzuStore

        return KuzuStore(Path(db) if db is not None else default_db_path(), read_only=read_only)
    from mgedb.store.neo4j_store import Neo4jStore

    store = Neo4jStore.connect(**neo4j_options)
    if not read_only:
        try:
            store.ensure_schema()
        except BaseException:
            store.close()
            raise
    return store
