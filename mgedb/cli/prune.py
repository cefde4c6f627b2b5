"""Commands: ``prune`` (zoo model → pruned checkpoint) and ``train`` (fixed masks → record)."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from mgedb.cli._app import app
from mgedb.cli._render import Format, err_console, progress, render, render_mapping
from mgedb.errors import CheckpointError, DataError, UnknownModel


class PrunerName(str, Enum):
    uniform = "uniform"
    er = "er"
    erk = "erk"
    snip = "snip"
    grasp = "grasp"
    synflow = "synflow"
    prospr = "prospr"


class ErVariant(str, Enum):
    correct = "correct"
    reference = "reference"


class DatasetName(str, Enum):
    cifar10 = "cifar10"
    cifar100 = "cifar100"
    tinyimagenet = "tinyimagenet"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


#: Default loader batch size of each data-driven pruner on the CPU (the reference: SNIP 128,
#: ProsPr 512 — 128 here to bound CPU time and memory; GraSP collects 25 samples per class from
#: as many batches as it needs).
PRUNE_BATCH = {"snip": 128, "grasp": 128, "prospr": 128}
DATASET_REFERENCE_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                           "tinyimagenet": "tinyimagenet"}

DataDirOpt = typer.Option(None, "--data-dir", help="Directory holding the dataset "
                          "(torchvision layout: cifar-10-batches-py/, cifar-100-python/, "
                          "tiny-imagenet-200/).")
DatasetOpt = typer.Option(DatasetName.cifar10, "--dataset", help="Dataset.")
SyntheticOpt = typer.Option(False, "--synthetic",
                            help="Use the built-in synthetic image set instead of --data-dir.")
SyntheticSamplesOpt = typer.Option(2000, "--synthetic-samples", min=2,
                                   help="--synthetic: training images (test: a quarter).")
DownloadOpt = typer.Option(False, "--download",
                           help="Download CIFAR-10/100 into --data-dir if absent (needs internet).")


def _split(samples: int) -> tuple[int, int]:
    return samples, max(1, samples // 4)


def _version() -> str:
    from mgedb import __version__

    return __version__


@app.command("prune")
def prune_cmd(
    model: str = typer.Option(..., "--model", "-m",
                              help="Zoo model: conv6, resnet20, resnet32, wrn28_2, mobilenet_v2."),
    pruner: PrunerName = typer.Option(..., "--pruner", "-p", help="Pruning algorithm."),
    sparsity: float = typer.Option(..., "--sparsity", "-s",
                                   help="Target global weight sparsity in [0, 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the model initialisation and the pruner."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.pt state dict)."),
    classes: int | None = typer.Option(None, "--classes", min=1,
                                       help="Classes (default: the dataset's, 10 for CIFAR-10)."),
    dataset: DatasetName = DatasetOpt,
    data_dir: Path | None = DataDirOpt,
    synthetic: bool = SyntheticOpt,
    synthetic_samples: int = SyntheticSamplesOpt,
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1,
        help="Loader batch size for snip/grasp/prospr (default 128 for each)."),
    er_variant: ErVariant = typer.Option(
        ErVariant.correct, "--er-variant",
        help="er only: 'correct' (RigL's Erdős–Rényi) or 'reference' (mge-snn's variant)."),
    synflow_iterations: int = typer.Option(100, "--synflow-iterations", min=1,
                                           help="synflow only: pruning rounds."),
    download: bool = DownloadOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
) -> None:
    """Prune a freshly initialised zoo model at initialisation and save it with a sidecar."""
    from mgedb.checkpoint import save_checkpoint
    from mgedb.datasets import DATASETS, make_loaders
    from mgedb.models import canonical_name, seeded_model
    from mgedb.prune import PRUNERS, apply_masks, density_table, layer_densities, prune
    from mgedb.prune import realised_sparsity as realised

    key = canonical_name(model)
    spec = PRUNERS[pruner.value]
    n_classes = classes if classes is not None else DATASETS[dataset.value][0]
    bs = batch_size or PRUNE_BATCH.get(pruner.value, 128)
    batches = None
    data_name = None
    if spec.needs_data:
        if data_dir is None and not synthetic:
            raise DataError(f"pruner {pruner.value!r} needs training data: give --data-dir DIR "
                            "--dataset cifar10|cifar100|tinyimagenet, or --synthetic")
        loaders = make_loaders(dataset.value, data_dir, bs, synthetic=synthetic, seed=seed,
                               classes=n_classes, download=download,
                               synthetic_size=_split(synthetic_samples))
        batches = loaders.train
        data_name = loaders.name
    net, gen = seeded_model(key, n_classes, seed)
    start = time.perf_counter()
    with err_console.status(f"pruning {key} with {pruner.value} at sparsity {sparsity} …"):
        masks = prune(net, pruner.value, sparsity, seed, batches, generator=gen,
                      er_variant=er_variant.value, synflow_iterations=synflow_iterations)
    wall = time.perf_counter() - start
    apply_masks(net, masks)
    rows = density_table(masks)
    meta: dict[str, Any] = {
        "model": key, "classes": n_classes, "pruner": pruner.value, "sparsity": sparsity,
        "seed": seed, "realised_sparsity": realised(masks),
        "nonzero": rows[-1]["kept"], "weights": rows[-1]["weights"],
        "layer_densities": layer_densities(masks), "wall_time_s": wall,
        "mgedb_version": _version(),
        "init": "torch.manual_seed(seed); build_model (Kaiming-normal, zero biases); "
                "pruner continues the same random stream",
    }
    if pruner is PrunerName.er:
        meta["er_variant"] = er_variant.value
    if pruner is PrunerName.synflow:
        meta["synflow_iterations"] = synflow_iterations
    if spec.needs_data:
        meta.update({"data": data_name, "batch_size": bs})
    save_checkpoint(out, net, meta=meta)
    render(rows, fmt, title=f"{key} · {pruner.value} · sparsity {sparsity} · seed {seed}")
    err_console.print(f"wrote {out} (+ {out.name}.json): realised sparsity "
                      f"{meta['realised_sparsity']:.6f}, {wall:.2f} s")


def _dense_accuracy(value: float | None, record: Path | None) -> float | None:
    if value is not None and record is not None:
        raise DataError("give either --dense-accuracy or --dense-record, not both")
    if value is not None:
        if not 0.0 < value <= 1.0:
            raise DataError(f"--dense-accuracy must be a fraction in (0, 1], got {value}")
        return value
    if record is None:
        return None
    try:
        data = json.loads(record.read_text())
        acc = float(data["accuracy"])
    except FileNotFoundError:
        raise DataError(f"{record}: no such dense record file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise DataError(f"{record}: not a training record (JSON object with 'accuracy'); "
                        "write one with `mgedb train --dense`") from None
    return acc


@app.command("train")
def train_cmd(
    checkpoint: Path | None = typer.Argument(
        None, help="Pruned checkpoint (its masks, weight != 0, stay fixed). Omit with --dense.",
        show_default=False),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="Zoo model (default: from the checkpoint's sidecar)."),
    dataset: DatasetName = DatasetOpt,
    data_dir: Path | None = DataDirOpt,
    synthetic: bool = SyntheticOpt,
    synthetic_samples: int = SyntheticSamplesOpt,
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Epochs (default: 160 CIFAR, 100 Tiny-ImageNet)."),
    batch_size: int = typer.Option(128, "--batch-size", min=1, help="Training batch size."),
    lr: float = typer.Option(0.1, "--lr", help="Initial SGD learning rate."),
    classes: int | None = typer.Option(None, "--classes", min=1,
                                       help="Classes (default: sidecar, else the dataset's)."),
    seed: int | None = typer.Option(None, "--seed",
                                    help="Data-order seed (and dense init; default: sidecar, 0)."),
    dense: bool = typer.Option(False, "--dense",
                               help="Train the unpruned model of --model (the dense baseline)."),
    dense_accuracy: float | None = typer.Option(None, "--dense-accuracy",
                                                help="Known dense accuracy (fraction)."),
    dense_record: Path | None = typer.Option(None, "--dense-record",
                                             help="JSON record of a `train --dense` run."),
    device: Device | None = typer.Option(None, "--device",
                                         help="cpu or cuda (default: cuda if available)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Trained checkpoint (default: <checkpoint>.trained.pt; "
                                         "dense: <model>-<dataset>-dense-seed<seed>.pt)."),
    download: bool = DownloadOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
) -> None:
    """Train a pruned checkpoint with fixed masks (or a dense baseline); write it and its record."""
    import torch

    from mgedb.checkpoint import file_digest, load_checkpoint, read_sidecar, save_checkpoint
    from mgedb.datasets import DATASETS, make_loaders
    from mgedb.models import REFERENCE_NAMES, canonical_name, seeded_model
    from mgedb.prune import layer_densities, realised_sparsity
    from mgedb.train import accuracy_drop, recipe, train_model

    if dense and checkpoint is not None:
        raise CheckpointError("--dense trains a fresh model: drop the CHECKPOINT argument")
    if not dense and checkpoint is None:
        raise CheckpointError("give the pruned CHECKPOINT to train, or --dense for the baseline")
    if device is Device.cuda and not torch.cuda.is_available():
        raise DataError("--device cuda: no CUDA device is available; use --device cpu")
    known_dense = _dense_accuracy(dense_accuracy, dense_record)
    meta = read_sidecar(checkpoint) if checkpoint is not None else {}
    name = model or meta.get("model")
    if name is None:
        raise UnknownModel(f"{checkpoint}: no sidecar names the model; give --model")
    key = canonical_name(str(name))
    n_classes = classes or meta.get("classes") or DATASETS[dataset.value][0]
    run_seed = seed if seed is not None else int(meta.get("seed", 0))

    masks = None
    if dense:
        net, _ = seeded_model(key, n_classes, run_seed)
        target = out or Path(f"{key}-{dataset.value}-dense-seed{run_seed}.pt")
    else:
        assert checkpoint is not None
        loaded = load_checkpoint(checkpoint, key, classes=n_classes)
        net, masks = loaded.model, loaded.masks
        target = out or checkpoint.with_name(checkpoint.stem + ".trained.pt")
    loaders = make_loaders(dataset.value, data_dir, batch_size, synthetic=synthetic,
                           seed=run_seed, classes=n_classes, download=download,
                           synthetic_size=_split(synthetic_samples))
    cfg = recipe(key, dataset.value, epochs, device.value if device else None)
    cfg.lr = lr

    with progress() as bar:
        task = bar.add_task(f"training {key}", total=cfg.epochs)

        def on_epoch(epoch: int, row: dict[str, float]) -> None:
            bar.update(task, advance=1,
                       description=f"training {key} loss {row['train_loss']:.3f}")

        result = train_model(net, loaders.train, loaders.test, masks=masks, config=cfg,
                             on_epoch=on_epoch)
    if dense:
        known_dense = result.accuracy
    record: dict[str, Any] = {
        "kind": "dense" if dense else "sparse",
        "model": key, "model_reference_name": REFERENCE_NAMES[key],
        "dataset": loaders.name if synthetic else dataset.value,
        "dataset_reference_name": None if synthetic else DATASET_REFERENCE_NAMES[dataset.value],
        "synthetic": synthetic, "classes": n_classes,
        "pruner": None if dense else meta.get("pruner"),
        "sparsity": 0.0 if dense else meta.get("sparsity"),
        "realised_sparsity": 0.0 if masks is None else realised_sparsity(masks),
        "seed": run_seed, "pruning_seed": meta.get("seed"),
        "accuracy": result.accuracy, "dense_accuracy": known_dense,
        "accuracy_drop": None if known_dense is None else accuracy_drop(known_dense,
                                                                        result.accuracy),
        "train_accuracy": result.train_accuracy, "train_loss": result.train_loss,
        "epochs": result.epochs, "wall_time_s": result.wall_time_s, "device": cfg.device,
        "batch_size": batch_size, **{k: v for k, v in cfg.as_dict().items() if k != "device"},
        "source_checkpoint": None if checkpoint is None else str(checkpoint),
        "source_digest": None if checkpoint is None else file_digest(checkpoint),
        "layer_densities": None if masks is None else layer_densities(masks),
        "pruning": {k: v for k, v in meta.items() if k != "layer_densities"} or None,
        "mgedb_version": _version(),
        "history": result.history,
    }
    net.to("cpu")
    save_checkpoint(target, net, meta=record)
    shown = {k: v for k, v in record.items()
             if k not in ("history", "layer_densities", "pruning")}
    render_mapping(shown, fmt, title=f"{target} (record: {target.name}.json)")
