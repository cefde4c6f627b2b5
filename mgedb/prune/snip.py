"""SNIP (Lee et al. 2019): connection sensitivity on one batch.

The score of a weight is ``|∂L/∂m|`` for a multiplicative all-ones mask ``m`` on the weights, which
at ``m = 1`` equals ``|w · ∂L/∂w|``; ``L`` is the cross-entropy of one training batch, computed on a
deep copy in train mode (batch-norm uses batch statistics), as the reference does. The top
``round((1 - sparsity) · N)`` scores are kept globally (ties broken by layer order, then position).
The reference normalises the scores by their sum before the top-k, which does not change the
ranking.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mgedb.prune.base import (
    Batch,
    keep_count,
    masks_from_scores,
    prunable_params,
    take_batches,
    work_copy,
)

__all__ = ["prune", "scores"]


def scores(model: nn.Module, batch: Batch, *, device: str | torch.device = "cpu"
           ) -> dict[str, torch.Tensor]:
    """``|w · ∂L/∂w|`` for every prunable weight on one batch (the model is not changed)."""
    net = work_copy(model, device)
    net.train()
    weights = prunable_params(net)
    x, y = batch
    loss = F.cross_entropy(net(x.to(device)), y.to(device))
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {n: (w.detach() * g).abs().cpu()
            for (n, w), g in zip(weights.items(), grads, strict=True)}


def prune(model: nn.Module, sparsity: float, *, generator: torch.Generator,
          batches: Iterable[Batch] | None = None, device: str | torch.device = "cpu",
          **options: Any) -> dict[str, torch.Tensor]:
    """Keep the top SNIP scores of the first batch."""
    (batch,) = take_batches(batches, 1, "snip")
    s = scores(model, batch, device=device)
    return masks_from_scores(s, keep_count(sum(v.numel() for v in s.values()), sparsity))
