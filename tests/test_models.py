"""The model zoo: reference state-dict layout, prunable weight counts (spec §6), forward shapes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from mgedb.checkpoint import prunable_layers
from mgedb.errors import UnknownModel
from mgedb.models import MODELS, REFERENCE_NAMES, build_model

PRUNABLE = {"conv6": 2_261_184, "resnet20": 270_896, "resnet32": 464_432, "wrn28_2": 1_463_984}


def read_keys(reference_dir: Path) -> dict[str, dict[str, tuple[list[int], str, str]]]:
    """``state_dict_keys.txt`` → {section title: {key: (shape, dtype, module kind)}}."""
    sections: dict[str, dict[str, tuple[list[int], str, str]]] = {}
    current: dict[str, tuple[list[int], str, str]] = {}
    for line in (reference_dir / "state_dict_keys.txt").read_text().splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].split(" (")[0], {})
        elif line and not line.startswith("#"):
            key, shape, dtype, kind = line.split("\t")
            current[key] = ([int(x) for x in re.findall(r"\d+", shape)], dtype, kind)
    return sections


@pytest.mark.parametrize(("name", "section", "elements"), [("conv6", "CONV-6", 2_268_242),
                                                          ("resnet20", "Resnet-20", 274_063)])
def test_state_dict_matches_reference(reference_dir: Path, name: str, section: str,
                                      elements: int) -> None:
    expected = read_keys(reference_dir)[section]
    model = build_model(name)
    sd = model.state_dict()
    assert list(sd) == list(expected)  # same keys, same order
    modules = dict(model.named_modules())
    for key, (shape, dtype, kind) in expected.items():
        assert list(sd[key].shape) == shape, key
        assert str(sd[key].dtype) == f"torch.{dtype}", key
        module = modules[key.rsplit(".", 1)[0]]
        if kind.startswith("Conv2d"):
            assert isinstance(module, nn.Conv2d)
            k, s, p, g, b = re.match(r"Conv2d\(k=(\d+),s=(\d+),p=(\d+),groups=(\d+),bias=(\w+)\)",
                                     kind).groups()  # type: ignore[union-attr]
            assert (module.kernel_size, module.stride, module.padding, module.groups) == (
                (int(k),) * 2, (int(s),) * 2, (int(p),) * 2, int(g)), key
            assert (module.bias is not None) == (b == "True"), key
        else:
            assert type(module).__name__ == kind, key
    assert sum(v.numel() for v in sd.values()) == elements


@pytest.mark.parametrize("name", list(PRUNABLE))
def test_prunable_weight_counts(name: str) -> None:
    layers = prunable_layers(build_model(name))
    assert sum(m.weight.numel() for m in layers.values()) == PRUNABLE[name]


def test_layer_counts_and_shortcuts() -> None:
    counts = {n: len(prunable_layers(build_model(n))) for n in MODELS}
    assert counts == {"conv6": 9, "resnet20": 22, "resnet32": 34, "wrn28_2": 29,
                      "mobilenet_v2": 1 + 17 * 3 + 4 + 1 + 1}
    r20 = build_model("resnet20")
    sc = r20.layer2[0].shortcut[0]
    assert isinstance(sc, nn.Conv2d) and sc.kernel_size == (1, 1) and sc.stride == (2, 2)
    assert len(r20.layer1[0].shortcut) == 0 and len(r20.layer2[1].shortcut) == 0
    wrn = build_model("wrn28_2")
    shortcuts = [n for n, m in wrn.named_modules() if n.endswith("convShortcut") and m is not None]
    assert shortcuts == ["block1.layer.0.convShortcut", "block2.layer.0.convShortcut",
                         "block3.layer.0.convShortcut"]
    assert wrn.block1.layer[0].convShortcut.stride == (1, 1)  # the stride-1 16→32 one
    mb = build_model("mobilenet_v2")
    assert mb.conv1.stride == (1, 1) and mb.conv1.out_channels == 32
    depthwise = [m for m in mb.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 17 and all(m.groups == m.in_channels for m in depthwise)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("classes", [1, 10, 100, 200])
def test_forward_on_cifar_input(name: str, classes: int) -> None:
    model = build_model(name, classes).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, classes) and torch.isfinite(y).all()


def test_init_is_kaiming_with_zero_biases() -> None:
    torch.manual_seed(0)
    model = build_model("conv6")
    w = model.convs1[10].weight.detach()  # 128→128 3×3: fan_in 1152
    assert float(w.std()) == pytest.approx((2 / 1152) ** 0.5, rel=0.02)
    assert float(w.mean()) == pytest.approx(0.0, abs=3e-3)
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            assert m.bias is not None and not m.bias.any()
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            assert bool((m.weight == 1).all()) and not m.bias.any()
            assert not m.running_mean.any() and bool((m.running_var == 1).all())


def test_names_and_aliases() -> None:
    for key, ref in REFERENCE_NAMES.items():
        assert type(build_model(ref)) is type(build_model(key))
    assert type(build_model("Wide-ResNet-28-2")) is type(build_model("wrn28_2"))
    with pytest.raises(UnknownModel, match="unknown model 'vgg16'; choose one of: conv6"):
        build_model("vgg16")
    with pytest.raises(UnknownModel, match="classes"):
        build_model("conv6", 0)
