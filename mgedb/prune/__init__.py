"""Pruning at initialisation: the seven algorithms the paper compared.

>>> masks = prune(model, "snip", 0.9, seed=0, batches=loaders.train)   # doctest: +SKIP
>>> apply_masks(model, masks)                                          # doctest: +SKIP

Every pruner returns one boolean keep-mask per Conv2d/Linear weight keyed by module path (the order
of :func:`mgedb.checkpoint.prunable_layers`); biases are never pruned nor counted. Randomness
comes only from a local ``torch.Generator`` seeded with ``seed`` (or the ``generator`` passed in),
never from global RNG state. See docs/pruning.md for the algorithms and how they differ from the
reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from mgedb.checkpoint import prunable_layers
from mgedb.errors import DataError, PruningError
from mgedb.prune import er, erk, grasp, prospr, snip, synflow, uniform
from mgedb.prune.base import Batch, PrunerSpec, check_sparsity, layer_densities, realised_sparsity
from mgedb.vocab import Pruner

__all__ = [
    "PRUNERS",
    "PrunerSpec",
    "apply_masks",
    "density_table",
    "layer_densities",
    "prune",
    "realised_sparsity",
]

#: The implementation of every :class:`mgedb.vocab.Pruner` (whether it needs data: the vocabulary).
PRUNERS: dict[str, PrunerSpec] = {s.name: s for s in (
    PrunerSpec(Pruner.UNIFORM, uniform.prune, exact=True,
               summary="global uniform random over all prunable weights"),
    PrunerSpec(Pruner.ER, er.prune, exact=True,
               summary="Erdős–Rényi random (RigL; --er-variant reference: the reference's)"),
    PrunerSpec(Pruner.ERK, erk.prune, exact=True, summary="Erdős–Rényi-Kernel random (RigL)"),
    PrunerSpec(Pruner.SNIP, snip.prune, exact=True, summary="|w·∂L/∂w| on one batch"),
    PrunerSpec(Pruner.GRASP, grasp.prune, exact=True,
               summary="gradient-flow preservation, -θ⊙Hg"),
    PrunerSpec(Pruner.SYNFLOW, synflow.prune, exact=True,
               summary="iterative synaptic flow, data-free"),
    PrunerSpec(Pruner.PROSPR, prospr.prune, exact=True,
               summary="meta-gradients through 3 SGD steps"),
)}


def prune(model: nn.Module, pruner: str, sparsity: float, seed: int = 0,
          batches: Iterable[Batch] | None = None, *, generator: torch.Generator | None = None,
          er_variant: str = "correct", synflow_iterations: int = 100,
          device: str | torch.device = "cpu", input_shape: tuple[int, int, int] = (3, 32, 32),
          **options: Any) -> dict[str, torch.Tensor]:
    """Masks of ``pruner`` for ``model`` at global weight ``sparsity`` (the model is not changed).

    ``batches`` is an iterable of ``(x, y)`` batches for the data-driven pruners (snip, grasp,
    prospr). ``generator`` overrides ``seed`` (used by the CLI to continue the model-init stream, as
    the reference does). ``device`` is where data-driven scores are computed (default CPU);
    ``input_shape`` is the shape of synflow's all-ones input (the data-driven pruners take the
    batches' shape).
    """
    spec = PRUNERS.get(pruner)
    if spec is None:
        raise PruningError(f"unknown pruner {pruner!r}; choose one of: {', '.join(PRUNERS)}")
    s = check_sparsity(sparsity)
    if spec.needs_data and batches is None:
        raise DataError(
            f"pruner {pruner!r} needs training data: pass batches (CLI: --data-dir DIR --dataset "
            "cifar10|cifar100|tinyimagenet, or --synthetic)"
        )
    gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    kwargs = dict(options)
    if pruner == "er":
        kwargs["variant"] = er_variant
    if pruner == "synflow":
        kwargs["iterations"] = synflow_iterations
        kwargs["input_shape"] = tuple(input_shape)
    if spec.needs_data or pruner == "synflow":
        kwargs["device"] = device
    masks = spec.fn(model, s, generator=gen, batches=batches, **kwargs)
    _check(model, masks)
    return {n: m.to("cpu", torch.bool) for n, m in masks.items()}


def _check(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    layers = prunable_layers(model)
    if list(masks) != list(layers):
        missing = [n for n in layers if n not in masks]
        extra = [n for n in masks if n not in layers]
        raise PruningError(f"masks do not match the model's layers (missing {missing[:3]}, "
                           f"extra {extra[:3]})")
    for n, m in layers.items():
        if tuple(masks[n].shape) != tuple(m.weight.shape):
            raise PruningError(f"mask {n!r} has shape {list(masks[n].shape)}, expected "
                               f"{list(m.weight.shape)}")


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Zero every pruned weight of ``model`` in place (biases untouched); returns the model."""
    _check(model, masks)
    with torch.no_grad():
        for n, m in prunable_layers(model).items():
            m.weight.mul_(masks[n].to(m.weight.device, m.weight.dtype))
    return model


def density_table(masks: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """One row per layer (layer, shape, weights, kept, density) and a final ``total`` row."""
    rows: list[dict[str, Any]] = []
    for n, m in masks.items():
        kept = int(m.sum())
        rows.append({"layer": n, "shape": "×".join(map(str, m.shape)), "weights": m.numel(),
                     "kept": kept, "density": kept / m.numel()})
    total = sum(r["weights"] for r in rows)
    kept = sum(r["kept"] for r in rows)
    rows.append({"layer": "total", "shape": "", "weights": total, "kept": kept,
                 "density": kept / total if total else 0.0})
    return rows
