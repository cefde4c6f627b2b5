"""Checkpoint ingestion: accepted formats, masks, every way a file can be wrong (library + CLI)."""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn
from typer.testing import CliRunner

from mgedb.checkpoint import load_checkpoint, prunable_layers, read_sidecar, save_checkpoint
from mgedb.cli import app
from mgedb.encode import encode_checkpoint
from mgedb.errors import CheckpointError, UnknownModel
from mgedb.graph import GraphSet
from mgedb.models import build_model


def sparse_resnet20(seed: int = 0, density: float = 0.1) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model("resnet20")
    with torch.no_grad():
        for m in prunable_layers(model).values():
            m.weight.mul_(torch.rand(m.weight.shape) < density)
    return model


@pytest.fixture(scope="module")
def plain_sd() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sparse_resnet20().state_dict().items()}


def test_plain_state_dict_masks_are_nonzeros(reference_dir: Path) -> None:
    pt = reference_dir / "Resnet-20-er-0.98-seed0.pt"
    sd = torch.load(pt, weights_only=True)
    ck = load_checkpoint(pt, "resnet20")
    assert ck.path == pt and ck.digest == hashlib.sha256(pt.read_bytes()).hexdigest()
    assert not ck.model.training
    layers = prunable_layers(ck.model)
    assert list(ck.masks) == list(layers)  # every Conv2d/Linear, shortcut convs included
    assert len(layers) == 22
    for name, m in layers.items():
        assert torch.equal(ck.masks[name], sd[f"{name}.weight"] != 0)
        assert ck.masks[name].dtype == torch.bool
        assert torch.equal(m.weight.detach(), sd[f"{name}.weight"])
    assert sum(int(m.sum()) for m in ck.masks.values()) == 5053


def test_torch_prune_state_uses_the_explicit_mask(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_model("resnet20")
    for m in prunable_layers(model).values():
        prune.random_unstructured(m, "weight", amount=0.7)
    with torch.no_grad():  # a kept weight that happens to be 0: still in the explicit mask
        model.conv1.weight_orig[0, 0, 0, 0] = 0.0
        model.conv1.weight_mask[0, 0, 0, 0] = 1.0
    sd = model.state_dict()
    assert "conv1.weight_orig" in sd and "conv1.weight_mask" in sd and "conv1.weight" not in sd
    path = tmp_path / "pruned.pt"
    torch.save(sd, path)
    ck = load_checkpoint(path, "resnet20")
    for name, m in prunable_layers(ck.model).items():
        mask = sd[f"{name}.weight_mask"].bool()
        assert torch.equal(ck.masks[name], mask)
        assert torch.equal(m.weight.detach(), sd[f"{name}.weight_orig"] * mask)
    assert bool(ck.masks["conv1"][0, 0, 0, 0])
    g = encode_checkpoint(path, "resnet20", encoding="rolled")
    nonzero = sum(int((sd[f"{n}.weight_orig"] * sd[f"{n}.weight_mask"] != 0).sum())
                  for n in prunable_layers(model))
    assert isinstance(g, GraphSet)
    assert sum(x.n_edges for x in g) == nonzero


def test_wrapped_dict_with_masks_and_meta(tmp_path: Path,
                                          plain_sd: dict[str, torch.Tensor]) -> None:
    dense = build_model("resnet20").state_dict()
    masks = {"conv1": plain_sd["conv1.weight"] != 0}
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": dense, "masks": masks, "meta": {"pruner": "snip"}}, path)
    ck = load_checkpoint(path, "resnet20")
    assert ck.meta == {"pruner": "snip"}
    assert torch.equal(ck.masks["conv1"], masks["conv1"])
    assert torch.equal(ck.model.conv1.weight.detach(), dense["conv1.weight"] * masks["conv1"])
    assert bool(ck.masks["linear"].all())  # no mask given: weight != 0 (dense here)


def test_full_pickled_model_needs_allow_pickle(tmp_path: Path) -> None:
    model = sparse_resnet20(2)
    path = tmp_path / "model.pt"
    torch.save(model, path)
    with pytest.raises(CheckpointError, match="allow-pickle") as e:
        load_checkpoint(path, "resnet20")
    assert str(path) in str(e.value)
    ck = load_checkpoint(path, "resnet20", allow_pickle=True)
    for name, m in prunable_layers(ck.model).items():
        assert torch.equal(ck.masks[name], dict(model.named_modules())[name].weight != 0)
        assert torch.equal(m.weight, dict(model.named_modules())[name].weight)


def test_save_checkpoint_and_sidecar_round_trip(tmp_path: Path) -> None:
    model = sparse_resnet20(3)
    path = save_checkpoint(tmp_path / "sub" / "ck.pt", model,
                           meta={"pruner": "er", "sparsity": 0.9, "seed": 3})
    assert sorted(p.name for p in path.parent.iterdir()) == ["ck.pt", "ck.pt.json"]
    assert read_sidecar(path) == {"pruner": "er", "sparsity": 0.9, "seed": 3}
    sd = torch.load(path, weights_only=True)
    assert sd.keys() == model.state_dict().keys()
    g = encode_checkpoint(path, "resnet20", encoding="rolled-channel")
    assert g.meta["pruner"] == "er" and g.meta["sparsity_target"] == 0.9 and g.meta["seed"] == 3
    assert g.meta["checkpoint_digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "sub" / "ck.pt.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="malformed metadata JSON"):
        read_sidecar(path)
    assert read_sidecar(tmp_path / "none.pt") == {}


# ---------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------
Maker = Callable[[Path, dict[str, torch.Tensor]], Path]


def _edit(fn: Callable[[dict[str, torch.Tensor]], None]) -> Maker:
    """A copy of the good state dict, edited in place by ``fn``, saved with torch.save."""

    def make(tmp: Path, sd: dict[str, torch.Tensor]) -> Path:
        sd = {k: v.clone() for k, v in sd.items()}
        fn(sd)
        path = tmp / "bad.pt"
        torch.save(sd, path)
        return path

    return make


def _save(obj: object) -> Maker:
    def make(tmp: Path, sd: dict[str, torch.Tensor]) -> Path:
        torch.save(obj, tmp / "bad.pt")
        return tmp / "bad.pt"

    return make


def _bytes(data: Callable[[dict[str, torch.Tensor]], bytes]) -> Maker:
    def make(tmp: Path, sd: dict[str, torch.Tensor]) -> Path:
        path = tmp / "bad.pt"
        path.write_bytes(data(sd))
        return path

    return make


def _truncated(sd: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def _nonexistent(tmp: Path, sd: dict[str, torch.Tensor]) -> Path:
    return tmp / "does-not-exist.pt"


def _directory(tmp: Path, sd: dict[str, torch.Tensor]) -> Path:
    (tmp / "dir.pt").mkdir()
    return tmp / "dir.pt"


def _missing(sd: dict[str, torch.Tensor]) -> None:
    del sd["layer2.0.conv1.weight"]


def _extra(sd: dict[str, torch.Tensor]) -> None:
    sd["extra.weight"] = torch.zeros(3)


def _shape(sd: dict[str, torch.Tensor]) -> None:
    sd["layer1.0.conv2.weight"] = torch.zeros(16, 16, 1, 1)


def _classes(sd: dict[str, torch.Tensor]) -> None:
    sd["linear.weight"], sd["linear.bias"] = torch.zeros(100, 64), torch.zeros(100)


def _nan(sd: dict[str, torch.Tensor]) -> None:
    sd["layer3.2.conv2.weight"][0, 0, 0, 0] = math.nan


def _inf(sd: dict[str, torch.Tensor]) -> None:
    sd["bn1.running_var"][0] = math.inf


def _non_tensor(sd: dict[str, torch.Tensor]) -> None:
    sd["conv1.weight"] = [1.0, 2.0]  # type: ignore[assignment]


def _mask_shape(sd: dict[str, torch.Tensor]) -> None:
    sd["conv1.weight_orig"] = sd.pop("conv1.weight")
    sd["conv1.weight_mask"] = torch.ones(16, 3, 3, 1)


BAD: dict[str, tuple[Maker, list[str]]] = {
    # case: (make the file, strings the one-line message must contain)
    "missing-key": (_edit(_missing), ["missing key 'layer2.0.conv1.weight'", "[32, 16, 3, 3]"]),
    "extra-key": (_edit(_extra), ["unexpected key 'extra.weight'"]),
    "shape-mismatch": (_edit(_shape), ["'layer1.0.conv2.weight'", "[16, 16, 1, 1]",
                                       "expected [16, 16, 3, 3]"]),
    "classes": (_edit(_classes), ["'linear.weight'", "expected [10, 64]", "--classes"]),
    "nan": (_edit(_nan), ["'layer3.2.conv2.weight'", "non-finite"]),
    "inf": (_edit(_inf), ["'bn1.running_var'", "non-finite"]),
    "non-tensor": (_edit(_non_tensor), ["'conv1.weight'", "not a tensor"]),
    "list": (_save([1, 2, 3]), ["list", "state_dict()"]),
    "tensor": (_save(torch.zeros(3)), ["Tensor", "state_dict()"]),
    "mask-shape": (_edit(_mask_shape), ["conv1.weight_mask", "[16, 3, 3, 1]", "[16, 3, 3, 3]"]),
    "garbage-bytes": (_bytes(lambda sd: b"definitely not a checkpoint " * 20), []),
    "truncated-zip": (_bytes(_truncated), ["unreadable"]),
    "nonexistent": (_nonexistent, ["no such checkpoint file"]),
    "directory": (_directory, ["no such checkpoint file"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_checkpoint_library(case: str, tmp_path: Path,
                                plain_sd: dict[str, torch.Tensor]) -> None:
    make, words = BAD[case]
    path = make(tmp_path, plain_sd)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, "resnet20")
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    for w in words:
        assert w in msg


@pytest.mark.parametrize("case", ["missing-key", "shape-mismatch", "nan", "non-tensor",
                                  "garbage-bytes", "truncated-zip", "nonexistent", "mask-shape"])
def test_bad_checkpoint_cli(case: str, tmp_path: Path,
                            plain_sd: dict[str, torch.Tensor]) -> None:
    path = BAD[case][0](tmp_path, plain_sd)
    out = tmp_path / "graph.npz"
    res = CliRunner().invoke(app, ["encode", str(path), "--model", "resnet20", "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(path) in lines[0]
    assert res.stdout == ""
    assert not out.exists() and not list(tmp_path.glob("graph.npz*"))


def test_unbroadcastable_mask_is_a_checkpoint_error(tmp_path: Path,
                                                    plain_sd: dict[str, torch.Tensor]) -> None:
    sd = dict(plain_sd)
    sd["conv1.weight_orig"] = sd.pop("conv1.weight")
    sd["conv1.weight_mask"] = torch.ones(5)
    torch.save(sd, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"conv1\.weight_mask"):
        load_checkpoint(tmp_path / "m.pt", "resnet20")


def test_empty_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt"):
        load_checkpoint(tmp_path / "empty.pt", "resnet20")


def test_wrong_model_for_the_checkpoint(tmp_path: Path,
                                        plain_sd: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "r20.pt"
    torch.save(plain_sd, path)
    with pytest.raises(CheckpointError, match="check --model") as e:
        load_checkpoint(path, "resnet32")
    assert str(path) in str(e.value) and "'resnet32'" in str(e.value)
    with pytest.raises(CheckpointError, match=r"missing key 'convs1\.0\.weight'"):
        load_checkpoint(path, "conv6")


def test_unknown_model(tmp_path: Path, plain_sd: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "r20.pt"
    torch.save(plain_sd, path)
    with pytest.raises(UnknownModel, match=r"unknown model 'resnet21'.*resnet20"):
        load_checkpoint(path, "resnet21")
    with pytest.raises(UnknownModel, match="classes"):
        load_checkpoint(path, "resnet20", classes=0)
    out = tmp_path / "g.npz"
    res = CliRunner().invoke(app, ["encode", str(path), "-m", "resnet21", "--out", str(out)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: unknown model 'resnet21'")
    assert not out.exists()


def test_reference_model_names_are_aliases(tmp_path: Path,
                                           plain_sd: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "r20.pt"
    torch.save(plain_sd, path)
    a = load_checkpoint(path, "Resnet-20")
    b = load_checkpoint(path, "resnet20")
    for name in a.masks:
        assert torch.equal(a.masks[name], b.masks[name])
    assert np.array_equal(a.model.linear.weight.detach().numpy(),
                          plain_sd["linear.weight"].numpy())


def test_sidecar_metadata_reaches_graph(tmp_path: Path,
                                        plain_sd: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "ck.pt"
    torch.save(plain_sd, path)
    (tmp_path / "ck.pt.json").write_text(json.dumps({"pruner": "snip", "sparsity_target": 0.9,
                                                     "dataset": "cifar10", "other": 1}))
    g = encode_checkpoint(path, "resnet20", encoding="rolled")
    assert {k: g.meta[k] for k in ("pruner", "sparsity_target", "dataset", "model", "classes")} \
        == {"pruner": "snip", "sparsity_target": 0.9, "dataset": "cifar10", "model": "resnet20",
            "classes": 10}
    assert "other" not in g.meta
