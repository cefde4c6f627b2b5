"""SynFlow (Tanaka et al. 2020): iterative, data-free synaptic-flow pruning.

On a double-precision deep copy in eval mode whose state (weights, biases, batch-norm affine
parameters *and* running statistics) is made non-negative with ``abs`` — as the reference does; a
freshly initialised batch-norm (mean 0, variance 1, γ 1, β 0) is then a neutral per-channel scale —
the score of a weight is ``|θ ⊙ ∂R/∂θ|`` with ``R = Σ f(1)``, the summed output for one all-ones
input of shape ``(1, *input_shape)``. Over ``iterations`` rounds (default 100) the kept count
shrinks geometrically, ``round(N · d^{r/iterations})`` after round ``r`` for density ``d``, each
round re-scoring the surviving weights and keeping the global top ones (ties broken by layer
order, then position); the last round keeps exactly ``round(d · N)``.

Differences from the reference: biases are neither pruned nor counted in the budget (the reference
pruned Conv2d/Linear biases with the weights and then discarded their masks); double precision
avoids the overflow of the all-ones flow in deep networks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mgedb.prune.base import Batch, keep_count, masks_from_scores, prunable_params, work_copy

__all__ = ["prune", "scores"]


def _linearise(model: nn.Module, device: str | torch.device) -> nn.Module:
    net = work_copy(model, device, torch.float64)
    net.eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    return net


def _round_scores(net: nn.Module, masks: dict[str, torch.Tensor],
                  originals: dict[str, torch.Tensor], input_shape: tuple[int, ...],
                  device: str | torch.device) -> dict[str, torch.Tensor]:
    weights = prunable_params(net)
    with torch.no_grad():
        for n, w in weights.items():
            w.copy_(originals[n] * masks[n].to(device))
    params = list(weights.values())
    out = net(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    grads = torch.autograd.grad(out.sum(), params)
    return {n: (w.detach() * g).abs().cpu()
            for (n, w), g in zip(weights.items(), grads, strict=True)}


def scores(model: nn.Module, masks: dict[str, torch.Tensor] | None = None, *,
           input_shape: tuple[int, ...] = (3, 32, 32), device: str | torch.device = "cpu"
           ) -> dict[str, torch.Tensor]:
    """One round of SynFlow scores ``|θ ⊙ ∂R/∂θ|`` on the linearised, ``masks``-ed network."""
    net = _linearise(model, device)
    originals = {n: w.detach().clone() for n, w in prunable_params(net).items()}
    if masks is None:
        masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in originals.items()}
    return _round_scores(net, masks, originals, input_shape, device)


def prune(model: nn.Module, sparsity: float, *, generator: torch.Generator,
          batches: Iterable[Batch] | None = None, iterations: int = 100,
          input_shape: tuple[int, ...] = (3, 32, 32), device: str | torch.device = "cpu",
          **options: Any) -> dict[str, torch.Tensor]:
    """Iterative SynFlow masks."""
    iterations = max(1, int(iterations))
    net = _linearise(model, device)
    originals = {n: w.detach().clone() for n, w in prunable_params(net).items()}
    masks = {n: torch.ones(w.shape, dtype=torch.bool) for n, w in originals.items()}
    total = sum(m.numel() for m in masks.values())
    density = 1.0 - sparsity
    final = keep_count(total, sparsity)
    for r in range(1, iterations + 1):
        keep = final if r == iterations else max(
            final, keep_count(total, 1.0 - density ** (r / iterations)))
        s = _round_scores(net, masks, originals, input_shape, device)
        s = {n: torch.where(masks[n], v, torch.tensor(-1.0, dtype=v.dtype)) for n, v in s.items()}
        masks = masks_from_scores(s, keep)
    return masks
