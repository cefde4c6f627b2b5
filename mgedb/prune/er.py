"""Erdős–Rényi (ER) random sparsity, the correct RigL variant and the reference's variant.

``correct`` (default) — RigL's Erdős–Rényi (Evci et al. 2020; Mocanu et al. 2018): the density of a
layer is ``ε · (c_out + c_in) / (c_out · c_in)``, ignoring the kernel dimensions of conv layers
(``c_out, c_in`` are the first two weight dimensions; a Linear is ``(out, in)``). ``ε`` is solved
in closed form so that the expected kept count equals the budget; a layer whose density would exceed
1 is made dense and ``ε`` is solved again over the others (the dense-layer redistribution), so the
budget is met exactly. Each layer then keeps exactly its apportioned count of weights (largest-
remainder rounding of the ideal counts, so that the total is ``round((1 - sparsity) · N)``), drawn
with a seeded permutation — not Bernoulli sampling, which would miss the 0.1 % budget bar on small
models.

``reference`` — what eliacunegatti/mge-snn's ``Masking(sparse_init='ER')`` does, so that published
ER rows can be regenerated: raw score ``sum(shape) / prod(shape)`` (all four conv dims, the same raw
score as ERK), ``ε`` found by a multiplicative search (start 10, factor ±0.5 shrinking ×0.95 per
step, stop once the *previous* ε's expected count is within ±5 weights of the target — the ε that
is used is the one after that last update), probabilities above 1 saturate to a dense layer
**without** redistribution, and masks are Bernoulli ``rand(shape) < p`` drawn layer by layer.
Its realised sparsity is therefore off the target (ResNet-20: ≈ 0.906 at 0.9, ≈ 0.980 at 0.98).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from mgedb.errors import PruningError
from mgedb.prune.base import Batch, exact_masks, weight_shapes

__all__ = [
    "VARIANTS",
    "er_raw_scores",
    "prune",
    "reference_epsilon",
    "reference_probabilities",
    "solve_densities",
]

VARIANTS = ("correct", "reference")


def er_raw_scores(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, float]:
    """RigL's ER raw density ``(c_out + c_in) / (c_out · c_in)`` per layer (kernel dims ignored)."""
    return {n: (s[0] + s[1]) / (s[0] * s[1]) for n, s in shapes.items()}


def solve_densities(raw: Mapping[str, float], sizes: Mapping[str, int],
                    density: float) -> dict[str, float]:
    """Per-layer densities ``min(1, ε · raw)`` whose expected kept count is ``density · N``.

    RigL's procedure: solve ``ε`` over the non-dense layers, move the layer(s) with the largest raw
    score into the dense set while ``ε · raw`` exceeds 1, repeat.
    """
    dense: set[str] = set()
    while True:
        free = [n for n in raw if n not in dense]
        if not free:
            return dict.fromkeys(raw, 1.0)
        rhs = sum(density * sizes[n] for n in free) - sum((1 - density) * sizes[n] for n in dense)
        divisor = sum(raw[n] * sizes[n] for n in free)
        eps = rhs / divisor
        top = max(raw[n] for n in free)
        if eps * top > 1.0:
            dense.update(n for n in free if raw[n] == top)
            continue
        return {n: (1.0 if n in dense else max(0.0, eps * raw[n])) for n in raw}


def reference_epsilon(shapes: Mapping[str, tuple[int, ...]], density: float,
                      max_steps: int = 10_000) -> float:
    """The reference's multiplicative ε search, step for step (see the module docstring)."""
    total = sum(math.prod(s) for s in shapes.values())
    target = total * density
    tolerance = 5
    current = 0.0
    epsilon = 10.0
    growth_factor = 0.5
    steps = 0
    while not (current + tolerance > target and current - tolerance < target):
        current = 0.0
        for s in shapes.values():
            current += epsilon * sum(s)
        if current > target:
            epsilon *= 1.0 - growth_factor
        else:
            epsilon *= 1.0 + growth_factor
        growth_factor *= 0.95
        steps += 1
        if steps > max_steps:
            raise PruningError(
                f"the reference ER ε search did not converge for density {density}; "
                "use --er-variant correct"
            )
    return epsilon


def reference_probabilities(shapes: Mapping[str, tuple[int, ...]],
                            density: float) -> dict[str, float]:
    """The reference's per-layer keep probabilities (may exceed 1: the layer is then dense)."""
    eps = reference_epsilon(shapes, density)
    return {n: float(eps * sum(s) / np.prod(s)) for n, s in shapes.items()}


def prune(model: nn.Module, sparsity: float, *, generator: torch.Generator,
          batches: Iterable[Batch] | None = None, variant: str = "correct",
          **options: Any) -> dict[str, torch.Tensor]:
    """ER masks (``variant`` ``correct`` or ``reference``)."""
    shapes = weight_shapes(model)
    density = 1.0 - sparsity
    if variant == "reference":
        probs = reference_probabilities(shapes, density)
        return {n: torch.rand(s, generator=generator) < probs[n] for n, s in shapes.items()}
    if variant != "correct":
        raise PruningError(f"unknown ER variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    return exact_masks(shapes, solve_densities(er_raw_scores(shapes), sizes, density), sparsity,
                        generator)
