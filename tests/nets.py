"""Tiny test networks without a class per case."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Fn(nn.Module):
    """``forward = fn(self, x)`` with the given submodules."""

    def __init__(self, fn: Callable[..., torch.Tensor], **mods: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            self.add_module(k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


def random_masked(model: nn.Module, density: float, seed: int = 0) -> nn.Module:
    """``model`` with every Conv2d/Linear weight kept with probability ``density`` (in place)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.mul_(torch.rand(m.weight.shape, generator=gen) < density)
    return model
