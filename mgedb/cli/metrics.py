"""Command ``metrics``: the topometrics of a graph file or of a checkpoint, one row per network."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from mgedb.cli._app import app
from mgedb.cli._render import Format, err_console, render, render_mapping
from mgedb.errors import CheckpointError, GraphFileError, MgedbError
from mgedb.graph import Graph, GraphSet


class Engine(str, Enum):
    array = "array"
    db = "db"
    both = "both"


class Encoding(str, Enum):
    mge = "mge"
    mge_reference = "mge-reference"
    rolled = "rolled"
    rolled_channel = "rolled-channel"


def _load(source: Path, model: str | None, classes: int, encoding: Encoding | None,
          allow_pickle: bool) -> Graph | GraphSet:
    if not source.is_file():
        kind = GraphFileError if source.suffix == ".npz" else CheckpointError
        raise kind(f"{source}: no such file; pass a graph file (.npz from `mgedb encode`) or a "
                   "checkpoint")
    if source.suffix == ".npz":
        from mgedb.graph import load_graph

        value = load_graph(source)
        if encoding is not None and encoding.value != value.encoding:
            raise GraphFileError(
                f"{source}: holds a {value.encoding!r} encoding, not {encoding.value!r}; drop "
                "--encoding or re-encode the checkpoint with `mgedb encode`"
            )
        return value
    if model is None:
        raise CheckpointError(f"{source}: a checkpoint needs --model NAME (e.g. --model resnet20)")
    from mgedb.encode import encode_checkpoint

    enc = (encoding or Encoding.mge).value
    with err_console.status(f"encoding {source} as {enc} …"):
        return encode_checkpoint(source, model, classes=classes, encoding=enc,
                                 allow_pickle=allow_pickle)


def _json_safe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: None if isinstance(v, float) and not math.isfinite(v) else v
             for k, v in r.items()} for r in rows]


def _output(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    """JSON/CSV: one record per row. Table: one metric per line for a single network, else one
    line per layer."""
    if fmt is Format.json:
        render(_json_safe(rows), fmt, single=True)
    elif fmt is Format.table and len(rows) == 1 and "layer_name" not in rows[0]:
        render_mapping(rows[0], fmt, title=title)
    else:
        render(rows, fmt, title=title)


@app.command("metrics")
def metrics_cmd(
    source: Path = typer.Argument(..., show_default=False,
                                  help="Graph file (.npz written by `mgedb encode`) or checkpoint "
                                       "(.pt/.pth/…, needs --model)."),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="Zoo model of a checkpoint: conv6, resnet20, resnet32, "
                                          "wrn28_2, mobilenet_v2."),
    classes: int = typer.Option(10, "--classes", help="Classes of a checkpoint's classifier."),
    encoding: Encoding | None = typer.Option(
        None, "--encoding", "-e",
        help="Encoding of a checkpoint (default mge); for a graph file, a check."),
    normalised: bool = typer.Option(
        False, "--normalised",
        help="MGE: the published table's columns (÷ nodes or edges) and column names."),
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated metric names: compute only these."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    seed: int = typer.Option(0, "--seed", help="Seed of the motif sample and eigensolver."),
    ramanujan: bool = typer.Option(
        False, "--ramanujan", help="BGE: the Ramanujan metrics per layer instead."),
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle",
        help="Accept a full pickled model (unpickling runs code: trusted files only)."),
    engine: Engine = typer.Option(
        Engine.array, "--engine",
        help="MGE: array (in-process), db (Cypher/graph algorithms in the store; the input is "
             "ingested first, idempotently) or both (compare them; exit 1 if they disagree). "
             "SOURCE may also be the key of a stored network."),
    store: str | None = typer.Option(None, "--store", envvar="MGEDB_STORE",
                                     help="--engine db/both: embedded (default) or neo4j."),
    db: Path | None = typer.Option(None, "--db", envvar="MGEDB_DB",
                                   help="--engine db/both: directory of the embedded store."),
) -> None:
    """Topometrics: one row per network (MGE) or per layer (rolled / rolled-channel BGE).

    Raw metric names: sink_nodes, source_nodes, disconnected_nodes, removable_out, removable_in,
    one_hop, two_hop, motifs, strength, k_core, cut_edges, cut_nodes, n_components,
    mean_component_size, spectral_gap, spectral_radius (plus n_nodes, n_edges). docs/metrics.md
    defines them. In JSON, NaN and ±inf are written as null.
    """
    from mgedb.metrics import (
        compute_bge_metrics,
        compute_mge_metrics,
        compute_ramanujan,
        normalise,
    )
    from mgedb.metrics.ramanujan import resolve_ramanujan
    from mgedb.metrics.registry import BGE_METRICS, resolve

    # validate names before any expensive work
    if engine is not Engine.array or (not source.exists() and _is_key(str(source))):
        if ramanujan:
            raise MgedbError("--ramanujan is computed by the array engine only; drop --engine")
        stored = _stored_metrics(source, model, classes, encoding, allow_pickle, engine, only,
                                 seed, store, db, normalised)
        _output([stored], fmt, str(source))
        if stored.get("agree") is False:
            raise typer.Exit(1)
        return
    if ramanujan:
        names = resolve_ramanujan(only)
    elif only is not None:
        names = resolve(only)
    value = _load(source, model, classes, encoding, allow_pickle)
    rows: list[dict[str, Any]]
    if isinstance(value, GraphSet):
        if normalised:
            raise MgedbError(f"{source}: --normalised applies to MGE graphs only (this is a "
                             f"{value.encoding} BGE); drop --normalised")
        if ramanujan:
            rows = compute_ramanujan(value, seed=seed, only=names)
        else:
            rows = compute_bge_metrics(value, seed=seed, only=resolve(only, BGE_METRICS))
    else:
        if ramanujan:
            raise MgedbError(f"{source}: --ramanujan needs a rolled or rolled-channel BGE, this is "
                             f"a {value.encoding} graph; encode with --encoding rolled")
        row = compute_mge_metrics(value, only=only, seed=seed)
        rows = [normalise(row) if normalised else row]
    _output(rows, fmt, str(source))


def _is_key(text: str) -> bool:
    from mgedb.store.keys import is_graph_key

    return is_graph_key(text)


def _stored_metrics(source: Path, model: str | None, classes: int, encoding: Encoding | None,
                    allow_pickle: bool, engine: Engine, only: str | None, seed: int,
                    store: str | None, db: Path | None, normalised: bool) -> dict[str, Any]:
    """Metrics of a network in the store: ingested from ``source`` first unless it is a key."""
    from mgedb.metrics import compute_mge_metrics, normalise
    from mgedb.store import compare_engines, open_store

    with open_store(store, db) as s:
        if not source.exists() and _is_key(str(source)):
            key = str(source)
            if not s.has_network(key):
                raise MgedbError(f"no complete network {key!r} in {s.location}; list them with "
                                 "`mgedb ls`")
        else:
            value = _load(source, model, classes, encoding, allow_pickle)
            if isinstance(value, GraphSet):
                raise MgedbError(f"{source}: --engine {engine.value} computes MGE topometrics; "
                                 "this is a BGE (use --engine array)")
            meta: dict[str, Any] = {}
            if source.suffix != ".npz":
                from mgedb.checkpoint import file_digest
                from mgedb.store.keys import flavour_of, network_key

                assert model is not None
                flavour = flavour_of(value.encoding)
                meta = {"key": network_key(model, file_digest(source), value.encoding, flavour),
                        "model": model, "classes": classes, "checkpoint": source.name,
                        "flavour": flavour}
            with err_console.status(f"storing {source} in {s.location} …"):
                key = s.ingest(value, meta)
        with err_console.status("computing topometrics in the database …"):
            dbv = s.compute_metrics(key, only, seed=seed)
        if engine is Engine.db:
            return {"key": key, **(normalise(dbv) if normalised else dict(dbv))}
        graph = s.read_graph(key)
    assert isinstance(graph, Graph)
    with err_console.status("computing topometrics (array engine) …"):
        arr = compute_mge_metrics(graph, only=[m for m in dbv if m not in ("n_nodes", "n_edges")],
                                  seed=seed)
    bad = {m.name: str(m) for m in compare_engines(dbv, arr)}
    if bad:
        err_console.print("[red]engines disagree[/]: " + "; ".join(bad.values()))
    return {"key": key, "agree": not bad,
            **{f"{m} (array | db)": f"{arr[m]:.10g} | {dbv[m]:.10g} (via {dbv.provenance.get(m)})"
               for m in dbv}}
