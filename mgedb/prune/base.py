"""Shared pieces of the pruning-at-initialisation algorithms.

A pruner is a pure function ``(model, sparsity, *, generator, batches, **options) -> masks``: it
never changes the model it is given (data-driven ones work on a deep copy) and returns one boolean
keep-mask per prunable layer, keyed by module path as :func:`mgedb.checkpoint.prunable_layers`
lists them (every ``Conv2d`` and ``Linear`` in registration order, shortcut convs and the
classifier included). Only weights are pruned; biases never take part in the budget.

Randomness comes only from the ``torch.Generator`` passed in, never from the global RNG.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from mgedb.checkpoint import prunable_layers
from mgedb.errors import DataError, PruningError
from mgedb.vocab import Pruner

__all__ = [
    "Batch",
    "PrunerFn",
    "PrunerSpec",
    "apportion",
    "check_sparsity",
    "exact_masks",
    "keep_count",
    "layer_densities",
    "masks_from_scores",
    "realised_sparsity",
    "sample_exact",
    "take_batches",
    "weight_shapes",
    "work_copy",
]

Batch = tuple[torch.Tensor, torch.Tensor]


class PrunerFn(Protocol):
    def __call__(self, model: nn.Module, sparsity: float, *, generator: torch.Generator,
                 batches: Iterable[Batch] | None, **options: Any) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class PrunerSpec:
    """One registered algorithm (its name and whether it needs data: :class:`mgedb.vocab.Pruner`).
    """

    name: Pruner
    fn: PrunerFn
    exact: bool  # hits round((1 - sparsity) * N) kept weights exactly
    summary: str
    #: default loader batch size of a data-driven pruner on the CPU (the reference: SNIP 128,
    #: ProsPr 512 — 128 here to bound CPU time and memory; GraSP collects 25 samples per class
    #: from as many batches as it needs)
    batch_size: int = 128

    @property
    def needs_data(self) -> bool:
        return self.name.needs_data


def check_sparsity(sparsity: float) -> float:
    """The target sparsity as a float in [0, 1), or :class:`PruningError`."""
    s = float(sparsity)
    if not (0.0 <= s < 1.0) or math.isnan(s):
        raise PruningError(f"sparsity must be in [0, 1), got {sparsity!r}; e.g. --sparsity 0.9")
    return s


def keep_count(total: int, sparsity: float) -> int:
    """Number of weights kept: ``round((1 - sparsity) * total)`` (half up), at least 1."""
    return max(1, min(total, math.floor((1.0 - sparsity) * total + 0.5)))


def weight_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Shape of every prunable weight, by module path."""
    return {n: tuple(m.weight.shape) for n, m in prunable_layers(model).items()}


def work_copy(model: nn.Module, device: str | torch.device = "cpu",
              dtype: torch.dtype | None = None) -> nn.Module:
    """A deep copy on ``device`` (and ``dtype``) that the pruner may change freely."""
    m = copy.deepcopy(model).to(device)
    if dtype is not None:
        m = m.to(dtype)
    return m


def masks_from_scores(scores: Mapping[str, torch.Tensor], keep: int, *,
                      largest: bool = True) -> dict[str, torch.Tensor]:
    """Global top-``keep`` (or bottom-``keep``) masks with deterministic tie-breaking.

    Scores are concatenated in layer order; equal scores are broken by that flat position (the
    earlier one is kept), so the result never depends on the sort implementation. NaN scores rank
    last.
    """
    names = list(scores)
    flat = torch.cat([scores[n].detach().reshape(-1).to("cpu", torch.float64) for n in names])
    flat = torch.nan_to_num(flat, nan=-math.inf if largest else math.inf)
    order = torch.sort(flat, descending=largest, stable=True).indices
    keep_flat = torch.zeros(flat.numel(), dtype=torch.bool)
    keep_flat[order[:keep]] = True
    out: dict[str, torch.Tensor] = {}
    start = 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep_flat[start:start + size].reshape(scores[n].shape)
        start += size
    return out


def apportion(ideal: Mapping[str, float], caps: Mapping[str, int], total: int) -> dict[str, int]:
    """Integer counts that sum to ``total``, each within ``[0, cap]`` and close to ``ideal``.

    Largest-remainder rounding: floor every ideal count, then hand the missing units to the layers
    with the largest fractional parts (ties: layer order), skipping full layers.
    """
    if total > sum(caps.values()):
        raise PruningError(f"cannot keep {total} weights out of {sum(caps.values())}")
    names = list(ideal)
    counts = {n: int(min(caps[n], max(0.0, math.floor(ideal[n])))) for n in names}
    rest = total - sum(counts.values())
    frac = sorted(names, key=lambda n: (-(ideal[n] - math.floor(ideal[n])), names.index(n)))
    while rest != 0:
        step = 1 if rest > 0 else -1
        order = frac if step > 0 else frac[::-1]
        moved = False
        for n in order:
            if rest == 0:
                break
            if (step > 0 and counts[n] < caps[n]) or (step < 0 and counts[n] > 0):
                counts[n] += step
                rest -= step
                moved = True
        if not moved:  # pragma: no cover - excluded by the check above
            raise PruningError("cannot apportion the weight budget")
    return counts


def sample_exact(shapes: Mapping[str, tuple[int, ...]], counts: Mapping[str, int],
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Per layer, exactly ``counts[name]`` kept positions drawn uniformly (seeded permutation)."""
    out: dict[str, torch.Tensor] = {}
    for n, shape in shapes.items():
        size = math.prod(shape)
        mask = torch.zeros(size, dtype=torch.bool)
        mask[torch.randperm(size, generator=generator)[: counts[n]]] = True
        out[n] = mask.reshape(shape)
    return out


def take_batches(batches: Iterable[Batch] | None, n: int, pruner: str) -> list[Batch]:
    """The first ``n`` batches (cycling through them if the loader has fewer)."""
    if batches is None:
        raise DataError(
            f"pruner {pruner!r} needs training data: pass batches (CLI: --data-dir DIR --dataset "
            "cifar10|cifar100|tinyimagenet, or --synthetic)"
        )
    got: list[Batch] = []
    it: Iterator[Batch] = iter(batches)
    for b in it:
        x, y = b
        got.append((x, y))
        if len(got) == n:
            break
    if not got:
        raise DataError(f"pruner {pruner!r}: the data loader yielded no batches")
    return [got[i % len(got)] for i in range(n)]


def exact_masks(shapes: Mapping[str, tuple[int, ...]], densities: Mapping[str, float],
                sparsity: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random masks keeping, per layer, its apportioned share of ``round((1 - sparsity) · N)``."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    counts = apportion({n: densities[n] * sizes[n] for n in shapes}, sizes,
                       keep_count(sum(sizes.values()), sparsity))
    return sample_exact(shapes, counts, generator)


def layer_densities(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of kept weights per layer."""
    return {n: float(m.sum()) / m.numel() for n, m in masks.items()}


def realised_sparsity(masks: Mapping[str, torch.Tensor]) -> float:
    """Global fraction of pruned weights over all prunable weights (biases excluded)."""
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return 1.0 - kept / total


def prunable_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight parameter of every prunable layer."""
    return {n: m.weight for n, m in prunable_layers(model).items()}


ScoreFn = Callable[..., dict[str, torch.Tensor]]
