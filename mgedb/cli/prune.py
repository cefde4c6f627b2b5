"""Commands: ``prune`` (zoo model → pruned checkpoint) and ``train`` (fixed masks → record)."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from mgedb.cli._app import app
from mgedb.cli._options import (
    AllowPickle,
    DataDir,
    DatasetChoice,
    Download,
    FormatChoice,
    InputShape,
    Model,
    ModelArgs,
    OptionalModel,
    Synthetic,
    SyntheticSamples,
    check_classes,
    output_file,
)
from mgedb.cli._render import Format, err_console, progress, render, render_mapping
from mgedb.errors import CheckpointError, DataError, UnknownModel
from mgedb.vocab import Dataset, Pruner


class ErVariant(str, Enum):
    correct = "correct"
    reference = "reference"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


def _split(samples: int) -> tuple[int, int]:
    return samples, max(1, samples // 4)


def _version() -> str:
    from mgedb import __version__

    return __version__


@app.command("prune")
def prune_cmd(
    model: Model,
    model_args: ModelArgs = None,
    input_shape: InputShape = "3,32,32",
    pruner: Pruner = typer.Option(..., "--pruner", "-p", help="Pruning algorithm."),
    sparsity: float = typer.Option(..., "--sparsity", "-s",
                                   help="Target global weight sparsity in [0, 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the model initialisation and the pruner."),
    out: Path = typer.Option(..., "--out", "-o", callback=output_file,
                             help="Checkpoint to write (.pt state dict)."),
    classes: int | None = typer.Option(None, "--classes", callback=check_classes,
                                       help="Classes (default: the dataset's, 10 for CIFAR-10)."),
    dataset: DatasetChoice = Dataset.CIFAR10,
    data_dir: DataDir = None,
    synthetic: Synthetic = False,
    synthetic_samples: SyntheticSamples = 2000,
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1,
        help=f"Loader batch size for {'/'.join(Pruner.data_driven())} (default 128 for each)."),
    er_variant: ErVariant = typer.Option(
        ErVariant.correct, "--er-variant",
        help="er only: 'correct' (RigL's Erdős–Rényi) or 'reference' (mge-snn's variant)."),
    synflow_iterations: int = typer.Option(100, "--synflow-iterations", min=1,
                                           help="synflow only: pruning rounds."),
    download: Download = False,
    allow_pickle: AllowPickle = False,
    fmt: FormatChoice = Format.table,
) -> None:
    """Prune a freshly initialised model at initialisation and save it with a sidecar.

    Zoo models are initialised like the reference (Kaiming-normal, zero biases); a factory model
    (--model file.py:fn or module:fn) keeps its own initialisation, under --seed; an archive (a
    .pt2, a pickled module) gives the structure, re-initialised like the zoo under --seed.
    """
    from mgedb.checkpoint import save_checkpoint
    from mgedb.datasets import DATASETS, check_input_shape, make_loaders
    from mgedb.model_source import check_runs, parse_input_shape, require_input, resolve, seeded
    from mgedb.prune import PRUNERS, apply_masks, density_table, layer_densities, prune
    from mgedb.prune import realised_sparsity as realised

    shape = parse_input_shape(input_shape)
    model_spec = resolve(model, model_args or ())
    key = model_spec.label
    spec = PRUNERS[pruner.value]
    n_classes = classes if classes is not None else DATASETS[dataset.value][0]
    bs = batch_size or spec.batch_size
    batches = None
    data_name = None
    if spec.needs_data:
        if data_dir is None and not synthetic:
            raise DataError(f"pruner {pruner.value!r} needs training data: give --data-dir DIR "
                            "--dataset cifar10|cifar100|tinyimagenet, or --synthetic")
        check_input_shape(dataset.value, shape, synthetic=synthetic)
        loaders = make_loaders(dataset.value, data_dir, bs, synthetic=synthetic, seed=seed,
                               classes=n_classes, download=download,
                               synthetic_size=_split(synthetic_samples), input_shape=shape)
        batches = loaders.train
        data_name = loaders.name
    net, gen = seeded(model_spec, n_classes, seed, allow_pickle=allow_pickle)
    require_input(net, model_spec, f"pruner {pruner.value!r}", shape, batches=spec.needs_data)
    check_runs(net, model_spec, shape)
    start = time.perf_counter()
    with err_console.status(f"pruning {key} with {pruner.value} at sparsity {sparsity} …"):
        masks = prune(net, pruner.value, sparsity, seed, batches, generator=gen,
                      er_variant=er_variant.value, synflow_iterations=synflow_iterations,
                      input_shape=shape)
    wall = time.perf_counter() - start
    apply_masks(net, masks)
    rows = density_table(masks)
    meta: dict[str, Any] = {
        "model": key, "classes": n_classes, "pruner": pruner.value, "sparsity": sparsity,
        "seed": seed, "input_shape": list(shape), "realised_sparsity": realised(masks),
        "nonzero": rows[-1]["kept"], "weights": rows[-1]["weights"],
        "layer_densities": layer_densities(masks), "wall_time_s": wall,
        "mgedb_version": _version(),
        "init": _init_note(model_spec.kind),
    }
    if pruner is Pruner.ER:
        meta["er_variant"] = er_variant.value
    if pruner is Pruner.SYNFLOW:
        meta["synflow_iterations"] = synflow_iterations
    if spec.needs_data:
        meta.update({"data": data_name, "batch_size": bs})
    save_checkpoint(out, net, meta=meta)
    render(rows, fmt, title=f"{key} · {pruner.value} · sparsity {sparsity} · seed {seed}")
    err_console.print(f"wrote {out} (+ {out.name}.json): realised sparsity "
                      f"{meta['realised_sparsity']:.6f}, {wall:.2f} s")


def _init_note(kind: str) -> str:
    """How ``prune`` initialised a model of this source kind (recorded in the sidecar)."""
    how = {"zoo": "build_model (Kaiming-normal, zero biases)",
           "file": "the factory's own initialisation", "module": "the factory's own initialisation"
           }.get(kind, "the archive's structure re-initialised (Kaiming-normal conv/linear "
                       "weights, zero biases, norm layers reset)")
    return f"torch.manual_seed(seed); {how}; pruner continues the same random stream"


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
    model: OptionalModel = None,
    model_args: ModelArgs = None,
    input_shape: InputShape = "3,32,32",
    dataset: DatasetChoice = Dataset.CIFAR10,
    data_dir: DataDir = None,
    synthetic: Synthetic = False,
    synthetic_samples: SyntheticSamples = 2000,
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Epochs (default: 160 CIFAR, 100 Tiny-ImageNet)."),
    batch_size: int = typer.Option(128, "--batch-size", min=1, help="Training batch size."),
    lr: float = typer.Option(0.1, "--lr", help="Initial SGD learning rate."),
    classes: int | None = typer.Option(None, "--classes", callback=check_classes,
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
    out: Path | None = typer.Option(None, "--out", "-o", callback=output_file,
                                    help="Trained checkpoint (default: <checkpoint>.trained.pt; "
                                         "dense: <model>-<dataset>-dense-seed<seed>.pt)."),
    download: Download = False,
    allow_pickle: AllowPickle = False,
    fmt: FormatChoice = Format.table,
) -> None:
    """Train a pruned checkpoint with fixed masks (or a dense baseline); write it and its record."""
    import torch

    from mgedb.checkpoint import load_checkpoint, read_sidecar, save_checkpoint
    from mgedb.datasets import DATASETS, check_input_shape, make_loaders
    from mgedb.model_source import check_runs, parse_input_shape, require_input, resolve, seeded
    from mgedb.train import recipe, train_model, training_record

    shape = parse_input_shape(input_shape)
    check_input_shape(dataset.value, shape, synthetic=synthetic)

    if dense and checkpoint is not None:
        raise CheckpointError("--dense trains a fresh model: drop the CHECKPOINT argument")
    if not dense and checkpoint is None:
        raise CheckpointError("give the pruned CHECKPOINT to train, or --dense for the baseline")
    if device is Device.cuda and not torch.cuda.is_available():
        raise DataError("--device cuda: no CUDA device is available; use --device cpu")
    known_dense = _dense_accuracy(dense_accuracy, dense_record)
    meta = read_sidecar(checkpoint) if checkpoint is not None else {}
    pruned_at = meta.get("input_shape")
    if pruned_at is not None and tuple(pruned_at) != shape:
        at = ",".join(str(d) for d in pruned_at)
        raise CheckpointError(f"{checkpoint}: pruned at --input-shape {at} (its sidecar), "
                              f"not {','.join(map(str, shape))}; give --input-shape {at}")
    name = model or meta.get("model")
    if name is None:
        raise UnknownModel(f"{checkpoint}: no sidecar names the model; give --model")
    model_spec = resolve(str(name), model_args or ())
    key = model_spec.label
    n_classes = classes or meta.get("classes") or DATASETS[dataset.value][0]
    run_seed = seed if seed is not None else int(meta.get("seed", 0))

    masks = None
    if dense:
        net, _ = seeded(model_spec, n_classes, run_seed, allow_pickle=allow_pickle)
        stem = model_spec.factory or Path(model_spec.target).stem
        target = out or Path(f"{stem}-{dataset.value}-dense-seed{run_seed}.pt")
    else:
        assert checkpoint is not None
        loaded = load_checkpoint(checkpoint, model_spec, classes=n_classes,
                                 allow_pickle=allow_pickle)
        net, masks = loaded.model, loaded.masks
        target = out or checkpoint.with_name(checkpoint.stem + ".trained.pt")
    require_input(net, model_spec, "training", shape)
    check_runs(net, model_spec, shape)
    loaders = make_loaders(dataset.value, data_dir, batch_size, synthetic=synthetic,
                           seed=run_seed, classes=n_classes, download=download,
                           synthetic_size=_split(synthetic_samples), input_shape=shape)
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
    record = training_record(result, cfg, model=key, dataset=dataset,
                             data_name=loaders.name if synthetic else None, classes=n_classes,
                             seed=run_seed, batch_size=batch_size, masks=masks,
                             checkpoint=checkpoint, sidecar=meta, dense_accuracy=known_dense)
    net.to("cpu")
    save_checkpoint(target, net, meta=record)
    shown = {k: v for k, v in record.items()
             if k not in ("history", "layer_densities", "pruning")}
    render_mapping(shown, fmt, title=f"{target} (record: {target.name}.json)")
