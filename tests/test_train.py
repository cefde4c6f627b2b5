"""Fixed-mask training, the paper's recipe, evaluation, and the train/prune CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import mgedb.cli.prune  # noqa: F401  (registers the commands)
from mgedb.checkpoint import load_checkpoint, prunable_layers, read_sidecar
from mgedb.cli import app
from mgedb.datasets import make_loaders
from mgedb.prune import prune
from mgedb.train import (
    TrainConfig,
    accuracy_drop,
    evaluate,
    milestone_epochs,
    recipe,
    train_model,
)


def toy_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10),
    )


def test_masks_stay_fixed_through_training_steps() -> None:
    net = toy_net()
    masks = prune(net, "uniform", 0.7, seed=0)
    before = {n: m.weight.detach().clone() for n, m in prunable_layers(net).items()}
    loaders = make_loaders("cifar10", None, 32, synthetic=True, seed=0, synthetic_size=(96, 32))
    # weight decay and momentum would move a zero weight if its gradient or value were not masked
    cfg = TrainConfig(epochs=2, lr=0.1, weight_decay=5e-2, device="cpu")
    train_model(net, loaders.train, loaders.test, masks=masks, config=cfg)
    for n, m in prunable_layers(net).items():
        w = m.weight.detach()
        assert torch.count_nonzero(w[~masks[n]]) == 0, n
        assert not torch.equal(w[masks[n]], before[n][masks[n]]), n


def test_training_on_synthetic_data_beats_chance() -> None:
    net = toy_net(1)
    loaders = make_loaders("cifar10", None, 32, synthetic=True, seed=0, synthetic_size=(640, 200))
    cfg = TrainConfig(epochs=4, lr=0.05, milestones=(0.75,), device="cpu")
    seen: list[int] = []
    result = train_model(net, loaders.train, loaders.test, config=cfg,
                         on_epoch=lambda e, row: seen.append(e))
    assert seen == [1, 2, 3, 4] and len(result.history) == 4
    assert result.accuracy > 0.5  # chance is 0.1
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.accuracy == evaluate(net, loaders.test)


class Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 3)
        out[:, 2] = 1.0
        return out


def test_evaluate_counts_top1() -> None:
    y = torch.tensor([2, 0, 2, 1, 2])
    assert evaluate(Constant(), [(torch.zeros(3, 1), y[:3]), (torch.zeros(2, 1), y[3:])]) == 0.6


def test_recipe_and_milestones() -> None:
    assert milestone_epochs((0.5, 0.75), 160) == [80, 120]
    assert milestone_epochs((0.3, 0.6, 0.8), 100) == [30, 60, 80]
    assert milestone_epochs((0.5, 0.75), 1) == []
    r = recipe("resnet20", "cifar10", device="cpu")
    assert (r.epochs, r.lr, r.momentum, r.weight_decay, r.milestones) == (160, 0.1, 0.9, 1e-4,
                                                                           (0.5, 0.75))
    assert recipe("wrn28_2", "cifar100", device="cpu").weight_decay == 5e-4
    assert recipe("conv6", "tinyimagenet", device="cpu").as_dict()["milestone_epochs"] == [20, 60,
                                                                                            80]
    assert recipe("resnet32", "tinyimagenet", 10, device="cpu").as_dict()["milestone_epochs"] == [
        3, 6, 8]


def test_accuracy_drop() -> None:
    assert accuracy_drop(0.9, 0.81) == pytest.approx(0.1)
    assert accuracy_drop(0.8, 0.84) == pytest.approx(-0.05)


def run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


def test_cli_prune_train_dense_and_drop(tmp_path: Path) -> None:
    ckpt = tmp_path / "r20.pt"
    code, out = run(["prune", "--model", "resnet20", "--pruner", "snip", "--sparsity", "0.9",
                     "--synthetic", "--synthetic-samples", "16", "--batch-size", "16",
                     "--out", str(ckpt), "--format", "json"])
    assert code == 0, out
    rows = json.loads(out[out.index("["):out.rindex("]") + 1])
    assert rows[-1]["layer"] == "total" and rows[-1]["kept"] == round(0.1 * 270896)
    meta = read_sidecar(ckpt)
    assert meta["pruner"] == "snip" and meta["data"] == "synthetic-10" and meta["batch_size"] == 16
    loaded = load_checkpoint(ckpt, "resnet20")
    assert sum(int(m.sum()) for m in loaded.masks.values()) == rows[-1]["kept"]

    dense_out = tmp_path / "dense.pt"
    common = ["--dataset", "cifar10", "--synthetic", "--synthetic-samples", "16", "--epochs", "1",
              "--batch-size", "16", "--device", "cpu", "--format", "json"]
    code, out = run(["train", "--dense", "--model", "resnet20", "--out", str(dense_out), *common])
    assert code == 0, out
    dense_rec = read_sidecar(dense_out)
    assert dense_rec["kind"] == "dense" and dense_rec["accuracy_drop"] == 0.0

    code, out = run(["train", str(ckpt), "--dense-record", str(dense_out) + ".json", *common])
    assert code == 0, out
    trained = tmp_path / "r20.trained.pt"
    rec = read_sidecar(trained)
    assert rec["pruner"] == "snip" and rec["sparsity"] == 0.9 and rec["epochs"] == 1
    assert rec["dense_accuracy"] == dense_rec["accuracy"]
    if rec["dense_accuracy"] > 0:
        assert rec["accuracy_drop"] == pytest.approx(
            (dense_rec["accuracy"] - rec["accuracy"]) / dense_rec["accuracy"])
    after = load_checkpoint(trained, "resnet20")
    assert all(torch.equal(after.masks[n] & ~loaded.masks[n], torch.zeros_like(loaded.masks[n]))
               for n in loaded.masks)


def test_cli_errors(tmp_path: Path) -> None:
    code, out = run(["prune", "--model", "resnet20", "--pruner", "grasp", "--sparsity", "0.9",
                     "--out", str(tmp_path / "x.pt")])
    assert code == 2 and "needs training data" in out
    code, out = run(["prune", "--model", "resnet20", "--pruner", "uniform", "--sparsity", "1.0",
                     "--out", str(tmp_path / "x.pt")])
    assert code == 2 and "sparsity must be in [0, 1)" in out
    code, out = run(["prune", "--model", "resnet99", "--pruner", "uniform", "--sparsity", "0.5",
                     "--out", str(tmp_path / "x.pt")])
    assert code == 2 and "unknown model" in out
    code, out = run(["train", str(tmp_path / "none.pt"), "--model", "resnet20",
                     "--data-dir", str(tmp_path)])
    assert code == 2 and "no such checkpoint file" in out
    code, out = run(["train", "--dense", "--model", "resnet20", "--data-dir", str(tmp_path)])
    assert code == 2 and "cifar-10-batches-py/{data_batch_1" in out
    code, out = run(["train", "--model", "resnet20", "--synthetic"])
    assert code == 2 and "CHECKPOINT" in out
    assert not list(tmp_path.iterdir())


def test_cli_reference_er_reproduces_the_fixture(tmp_path: Path, reference_dir: Path) -> None:
    out = tmp_path / "er.pt"
    code, text = run(["prune", "--model", "resnet20", "--pruner", "er", "--er-variant",
                      "reference", "--sparsity", "0.98", "--seed", "0", "--out", str(out),
                      "--format", "csv"])
    assert code == 0, text
    mine = torch.load(out, weights_only=True)
    ref = torch.load(reference_dir / "Resnet-20-er-0.98-seed0.pt", weights_only=True)
    assert set(mine) == set(ref)
    assert all(torch.equal(mine[k], ref[k]) for k in ref)
    assert read_sidecar(out)["nonzero"] == 5053


def test_cli_on_a_cifar_directory(tmp_path: Path) -> None:
    import pickle

    import numpy as np

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                         b"labels": list(range(4))}, fh)
    ckpt = tmp_path / "p.pt"
    data = ["--dataset", "cifar10", "--data-dir", str(tmp_path / "data")]
    code, out = run(["prune", "--model", "resnet20", "--pruner", "prospr", "--sparsity", "0.95",
                     "--batch-size", "8", "--out", str(ckpt), "--format", "csv", *data])
    assert code == 0, out
    meta = read_sidecar(ckpt)
    assert meta["data"] == "cifar10" and abs(meta["realised_sparsity"] - 0.95) < 1e-5
    code, out = run(["train", str(ckpt), "--epochs", "1", "--batch-size", "20", "--device", "cpu",
                     "--dense-accuracy", "0.5", "--format", "json", *data])
    assert code == 0, out
    rec = read_sidecar(tmp_path / "p.trained.pt")
    assert rec["dataset"] == "cifar10" and rec["dataset_reference_name"] == "CIFAR-10"
    assert rec["accuracy"] in (0.0, 0.25, 0.5, 0.75, 1.0)  # four test images
    assert rec["accuracy_drop"] == pytest.approx((0.5 - rec["accuracy"]) / 0.5)
