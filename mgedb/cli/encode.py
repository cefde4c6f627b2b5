"""Commands: ``encode`` (checkpoint → graph file), ``info`` (a graph file's summary), ``export``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from mgedb.atomic import atomic_write
from mgedb.cli._app import app
from mgedb.cli._options import (
    AllowPickle,
    Classes,
    EncodingChoice,
    InputShape,
    ModelArgs,
    OptionalModel,
    output_file,
)
from mgedb.cli._render import Format, err_console, render, render_mapping
from mgedb.graph import Graph, GraphSet, export_arrays, load_graph, save_graph
from mgedb.vocab import Encoding

CheckpointArg = typer.Argument(
    ..., help="Checkpoint of the --model (state dict, torch.nn.utils.prune state, TorchScript, "
              "or the .pt2 / pickled model itself).", show_default=False)


def _print_summary(value: Graph | GraphSet, fmt: Format, title: str) -> None:
    s = value.summary()
    if fmt is not Format.table:
        render([s], fmt, single=True)
        return
    head = {k: v for k, v in s.items() if not isinstance(v, list | dict)}
    render_mapping(head, fmt, title=title)
    if isinstance(value, GraphSet):
        render(s["layers"], fmt, title="layers")
        return
    render(s["partitions"], fmt, title="partitions")
    render([{"kind": k, "edges": v} for k, v in s["edges_by_kind"].items()], fmt,
           title="edges per kind")
    render([{"pair": k, "edges": v} for k, v in s["edges_by_partition_pair"].items()], fmt,
           title="edges per partition pair")


@app.command()
def encode(
    model: OptionalModel = None,
    checkpoint: Path = CheckpointArg,
    model_args: ModelArgs = None,
    input_shape: InputShape = "3,32,32",
    classes: Classes = 10,
    encoding: EncodingChoice = Encoding.MGE,
    out: Path = typer.Option(..., "--out", "-o", callback=output_file,
                             help="Graph file to write (.npz)."),
    allow_pickle: AllowPickle = False,
    compress: bool = typer.Option(False, help="Compress the graph file (smaller, slower)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Summary output format."),
    json_: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Encode a pruned checkpoint as a graph (MGE, reference MGE or per-layer BGEs).

    A .pt2 archive (torch.export) carries structure and weights: `mgedb encode net.pt2`.
    """
    from mgedb.encode import encode_checkpoint
    from mgedb.model_source import parse_input_shape, resolve

    spec = resolve(model, model_args or (), checkpoint)
    with err_console.status(f"encoding {checkpoint} as {encoding.value} …"):
        value = encode_checkpoint(checkpoint, spec, classes=classes, encoding=encoding.value,
                                  allow_pickle=allow_pickle,
                                  input_shape=parse_input_shape(input_shape))
        save_graph(out, value, compress=compress)
    _print_summary(value, Format.json if json_ else fmt, f"{checkpoint.name} → {out}")


@app.command()
def info(
    graph_file: Path = typer.Argument(..., help="Graph file written by `mgedb encode`."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    json_: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Partition sizes, node/edge counts, edges per kind and per partition pair."""
    _print_summary(load_graph(graph_file), Format.json if json_ else fmt, str(graph_file))


@app.command()
def export(
    graph_file: Path = typer.Argument(..., help="Graph file written by `mgedb encode`."),
    edges: Path = typer.Option(..., "--edges", callback=output_file,
                               help="Output .npz with src, dst, weight, dimension."),
) -> None:
    """Export the edge list for other tools (node ids partition-major, then channel, row, col)."""
    value = load_graph(graph_file)
    arrays = export_arrays(value)
    with atomic_write(edges) as fh:
        np.savez(fh, **arrays)
    err_console.print(f"wrote {len(arrays['src']):,} edges to {edges}")
