"""Command ``metrics``: the topometrics of a graph file or of a checkpoint, one row per network."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mgedb.cli._app import app
from mgedb.cli._options import (
    AllowPickle,
    DbPath,
    EngineChoice,
    FormatChoice,
    InputShape,
    ModelArgs,
    OptionalEncoding,
    OptionalModel,
    StoreChoice,
)
from mgedb.cli._render import Format, err_console, render, render_mapping
from mgedb.errors import MgedbError
from mgedb.graph import Graph, GraphSet
from mgedb.metrics.registry import MGE_METRICS, SIZE_METRICS
from mgedb.vocab import Engine, MotifMethod

if TYPE_CHECKING:
    from mgedb.study.measure import Source


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


_HELP = f"""Topometrics: one row per network (MGE) or per layer (rolled / rolled-channel BGE).

    Raw metric names: {", ".join(MGE_METRICS)} (plus {", ".join(SIZE_METRICS)}). docs/metrics.md
    defines them. In JSON, NaN and ±inf are written as null.
    """


@app.command("metrics", help=_HELP)
def metrics_cmd(
    source: Path = typer.Argument(..., show_default=False,
                                  help="Graph file (.npz written by `mgedb encode`) or checkpoint "
                                       "(.pt/.pth/…, needs --model)."),
    model: OptionalModel = None,
    model_args: ModelArgs = None,
    input_shape: InputShape = "3,32,32",
    classes: int = typer.Option(10, "--classes", help="Classes of a checkpoint's classifier."),
    encoding: OptionalEncoding = None,
    normalised: bool = typer.Option(
        False, "--normalised",
        help="MGE: the published table's columns (÷ nodes or edges) and column names."),
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated metric names: compute only these."),
    fmt: FormatChoice = Format.table,
    seed: int = typer.Option(0, "--seed", help="Seed of the motif sample and eigensolver."),
    motifs: MotifMethod = typer.Option(
        MotifMethod.FAST, "--motifs",
        help="4-node motif estimate: fast (igraph's sample, motifs counted per sampled root) or "
             "exact (igraph's RAND-ESU enumeration); the same value, see docs/metrics.md."),
    ramanujan: bool = typer.Option(
        False, "--ramanujan", help="BGE: the Ramanujan metrics per layer instead."),
    allow_pickle: AllowPickle = False,
    engine: EngineChoice = Engine.ARRAY,
    store: StoreChoice = None,
    db: DbPath = None,
) -> None:
    """Topometrics of a graph file, checkpoint or stored network (help: ``_HELP``)."""
    from mgedb.cli._background import Pending, start
    from mgedb.metrics.registry import BGE_METRICS, resolve
    from mgedb.model_source import parse_input_shape

    shape = parse_input_shape(input_shape)
    # validate names before any expensive work
    names: list[str] | None = None
    if ramanujan:
        from mgedb.metrics.ramanujan import resolve_ramanujan

        names = resolve_ramanujan(only)
    elif only is not None:
        names = resolve(only)

    def source_of() -> Source:
        from mgedb.model_source import resolve as resolve_model
        from mgedb.study.measure import Source

        spec = resolve_model(model, model_args or (), source) if model is not None or (
            source.suffix == ".pt2") else None
        return Source.parse(source, model=spec, classes=classes, encoding=encoding,
                            allow_pickle=allow_pickle, input_shape=shape)

    pending: Pending[Graph | GraphSet] | None = None
    if engine is Engine.ARRAY and source.suffix != ".npz" and source.is_file():
        # a checkpoint: torch is imported and the model encoded in a child process while this
        # one loads numba, SciPy and the metric kernels (docs/metrics.md, "the whole process")
        pending = start(lambda: source_of().load(err_console.status))
    try:
        if pending is None:
            src = source_of()
            if engine is not Engine.ARRAY or src.key is not None:
                if ramanujan:
                    raise MgedbError("--ramanujan is computed by the array engine only; drop "
                                     "--engine")
                stored = _stored_metrics(src, engine, only, seed, store, db, normalised)
                _output([stored], fmt, str(source))
                if stored.get("agree") is False:
                    raise typer.Exit(1)
                return
            value = src.load(err_console.status)
        else:
            from mgedb.metrics.kernels import warm_up

            warm_up()
            value = pending.result()
    finally:
        if pending is not None:
            pending.cancel()
    from mgedb.metrics import (
        compute_bge_metrics,
        compute_mge_metrics,
        compute_ramanujan,
        normalise,
    )

    rows: list[dict[str, Any]]
    if isinstance(value, GraphSet):
        if normalised:
            raise MgedbError(f"{source}: --normalised applies to MGE graphs only (this is a "
                             f"{value.encoding} BGE); drop --normalised")
        if ramanujan:
            rows = compute_ramanujan(value, seed=seed, only=names)
        else:
            rows = compute_bge_metrics(value, seed=seed, only=resolve(only, BGE_METRICS),
                                       motifs=motifs.value)
    else:
        if ramanujan:
            raise MgedbError(f"{source}: --ramanujan needs a rolled or rolled-channel BGE, this is "
                             f"a {value.encoding} graph; encode with --encoding rolled")
        row = compute_mge_metrics(value, only=only, seed=seed, motifs=motifs.value)
        rows = [normalise(row) if normalised else row]
    _output(rows, fmt, str(source))


def _stored_metrics(src: Source, engine: Engine, only: str | None, seed: int,
                    store: str | None, db: Path | None, normalised: bool) -> dict[str, Any]:
    """Metrics of a network in the store: ingested from the source first unless it is a key."""
    from mgedb.metrics import normalise
    from mgedb.store import open_store
    from mgedb.study.measure import measure

    with open_store(store, db) as s:
        m = measure(src, s, engine, only=only, seed=seed, status=err_console.status)
    dbv = m.db
    assert dbv is not None
    if engine is Engine.DB:
        return {"key": m.key, **(normalise(dbv) if normalised else dict(dbv))}
    arr = m.metrics
    bad = {x.name: str(x) for x in m.mismatches}
    if bad:
        err_console.print("[red]engines disagree[/]: " + "; ".join(bad.values()))
    return {"key": m.key, "agree": not bad,
            **{f"{x} (array | db)": f"{arr[x]:.10g} | {dbv[x]:.10g} (via {dbv.provenance.get(x)})"
               for x in dbv}}
