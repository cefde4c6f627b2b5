"""From a PyTorch model (and its masks) to graph values: MGE in two flavours and the BGEs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mgedb.errors import MgedbError
from mgedb.graph import ENCODINGS, Graph, GraphSet, LayerSpec
from mgedb.vocab import Encoding

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mgedb.encode.trace import Trace
    from mgedb.model_source import ModelSpec

__all__ = ["ENCODINGS", "encode_checkpoint", "encode_model"]


def encode_model(
    model: nn.Module,
    *,
    encoding: str = "mge",
    input_shape: tuple[int, int, int] = (3, 32, 32),
    masks: Mapping[str, torch.Tensor] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Graph | GraphSet:
    """Encode ``model``: weights as they are, times ``masks`` if given.

    ``masks`` is keyed by module path (``conv``; ``conv.weight``, ``conv.weight_mask`` and
    ``module.`` prefixes are accepted); each must name a layer the forward pass runs, have the
    weight's shape and hold only 0/1, and applies to every call of that layer.
    """
    from mgedb.encode.bge import build_bge
    from mgedb.encode.mge import build_mge
    from mgedb.encode.trace import trace_model

    if encoding not in ENCODINGS:
        raise MgedbError(f"unknown encoding {encoding!r}; choose one of: {', '.join(ENCODINGS)}")
    enc = Encoding(encoding)
    trace, weights = trace_model(model, input_shape)
    if masks:
        apply_masks(trace, weights, masks)
    info = dict(meta or {})
    info.setdefault("input_shape", list(input_shape))
    if not enc.bge:
        g = build_mge(trace, weights, reference=enc.reference)
        nnz = sum(layer.nnz for layer in g.layers)
        numel = sum(layer.numel for layer in g.layers)
        info.update(n_weights=numel, n_weights_nonzero=nnz,
                    sparsity=1 - nnz / numel if numel else 0.0)
        return Graph(src=g.src, dst=g.dst, weight=g.weight, kind=g.kind,
                     partitions=g.partitions, encoding=g.encoding, layers=g.layers, meta=info)
    layers = build_mge(trace, weights, reference=False).layers  # specs in execution order
    order = [i for i, op in enumerate(trace.ops) if op.kind in ("conv", "linear")]
    gs = build_bge(layers, [weights[i] for i in order], channel=enc is Encoding.ROLLED_CHANNEL)
    return GraphSet(graphs=gs.graphs, encoding=gs.encoding, meta=info)


def mask_layer(key: str, layers: Collection[str]) -> str | None:
    """The layer a mask key names: ``conv``, ``conv.weight``, ``conv.weight_mask``, with any
    ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile) prefixes; None if none."""
    k = key
    while True:
        for cand in (k, k.removesuffix("_mask"), k.removesuffix("_mask").removesuffix(".weight"),
                     k.removesuffix(".weight_orig")):
            if cand in layers:
                return cand
        for prefix in ("module.", "_orig_mod."):
            if k.startswith(prefix):
                k = k[len(prefix):]
                break
        else:
            return None


def check_mask(key: str, mask: Any) -> np.ndarray:
    """A 0/1 mask as float32, or one line naming the key and what is wrong."""
    import torch

    if not isinstance(mask, torch.Tensor | np.ndarray):
        raise MgedbError(f"mask {key!r} is a {type(mask).__name__}, not a tensor")
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        bad = ~((m == 0) | (m == 1))
        if bad.any():
            raise MgedbError(
                f"mask {key!r} holds values other than 0 and 1 (e.g. {m[bad].flat[0]!r}); a mask "
                "marks each weight kept (1) or pruned (0): pass (mask != 0) or fix the pruner"
            )
    return m.astype(np.float32)


def apply_masks(trace: Trace, weights: dict[int, np.ndarray],
                masks: Mapping[str, Any]) -> None:
    """Multiply each traced layer's weight by its mask, on every call of that layer."""
    by_layer: dict[str, list[int]] = {}
    for i, op in enumerate(trace.ops):
        if i in weights:
            by_layer.setdefault(op.params["layer"], []).append(i)
    seen: dict[str, str] = {}
    for key, mask in masks.items():
        layer = mask_layer(key, by_layer)
        if layer is None:
            names = ", ".join(list(by_layer)[:6]) + (", …" if len(by_layer) > 6 else "")
            raise MgedbError(f"mask {key!r} matches no Conv2d/Linear layer the model runs "
                             f"(layers: {names}); key masks by module path")
        if layer in seen:
            raise MgedbError(f"masks {seen[layer]!r} and {key!r} both name layer {layer!r}")
        seen[layer] = key
        m = check_mask(key, mask)
        for i in by_layer[layer]:
            if m.shape != weights[i].shape:
                raise MgedbError(f"mask {key!r} has shape {list(m.shape)}, but the weight of "
                                 f"layer {layer!r} has shape {list(weights[i].shape)}")
            weights[i] = weights[i] * m


def encode_checkpoint(
    path: str | Path,
    model: str | ModelSpec,
    *,
    classes: int = 10,
    encoding: str = "mge",
    allow_pickle: bool = False,
    input_shape: tuple[int, int, int] = (3, 32, 32),
) -> Graph | GraphSet:
    """Load a checkpoint into ``model`` (any ``--model`` source) and encode it; metadata records
    its provenance. The loaded weights are already masked, so no masks are passed on."""
    import mgedb
    from mgedb.checkpoint import load_checkpoint, read_sidecar

    ck = load_checkpoint(path, model, classes=classes, allow_pickle=allow_pickle)
    label = ck.source.label if ck.source is not None else str(model)
    meta: dict[str, Any] = {
        "model": label, "classes": classes, "checkpoint": str(ck.path),
        "checkpoint_digest": ck.digest, "mgedb_version": mgedb.__version__,
    }
    side = read_sidecar(path)
    for k in ("pruner", "sparsity_target", "seed", "dataset"):
        if k in side:
            meta[k] = side[k]
    if "sparsity" in side and "sparsity_target" not in meta:
        meta["sparsity_target"] = side["sparsity"]
    meta.update(ck.meta)
    return encode_model(ck.model, encoding=encoding, input_shape=input_shape, meta=meta)


def layer_specs(g: Graph | GraphSet) -> tuple[LayerSpec, ...]:
    """The weighted layers of an encoded network."""
    if isinstance(g, GraphSet):
        return tuple(x.layers[0] for x in g.graphs if x.layers)
    return g.layers
