"""Training sparse (or dense) networks with fixed masks: the paper's recipe.

Defaults (``recipe``): SGD, learning rate 0.1, momentum 0.9, batch 128, cross-entropy, weight decay
1e-4 (5e-4 for WRN-28-2); CIFAR: 160 epochs with the learning rate ×0.1 at 50 % and 75 % of the
epochs (the paper's [80, 120]); Tiny-ImageNet: 100 epochs, ×0.1 at 30/60/80 % (20/60/80 % for
CONV-6). With fewer epochs (``--epochs``) the milestones scale with them.

The masks never change: pruned weights are zeroed before training, their gradients are zeroed
before every optimiser step and the weights are multiplied by the mask again after it (so neither
momentum nor weight decay can revive them). Accuracy is top-1 on the test split.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mgedb.checkpoint import prunable_layers
from mgedb.errors import PruningError

__all__ = [
    "TrainConfig",
    "TrainResult",
    "accuracy_drop",
    "default_device",
    "evaluate",
    "milestone_epochs",
    "recipe",
    "train_model",
    "training_record",
]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class TrainConfig:
    """Optimiser and schedule; ``milestones`` are fractions of ``epochs``."""

    epochs: int = 160
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[float, ...] = (0.5, 0.75)  # the paper's [80, 120] of 160 epochs
    gamma: float = 0.1
    device: str = "cpu"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["milestone_epochs"] = milestone_epochs(self.milestones, self.epochs)
        return d


@dataclass
class TrainResult:
    """Final test accuracy and the per-epoch history."""

    accuracy: float
    train_loss: float
    train_accuracy: float
    epochs: int
    wall_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)


def default_device() -> str:
    """``cuda`` if available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def recipe(model: str, dataset: str, epochs: int | None = None,
           device: str | None = None) -> TrainConfig:
    """The paper's training recipe for a zoo model and dataset (``epochs`` overrides the count)."""
    key = model.lower().replace("-", "_")
    wd = 5e-4 if key.startswith("wrn") or "wide" in key else 1e-4
    milestones: tuple[float, ...]
    if dataset == "tinyimagenet":
        default_epochs = 100
        milestones = (0.2, 0.6, 0.8) if key == "conv6" else (0.3, 0.6, 0.8)
    else:
        default_epochs = 160
        milestones = (0.5, 0.75)
    return TrainConfig(epochs=default_epochs if epochs is None else int(epochs),
                       weight_decay=wd, milestones=milestones,
                       device=device or default_device())


def milestone_epochs(fractions: Iterable[float], epochs: int) -> list[int]:
    """Epoch indices (1-based epoch after which the rate drops) for fractional milestones."""
    out = sorted({max(1, round(f * epochs)) for f in fractions})
    return [m for m in out if m < epochs] if epochs > 1 else []


def accuracy_drop(dense: float, sparse: float) -> float:
    """Relative accuracy drop ``(dense − sparse) / dense``."""
    if dense <= 0:
        return math.nan
    return (dense - sparse) / dense


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Batch], device: str | torch.device = "cpu"
             ) -> float:
    """Top-1 accuracy of ``model`` over the loader (eval mode)."""
    model.eval()
    correct = total = 0
    for x, y in loader:
        pred = model(x.to(device)).argmax(1)
        correct += int((pred == y.to(device)).sum())
        total += int(y.numel())
    return correct / total if total else math.nan


def _masked_params(model: nn.Module, masks: Mapping[str, torch.Tensor] | None,
                   device: str | torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if masks is None:
        return []
    layers = prunable_layers(model)
    unknown = [n for n in masks if n not in layers]
    if unknown:
        raise PruningError(f"masks name layers the model lacks: {unknown[:3]}")
    return [(layers[n].weight, m.to(device, layers[n].weight.dtype)) for n, m in masks.items()]


def train_model(model: nn.Module, train_loader: Iterable[Batch], test_loader: Iterable[Batch], *,
                masks: Mapping[str, torch.Tensor] | None = None,
                config: TrainConfig | None = None,
                on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``model`` in place with fixed ``masks`` (None: dense) and report test accuracy.

    ``torch.nn.utils.prune`` hooks are folded into the weights first (``masks`` keep them
    pruned), so the weights trained are the model's leaves."""
    from mgedb.model_source import strip_prune_hooks

    strip_prune_hooks(model)
    cfg = config or TrainConfig()
    device = torch.device(cfg.device)
    model.to(device)
    masked = _masked_params(model, masks, device)
    with torch.no_grad():
        for w, m in masked:
            w.mul_(m)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=milestone_epochs(cfg.milestones, cfg.epochs), gamma=cfg.gamma)
    start = time.perf_counter()
    history: list[dict[str, float]] = []
    loss_avg = acc_train = math.nan
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        loss_sum = 0.0
        correct = seen = 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            for w, m in masked:
                if w.grad is not None:
                    w.grad.mul_(m)
            opt.step()
            with torch.no_grad():
                for w, m in masked:
                    w.mul_(m)
            loss_sum += float(loss.detach()) * int(y.numel())
            correct += int((out.argmax(1) == y).sum())
            seen += int(y.numel())
        sched.step()
        loss_avg = loss_sum / max(seen, 1)
        acc_train = correct / max(seen, 1)
        row = {"epoch": float(epoch), "train_loss": loss_avg, "train_accuracy": acc_train,
               "lr": float(opt.param_groups[0]["lr"])}
        history.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
    acc = evaluate(model, test_loader, device)
    return TrainResult(accuracy=acc, train_loss=loss_avg, train_accuracy=acc_train,
                       epochs=cfg.epochs, wall_time_s=time.perf_counter() - start,
                       history=history)


def training_record(result: TrainResult, config: TrainConfig, *, model: str, dataset: str,
                    data_name: str | None, classes: int, seed: int, batch_size: int,
                    masks: Mapping[str, torch.Tensor] | None, checkpoint: Path | None,
                    sidecar: Mapping[str, Any], dense_accuracy: float | None) -> dict[str, Any]:
    """The JSON record of one training run (``mgedb train``; written as the trained checkpoint's
    sidecar): what was trained on what, its accuracy and drop, the recipe and the history.

    ``masks`` None means a dense run; ``data_name`` is the synthetic set's name (None: the real
    ``dataset``); ``sidecar`` is the pruned checkpoint's metadata.
    """
    import mgedb
    from mgedb.checkpoint import file_digest
    from mgedb.models import REFERENCE_NAMES
    from mgedb.prune import layer_densities, realised_sparsity
    from mgedb.vocab import Dataset

    dense = checkpoint is None
    synthetic = data_name is not None
    return {
        "kind": "dense" if dense else "sparse",
        "model": model, "model_reference_name": REFERENCE_NAMES.get(model, model),
        "dataset": data_name if synthetic else str(dataset),
        "dataset_reference_name": None if synthetic else Dataset(dataset).published,
        "synthetic": synthetic, "classes": classes,
        "pruner": None if dense else sidecar.get("pruner"),
        "sparsity": 0.0 if dense else sidecar.get("sparsity"),
        "realised_sparsity": 0.0 if masks is None else realised_sparsity(masks),
        "seed": seed, "pruning_seed": sidecar.get("seed"),
        "accuracy": result.accuracy, "dense_accuracy": dense_accuracy,
        "accuracy_drop": None if dense_accuracy is None else accuracy_drop(dense_accuracy,
                                                                           result.accuracy),
        "train_accuracy": result.train_accuracy, "train_loss": result.train_loss,
        "epochs": result.epochs, "wall_time_s": result.wall_time_s, "device": config.device,
        "batch_size": batch_size, **{k: v for k, v in config.as_dict().items() if k != "device"},
        "source_checkpoint": None if checkpoint is None else str(checkpoint),
        "source_digest": None if checkpoint is None else file_digest(checkpoint),
        "layer_densities": None if masks is None else layer_densities(masks),
        "pruning": {k: v for k, v in sidecar.items() if k != "layer_densities"} or None,
        "mgedb_version": mgedb.__version__,
        "history": result.history,
    }
