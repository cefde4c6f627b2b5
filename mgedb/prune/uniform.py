"""Uniform: global random pruning over all prunable weights.

Every weight of every Conv2d/Linear layer is equally likely to be kept; exactly
``round((1 - sparsity) · N)`` are kept, drawn with a seeded permutation of all ``N`` weights, so
every layer ends up with about the global density. The reference (``torch.nn.utils.prune`` with
``RandomUnstructured``) also counted biases in the budget; here biases are never pruned and do not
take part in it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mgedb.prune.base import Batch, keep_count, weight_shapes

__all__ = ["prune"]


def prune(model: nn.Module, sparsity: float, *, generator: torch.Generator,
          batches: Iterable[Batch] | None = None, **options: Any) -> dict[str, torch.Tensor]:
    """Keep a uniformly random subset of ``round((1 - sparsity) · N)`` weights."""
    shapes = weight_shapes(model)
    sizes = [math.prod(s) for s in shapes.values()]
    total = sum(sizes)
    flat = torch.zeros(total, dtype=torch.bool)
    flat[torch.randperm(total, generator=generator)[: keep_count(total, sparsity)]] = True
    out: dict[str, torch.Tensor] = {}
    start = 0
    for (name, shape), size in zip(shapes.items(), sizes, strict=True):
        out[name] = flat[start:start + size].reshape(shape)
        start += size
    return out
