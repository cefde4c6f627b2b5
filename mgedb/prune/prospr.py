"""ProsPr (Alizadeh et al. 2022): prune at initialisation by meta-gradients through training.

A multiplicative all-ones mask ``m`` sits on every Conv2d/Linear weight. Starting from
``θ₀ ⊙ m`` (all other parameters — biases, batch-norm — as they are), ``steps`` (3) SGD steps with
learning rate 0.5 and momentum 0.9 are taken on consecutive batches, keeping the whole computation
graph; the score is ``|∂L(θ_steps; next batch)/∂m|`` (the "full" second-order meta-gradient), and
the top ``round((1 - sparsity) · N)`` scores are kept (ties broken by layer order, then position).
It uses ``steps + 1`` batches of the given loader (cycled if it has fewer); the network is a deep
copy in train mode. The reference ran the same recipe on the CPU with its own 512-sample CIFAR
loader.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from mgedb.checkpoint import prunable_layers
from mgedb.prune.base import Batch, keep_count, masks_from_scores, take_batches, work_copy

__all__ = ["prune", "scores"]


def scores(model: nn.Module, batches: list[Batch], *, lr: float = 0.5, momentum: float = 0.9,
           device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``|∂L_meta/∂m|`` after ``len(batches) - 1`` inner SGD steps (the last batch: meta loss)."""
    net = work_copy(model, device)
    net.train()
    layers = list(prunable_layers(net))
    weight_keys = {f"{n}.weight": n for n in layers}
    masks = {n: torch.ones_like(m.weight, requires_grad=True)
             for n, m in prunable_layers(net).items()}
    buffers = dict(net.named_buffers())
    fast: dict[str, torch.Tensor] = {}
    for k, p in net.named_parameters():
        if k in weight_keys:
            fast[k] = p.detach() * masks[weight_keys[k]]
        else:
            fast[k] = p.detach().clone().requires_grad_(True)
    keys = list(fast)
    bufs: list[torch.Tensor | None] = [None] * len(keys)
    *inner, (x_meta, y_meta) = batches
    for x, y in inner:
        out = functional_call(net, {**fast, **buffers}, (x.to(device),))
        loss = F.cross_entropy(out, y.to(device))
        grads = torch.autograd.grad(loss, [fast[k] for k in keys], create_graph=True)
        for i, (k, g) in enumerate(zip(keys, grads, strict=True)):
            b = bufs[i]
            b = g if b is None else b * momentum + g
            bufs[i] = b
            fast[k] = fast[k] - lr * b
    out = functional_call(net, {**fast, **buffers}, (x_meta.to(device),))
    loss = F.cross_entropy(out, y_meta.to(device))
    meta = torch.autograd.grad(loss, [masks[n] for n in layers])
    return {n: g.detach().abs().cpu() for n, g in zip(layers, meta, strict=True)}


def prune(model: nn.Module, sparsity: float, *, generator: torch.Generator,
          batches: Iterable[Batch] | None = None, steps: int = 3, lr: float = 0.5,
          momentum: float = 0.9, device: str | torch.device = "cpu",
          **options: Any) -> dict[str, torch.Tensor]:
    """Keep the top ProsPr meta-gradient scores."""
    data = take_batches(batches, steps + 1, "prospr")
    s = scores(model, data, lr=lr, momentum=momentum, device=device)
    return masks_from_scores(s, keep_count(sum(v.numel() for v in s.values()), sparsity))
