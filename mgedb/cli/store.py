"""Store commands: ``ingest``, ``ingest-graph``, ``ls``, ``rm``, ``verify``, ``migrate``, ``query``,
``neo4j check``, ``neo4j import-set``.

The store is the embedded one (Ladybug, ``--db PATH``, default under the user data directory) unless
``--store neo4j`` (or ``MGEDB_STORE=neo4j``); Neo4j reads ``NEO4J_URI``, ``NEO4J_USER``,
``NEO4J_PASSWORD`` and ``NEO4J_DATABASE`` (the password only from the environment, never echoed).
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mgedb.cli._app import app
from mgedb.cli._options import (
    AllowPickle,
    Classes,
    DatabaseName,
    DbPath,
    EncodingChoice,
    FormatChoice,
    InputShape,
    ModelArgs,
    OptionalModel,
    StoreChoice,
    Uri,
    User,
)
from mgedb.cli._render import (
    TABLE_ROWS,
    Format,
    err_console,
    progress,
    render,
    render_mapping,
    render_stream,
)
from mgedb.errors import MgedbError, QueryTimeout
from mgedb.vocab import Encoding, Engine, StoreKind

if TYPE_CHECKING:
    import pandas as pd

    from mgedb.store.protocol import GraphStore, ProgressFn
    from mgedb.study.measure import Source

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
        if kind is not StoreKind.NEO4J:
            raise MgedbError("--csv-import applies to --store neo4j only (the embedded store "
                             "always bulk-loads with COPY)")
        csv_import.mkdir(parents=True, exist_ok=True)
        opts["import_dir"] = csv_import
    store = open_store(kind, db, read_only=read_only, **opts)
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


def _ingest(source: Source, store: StoreKind | None, db: Path | None, uri: str | None,
            user: str | None, database: str | None, batch_size: int | None, metrics_only: bool,
            fmt: Format, csv_import: Path | None = None) -> None:
    from mgedb.study.measure import measure

    with _store(store, db, uri, user, database, batch_size=batch_size,
                csv_import=csv_import) as s, _progress_bar() as bar:
        m = measure(source, s, Engine.ARRAY if metrics_only else None, keep=True,
                    metrics_only=metrics_only, batch_size=batch_size, progress=bar,
                    status=err_console.status)
        info = s.network(m.key)
    render_mapping({"key": m.key, "kind": info.kind, "encoding": info.encoding,
                    "flavour": info.flavour, "n_nodes": info.n_nodes, "n_edges": info.n_edges,
                    "store": s.location}, fmt, title="ingested")


@app.command("ingest")
def ingest_cmd(
    model: OptionalModel = None,
    checkpoint: Path = typer.Argument(..., show_default=False,
                                      help="Checkpoint of the --model (or a .pt2 archive)."),
    model_args: ModelArgs = None,
    input_shape: InputShape = "3,32,32",
    classes: Classes = 10,
    encoding: EncodingChoice = Encoding.MGE,
    store: StoreChoice = None,
    db: DbPath = None,
    uri: Uri = None,
    user: User = None,
    database: DatabaseName = None,
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1,
        help="Rows per batch (Neo4j: per write transaction, default 10000; embedded: edges per "
             "COPY, default all)."),
    metrics_only: bool = typer.Option(
        False, "--metrics-only", help="Store the network node and its topometrics, not its graph."),
    allow_pickle: AllowPickle = False,
    csv_import: Path | None = CsvImportOpt,
    fmt: FormatChoice = Format.table,
) -> None:
    """Encode a checkpoint and store its graph (idempotent: the same checkpoint is stored once)."""
    from mgedb.study.measure import Source

    if not checkpoint.is_file():
        raise MgedbError(f"{checkpoint}: no such checkpoint file")
    from mgedb.model_source import parse_input_shape, resolve

    source = Source(path=checkpoint, model=resolve(model, model_args or (), checkpoint),
                    classes=classes, encoding=encoding, allow_pickle=allow_pickle,
                    input_shape=parse_input_shape(input_shape))
    _ingest(source, store, db, uri, user, database, batch_size, metrics_only, fmt, csv_import)


@app.command("ingest-graph")
def ingest_graph_cmd(
    graph_file: Path = typer.Argument(..., show_default=False,
                                      help="Graph file (.npz) written by `mgedb encode`."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name to record."),
    store: StoreChoice = None,
    db: DbPath = None,
    uri: Uri = None,
    user: User = None,
    database: DatabaseName = None,
    batch_size: int | None = typer.Option(None, "--batch-size", min=1,
                                          help="Rows per batch (see `mgedb ingest`)."),
    metrics_only: bool = typer.Option(
        False, "--metrics-only", help="Store the network node and its topometrics, not its graph."),
    csv_import: Path | None = CsvImportOpt,
    fmt: FormatChoice = Format.table,
) -> None:
    """Store a graph file (keyed by its content and encoding: the same graph is stored once)."""
    from mgedb.graph import load_graph
    from mgedb.study.measure import Source

    meta: dict[str, Any] = {"graph_file": graph_file.name}
    if model:
        meta["model"] = model
    source = Source(value=load_graph(graph_file), path=graph_file, meta=meta)
    _ingest(source, store, db, uri, user, database, batch_size, metrics_only, fmt, csv_import)


@app.command("ls")
def ls_cmd(
    kind: str | None = typer.Option(None, "--kind",
                                    help="Only networks of this kind: mge, bge, metrics, records."),
    store: StoreChoice = None,
    db: DbPath = None,
    uri: Uri = None,
    user: User = None,
    database: DatabaseName = None,
    verify: bool = typer.Option(
        False, "--verify", help="Recount every network's nodes and edges (see `mgedb verify`)."),
    fmt: FormatChoice = Format.table,
) -> None:
    """List the stored networks; `complete = false` marks an interrupted ingest (`mgedb rm` it)."""
    with _store(store, db, uri, user, database, read_only=True) as s:
        rows = s.list_networks(kind)
        location = s.location
        records = _rows(rows)
        if verify:
            for r in records:
                r["verified"] = _verdict(s.verify(str(r["key"])))
    render(records, fmt, title=f"networks in {location}")
    incomplete = [r["key"] for r in records if not r.get("complete")]
    if incomplete and fmt is Format.table:
        err_console.print(f"{len(incomplete)} incomplete network(s) (interrupted ingest or "
                          f"delete): remove with `mgedb rm {' '.join(incomplete)}` or ingest "
                          "them again")
    if verify:
        _report_failures([r["key"] for r in records if r["verified"] != "ok"])


def _verdict(problems: list[str]) -> str:
    if not problems:
        return "ok"
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"FAILED: {problems[0]}{more}"


def _report_failures(keys: list[str]) -> None:
    if keys:
        err_console.print(f"{len(keys)} network(s) fail verification: ingesting them again "
                          f"replaces them, or `mgedb rm {' '.join(keys)}`")
        raise typer.Exit(1)


@app.command("verify")
def verify_cmd(
    keys: list[str] = typer.Argument(None, show_default=False,
                                     help="Network keys (default: every network)."),
    store: StoreChoice = None,
    db: DbPath = None,
    uri: Uri = None,
    user: User = None,
    database: DatabaseName = None,
    fmt: FormatChoice = Format.table,
) -> None:
    """Recount networks in the database against the node and edge counts (per partition and
    partition pair) they recorded at ingest; exit code 1 if any differs."""
    with _store(store, db, uri, user, database, read_only=True) as s:
        rows = s.list_networks()
        complete = dict(zip(rows["key"], rows["complete"], strict=True))
        wanted = list(keys or complete)
        out = []
        for key in wanted:
            problems = s.verify(key)
            out.append({"key": key, "complete": bool(complete.get(key)),
                        "verified": _verdict(problems), "problems": len(problems)})
            if problems and fmt is Format.table:
                for line in problems[1:6]:
                    err_console.print(f"{key}: {line}")
        location = s.location
    render(out, fmt, title=f"verification of {location}")
    _report_failures([r["key"] for r in out if r["problems"]])


@app.command("migrate")
def migrate_cmd(db: DbPath = None, fmt: FormatChoice = Format.table) -> None:
    """Convert an embedded store written by an older mgedb (Kùzu 0.11) to the current format;
    networks whose counts do not match are marked incomplete (ingest them again)."""
    from mgedb.store import default_db_path
    from mgedb.store.migrate import migrate_store

    path = db if db is not None else default_db_path()
    with err_console.status(f"migrating {path} …"):
        report = migrate_store(path)
    render_mapping({"store": str(report.store), "verified": len(report.verified),
                    "marked incomplete": len(report.failed), "old file": str(report.backup)},
                   fmt, title="migrated")
    for key, why in report.failed.items():
        err_console.print(f"{key}: {why} — marked incomplete; ingest it again or `mgedb rm "
                          f"{key}`")


@app.command("rm")
def rm_cmd(
    keys: list[str] = typer.Argument(None, show_default=False, help="Network keys to delete."),
    incomplete: bool = typer.Option(False, "--incomplete",
                                    help="Also delete every incomplete network."),
    store: StoreChoice = None,
    db: DbPath = None,
    uri: Uri = None,
    user: User = None,
    database: DatabaseName = None,
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
    """Frame rows with missing values as None (NaN / pandas NA / ±inf are not data)."""
    return [{str(k): None if _missing(v) else v for k, v in r.items()}
            for r in df.to_dict("records")]


def _missing(v: Any) -> bool:
    import pandas as pd

    if v is None or v is pd.NA:
        return True
    return isinstance(v, float) and not math.isfinite(v)


def _fetched(rows: Iterator[tuple[Any, ...]], deadline: float | None, timeout: float | None
             ) -> Iterator[tuple[Any, ...]]:
    """Rows with missing values as None (NaN / pandas NA / ±inf are not data), stopped with
    :class:`QueryTimeout` once ``deadline`` (``time.monotonic``) has passed: ``--timeout``
    bounds fetching as well as running."""
    for row in rows:
        if deadline is not None and time.monotonic() > deadline:
            raise QueryTimeout(f"the query's rows took longer than --timeout {timeout:g} s to "
                               "fetch; raise --timeout, add --limit or narrow the query")
        yield tuple(None if _missing(v) else v for v in row)


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
                               help="Allow writes, and statements that reach files or the "
                                    "network (EXPORT, COPY, LOAD, INSTALL …); default: a "
                                    "read-only transaction that refuses them."),
    timeout: float | None = typer.Option(30.0, "--timeout", min=0.001,
                                         help="Stop the query (running and fetching its rows) "
                                              "after this many seconds."),
    limit: int | None = typer.Option(
        None, "--limit", min=0,
        help=f"Print at most this many rows (default: {TABLE_ROWS} for a table, all for csv, "
             "json, jsonl; 0: all)."),
    store: StoreChoice = None,
    db: DbPath = None,
    uri: Uri = None,
    user: User = None,
    database: DatabaseName = None,
    fmt: FormatChoice = Format.table,
) -> None:
    """Run an ad-hoc Cypher query (read-only unless --write) and stream its rows."""
    given = [x for x in (text, file, named) if x is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of: the query text, --file or --named")
    params = dict(_parse_param(p) for p in param)
    if file is not None:
        if not file.is_file():
            raise MgedbError(f"{file}: no such query file")
        text = file.read_text(encoding="utf-8")
    if text is not None:
        from mgedb.store.queries import check_adhoc_parameters, check_adhoc_statement

        if not text.strip():
            raise MgedbError("the query is empty; give the Cypher text, --file or --named")
        check_adhoc_parameters(text, params)
        check_adhoc_statement(text, write=write)
    deadline = None if timeout is None else time.monotonic() + timeout
    with _store(store, db, uri, user, database, read_only=not write) as s:
        if named is not None:
            from mgedb.store.queries import registry

            q, params = registry().bind(named, params, getattr(s, "dialect", "neo4j"))
            if q.mode != "read" and not write:
                raise MgedbError(f"--named {named} is a {q.mode} query; pass --write to run it")
            text = q.body
        assert text is not None
        with s.stream(text, params, write=write, timeout=timeout) as result:
            more = render_stream(result.columns, _fetched(result.rows, deadline, timeout), fmt,
                                 limit=limit)
    if more and fmt is Format.table:
        err_console.print(f"{more:,} more rows not shown; use --limit N (0: all) or --format "
                          "csv")
    elif more:
        err_console.print(f"{more:,} more rows not printed (--limit {limit})")


@neo4j_app.command("check")
def neo4j_check_cmd(
    uri: Uri = None,
    user: User = None,
    database: DatabaseName = None,
    fmt: FormatChoice = Format.table,
) -> None:
    """Server version, GDS version and what mgedb misses there (password: NEO4J_PASSWORD)."""
    from mgedb.store.neo4j_store import Neo4jStore

    with Neo4jStore.connect(uri, user, None, database) as s:
        report = s.check()
    shown = {**report, "missing": "; ".join(report["missing"]) or "nothing"}
    render_mapping(shown, fmt, title="Neo4j")
    if report["missing"]:
        raise typer.Exit(1)


@neo4j_app.command("import-set")
def neo4j_import_set_cmd(
    directory: Path = typer.Argument(..., show_default=False,
                                     help="A new (or empty) directory for the import set."),
    graph_files: list[Path] = typer.Argument(..., show_default=False,
                                             help="Graph files (.npz from `mgedb encode`)."),
    fmt: FormatChoice = Format.table,
) -> None:
    """Write graph files as an import set for `neo4j-admin database import full` (offline, into a
    stopped server; it REPLACES the database, so give every network it is to hold).

    The set holds exactly what `mgedb ingest-graph FILE --store neo4j` would store (complete
    networks with their integrity counts), a header per CSV file and `import.sh`, the command.
    The dev server: `python tools/neo4j/server.py import DIR`. See docker/README.md."""
    from mgedb.atomic import check_writable
    from mgedb.store.neo4j_import import write_import_set
    from mgedb.study.measure import Source

    check_writable(directory, directory=True)
    sources = []
    for f in graph_files:
        if f.suffix != ".npz":
            raise MgedbError(f"{f}: not a graph file; encode checkpoints with `mgedb encode` "
                             "first (an import set takes .npz graph files)")
        sources.append(Source(path=f, meta={"graph_file": f.name}))
    with err_console.status("writing the import set …"):
        out = write_import_set(directory, ((s.load(), s.ingest_meta()) for s in sources))
    render_mapping({"directory": str(out.directory), "networks": len(out.keys),
                    "n_nodes": out.n_nodes, "n_edges": out.n_edges,
                    "script": str(out.directory / "import.sh")}, fmt, title="import set")
    err_console.print("with the server stopped (it replaces database neo4j), run:")
    typer.echo(f"cd {shlex.quote(str(out.directory))} && {shlex.join(out.command())}",
               err=fmt is not Format.table)
