"""Commands: ``encode`` (checkpoint → graph file), ``info`` (a graph file's summary), ``export``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import typer

from mgedb.cli._app import app
from mgedb.cli._render import Format, err_console, render, render_mapping
from mgedb.graph import Graph, GraphSet, load_graph, save_graph


class Encoding(str, Enum):
    mge = "mge"
    mge_reference = "mge-reference"
    rolled = "rolled"
    rolled_channel = "rolled-channel"


CheckpointArg = typer.Argument(..., help="Checkpoint (.pt state dict) of a zoo model.",
                               show_default=False)
ModelOpt = typer.Option(..., "--model", "-m",
                        help="Zoo model: conv6, resnet20, resnet32, wrn28_2, mobilenet_v2.")
ClassesOpt = typer.Option(10, "--classes", help="Number of classes of the classifier.")
EncodingOpt = typer.Option(Encoding.mge, "--encoding", "-e", help="Graph encoding.")
PickleOpt = typer.Option(
    False, "--allow-pickle",
    help="Accept a full pickled model (unpickling runs code: trusted files only).")


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
    checkpoint: Path = CheckpointArg,
    model: str = ModelOpt,
    classes: int = ClassesOpt,
    encoding: Encoding = EncodingOpt,
    out: Path = typer.Option(..., "--out", "-o", help="Graph file to write (.npz)."),
    allow_pickle: bool = PickleOpt,
    compress: bool = typer.Option(False, help="Compress the graph file (smaller, slower)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Summary output format."),
    json_: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Encode a pruned checkpoint as a graph (MGE, reference MGE or per-layer BGEs)."""
    from mgedb.encode import encode_checkpoint

    with err_console.status(f"encoding {checkpoint} as {encoding.value} …"):
        value = encode_checkpoint(checkpoint, model, classes=classes, encoding=encoding.value,
                                  allow_pickle=allow_pickle)
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


def export_arrays(value: Graph | GraphSet) -> dict[str, Any]:
    """Plain arrays for other tools: int64 ``src``/``dst``, float32 ``weight``, ``dimension``.

    A set of per-layer graphs is exported as one disjoint union (graph ``i``'s nodes follow graph
    ``i − 1``'s), with ``graph_ptr`` giving each graph's first partition in ``dimension``.
    """
    graphs = value.graphs if isinstance(value, GraphSet) else (value,)
    node_base = np.cumsum([0] + [g.n_nodes for g in graphs])
    bases = list(zip(graphs, node_base[:-1], strict=True))
    arrays: dict[str, Any] = {
        "src": np.concatenate([g.src.astype(np.int64) + b for g, b in bases]),
        "dst": np.concatenate([g.dst.astype(np.int64) + b for g, b in bases]),
        "weight": np.concatenate([g.weight for g in graphs]).astype(np.float32),
        "kind": np.concatenate([g.kind for g in graphs]),
        "dimension": np.concatenate([g.dimension for g in graphs]).astype(np.int64),
    }
    if isinstance(value, GraphSet):
        arrays["graph_ptr"] = np.cumsum([0] + [len(g.partitions) for g in graphs]).astype(np.int64)
    return arrays


@app.command()
def export(
    graph_file: Path = typer.Argument(..., help="Graph file written by `mgedb encode`."),
    edges: Path = typer.Option(..., "--edges",
                               help="Output .npz with src, dst, weight, dimension."),
) -> None:
    """Export the edge list for other tools (node ids partition-major, then channel, row, col)."""
    value = load_graph(graph_file)
    arrays = export_arrays(value)
    tmp = edges.with_name(edges.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(edges)
    err_console.print(f"wrote {len(arrays['src']):,} edges to {edges}")
