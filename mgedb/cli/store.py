"""Store commands: ``ingest``, ``ingest-graph``, ``ls``, ``rm``, ``query``, ``neo4j check``.

The store is the embedded one (Kùzu, ``--db PATH``, default under the user data directory) unless
``--store neo4j`` (or ``MGEDB_STORE=neo4j``); Neo4j reads ``NEO4J_URI``, ``NEO4J_USER``,
``NEO4J_PASSWORD`` and ``NEO4J_DATABASE`` (the password only from the environment, never echoed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mgedb.cli._app import app
from mgedb.cli._render import Format, err_console, progress, render, render_mapping
from mgedb.cli.encode import Encoding
from mgedb.errors import MgedbError

if TYPE_CHECKING:
    import pandas as pd

    from mgedb.graph import Graph, GraphSet
    from mgedb.store.base import GraphStore, ProgressFn


class StoreKind(str, Enum):
    embedded = "embedded"
    neo4j = "neo4j"


StoreOpt = typer.Option(None, "--store", envvar="MGEDB_STORE",
                        help="Graph store: embedded (Kùzu, default) or neo4j.")
DbOpt = typer.Option(None, "--db", envvar="MGEDB_DB",
                     help="Directory of the embedded store (default: user data dir).")
UriOpt = typer.Option(None, "--uri", envvar="NEO4J_URI", help="Neo4j Bolt URI.")
UserOpt = typer.Option(None, "--user", envvar="NEO4J_USER", help="Neo4j user.")
DatabaseOpt = typer.Option(None, "--database", envvar="NEO4J_DATABASE",
                           help="Neo4j database name.")
FormatOpt = typer.Option(Format.table, "--format", "-f", help="Output format.")

neo4j_app = typer.Typer(help="The Neo4j server: check what mgedb needs.", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")


CsvImportOpt = typer.Option(
    None, "--csv-import",
    help="Neo4j, huge graphs: write edges as CSV into this directory (the server's import folder, "
         "e.g. docker/import) and load them with LOAD CSV.")


@contextmanager
def _store(kind: StoreKind | None, db: Path | None, uri: str | None = None,
           user: str | None = None, database: str | None = None, *, read_only: bool = False,
           batch_size: int | None = None, csv_import: Path | None = None
           ) -> Iterator[GraphStore]:
    from mgedb.store import open_store

    opts: dict[str, Any] = {"uri": uri, "user": user, "database": database}
    if batch_size:
        opts["batch_size"] = batch_size
    if csv_import is not None:
        if kind is not StoreKind.neo4j:
            raise MgedbError("--csv-import applies to --store neo4j only (the embedded store "
                             "always bulk-loads with COPY)")
        csv_import.mkdir(parents=True, exist_ok=True)
        opts["import_dir"] = csv_import
    store = open_store(kind.value if kind else None, db, read_only=read_only, **opts)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress_bar() -> Iterator[ProgressFn]:
    bar = progress()
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(f"ingest {stage}", total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


def _ingest(value: Graph | GraphSet, meta: dict[str, Any], store: StoreKind | None,
            db: Path | None, uri: str | None, user: str | None, database: str | None,
            batch_size: int | None, metrics_only: bool, fmt: Format,
            csv_import: Path | None = None) -> None:
    from mgedb.graph import Graph

    metrics = None
    if metrics_only:
        if not isinstance(value, Graph):
            raise MgedbError("--metrics-only stores MGE topometrics; encode with --encoding mge "
                             "or mge-reference (or drop --metrics-only to store the BGE graphs)")
        from mgedb.metrics import compute_mge_metrics

        with err_console.status("computing topometrics (array engine) …"):
            metrics = compute_mge_metrics(value)
    with _store(store, db, uri, user, database, batch_size=batch_size,
                csv_import=csv_import) as s, _progress_bar() as bar:
        key = s.ingest(value, meta, batch_size=batch_size, progress=bar, metrics=metrics,
                       metrics_only=metrics_only)
        info = s.network(key)
    render_mapping({"key": key, "kind": info.kind, "encoding": info.encoding,
                    "flavour": info.flavour, "n_nodes": info.n_nodes, "n_edges": info.n_edges,
                    "store": s.location}, fmt, title="ingested")


@app.command("ingest")
def ingest_cmd(
    checkpoint: Path = typer.Argument(..., show_default=False, help="Checkpoint of a zoo model."),
    model: str = typer.Option(..., "--model", "-m",
                              help="Zoo model: conv6, resnet20, resnet32, wrn28_2, mobilenet_v2."),
    classes: int = typer.Option(10, "--classes", help="Classes of the classifier."),
    encoding: Encoding = typer.Option(Encoding.mge, "--encoding", "-e", help="Graph encoding."),
    store: StoreKind | None = StoreOpt,
    db: Path | None = DbOpt,
    uri: str | None = UriOpt,
    user: str | None = UserOpt,
    database: str | None = DatabaseOpt,
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1,
        help="Rows per batch (Neo4j: per write transaction, default 10000; embedded: edges per "
             "COPY, default all)."),
    metrics_only: bool = typer.Option(
        False, "--metrics-only", help="Store the network node and its topometrics, not its graph."),
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle",
        help="Accept a full pickled model (unpickling runs code: trusted files only)."),
    csv_import: Path | None = CsvImportOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Encode a checkpoint and store its graph (idempotent: the same checkpoint is stored once)."""
    from mgedb.checkpoint import file_digest
    from mgedb.encode import encode_checkpoint
    from mgedb.store.keys import flavour_of, network_key

    if not checkpoint.is_file():
        raise MgedbError(f"{checkpoint}: no such checkpoint file")
    digest = file_digest(checkpoint)
    flavour = flavour_of(encoding.value)
    with err_console.status(f"encoding {checkpoint} as {encoding.value} …"):
        value = encode_checkpoint(checkpoint, model, classes=classes, encoding=encoding.value,
                                  allow_pickle=allow_pickle)
    meta = {"key": network_key(model, digest, encoding.value, flavour), "model": model,
            "classes": classes, "checkpoint": checkpoint.name, "flavour": flavour}
    _ingest(value, meta, store, db, uri, user, database, batch_size, metrics_only, fmt,
            csv_import)


@app.command("ingest-graph")
def ingest_graph_cmd(
    graph_file: Path = typer.Argument(..., show_default=False,
                                      help="Graph file (.npz) written by `mgedb encode`."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name to record."),
    store: StoreKind | None = StoreOpt,
    db: Path | None = DbOpt,
    uri: str | None = UriOpt,
    user: str | None = UserOpt,
    database: str | None = DatabaseOpt,
    batch_size: int | None = typer.Option(None, "--batch-size", min=1,
                                          help="Rows per batch (see `mgedb ingest`)."),
    metrics_only: bool = typer.Option(
        False, "--metrics-only", help="Store the network node and its topometrics, not its graph."),
    csv_import: Path | None = CsvImportOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Store a graph file (keyed by its content and encoding: the same graph is stored once)."""
    from mgedb.graph import load_graph

    value = load_graph(graph_file)
    meta: dict[str, Any] = {"graph_file": graph_file.name}
    if model:
        meta["model"] = model
    _ingest(value, meta, store, db, uri, user, database, batch_size, metrics_only, fmt,
            csv_import)


@app.command("ls")
def ls_cmd(
    kind: str | None = typer.Option(None, "--kind",
                                    help="Only networks of this kind: mge, bge, metrics, records."),
    store: StoreKind | None = StoreOpt,
    db: Path | None = DbOpt,
    uri: str | None = UriOpt,
    user: str | None = UserOpt,
    database: str | None = DatabaseOpt,
    fmt: Format = FormatOpt,
) -> None:
    """List the stored networks; `complete = false` marks an interrupted ingest (`mgedb rm` it)."""
    with _store(store, db, uri, user, database, read_only=True) as s:
        rows = s.list_networks(kind)
        location = s.location
    records = _rows(rows)
    render(records, fmt, title=f"networks in {location}")
    incomplete = [r["key"] for r in records if not r.get("complete")]
    if incomplete and fmt is Format.table:
        err_console.print(f"{len(incomplete)} incomplete network(s) (interrupted ingest): remove "
                          f"with `mgedb rm {' '.join(incomplete)}` or ingest them again")


@app.command("rm")
def rm_cmd(
    keys: list[str] = typer.Argument(None, show_default=False, help="Network keys to delete."),
    incomplete: bool = typer.Option(False, "--incomplete",
                                    help="Also delete every incomplete network."),
    store: StoreKind | None = StoreOpt,
    db: Path | None = DbOpt,
    uri: str | None = UriOpt,
    user: str | None = UserOpt,
    database: str | None = DatabaseOpt,
) -> None:
    """Delete networks: exactly their nodes, edges and metrics."""
    from mgedb.errors import UnknownNetwork

    wanted = list(keys or [])
    if not wanted and not incomplete:
        raise MgedbError("nothing to delete: give network keys (see `mgedb ls`) or --incomplete")
    with _store(store, db, uri, user, database) as s:
        if incomplete:
            rows = s.list_networks()
            wanted += [k for k, c in zip(rows["key"], rows["complete"], strict=True)
                       if not c and k not in wanted]
        for key in wanted:
            if not s.delete(key):
                raise UnknownNetwork(f"no network {key!r} in {s.location}; list them with "
                                     "`mgedb ls`")
            err_console.print(f"deleted {key}")


def _parse_param(item: str) -> tuple[str, Any]:
    name, sep, raw = item.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f"{item!r}: write --param NAME=VALUE")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip().lstrip("$"), value


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Result rows with missing values as None (NaN / pandas NA / ±inf are not data)."""
    return [{str(k): None if _missing(v) else v for k, v in r.items()}
            for r in df.to_dict("records")]


def _missing(v: Any) -> bool:
    import pandas as pd

    if v is None or v is pd.NA:
        return True
    return isinstance(v, float) and not math.isfinite(v)


@app.command("query")
def query_cmd(
    text: str | None = typer.Argument(None, show_default=False,
                                      help="Cypher text (or use --file / --named)."),
    param: list[str] = typer.Option(
        [], "--param", "-p",
        help="Query parameter NAME=VALUE (VALUE parsed as JSON when it is JSON, else a string)."),
    file: Path | None = typer.Option(None, "--file", help="Read the query from a .cypher file."),
    named: str | None = typer.Option(
        None, "--named", help="Run a query of mgedb's registry by name, e.g. metrics/n_nodes."),
    write: bool = typer.Option(False, "--write",
                               help="Allow writes (default: a read-only transaction)."),
    timeout: float | None = typer.Option(30.0, "--timeout", min=0.001,
                                         help="Stop the query after this many seconds."),
    store: StoreKind | None = StoreOpt,
    db: Path | None = DbOpt,
    uri: str | None = UriOpt,
    user: str | None = UserOpt,
    database: str | None = DatabaseOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Run an ad-hoc Cypher query (read-only unless --write) and print its rows."""
    given = [x for x in (text, file, named) if x is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of: the query text, --file or --named")
    params = dict(_parse_param(p) for p in param)
    if file is not None:
        if not file.is_file():
            raise MgedbError(f"{file}: no such query file")
        text = file.read_text(encoding="utf-8")
    with _store(store, db, uri, user, database, read_only=not write) as s:
        if named is not None:
            df = s.run_query(named, params, timeout=timeout)
        else:
            assert text is not None
            df = s.query(text, params, write=write, timeout=timeout)
    render(_rows(df), fmt)


@neo4j_app.command("check")
def neo4j_check_cmd(
    uri: str | None = UriOpt,
    user: str | None = UserOpt,
    database: str | None = DatabaseOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Server version, GDS version and what mgedb misses there (password: NEO4J_PASSWORD)."""
    from mgedb.store.neo4j_store import Neo4jStore

    with Neo4jStore.connect(uri, user, None, database) as s:
        report = s.check()
    shown = {**report, "missing": "; ".join(report["missing"]) or "nothing"}
    render_mapping(shown, fmt, title="Neo4j")
    if report["missing"]:
        raise typer.Exit(1)
