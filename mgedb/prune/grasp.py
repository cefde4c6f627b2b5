"""GraSP (Wang et al. 2020): keep the weights whose removal least reduces the gradient flow.

The reference's recipe (eliacunegatti/mge-snn ``utils/pai/grasp.py``, from the GraSP authors' code):

* up to ``samples_per_class`` (25) samples of every class are gathered from the loader's batches
  (whatever the loader gives if it runs out first) and ordered by class; the set is split in two
  halves, first half / second half, as in the reference;
* on a deep copy in train mode whose Conv2d/Linear weights are **re-initialised** Kaiming-normal
  (``reinit=True``, drawn from the pruner's seeded generator; the reference does this too, so the
  scores are computed on fresh weights while the masks are applied to the model's own weights),
  ``g = ∇L₁ + ∇L₂`` with the logits divided by the temperature ``T = 200``;
* the Hessian-gradient product ``Hg = Σᵢ ∇(g · ∇Lᵢ)`` (one double-backward per half);
* score ``−θ ⊙ Hg``; the ``round(N · (1 − sparsity))`` *largest* scores are removed, i.e. the
  ``round((1 - sparsity) · N)`` smallest are kept (ties broken by layer order, then position).

Runs on the CPU by default (the reference forced CUDA).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mgedb.errors import DataError
from mgedb.prune.base import Batch, keep_count, masks_from_scores, prunable_params, work_copy

__all__ = ["fetch_per_class", "prune", "scores"]


def fetch_per_class(batches: Iterable[Batch] | None, classes: int, per_class: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``per_class`` samples of each class from the batches, ordered by class."""
    if batches is None:
        raise DataError(
            "pruner 'grasp' needs training data: pass batches (CLI: --data-dir DIR --dataset "
            "cifar10|cifar100|tinyimagenet, or --synthetic)"
        )
    xs: list[list[torch.Tensor]] = [[] for _ in range(classes)]
    counts = [0] * classes
    for x, y in batches:
        for c in torch.unique(y).tolist():
            if not 0 <= c < classes:
                raise DataError(f"pruner 'grasp': label {c} out of range for {classes} classes")
            need = per_class - counts[c]
            if need <= 0:
                continue
            idx = torch.nonzero(y == c).flatten()[:need]
            xs[c].append(x[idx])
            counts[c] += int(idx.numel())
        if all(n >= per_class for n in counts):
            break
    if sum(counts) < 2:
        raise DataError("pruner 'grasp': the data loader gave fewer than 2 samples")
    x_all = torch.cat([t for c in range(classes) for t in xs[c]])
    y_all = torch.cat([torch.full((counts[c],), c, dtype=torch.long) for c in range(classes)])
    return x_all, y_all


def scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, temperature: float = 200.0,
           reinit: bool = True, generator: torch.Generator | None = None,
           device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """GraSP scores ``−θ ⊙ Hg`` (``θ`` the re-initialised weights when ``reinit``)."""
    net = work_copy(model, "cpu")
    net.train()
    weights = prunable_params(net)
    if reinit:
        with torch.no_grad():
            for w in weights.values():
                nn.init.kaiming_normal_(w, generator=generator)
    net = net.to(device)
    weights = prunable_params(net)
    params = list(weights.values())
    x, y = x.to(device), y.to(device)
    half = x.shape[0] // 2
    halves = [(x[:half], y[:half]), (x[half:], y[half:])]

    grad_w = [torch.zeros_like(p) for p in params]
    for xh, yh in halves:
        loss = F.cross_entropy(net(xh) / temperature, yh)
        for acc, g in zip(grad_w, torch.autograd.grad(loss, params), strict=True):
            acc += g
    hg = [torch.zeros_like(p) for p in params]
    for xh, yh in halves:
        loss = F.cross_entropy(net(xh) / temperature, yh)
        grad_f = torch.autograd.grad(loss, params, create_graph=True)
        z = torch.stack([(gw * gf).sum() for gw, gf in zip(grad_w, grad_f, strict=True)]).sum()
        for acc, h in zip(hg, torch.autograd.grad(z, params), strict=True):
            acc += h
    return {n: (-p.detach() * h).cpu() for (n, p), h in zip(weights.items(), hg, strict=True)}


def prune(model: nn.Module, sparsity: float, *, generator: torch.Generator,
          batches: Iterable[Batch] | None = None, samples_per_class: int = 25,
          temperature: float = 200.0, reinit: bool = True, classes: int | None = None,
          device: str | torch.device = "cpu", **options: Any) -> dict[str, torch.Tensor]:
    """Keep the smallest GraSP scores."""
    if classes is None:
        classes = _output_classes(model)
    x, y = fetch_per_class(batches, classes, samples_per_class)
    s = scores(model, x, y, temperature=temperature, reinit=reinit, generator=generator,
               device=device)
    return masks_from_scores(s, keep_count(sum(v.numel() for v in s.values()), sparsity),
                             largest=False)


def _output_classes(model: nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]
    return int(last.weight.shape[0])
