"""Every op the tracer models, against the brute-force perturbation oracle; every op it must refuse.

The oracle (``tests/test_encode_bruteforce.py``) perturbs one input pixel at a time in a net with
positive masked weights: unit ``u`` depends on pixel ``p`` iff its value changes. Ops such as
``clamp``, ``maximum`` and ``where`` hide an increase of one operand, so here a pixel is perturbed
both up and down and a unit depends on it if either changes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nets import Fn
from test_encode_bruteforce import brute_reach, mge_reach, part_index, positive_masked
from torch import nn

from mgedb.encode import encode_model
from mgedb.errors import MgedbError, ModelRunError, UnsupportedLayer
from mgedb.graph import Graph


def check_both_ways(model: nn.Module, shape: tuple[int, int, int],
                    taps: dict[str, str] | None = None) -> Graph:
    """MGE reachability == pixels whose ±1e3 perturbation changes a unit (output + taps)."""
    g = encode_model(model, input_shape=shape)
    assert isinstance(g, Graph)
    taps = dict(taps or {})
    sel = np.arange(math.prod(shape))
    up = brute_reach(model, shape, ["", *taps.values()], sel, 0.5, big=1e3)
    down = brute_reach(model, shape, ["", *taps.values()], sel, 0.5, big=-1e3)
    reach = mge_reach(g, sel)
    targets = {len(g.partitions) - 1: ""} | {part_index(g, p): m for p, m in taps.items()}
    for part, module in targets.items():
        expect = up[module] | down[module]
        got = reach[:, g.offsets[part]:g.offsets[part + 1]]
        assert expect.any(), f"degenerate check: nothing reaches {module or 'the output'}"
        bad = np.argwhere(expect != got)
        assert len(bad) == 0, (
            f"partition {g.partitions[part].name}: {len(bad)} (pixel, unit) pairs differ "
            f"(oracle {int(expect.sum())}, graph {int(got.sum())}), e.g. {bad[:4].tolist()}"
        )
    return g


def conv(cin: int, cout: int, k: int = 3, **kw: Any) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=kw.pop("padding", k // 2), **kw)


def _assign(s: Fn, x: torch.Tensor) -> torch.Tensor:
    """A hand-written concat: slice assignment into a fresh buffer."""
    buf = x.new_zeros(x.shape[0], 5, 5, 5)
    buf[:, :3] = F.relu(s.a(x))
    buf[:, 3:] = s.b(x)
    return s.c(buf)


def _overwrite(s: Fn, x: torch.Tensor) -> torch.Tensor:
    """Part of a traced value overwritten: the old elements there no longer count."""
    y = F.relu(s.a(x))
    y[:, :2] = s.b(x)
    return s.c(y)


def _copy(s: Fn, x: torch.Tensor) -> torch.Tensor:
    buf = x.new_zeros(x.shape[0], 3, 5, 5)
    buf.copy_(s.a(x))
    return s.c(buf)


def _buffer_add(s: Fn, x: torch.Tensor) -> torch.Tensor:
    buf = x.new_zeros(x.shape[0], 3, 1, 1)
    buf.add_(s.a(x).mean((2, 3), keepdim=True))  # broadcasting into a constant target
    return s.c(s.b(x) * buf)


def _chunk_swap(s: Fn, x: torch.Tensor) -> torch.Tensor:
    a, b = s.a(x).chunk(2, 1)
    return s.c(torch.cat([b, a], 1))


def _shuffle(s: Fn, x: torch.Tensor) -> torch.Tensor:
    """ShuffleNet's channel shuffle: a 5-d view, a transpose, a flatten."""
    y = s.a(x)
    return s.c(y.view(-1, 2, 2, 5, 5).transpose(1, 2).reshape(-1, 4, 5, 5))


def _layer_norm_2d(s: Fn, x: torch.Tensor) -> torch.Tensor:
    """ConvNeXt's LayerNorm2d: permute, LayerNorm over channels, permute back."""
    return s.c(s.ln(s.a(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


def _se(s: Fn, x: torch.Tensor) -> torch.Tensor:
    """A squeeze-excitation gate: the product of a map and its per-channel gate."""
    y = s.a(x)
    return s.c(y * torch.sigmoid(s.g(F.adaptive_avg_pool2d(y, 1))))


M = dict[str, nn.Module]
COVERED: dict[str, tuple[Callable[..., torch.Tensor], Callable[[], M]]] = {
    "cat-dim1": (lambda s, x: s.c(torch.cat([F.relu(s.a(x)), s.b(x)], 1)),
                 lambda: {"a": conv(2, 3), "b": conv(2, 2, 1), "c": conv(5, 2)}),
    "cat-dim2": (lambda s, x: s.c(torch.cat([s.a(x), s.b(x)], 2)),
                 lambda: {"a": conv(2, 3), "b": conv(2, 3, 1), "c": conv(3, 2)}),
    "cat-with-constant": (lambda s, x: s.c(torch.cat([s.a(x), torch.ones_like(s.a(x))], 1)),
                          lambda: {"a": conv(2, 3), "c": conv(6, 2)}),
    "stack-as-concat": (lambda s, x: s.c(torch.stack([s.a(x), s.b(x)], 1).flatten(1, 2)),
                        lambda: {"a": conv(2, 3), "b": conv(2, 3, 1), "c": conv(6, 2)}),
    "se-gate": (_se, lambda: {"a": conv(2, 3), "g": conv(3, 3, 1), "c": conv(3, 2)}),
    "product": (lambda s, x: s.c(s.a(x) * s.b(x)),
                lambda: {"a": conv(2, 3), "b": conv(2, 3, 1), "c": conv(3, 2)}),
    "difference": (lambda s, x: s.c(s.a(x) - s.b(x)),
                   lambda: {"a": conv(2, 3), "b": conv(2, 3, 1), "c": conv(3, 2)}),
    "clamp-traced-bound": (lambda s, x: s.c(torch.clamp(s.a(x), max=s.b(x))),
                           lambda: {"a": conv(2, 3), "b": conv(2, 3, 1), "c": conv(3, 2)}),
    "where": (lambda s, x: s.c(torch.where(s.a(x) > 1, s.a(x), s.b(x))),
              lambda: {"a": conv(2, 3), "b": conv(2, 3, 1), "c": conv(3, 2)}),
    "maximum": (lambda s, x: s.c(torch.maximum(s.a(x), s.b(x))),
                lambda: {"a": conv(2, 3), "b": conv(2, 3, 1), "c": conv(3, 2)}),
    "broadcast-add": (lambda s, x: s.c(s.a(x) + x.mean((2, 3), keepdim=True)[:, :1]),
                      lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "buffer-add_": (_buffer_add, lambda: {"a": conv(2, 3), "b": conv(2, 3), "c": conv(3, 2)}),
    "permute-layernorm": (_layer_norm_2d,
                          lambda: {"a": conv(2, 3), "ln": nn.LayerNorm(3), "c": conv(3, 2)}),
    "transpose": (lambda s, x: s.c(s.a(x).transpose(2, 3)),
                  lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "softmax-channels": (lambda s, x: s.c(F.softmax(s.a(x), 1)),
                         lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "group-norm": (lambda s, x: s.c(s.gn(s.a(x))),
                   lambda: {"a": conv(2, 4), "gn": nn.GroupNorm(2, 4), "c": conv(4, 2)}),
    "mean-one-dim": (lambda s, x: s.fc(s.a(x).mean(3).flatten(1)),
                     lambda: {"a": conv(2, 3), "fc": nn.Linear(15, 2)}),
    "padding-same": (lambda s, x: s.c(s.a(x)),
                     lambda: {"a": nn.Conv2d(2, 3, 4, padding="same"),
                              "c": nn.Conv2d(3, 2, (3, 2), padding="same", dilation=2)}),
    "reflect-replicate": (lambda s, x: s.c(s.a(x)),
                          lambda: {"a": nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
                                   "c": nn.Conv2d(3, 2, 3, padding=2,
                                                  padding_mode="replicate")}),
    "pad-circular": (lambda s, x: s.c(F.pad(s.a(x), (1, 2, 0, 1), mode="circular")),
                     lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "pad-constant": (lambda s, x: s.c(F.pad(s.a(x), (1, 2, 0, 1), value=3.0)),
                     lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "nearest-x2": (lambda s, x: s.c(F.interpolate(s.a(x), scale_factor=2)),
                   lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "bilinear-size": (lambda s, x: s.c(F.interpolate(s.a(x), size=(7, 9), mode="bilinear")),
                      lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "upsample-align-corners": (
        lambda s, x: s.c(s.up(s.a(x))),
        lambda: {"a": conv(2, 3), "c": conv(3, 2),
                 "up": nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True)}),
    "chunk-swap": (_chunk_swap, lambda: {"a": conv(2, 4), "c": conv(4, 2)}),
    "channel-shuffle": (_shuffle, lambda: {"a": conv(2, 4), "c": conv(4, 2)}),
    "slicing": (lambda s, x: s.c(s.a(x)[:, 1:, ::2, 1:]),
                lambda: {"a": conv(2, 4), "c": conv(3, 2)}),
    "slice-assign-concat": (_assign, lambda: {"a": conv(2, 3), "b": conv(2, 2, 1),
                                              "c": conv(5, 2)}),
    "slice-assign-overwrite": (_overwrite, lambda: {"a": conv(2, 4), "b": conv(2, 2, 1),
                                                    "c": conv(4, 2)}),
    "copy_": (_copy, lambda: {"a": conv(2, 3), "c": conv(3, 2)}),
    "linear-last-dim": (lambda s, x: s.c(s.fc(s.a(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)),
                        lambda: {"a": conv(2, 4), "fc": nn.Linear(4, 3), "c": conv(3, 2)}),
    "module-twice": (lambda s, x: s.c(s.a(F.relu(s.a(x)))),
                     lambda: {"a": nn.Conv2d(2, 2, 3, padding=1), "c": conv(2, 2)}),
}


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("case", list(COVERED))
def test_covered_op_matches_oracle(case: str) -> None:
    fn, mods = COVERED[case]
    net = positive_masked(Fn(fn, **mods()), seed=len(case), density=0.6)
    taps = {"a": "a"} if case not in ("module-twice",) else None
    g = check_both_ways(net, (2, 5, 5), taps)
    assert g.n_edges > 0


def test_slice_assignment_keeps_every_layer() -> None:
    """The audit's silent failure: the conv after a hand-written concat vanished."""
    net = positive_masked(Fn(_assign, a=conv(2, 3), b=conv(2, 2, 1), c=conv(5, 2)), seed=3)
    g = encode_model(net, input_shape=(2, 5, 5))
    assert isinstance(g, Graph)
    assert [p.name for p in g.partitions] == ["input", "a", "b", "c"]
    out_parts = set(g.partition_of(g.src).tolist())
    assert {1, 2} <= out_parts  # a and b feed c: no dead ends


def test_clamp_bound_partition_has_out_edges() -> None:
    net = positive_masked(Fn(lambda s, x: s.c(torch.clamp(s.a(x), max=s.b(x))), a=conv(2, 3),
                             b=conv(2, 3, 1), c=conv(3, 2)), seed=1)
    g = encode_model(net, input_shape=(2, 5, 5))
    assert isinstance(g, Graph)
    b = part_index(g, "b")
    assert (g.partition_of(g.src) == b).sum() > 0


def test_reflect_padding_wires_the_mirrored_pixels() -> None:
    """Output (0, 0) of a 3×3 reflect-padded conv reads rows/cols 1, 0, 1 of the input."""
    c = nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect", bias=False)
    with torch.no_grad():
        c.weight.zero_()
        c.weight[0, 0, 0, 0] = 2.0  # the tap above-left: pixel (-1, -1) → mirrored (1, 1)
    g = encode_model(Fn(lambda s, x: s.c(x), c=c), input_shape=(1, 4, 4))
    assert isinstance(g, Graph)
    pairs = dict(zip(zip(g.src.tolist(), g.dst.tolist(), strict=True), g.weight.tolist(),
                     strict=True))
    assert pairs[(1 * 4 + 1, 16 + 0)] == 2.0
    assert len(pairs) == 16  # one edge per output pixel


def test_nearest_upsampling_edges_are_the_source_pixel() -> None:
    c = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        c.weight.fill_(1.5)
    g = encode_model(Fn(lambda s, x: s.c(F.interpolate(x, scale_factor=2)), c=c),
                     input_shape=(1, 2, 3))
    assert isinstance(g, Graph)
    expect = {(r // 2 * 3 + q // 2, 6 + r * 6 + q) for r in range(4) for q in range(6)}
    assert set(zip(g.src.tolist(), g.dst.tolist(), strict=True)) == expect


# ---------------------------------------------------------------------------------------------
# a property: random compositions of supported ops agree with the oracle
# ---------------------------------------------------------------------------------------------
BLOCKS = ("conv", "pool", "cat", "gate", "residual", "layernorm", "reflect", "upsample", "chunk",
          "assign", "clamp", "transpose")


class Composed(nn.Module):
    """A chain of blocks on a (C, H, W) value, then flatten + Linear."""

    def __init__(self, blocks: list[tuple[str, int]], cin: int, hw: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.mods = nn.ModuleDict()
        c, h = cin, hw
        for i, (kind, width) in enumerate(blocks):
            m, c, h = self._make(kind, width, c, h)
            self.mods[str(i)] = m
        self.fc = nn.Linear(c * h * h, 3)

    @staticmethod
    def _make(kind: str, width: int, c: int, h: int) -> tuple[nn.Module, int, int]:
        if kind == "pool":
            return nn.Identity(), c, h // 2
        if kind == "upsample":
            return nn.Identity(), c, 2 * h
        if kind == "cat":
            return nn.ModuleList([conv(c, width), conv(c, 2, 1)]), width + 2, h
        if kind in ("gate", "clamp"):
            return nn.ModuleList([conv(c, width), conv(c if kind == "clamp" else width, width,
                                                       1)]), width, h
        if kind == "residual":
            return conv(c, c), c, h
        if kind == "layernorm":
            return nn.ModuleList([conv(c, max(width, 3)), nn.LayerNorm(max(width, 3))]), \
                max(width, 3), h
        if kind == "reflect":
            return nn.Conv2d(c, width, 3, padding=1, padding_mode="reflect"), width, h
        if kind == "chunk":
            return conv(c, 2 * width), 2 * width, h
        if kind == "assign":
            return nn.ModuleList([conv(c, width), conv(c, 2)]), width + 2, h
        return conv(c, width), width, h  # conv, transpose

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (kind, _) in enumerate(self.blocks):
            m: Any = self.mods[str(i)]
            if kind == "pool":
                x = F.max_pool2d(x, 2) if i % 2 else F.avg_pool2d(x, 2)
            elif kind == "upsample":
                x = F.interpolate(x, scale_factor=2, mode="nearest" if i % 2 else "bilinear")
            elif kind == "cat":
                x = torch.cat([m[0](x), m[1](x)], 1)
            elif kind == "gate":
                y = m[0](x)
                x = y * m[1](y.mean((2, 3), keepdim=True))
            elif kind == "clamp":
                x = torch.clamp(m[0](x), max=m[1](x))
            elif kind == "residual":
                x = x + m(x)
            elif kind == "layernorm":
                x = m[1](m[0](x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            elif kind == "chunk":
                a, b = m(x).chunk(2, 1)
                x = torch.cat([b, a], 1)
            elif kind == "assign":
                a, b = m[0](x), m[1](x)
                buf = x.new_zeros(x.shape[0], a.shape[1] + 2, *a.shape[2:])
                buf[:, 2:] = a
                buf[:, :2] = b
                x = buf
            elif kind == "transpose":
                x = m(x).transpose(2, 3)
            else:
                x = m(x)
        return self.fc(x.flatten(1))


@st.composite
def compositions(draw: st.DrawFn) -> tuple[list[tuple[str, int]], int]:
    hw = draw(st.sampled_from([4, 6]))
    blocks, h = [], hw
    for _ in range(draw(st.integers(2, 4))):
        kind = draw(st.sampled_from(BLOCKS))
        if (kind == "pool" and h < 4) or (kind == "upsample" and h > 6):
            kind = "conv"
        h = h // 2 if kind == "pool" else 2 * h if kind == "upsample" else h
        blocks.append((kind, draw(st.integers(2, 3))))
    return blocks, hw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=compositions(), seed=st.integers(0, 2**16))
def test_random_compositions_match_oracle(spec: tuple[list[tuple[str, int]], int],
                                          seed: int) -> None:
    blocks, hw = spec
    net = positive_masked(Composed(blocks, 2, hw), seed=seed, density=0.7)
    check_both_ways(net, (2, hw, hw))


# ---------------------------------------------------------------------------------------------
# refusals: UnsupportedLayer naming module and op, never a silently wrong graph
# ---------------------------------------------------------------------------------------------
class Inner(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn
        self.a = nn.Conv2d(2, 2, 1)
        self.b = nn.Conv2d(2, 2, 1)
        self.c = nn.Conv2d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


def _view_write(s: Inner, x: torch.Tensor) -> torch.Tensor:
    y = s.a(x)
    v = y.view(y.shape[0], -1)  # a view of y stays alive …
    y[:, :1] = s.b(x)[:, :1]  # … so writing into y would change it too
    return s.c(y) + v.view_as(y)


def _write_into_slice(s: Inner, x: torch.Tensor) -> torch.Tensor:
    buf = x.new_zeros(x.shape[0], 2, 5, 5)
    buf[:, :1].copy_(s.a(x)[:, :1])  # copy_ into a slice: the base changes behind our back
    return s.c(buf)


def _item(s: Inner, x: torch.Tensor) -> torch.Tensor:
    return s.c(s.a(x) * float(s.b(x).flatten(1)[:, :1].item()))


def _branch(s: Inner, x: torch.Tensor) -> torch.Tensor:
    y = s.a(x)
    return s.c(y if bool(y[:, :1, :1, :1] > 0) else -y)


def _tolist(s: Inner, x: torch.Tensor) -> torch.Tensor:
    y = torch.tensor(s.a(x).tolist())
    return s.c(y + s.b(x))


def _unpool(s: Inner, x: torch.Tensor) -> torch.Tensor:
    y, idx = F.max_pool2d(s.a(x), 2, return_indices=True)
    return s.c(F.max_unpool2d(y, idx, 2, output_size=x.shape[2:]))


def _gather_indices(s: Inner, x: torch.Tensor) -> torch.Tensor:
    y, idx = F.max_pool2d(s.a(x), 1, return_indices=True)
    return s.c(torch.gather(y.flatten(2), 2, idx.flatten(2)).view_as(y))


def _scatter_add(s: Inner, x: torch.Tensor) -> torch.Tensor:
    y = s.a(x)
    idx = torch.zeros_like(y, dtype=torch.long)
    return s.c(torch.zeros_like(y).scatter_add_(1, idx, y))


def _argmax_index(s: Inner, x: torch.Tensor) -> torch.Tensor:
    y = s.a(x)
    return s.c(y[:, :, y.argmax(3)[0, 0]])


def _output_mix(s: Inner, x: torch.Tensor) -> torch.Tensor:
    return s.c(x) * s.a(x).mean((2, 3), keepdim=True)


REFUSED = {
    "write-with-live-view": (_view_write, "__setitem__", "shares memory"),
    "copy-into-slice": (_write_into_slice, "copy_", "shares memory"),
    "item": (_item, "item", "leaves torch"),
    "data-dependent-branch": (_branch, "__bool__", "leaves torch"),
    "tolist": (_tolist, "tolist", "leaves torch"),
    "unpool-indices": (_unpool, "max_unpool2d", "pooling indices"),
    "gather-by-indices": (_gather_indices, "flatten", "pooling indices"),
    "scatter_add_": (_scatter_add, "scatter_add_", ""),
    "index-from-argmax": (_argmax_index, "argmax", ""),
    "add-alpha": (lambda s, x: s.c(torch.add(s.a(x), s.b(x), alpha=2)), "add", "alpha"),
    "max-with-dim": (lambda s, x: s.c(torch.max(s.a(x), dim=1, keepdim=True)[0]), "max",
                     "several tensors"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_op_names_module_and_op(case: str) -> None:
    fn, op, why = REFUSED[case]
    net = Fn(lambda s, x: s.body(x), body=nn.Sequential(nn.Identity(), Inner(fn)))
    with pytest.raises(UnsupportedLayer) as e:
        encode_model(net, input_shape=(2, 5, 5))
    assert e.value.module_path == "body.1"
    assert e.value.op == op
    msg = str(e.value)
    assert why in msg and "'body.1'" in msg and "\n" not in msg


def test_output_mixing_around_the_last_layer_is_refused() -> None:
    net = Fn(lambda s, x: _output_mix(s, x), a=nn.Conv2d(2, 2, 1), c=nn.Conv2d(2, 2, 1))
    with pytest.raises(UnsupportedLayer, match="other than those of the last layer 'a'"):
        encode_model(net, input_shape=(2, 5, 5))


def test_model_that_cannot_run_names_model_shape_and_layer() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5))
    with pytest.raises(ModelRunError) as e:
        encode_model(net, input_shape=(3, 8, 8))
    msg = str(e.value)
    assert "Sequential" in msg and "3,8,8" in msg and "'2'" in msg and "\n" not in msg


# ---------------------------------------------------------------------------------------------
# masks: keys normalised, shapes checked, every call masked
# ---------------------------------------------------------------------------------------------
def _dense() -> Fn:
    torch.manual_seed(0)
    return Fn(lambda s, x: s.fc(F.relu(s.conv(x)).flatten(1)), conv=nn.Conv2d(3, 4, 3),
              fc=nn.Linear(4 * 3 * 3, 2))


@pytest.mark.parametrize("key", ["conv", "conv.weight", "conv.weight_mask", "module.conv",
                                 "module.conv.weight_mask", "_orig_mod.conv.weight"])
def test_mask_keys_are_normalised(key: str) -> None:
    mask = torch.rand(4, 3, 3, 3, generator=torch.Generator().manual_seed(1)) < 0.3
    ref = encode_model(_dense(), input_shape=(3, 5, 5), masks={"conv": mask})
    g = encode_model(_dense(), input_shape=(3, 5, 5), masks={key: mask})
    assert isinstance(g, Graph) and isinstance(ref, Graph)
    assert g.n_edges == ref.n_edges < encode_model(_dense(), input_shape=(3, 5, 5)).n_edges
    assert g.meta["n_weights_nonzero"] == int(mask.sum()) + 72


@pytest.mark.parametrize(("masks", "match"), [
    ({"conv2": torch.ones(4, 3, 3, 3)}, "matches no Conv2d/Linear layer"),
    ({"conv": torch.ones(4, 3, 1, 1)}, r"shape \[4, 3, 1, 1\].*\[4, 3, 3, 3\]"),
    ({"conv": torch.full((4, 3, 3, 3), 0.5)}, "other than 0 and 1"),
    ({"conv": torch.randn(4, 3, 3, 3)}, "other than 0 and 1"),
    ({"conv": torch.ones(4, 3, 3, 3) * 2 - 1 - 2 * (torch.rand(4, 3, 3, 3) < 0.5)},
     "other than 0 and 1"),
    ({"conv": torch.ones(4, 3, 3, 3), "conv.weight": torch.ones(4, 3, 3, 3)}, "both name"),
])
def test_bad_masks_are_errors(masks: dict[str, torch.Tensor], match: str) -> None:
    with pytest.raises(MgedbError, match=match):
        encode_model(_dense(), input_shape=(3, 5, 5), masks=masks)


def test_mask_applies_to_every_call_of_a_module() -> None:
    b = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    net = Fn(lambda s, x: s.b(F.relu(s.b(s.a(x)))), a=nn.Conv2d(2, 4, 1), b=b)
    mask = torch.zeros(4, 4, 3, 3, dtype=torch.bool)
    mask[0, 0, 1, 1] = True
    g = encode_model(net, input_shape=(2, 4, 4), masks={"b": mask})
    assert isinstance(g, Graph)
    nnz = {s.name: s.nnz for s in g.layers}
    assert nnz["b"] == nnz["b#1"] == 1


def test_integer_weights_are_an_error() -> None:
    class IntConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(2, 2, 1, 1, dtype=torch.int64),
                                  requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.conv2d(x, self.w)

    with pytest.raises(MgedbError) as e:
        encode_model(IntConv(), input_shape=(2, 3, 3))
    assert "\n" not in str(e.value)
