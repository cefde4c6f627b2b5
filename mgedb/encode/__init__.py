"""From a PyTorch model (and its masks) to graph values: MGE in two flavours and the BGEs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mgedb.errors import MgedbError
from mgedb.graph import ENCODINGS, Graph, GraphSet, LayerSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["ENCODINGS", "encode_checkpoint", "encode_model"]


def encode_model(
    model: nn.Module,
    *,
    encoding: str = "mge",
    input_shape: tuple[int, int, int] = (3, 32, 32),
    masks: Mapping[str, torch.Tensor] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Graph | GraphSet:
    """Encode ``model`` (weights as they are, times ``masks`` if given, keyed by module path)."""
    from mgedb.encode.bge import build_bge
    from mgedb.encode.mge import build_mge
    from mgedb.encode.trace import trace_model

    if encoding not in ENCODINGS:
        raise MgedbError(f"unknown encoding {encoding!r}; choose one of: {', '.join(ENCODINGS)}")
    trace, weights = trace_model(model, input_shape)
    if masks:
        for i, op in enumerate(trace.ops):
            mask = masks.get(op.params.get("name", ""))
            if i in weights and mask is not None:
                weights[i] = weights[i] * mask.detach().cpu().numpy().astype(np.float32)
    info = dict(meta or {})
    info.setdefault("input_shape", list(input_shape))
    if encoding in ("mge", "mge-reference"):
        g = build_mge(trace, weights, reference=encoding == "mge-reference")
        nnz = sum(layer.nnz for layer in g.layers)
        numel = sum(layer.numel for layer in g.layers)
        info.update(n_weights=numel, n_weights_nonzero=nnz,
                    sparsity=1 - nnz / numel if numel else 0.0)
        return Graph(src=g.src, dst=g.dst, weight=g.weight, kind=g.kind,
                     partitions=g.partitions, encoding=g.encoding, layers=g.layers, meta=info)
    layers = build_mge(trace, weights, reference=False).layers  # specs in execution order
    order = [i for i, op in enumerate(trace.ops) if op.kind in ("conv", "linear")]
    gs = build_bge(layers, [weights[i] for i in order], channel=encoding == "rolled-channel")
    return GraphSet(graphs=gs.graphs, encoding=gs.encoding, meta=info)


def encode_checkpoint(
    path: str | Path,
    model: str,
    *,
    classes: int = 10,
    encoding: str = "mge",
    allow_pickle: bool = False,
    input_shape: tuple[int, int, int] = (3, 32, 32),
) -> Graph | GraphSet:
    """Load a checkpoint of zoo model ``model`` and encode it; metadata records its provenance."""
    import mgedb
    from mgedb.checkpoint import load_checkpoint, read_sidecar

    ck = load_checkpoint(path, model, classes=classes, allow_pickle=allow_pickle)
    meta: dict[str, Any] = {
        "model": model, "classes": classes, "checkpoint": str(ck.path),
        "checkpoint_digest": ck.digest, "mgedb_version": mgedb.__version__,
    }
    side = read_sidecar(path)
    for k in ("pruner", "sparsity_target", "seed", "dataset"):
        if k in side:
            meta[k] = side[k]
    if "sparsity" in side and "sparsity_target" not in meta:
        meta["sparsity_target"] = side["sparsity"]
    meta.update(ck.meta)
    return encode_model(ck.model, encoding=encoding, input_shape=input_shape, masks=ck.masks,
                        meta=meta)


def layer_specs(g: Graph | GraphSet) -> tuple[LayerSpec, ...]:
    """The weighted layers of an encoded network."""
    if isinstance(g, GraphSet):
        return tuple(x.layers[0] for x in g.graphs if x.layers)
    return g.layers
