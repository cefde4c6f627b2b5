"""Correct-flavour MGE: Hypothesis properties of one Conv2d, node layout, metadata, unsupported ops,
and exact counts on the ResNet-20 fixture derived from its weights with direct formulas."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from nets import Fn, random_masked
from torch import nn

from mgedb.encode import encode_checkpoint, encode_model
from mgedb.errors import MgedbError, UnsupportedLayer
from mgedb.graph import EdgeKind, Graph, NodeKind
from mgedb.models import build_model


def mge(model: nn.Module, shape: tuple[int, int, int], **kw: object) -> Graph:
    g = encode_model(model, input_shape=shape, **kw)  # type: ignore[arg-type]
    assert isinstance(g, Graph)
    return g


def n_valid(n_out: int, n_in: int, stride: int, pad: int, dil: int, tap: int) -> int:
    """Output positions whose input coordinate ``stride·y − pad + tap·dil`` lies in the map."""
    return sum(0 <= y * stride - pad + tap * dil < n_in for y in range(n_out))


def assert_layout(g: Graph) -> None:
    """Ids are partition-major, then channel, row, col (the documented numbering)."""
    t = g.node_table()
    assert (t["id"] == np.arange(g.n_nodes)).all()
    for b, p in enumerate(g.partitions):
        sl = slice(int(g.offsets[b]), int(g.offsets[b + 1]))
        c, r, q = (a.ravel() for a in np.indices(p.shape))
        assert (t["partition"][sl] == b).all()
        assert (t["kind"][sl] == int(p.kind)).all()
        assert (t["channel"][sl] == c).all()
        assert (t["row"][sl] == r).all()
        assert (t["col"][sl] == q).all()


# ---------------------------------------------------------------------------------------------
# Hypothesis: a random single Conv2d
# ---------------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    groups = draw(st.integers(1, 3))
    c = {
        "groups": groups, "cin": groups * draw(st.integers(1, 3)),
        "cout": groups * draw(st.integers(1, 3)),
        "k": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "s": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "p": (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
        "d": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        "hw": (draw(st.integers(1, 7)), draw(st.integers(1, 7))),
        "density": draw(st.sampled_from([0.0, 0.3, 0.7, 1.0])), "seed": draw(st.integers(0, 2**16)),
    }
    return c


def _out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@settings(max_examples=60, deadline=None)
@given(case=conv_cases())
def test_random_conv_matches_direct_formula(case: dict) -> None:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (h, w) = (
        case["k"], case["s"], case["p"], case["d"], case["hw"])
    ho, wo = _out(h, kh, sh, ph, dh), _out(w, kw, sw, pw, dw)
    assume(ho >= 1 and wo >= 1)
    conv = nn.Conv2d(case["cin"], case["cout"], (kh, kw), (sh, sw), (ph, pw), (dh, dw),
                     groups=case["groups"], bias=False)
    gen = torch.Generator().manual_seed(case["seed"])
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen)
                          * (torch.rand(conv.weight.shape, generator=gen) < case["density"]))
    wt = conv.weight.detach().numpy()
    shape = (case["cin"], h, w)
    g = mge(Fn(lambda s, x: s.conv(x), conv=conv), shape)

    # count: every nonzero tap times the output positions where it reads a real pixel
    taps = np.argwhere(wt != 0)
    per_tap = [n_valid(ho, h, sh, ph, dh, a) * n_valid(wo, w, sw, pw, dw, b)
               for _, _, a, b in taps]
    assert g.n_edges == sum(per_tap)
    assert sorted(g.weight.tolist()) == sorted(
        float(np.float32(abs(wt[tuple(t)]))) for t, n in zip(taps, per_tap, strict=True)
        for _ in range(n))

    # every edge is a real (input pixel, output position) pair of a nonzero tap, once
    assert (g.src != g.dst).all()
    assert (g.partition_of(g.src) == 0).all() and (g.partition_of(g.dst) == 1).all()
    assert len(set(zip(g.src.tolist(), g.dst.tolist(), strict=True))) == g.n_edges
    t = g.node_table()
    c, r, q = t["channel"][g.src], t["row"][g.src], t["col"][g.src]
    o, y, x = t["channel"][g.dst], t["row"][g.dst], t["col"][g.dst]
    a_num, b_num = r - y * sh + ph, q - x * sw + pw
    assert (a_num % dh == 0).all() and (b_num % dw == 0).all()
    a, b = a_num // dh, b_num // dw
    assert ((a >= 0) & (a < kh) & (b >= 0) & (b < kw)).all()
    cin_g, cout_g = case["cin"] // case["groups"], case["cout"] // case["groups"]
    assert (c // cin_g == o // cout_g).all()  # same group
    assert (g.weight == np.abs(wt[o, c % cin_g, a, b])).all()
    assert (g.kind == EdgeKind.CONV).all()

    assert [p.shape for p in g.partitions] == [shape, (case["cout"], ho, wo)]
    assert_layout(g)
    assert g.meta["n_weights"] == wt.size
    assert g.meta["n_weights_nonzero"] == len(taps)
    assert g.meta["sparsity"] == pytest.approx(1 - len(taps) / wt.size)


class ThreeStage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.proj = nn.Conv2d(3, 4, 1, stride=2)
        self.fc = nn.Linear(4 * 2 * 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x))
        h = self.conv2(h) + self.proj(h)
        return self.fc(F.max_pool2d(h, 2, ceil_mode=True).flatten(1))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), density=st.sampled_from([0.2, 0.6]))
def test_random_multilayer_graph_invariants(seed: int, density: float) -> None:
    net = ThreeStage()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in (net.conv1, net.conv2, net.proj, net.fc):
            m.weight.mul_(torch.rand(m.weight.shape, generator=gen) < density)
    g = mge(net, (2, 5, 6))
    assert [p.kind for p in g.partitions] == [NodeKind.INPUT, NodeKind.CONV, NodeKind.CONV,
                                              NodeKind.NEURON]
    assert [p.shape for p in g.partitions] == [(2, 5, 6), (3, 5, 6), (4, 3, 3), (5, 1, 1)]
    assert_layout(g)
    assert (g.src != g.dst).all()
    assert (g.partition_of(g.src) < g.partition_of(g.dst)).all()
    assert len(set(zip(g.src.tolist(), g.dst.tolist(), strict=True))) == g.n_edges
    pairs = g.edge_counts_by_partition_pair()
    assert set(pairs) <= {(0, 1), (1, 2), (2, 3)}
    kinds = g.kind[(g.partition_of(g.src) == 1) & (g.partition_of(g.dst) == 2)]
    assert set(kinds.tolist()) <= {EdgeKind.CONV, EdgeKind.SHORTCUT}
    assert (g.weight > 0).all()


# ---------------------------------------------------------------------------------------------
# metadata, masks, layer specs
# ---------------------------------------------------------------------------------------------
def test_masks_argument_equals_zeroed_weights() -> None:
    torch.manual_seed(0)
    net = ThreeStage()
    masks = {n: torch.rand(m.weight.shape) < 0.5 for n, m in net.named_modules()
             if isinstance(m, nn.Conv2d | nn.Linear)}
    g_masked = mge(net, (2, 5, 6), masks=masks)
    with torch.no_grad():
        for n, m in net.named_modules():
            if n in masks:
                m.weight.mul_(masks[n])
    g_zeroed = mge(net, (2, 5, 6)).sorted()
    g_masked = g_masked.sorted()
    for a in ("src", "dst", "weight", "kind"):
        assert np.array_equal(getattr(g_masked, a), getattr(g_zeroed, a)), a
    assert g_masked.meta["n_weights_nonzero"] == sum(int(m.sum()) for m in masks.values())


def test_layer_specs_and_meta() -> None:
    net = ThreeStage()
    with torch.no_grad():
        net.conv2.weight[0].zero_()
    g = mge(net, (2, 5, 6), meta={"model": "three"})
    specs = {s.name: s for s in g.layers}
    assert list(specs) == ["conv1", "conv2", "proj", "fc"]  # execution order
    assert [(s.op, s.role, s.partition) for s in specs.values()] == [
        ("conv", "main", 1), ("conv", "main", 2), ("conv", "shortcut", 2), ("linear", "main", 3)]
    c2 = specs["conv2"]
    assert (c2.weight_shape, c2.in_shape, c2.out_shape) == ((4, 3, 3, 3), (3, 5, 6), (4, 3, 3))
    assert (c2.stride, c2.padding, c2.dilation, c2.groups) == ((2, 2), (1, 1), (1, 1), 1)
    assert c2.nnz == 81 and c2.numel == 108 and c2.density == pytest.approx(0.75)
    assert specs["fc"].in_shape == (16,)
    total = 54 + 108 + 12 + 80
    assert g.meta == {"model": "three", "input_shape": [2, 5, 6], "n_weights": total,
                      "n_weights_nonzero": total - 27, "sparsity": pytest.approx(27 / total)}
    assert g.encoding == "mge"


def test_encoding_is_deterministic_and_dtype() -> None:
    torch.manual_seed(1)
    net = ThreeStage()
    a, b = mge(net, (2, 5, 6)), mge(net, (2, 5, 6))
    for name in ("src", "dst", "weight", "kind"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.src.dtype == np.int32 and a.weight.dtype == np.float32 and a.kind.dtype == np.uint8


def test_unknown_encoding() -> None:
    with pytest.raises(MgedbError, match="unknown encoding 'unrolled'"):
        encode_model(ThreeStage(), encoding="unrolled", input_shape=(2, 5, 6))


# ---------------------------------------------------------------------------------------------
# unsupported operations: UnsupportedLayer naming the module path and the op
# ---------------------------------------------------------------------------------------------
class Inner(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn
        self.a = nn.Conv2d(2, 2, 1)
        self.b = nn.Conv2d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


def _wrapped(fn: Callable[..., torch.Tensor]) -> nn.Module:
    """The op sits in module ``body.1`` of the network."""
    return Fn(lambda s, x: s.body(x), body=nn.Sequential(nn.Identity(), Inner(fn)))


# Ops that are now modelled (cat, products, transpose, interpolation, …) are checked against the
# oracle in tests/test_encode_ops.py, with the refusals that remain.


@pytest.mark.parametrize("case", ["batch-view", "batch-mean"])
def test_unsupported_arguments(case: str) -> None:
    net, where, what = {
        "batch-view": (Fn(lambda s, x: s.fc(x.view(-1)), fc=nn.Linear(50, 2)), "", "batch"),
        "batch-mean": (Fn(lambda s, x: s.fc(x.mean(0, keepdim=True).flatten(1)),
                          fc=nn.Linear(50, 2)), "", "batch"),
    }[case]
    with pytest.raises(UnsupportedLayer, match=what) as e:
        encode_model(net, input_shape=(2, 5, 5))
    assert e.value.module_path == where


def test_lstm_is_unsupported_with_module_and_op() -> None:
    class Rnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(25, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x.flatten(2))[0]

    with pytest.raises(UnsupportedLayer) as e:
        encode_model(Rnn(), input_shape=(2, 5, 5))
    assert e.value.module_path == "rnn" and "lstm" in e.value.op


@pytest.mark.parametrize("case", ["chunk", "max-dim"])
def test_tuple_returning_ops_are_rejected(case: str) -> None:
    def chunk(s: Inner, x: torch.Tensor) -> torch.Tensor:
        a, _ = s.a(x).chunk(2, 1)
        return x + a  # today: encoded as the bare input, conv ``a`` left dangling

    def max_dim(s: Inner, x: torch.Tensor) -> torch.Tensor:
        v, _ = torch.max(s.a(x), dim=1, keepdim=True)
        return x + v.expand(-1, 2, -1, -1)

    with pytest.raises(UnsupportedLayer):
        encode_model(_wrapped(chunk if case == "chunk" else max_dim), input_shape=(2, 5, 5))


def test_model_must_return_one_tensor() -> None:
    net = Fn(lambda s, x: (s.c(x), x), c=nn.Conv2d(2, 2, 1))
    with pytest.raises(UnsupportedLayer, match="one traced tensor"):
        encode_model(net, input_shape=(2, 5, 5))


# ---------------------------------------------------------------------------------------------
# zoo models, correct flavour
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet20_fixture(reference_dir: Path) -> tuple[Graph, dict[str, np.ndarray]]:
    pt = reference_dir / "Resnet-20-er-0.98-seed0.pt"
    g = encode_checkpoint(pt, "resnet20", encoding="mge")
    assert isinstance(g, Graph)
    sd = {k: v.numpy() for k, v in torch.load(pt, weights_only=True).items()}
    return g, sd


def _conv_count(w: np.ndarray, n: int, stride: int, pad: int) -> tuple[int, float]:
    """Edges and Σ|w| of a square conv on an n×n map, tap by tap (direct formula)."""
    out = (n + 2 * pad - w.shape[2]) // stride + 1
    valid = np.array([n_valid(out, n, stride, pad, 1, a) for a in range(w.shape[2])])
    per_tap = valid[:, None] * valid[None, :]
    nz = (w != 0).sum(axis=(0, 1))
    return int((nz * per_tap).sum()), float((np.abs(w).astype(np.float64).sum(axis=(0, 1))
                                             * per_tap).sum())


def test_resnet20_fixture_correct_flavour_counts(
        resnet20_fixture: tuple[Graph, dict[str, np.ndarray]]) -> None:
    g, sd = resnet20_fixture
    assert g.dimension.tolist() == [3072] + [16384] * 7 + [8192] * 6 + [4096] * 6 + [10]
    assert g.partitions[0].shape == (3, 32, 32)  # real pixels, no padding nodes
    assert (g.partition_of(g.src) < g.partition_of(g.dst)).all()  # no 7->7: stride 2 wired right
    srt = g.sorted()
    assert not ((srt.src[1:] == srt.src[:-1]) & (srt.dst[1:] == srt.dst[:-1])).any()  # no dups

    conv_edges, weight_sum, skip, shortcut = 0, 0.0, 0, 0
    size = {"conv1": 32, "layer1": 32, "layer2": 16, "layer3": 8}
    for key, w in sd.items():
        if w.ndim != 4:
            continue
        stage = key.split(".")[0]
        n_out = size[stage]
        stride = 2 if key.startswith(("layer2.0.conv1", "layer3.0.conv1")) else 1
        if "shortcut" in key:
            nnz = int((w != 0).sum())
            shortcut += nnz * n_out * n_out
            weight_sum += float(np.abs(w).astype(np.float64).sum()) * n_out * n_out
            continue
        edges, wsum = _conv_count(w, 2 * n_out if stride == 2 else n_out, stride, 1)
        conv_edges += edges
        weight_sum += wsum
        if key.endswith("conv2.weight") and f"{key[:-12]}shortcut.0.weight" not in sd:
            skip += w.shape[0] * n_out * n_out  # identity block: one weight-1 skip per unit
            weight_sum += w.shape[0] * n_out * n_out
    lin = sd["linear.weight"]
    linear = int((lin != 0).sum()) * 64  # the 8×8 global average pool is wired through
    weight_sum += float(np.abs(lin).astype(np.float64).sum()) * 64

    assert skip == 3 * 16 * 1024 + 2 * 32 * 256 + 2 * 64 * 64  # 7 identity blocks
    assert g.edge_counts_by_kind() == {"conv": conv_edges, "linear": linear,
                                       "shortcut": shortcut, "skip": skip}
    assert g.n_edges == conv_edges + linear + shortcut + skip
    assert float(g.weight.astype(np.float64).sum()) == pytest.approx(weight_sum, rel=1e-6)
    assert g.meta["n_weights"] == 270896 and g.meta["n_weights_nonzero"] == 5053
    assert g.meta["model"] == "resnet20" and g.meta["classes"] == 10
    assert len(g.meta["checkpoint_digest"]) == 64


def test_resnet20_fixture_pair_layout(resnet20_fixture: tuple[Graph, dict[str, np.ndarray]]
                                      ) -> None:
    g, sd = resnet20_fixture
    pairs = g.edge_counts_by_partition_pair()
    main = {(b, b + 1) for b in range(20)}
    skips = {(b, b + 2) for b in (1, 3, 5, 9, 11, 15, 17)}  # block input -> block output
    projections = {(7, 9), (13, 15)}
    assert set(pairs) == main | skips | projections
    shortcut = g.kind == EdgeKind.SHORTCUT
    assert set(zip(g.partition_of(g.src[shortcut]).tolist(),
                   g.partition_of(g.dst[shortcut]).tolist(), strict=True)) == projections
    skip = g.kind == EdgeKind.SKIP
    assert set(zip(g.partition_of(g.src[skip]).tolist(),
                   g.partition_of(g.dst[skip]).tolist(), strict=True)) == skips
    t = g.node_table()
    # projection shortcuts: 1×1 stride 2, no padding: (c, 2y, 2x) → (o, y, x), weight |W[o, c]|
    for block, key in ((7, "layer2.0.shortcut.0.weight"), (13, "layer3.0.shortcut.0.weight")):
        sel = shortcut & (g.partition_of(g.src) == block)
        s, d = g.src[sel], g.dst[sel]
        assert (t["row"][s] == 2 * t["row"][d]).all() and (t["col"][s] == 2 * t["col"][d]).all()
        w = np.abs(sd[key][:, :, 0, 0])
        assert (g.weight[sel] == w[t["channel"][d], t["channel"][s]]).all()
        assert sel.sum() == (w != 0).sum() * (t["row"][d].max() + 1) ** 2
    # identity skip edges join the same (channel, row, col)
    for col in ("channel", "row", "col"):
        assert (t[col][g.src[skip]] == t[col][g.dst[skip]]).all()
    assert (g.weight[skip] == 1.0).all()


def _sparse_zoo(name: str, density: float) -> nn.Module:
    return random_masked(build_model(name), density)


def test_mobilenet_v2_correct_flavour_structure() -> None:
    g = mge(_sparse_zoo("mobilenet_v2", 0.001), (3, 32, 32))
    roles = [s.role for s in g.layers]
    assert roles.count("shortcut") == 4  # 1×1 projections of the stride-1 blocks that widen
    assert len(g.partitions) == 1 + roles.count("main")
    assert g.dimension[0] == 3072 and g.dimension[-1] == 10
    depthwise = [s for s in g.layers if s.groups > 1]
    assert len(depthwise) == 17 and all(s.groups == s.in_shape[0] for s in depthwise)
    assert "skip" in g.edge_counts_by_kind()
    assert (g.partition_of(g.src) < g.partition_of(g.dst)).all()


@pytest.mark.parametrize("name", ["conv6", "wrn28_2"])
def test_zoo_correct_flavour_dimensions(name: str) -> None:
    g = mge(_sparse_zoo(name, 0.002), (3, 32, 32))
    dims = {
        "conv6": [3072, 65536, 65536, 32768, 32768, 16384, 16384, 256, 256, 10],
        "wrn28_2": [3072, 16384] + [32768] * 8 + [16384] * 8 + [8192] * 8 + [10],
    }[name]
    assert g.dimension.tolist() == dims
    assert math.prod(g.partitions[0].shape) == 3072
