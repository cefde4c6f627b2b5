"""The repeated-pair merge: blocks merged while they are generated (never materialising the
repeats) give the same graph, bit for bit and in the same edge order, as generating every edge
and merging afterwards; hand-computed merged weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from nets import random_masked
from torch import nn

from mgedb.encode import encode_model
from mgedb.encode.mge import _Builder
from mgedb.encode.trace import trace_model
from mgedb.graph import EdgeKind, Graph


class _Recording(_Builder):
    """Records which blocks merge while generated (``pre``) and which after (``raw``)."""

    def assemble(self) -> Graph:
        _, self.raw, self.pre = self._classify()
        return super().assemble()


def _both(model: nn.Module, shape: tuple[int, int, int]) -> tuple[Graph, Graph, _Recording]:
    trace, weights = trace_model(model.eval(), shape)
    fast = _Recording(trace, weights, False)
    return fast.run(), _Builder(trace, weights, False, premerge=False).run(), fast


def _assert_identical(a: Graph, b: Graph) -> None:
    for f in ("src", "dst", "weight", "kind"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype, f
        assert np.array_equal(x, y), f
    assert a.partitions == b.partitions
    assert a.layers == b.layers


class VggLike(nn.Module):
    """VGG's tail: max-pooling down to 2×2, AdaptiveAvgPool2d(3) replicating each pixel, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.fc1 = nn.Linear(6 * 9, 40)
        self.fc2 = nn.Linear(40, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.pool(self.features(x)).flatten(1))))


class TwoHeads(nn.Module):
    """Two Linear layers on the same replicated input, added: pairs repeat across blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(4)  # 3×3 → 4×4: windows overlap
        self.a = nn.Linear(64, 12)
        self.b = nn.Linear(64, 12)
        self.c = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.conv(x)).flatten(1)
        return self.c(self.a(h) + self.b(h))


class PerPosition(nn.Module):
    """Linear over the channel dim of a replicated map (once per position)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 2)
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.fc = nn.Linear(6, 4)
        self.out = nn.Linear(36, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.pool(self.conv(x)).permute(0, 2, 3, 1))
        return self.out(h.flatten(1))


class Stem(nn.Module):
    """ResNet's stem: an overlapping max-pool feeding a conv and an identity skip (both merge
    while generated), then a strided conv after an overlapping average pool."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv1b = nn.Conv2d(4, 4, 3, padding=1)
        self.avg = nn.AvgPool2d(3, 1, 1)
        self.conv2 = nn.Conv2d(4, 5, 2, stride=2)
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(torch.relu(self.conv0(x)))
        h = torch.relu(self.conv1b(torch.relu(self.conv1(h))) + h)
        return self.fc(self.conv2(self.avg(h)).mean((2, 3)))


@pytest.mark.parametrize("net,shape,n_pre,n_raw", [
    (VggLike, (3, 8, 8), 1, 0), (TwoHeads, (3, 7, 7), 0, 2), (PerPosition, (2, 3, 3), 1, 0),
    (Stem, (3, 9, 9), 3, 0),
], ids=["vgg-like", "two-heads", "per-position", "stem"])
@pytest.mark.parametrize("keep", [0.3, 1.0])
def test_merge_while_generating_is_bit_identical(net: type[nn.Module],
                                                 shape: tuple[int, int, int], n_pre: int,
                                                 n_raw: int, keep: float) -> None:
    torch.manual_seed(0)
    fast, slow, built = _both(random_masked(net(), keep), shape)
    assert (len(built.pre), len(built.raw)) == (n_pre, n_raw)
    _assert_identical(fast, slow)
    pairs = fast.src.astype(np.int64) * fast.n_nodes + fast.dst
    assert len(np.unique(pairs)) == len(pairs)  # no (src, dst) pair left twice


def test_replicated_pixel_merges_to_the_sum_of_its_weights() -> None:
    """A 1×1 map replicated to 2×2 by AdaptiveAvgPool2d, then Linear(4, 2): each neuron gets one
    edge from the pixel, weighted by the sum of |w| over the four copies (float64, then float32)."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(4, 2, bias=False))
    w = np.array([[0.5, -0.25, 0.0, 1.0], [0.0, 0.0, 0.0, 3.0]], np.float32)
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        model[3].weight.copy_(torch.from_numpy(w))
    g = encode_model(model, input_shape=(1, 1, 1))
    assert isinstance(g, Graph)
    lin = g.kind == EdgeKind.LINEAR
    assert g.src[lin].tolist() == [1, 1] and g.dst[lin].tolist() == [2, 3]
    assert g.weight[lin].tolist() == [1.75, 3.0]
    assert g.src[~lin].tolist() == [0] and g.weight[~lin].tolist() == [2.0]


#: name: (input, run by default)
TV = {"mobilenet_v3_small": ((3, 32, 32), True), "resnet18": ((3, 32, 32), True),
      "squeezenet1_0": ((3, 32, 32), False), "alexnet": ((3, 64, 64), False)}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[] if fast else [pytest.mark.slow]) for n, (_, fast) in TV.items()])
def test_torchvision_merge_is_bit_identical(name: str) -> None:
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(tv.models, name)(weights=None, num_classes=10)
    fast, slow, _ = _both(random_masked(model, 0.05 if name == "alexnet" else 0.1), TV[name][0])
    _assert_identical(fast, slow)
