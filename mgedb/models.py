"""The model zoo: CIFAR-size (3×32×32) networks with the reference implementation's modules.

State-dict keys equal those of the reference models (eliacunegatti/mge-snn), so checkpoints written
by it load unchanged:

* ``conv6`` — CONV-6: six 3×3 convs (64, 64, 128, 128, 256, 256) with BN/ReLU and three 2×2 max
  pools, then 4096→256→256→classes with BatchNorm1d (keys ``convs1.*``, ``linear.*``).
* ``resnet20`` / ``resnet32`` — He et al.'s CIFAR ResNets in the akamaster code base, option-B
  (1×1 conv + BN) projection shortcuts, functional ``F.avg_pool2d`` global pool.
* ``wrn28_2`` — WRN-28-2, pre-activation blocks with ``convShortcut`` where channels change.
* ``mobilenet_v2`` — the widely used CIFAR MobileNetV2 (kuangliu/pytorch-cifar): stem 3×3 conv
  with stride 1 and 32 channels, the ImageNet block table with the first two strides set to 1
  (``(1,16,1,1), (6,24,2,1), (6,32,3,2), (6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1)``),
  inverted residual blocks (1×1 expand, 3×3 depthwise, 1×1 project), an identity skip on stride-1
  blocks and a 1×1 conv + BN projection skip on stride-1 blocks whose width changes, 1×1 conv to
  1280, 4×4 average pool, linear classifier. The paper's MobileNetV2 code was not published; this
  variant's MGE has 1 675 786 nodes (``mge``), i.e. exactly the published 1 676 182 once the
  reference's 396 input padding nodes are added, so it has the same layer structure as the
  network in the published table.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mgedb.errors import UnknownModel

__all__ = ["MAX_CLASSES", "MODELS", "REFERENCE_NAMES", "build_model", "canonical_name",
           "check_classes", "init_weights", "seeded_model"]


class Conv6(nn.Module):
    """CONV-6 (Frankle & Carbin) as in the reference's ``models/models.py``."""

    def __init__(self, channels: int = 3, classes: int = 10) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.convs1 = nn.Sequential(
            *block(channels, 64), *block(64, 64), nn.MaxPool2d((2, 2)),
            *block(64, 128), *block(128, 128), nn.MaxPool2d((2, 2)),
            *block(128, 256), *block(256, 256), nn.MaxPool2d((2, 2)),
        )
        self.flatten = nn.Flatten()
        self.linear = nn.Sequential(
            nn.Linear(4096, 256), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Linear(256, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(self.convs1(x)))


class ResBlock(nn.Module):
    """CIFAR ResNet basic block with an option-B projection shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    """akamaster CIFAR ResNet (depth = 6n + 2)."""

    def __init__(self, blocks: int, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, blocks, 1)
        self.layer2 = self._stage(32, blocks, 2)
        self.layer3 = self._stage(64, blocks, 2)
        self.linear = nn.Linear(64, classes)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(ResBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


class WideBlock(nn.Module):
    """Pre-activation wide-ResNet block (xternalz/WideResNet-pytorch)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = (
            None if self.equal_in_out
            else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.convShortcut is None:
            out = self.relu1(self.bn1(x))
            out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
            return torch.add(x, out)
        x = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(x))))
        return torch.add(self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
            for i in range(n)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-k for 32×32 inputs."""

    def __init__(self, depth: int = 28, widen: int = 2, channels: int = 3,
                 classes: int = 10) -> None:
        super().__init__()
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], classes)
        self.n_channels = widths[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        return self.fc(out.view(-1, self.n_channels))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand, 3×3 depthwise, 1×1 project."""

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 1 and in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, 1, 0, bias=False), nn.BatchNorm2d(out_planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    """CIFAR MobileNetV2 (see the module docstring for the exact variant)."""

    cfg = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, channels: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        layers: list[nn.Module] = []
        in_planes = 32
        for expansion, out_planes, n, stride in self.cfg:
            for s in [stride] + [1] * (n - 1):
                layers.append(InvertedResidual(in_planes, out_planes, expansion, s))
                in_planes = out_planes
        self.layers = nn.Sequential(*layers)
        self.conv2 = nn.Conv2d(320, 1280, 1, 1, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


MODELS: dict[str, Callable[[int], nn.Module]] = {
    "conv6": lambda classes: Conv6(3, classes),
    "resnet20": lambda classes: ResNet(3, 3, classes),
    "resnet32": lambda classes: ResNet(5, 3, classes),
    "wrn28_2": lambda classes: WideResNet(28, 2, 3, classes),
    "mobilenet_v2": lambda classes: MobileNetV2(3, classes),
}

#: The names the reference and the published tables use for each zoo model.
REFERENCE_NAMES = {
    "conv6": "CONV-6",
    "resnet20": "Resnet-20",
    "resnet32": "Resnet-32",
    "wrn28_2": "Wide-Resnet-28-2",
    "mobilenet_v2": "MobileNetV2",
}


def canonical_name(name: str) -> str:
    """The zoo key (``resnet20`` …) for any accepted spelling (``Resnet-20``, ``resnet-20``)."""
    key = name.lower().replace("-", "_")
    aliases = {v.lower().replace("-", "_"): k for k, v in REFERENCE_NAMES.items()}
    key = aliases.get(key, key)
    if key not in MODELS:
        raise UnknownModel(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return key


def seeded_model(name: str, classes: int, seed: int) -> tuple[nn.Module, torch.Generator]:
    """A zoo model initialised under ``seed`` and a generator continuing that random stream.

    The global RNG is left as it was. The stream is the one the reference uses (seed, build the
    model, initialise it, then prune), so the reference ER variant reproduces its masks exactly.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_model(name, classes)
        gen = torch.Generator()
        gen.set_state(torch.get_rng_state())
    return net, gen


#: The largest ``--classes`` a zoo model is built for (ImageNet-21k has 21,841 classes); beyond
#: it the classifier and its MGE output partition would be allocated before anything else fails.
MAX_CLASSES = 100_000


def check_classes(classes: int) -> int:
    """``classes`` when it is a sane class count (1 … :data:`MAX_CLASSES`), else one line."""
    if not 1 <= classes <= MAX_CLASSES:
        raise UnknownModel(f"--classes {classes}: give the number of classes of the dataset, "
                           f"from 1 to {MAX_CLASSES:,}")
    return classes


def build_model(name: str, classes: int = 10) -> nn.Module:
    """A fresh zoo model, initialised like the reference (Kaiming-normal weights, zero biases)."""
    key = canonical_name(name)
    check_classes(classes)
    model = MODELS[key](classes)
    init_weights(model)
    return model


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan-in, ReLU gain) conv/linear weights and zero biases, as the reference."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
