"""torchvision classification models, pruned with torch.nn.utils.prune, against the oracle.

Each model is pruned per layer (L1, ``torch.nn.utils.prune.l1_unstructured``), its kept weights set
positive (biases 0, BatchNorm/LayerNorm shifts 0) and encoded; input pixels (two corners and random
ones) are perturbed from a zero input in float64, and the set of output logits that change must be
the set the graph reaches. The fastest models run by default, the rest with ``--runslow``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from test_encode_bruteforce import brute_reach, mge_reach
from torch import nn
from torch.nn.utils import prune

from mgedb.encode import encode_model
from mgedb.graph import Graph

tv = pytest.importorskip("torchvision")

# name: (factory kwargs, input shape, pruned fraction, run by default)
MODELS: dict[str, tuple[dict[str, Any], tuple[int, int, int], float, bool]] = {
    "resnet18": ({}, (3, 32, 32), 0.9, True),
    "squeezenet1_0": ({}, (3, 32, 32), 0.7, True),
    "shufflenet_v2_x0_5": ({}, (3, 32, 32), 0.7, True),
    "mobilenet_v3_small": ({}, (3, 32, 32), 0.7, True),
    "regnet_x_400mf": ({}, (3, 32, 32), 0.7, False),
    "resnet50": ({}, (3, 32, 32), 0.9, False),
    "vgg11": ({}, (3, 32, 32), 0.95, False),
    "mobilenet_v2": ({}, (3, 32, 32), 0.7, False),
    "alexnet": ({}, (3, 64, 64), 0.95, False),
    "efficientnet_b0": ({}, (3, 32, 32), 0.7, False),
    "densenet121": ({}, (3, 32, 32), 0.8, False),
    "googlenet": ({"aux_logits": False, "init_weights": True}, (3, 32, 32), 0.8, False),
}


def pruned_positive(name: str, seed: int = 0) -> nn.Module:
    kwargs, _, amount, _ = MODELS[name]
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(tv.models, name)(weights=None, num_classes=10, **kwargs).eval()
    return positive(model, amount, seed)


def positive(model: nn.Module, amount: float, seed: int) -> nn.Module:
    """Prune every Conv2d/Linear by L1, kept weights in [0.5, 1.5), biases and norm shifts 0."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            prune.l1_unstructured(m, "weight", amount=amount)
            with torch.no_grad():
                m.weight_orig.copy_(0.5 + torch.rand(m.weight_orig.shape, generator=gen))
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d | nn.LayerNorm) and m.bias is not None:
            with torch.no_grad():
                m.bias.zero_()
    return model


def _case(name: str) -> Any:
    marks = [] if MODELS[name][3] else [pytest.mark.slow]
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_case(n) for n in MODELS])
def test_torchvision_model_matches_oracle(name: str) -> None:
    shape = MODELS[name][1]
    model = pruned_positive(name)
    g = encode_model(model, input_shape=shape)
    assert isinstance(g, Graph)
    assert g.partitions[-1].size == 10
    n_in = math.prod(shape)
    pixels = np.random.default_rng(0).choice(n_in, 10, replace=False)
    pixels[:2] = [0, n_in - 1]
    expect = brute_reach(model, shape, [""], pixels, None, big=1.0)[""]
    got = mge_reach(g, pixels)[:, g.offsets[-2]:g.offsets[-1]]
    assert expect.any(), "degenerate check: no pixel reaches the output"
    bad = np.argwhere(expect != got)
    assert len(bad) == 0, f"{len(bad)} (pixel, logit) pairs differ, e.g. {bad[:4].tolist()}"
    src_p, dst_p = g.partition_of(g.src), g.partition_of(g.dst)
    assert (src_p < dst_p).all()


def test_convnext_blocks_match_oracle() -> None:
    """ConvNeXt's own blocks (torchvision's CNBlock: 7×7 depthwise conv, permute, LayerNorm over
    channels, Linear per position, layer scale; LayerNorm2d stem and downsampling), two stages
    narrow enough to check by perturbation; convnext_tiny itself (73 M edges) takes minutes to
    encode (bench/encode.py --torchvision)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    torch.manual_seed(0)
    model = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=10).eval()
    positive(model, 0.7, seed=0)
    shape = (3, 32, 32)
    g = encode_model(model, input_shape=shape)
    assert isinstance(g, Graph)
    n_in = math.prod(shape)
    pixels = np.random.default_rng(0).choice(n_in, 10, replace=False)
    pixels[:2] = [0, n_in - 1]
    expect = brute_reach(model, shape, [""], pixels, None, big=1.0)[""]
    got = mge_reach(g, pixels)[:, g.offsets[-2]:g.offsets[-1]]
    assert expect.any() and np.array_equal(expect, got)
