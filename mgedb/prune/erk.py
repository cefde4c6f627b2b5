"""Erdős–Rényi-Kernel (ERK) random sparsity (RigL, Evci et al. 2020).

The density of a layer is ``ε · sum(shape) / prod(shape)`` — for a conv
``(c_out + c_in + k_h + k_w) / (c_out · c_in · k_h · k_w)`` — with ``ε`` solved so the expected
count meets the budget, and layers whose density would exceed 1 made dense with ``ε`` re-solved
over the rest (RigL's dense-layer redistribution; the reference does the same). Each layer keeps
exactly its apportioned count (largest-remainder rounding so that the total is
``round((1 - sparsity) · N)``), drawn with a seeded permutation instead of the reference's Bernoulli
masks, so the realised sparsity is exact even on small models.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from mgedb.prune.base import Batch, exact_masks, weight_shapes
from mgedb.prune.er import solve_densities

__all__ = ["erk_densities", "erk_raw_scores", "prune"]


def erk_raw_scores(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, float]:
    """ERK raw density ``sum(shape) / prod(shape)`` per layer."""
    return {n: sum(s) / math.prod(s) for n, s in shapes.items()}


def erk_densities(shapes: Mapping[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Per-layer ERK densities for a global ``density``."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    return solve_densities(erk_raw_scores(shapes), sizes, density)


def prune(model: nn.Module, sparsity: float, *, generator: torch.Generator,
          batches: Iterable[Batch] | None = None, **options: Any) -> dict[str, torch.Tensor]:
    """ERK masks with exact per-layer counts."""
    shapes = weight_shapes(model)
    return exact_masks(shapes, erk_densities(shapes, 1.0 - sparsity), sparsity, generator)
