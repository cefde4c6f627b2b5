"""The correct-flavour MGE against brute force, computed independently of the encoder.

* Reachability: in a masked net with positive weights, zero biases and BatchNorm at its defaults
  there is no cancellation, so output unit ``u`` depends on input pixel ``p`` iff
  ``f(x + big·e_p) != f(x)``. That set must equal the set of nodes reachable from ``p`` in the MGE,
  for the model output and for intermediate partitions (read with forward hooks).
* One-layer nets: reachability *is* the edge set, so the exact edges, weights (sum rule for pairs
  reached through several pooling windows / paths) and kinds are rebuilt here with plain loops.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from nets import Fn
from scipy.sparse.csgraph import breadth_first_order
from torch import nn

from mgedb.encode import encode_model
from mgedb.graph import EdgeKind, Graph, NodeKind
from mgedb.models import build_model

CONV, LINEAR, SHORTCUT, SKIP = (int(k) for k in EdgeKind)
Edges = dict[tuple[int, int], list[tuple[float, int]]]  # (src, dst) -> [(|w|, kind), …]


# ---------------------------------------------------------------------------------------------
# helpers: positive masked weights, brute-force reachability, MGE reachability
# ---------------------------------------------------------------------------------------------
def positive_masked(model: nn.Module, seed: int, density: float = 0.5,
                    bias: bool = False) -> nn.Module:
    """Weights in [0.5, 1.5) kept with probability ``density`` (else 0); biases 0 (or positive)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                w = 0.5 + torch.rand(m.weight.shape, generator=gen)
                keep = torch.rand(m.weight.shape, generator=gen) < density
                m.weight.copy_(w * keep)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=gen) if bias else 0.0)
    return model.eval()


def brute_reach(model: nn.Module, input_shape: tuple[int, int, int], taps: Iterable[str],
                pixels: np.ndarray | None = None, base: float | None = None,
                big: float = 1e3) -> dict[str, np.ndarray]:
    """For every tap (module path, "" = model output): bool (pixel, unit) "unit changes".

    ``base=None`` feeds 0: with zero biases every unit is exactly 0 unless ``p`` reaches it, so
    even a product of many small weights is seen (deep zoo models).
    """
    m = copy.deepcopy(model).double().eval()
    n_in = math.prod(input_shape)
    sel = np.arange(n_in) if pixels is None else np.asarray(pixels)
    gen = torch.Generator().manual_seed(1)
    x0 = (torch.zeros(input_shape, dtype=torch.float64) if base is None
          else base + 0.1 * torch.rand(input_shape, generator=gen, dtype=torch.float64))
    x = x0.repeat(len(sel) + 1, 1, 1, 1)
    x.view(len(sel) + 1, -1)[torch.arange(1, len(sel) + 1), torch.as_tensor(sel)] += big
    seen: dict[str, torch.Tensor] = {}
    modules = dict(m.named_modules())
    handles = [
        modules[t].register_forward_hook(
            lambda _m, _a, out, t=t: seen.__setitem__(t, out.detach().clone()))
        for t in taps if t
    ]
    with torch.no_grad():
        seen[""] = m(x)
    for h in handles:
        h.remove()
    result = {}
    for t in taps:
        y = seen[t].reshape(len(sel) + 1, -1)
        assert torch.isfinite(y).all()
        # batch rows may round differently: "changed" means beyond 1e-9 relative
        result[t] = ((y[1:] - y[:1]).abs() > 1e-9 * y[:1].abs()).numpy()
    return result


def mge_reach(g: Graph, pixels: np.ndarray) -> np.ndarray:
    """bool (pixel, node): node reachable from input node ``pixel`` in the MGE (breadth first)."""
    a = sp.csr_matrix((np.ones(g.n_edges, np.int8), (g.src, g.dst)), shape=(g.n_nodes,) * 2)
    out = np.zeros((len(pixels), g.n_nodes), bool)
    for i, p in enumerate(pixels):
        out[i, breadth_first_order(a, int(p), directed=True, return_predecessors=False)] = True
    return out


def part_index(g: Graph, name: str) -> int:
    names = [p.name for p in g.partitions]
    assert names.count(name) == 1, (name, names)
    return names.index(name)


def check_reach(model: nn.Module, input_shape: tuple[int, int, int],
                taps: dict[str, str] | None = None, pixels: np.ndarray | None = None,
                base: float | None = 0.5) -> Graph:
    """Encode ``model``; compare MGE reachability with brute force (output + tapped partitions)."""
    g = encode_model(model, input_shape=input_shape)
    assert isinstance(g, Graph)
    assert g.partitions[0].shape == input_shape and g.partitions[0].kind == NodeKind.INPUT
    taps = dict(taps or {})
    sel = np.arange(math.prod(input_shape)) if pixels is None else np.asarray(pixels)
    bf = brute_reach(model, input_shape, ["", *taps.values()], sel, base)
    targets = {len(g.partitions) - 1: ""} | {part_index(g, p): m for p, m in taps.items()}
    reach = mge_reach(g, sel)
    for part, module in targets.items():
        expect = bf[module]
        got = reach[:, g.offsets[part]:g.offsets[part + 1]]
        assert expect.shape == got.shape, (part, module)
        assert expect.any(), f"degenerate check: nothing reaches {module or 'the output'}"
        bad = np.argwhere(expect != got)
        assert len(bad) == 0, (
            f"partition {part} ({g.partitions[part].name}) vs module {module or 'output'!r}: "
            f"{len(bad)} (pixel, unit) pairs differ, e.g. {bad[:5].tolist()}"
        )
    return g


# ---------------------------------------------------------------------------------------------
# helpers: the expected edges of one-layer nets, with plain loops
# ---------------------------------------------------------------------------------------------
def conv_edges(weight: np.ndarray, in_shape: tuple[int, int, int], out_hw: tuple[int, int],
               stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
               dilation: tuple[int, int] = (1, 1), groups: int = 1
               ) -> dict[tuple[int, int], float]:
    """(input element, output element) -> |w| for every nonzero tap a cross-correlation reads."""
    cout, cin_g, kh, kw = weight.shape
    _cin, h, w = in_shape
    ho, wo = out_hw
    edges: dict[tuple[int, int], float] = {}
    for o in range(cout):
        group = o // (cout // groups)
        for ci in range(cin_g):
            c = group * cin_g + ci
            for a in range(kh):
                for b in range(kw):
                    v = float(weight[o, ci, a, b])
                    if v == 0.0:
                        continue
                    for y in range(ho):
                        r = y * stride[0] - padding[0] + a * dilation[0]
                        if not 0 <= r < h:
                            continue
                        for x in range(wo):
                            q = x * stride[1] - padding[1] + b * dilation[1]
                            if 0 <= q < w:
                                key = (c * h * w + r * w + q, o * ho * wo + y * wo + x)
                                assert key not in edges
                                edges[key] = abs(v)
    return edges


def linear_edges(weight: np.ndarray) -> dict[tuple[int, int], float]:
    return {(i, o): abs(float(weight[o, i])) for o in range(weight.shape[0])
            for i in range(weight.shape[1]) if weight[o, i] != 0}


def window_members(in_shape: tuple[int, int, int], out_hw: tuple[int, int],
                   rows: Callable[[int], list[int]], cols: Callable[[int], list[int]]
                   ) -> list[list[int]]:
    """Pooled element (c, y, x) -> the input elements of its window (clipped to the map)."""
    c_, h, w = in_shape
    ho, wo = out_hw
    return [[c * h * w + r * w + q for r in rows(y) if 0 <= r < h for q in cols(x) if 0 <= q < w]
            for c in range(c_) for y in range(ho) for x in range(wo)]


def pool_members(in_shape: tuple[int, int, int], out_hw: tuple[int, int], kernel: int | tuple,
                 stride: int | tuple | None = None, padding: int | tuple = 0,
                 dilation: int | tuple = 1) -> list[list[int]]:
    def pair(v: Any) -> tuple[int, int]:
        return (v, v) if isinstance(v, int) else tuple(v)

    (kh, kw), (ph, pw), (dh, dw) = pair(kernel), pair(padding), pair(dilation)
    sh, sw = pair(kernel if stride is None else stride)
    return window_members(in_shape, out_hw,
                          lambda y: [y * sh - ph + a * dh for a in range(kh)],
                          lambda x: [x * sw - pw + b * dw for b in range(kw)])


def adaptive_members(in_shape: tuple[int, int, int], out_hw: tuple[int, int]
                     ) -> list[list[int]]:
    _, h, w = in_shape
    ho, wo = out_hw

    def span(i: int, n_in: int, n_out: int) -> list[int]:
        return list(range(math.floor(i * n_in / n_out), math.ceil((i + 1) * n_in / n_out)))

    return window_members(in_shape, out_hw, lambda y: span(y, h, ho), lambda x: span(x, w, wo))


def through(members: list[list[int]], edges: dict[tuple[int, int], float]
            ) -> dict[tuple[int, int], list[float]]:
    """Edges leaving pooled element e, replicated from every member of e's window."""
    out: dict[tuple[int, int], list[float]] = defaultdict(list)
    for (e, t), v in edges.items():
        for p in members[e]:
            out[(p, t)].append(v)
    return out


def add_block(expected: Edges, edges: dict[tuple[int, int], Any], src_base: int, dst_base: int,
              kind: int) -> None:
    for (s, t), v in edges.items():
        for x in v if isinstance(v, list) else [v]:
            expected[(s + src_base, t + dst_base)].append((x, kind))


def assert_edges(g: Graph, expected: Edges) -> None:
    """Exactly the expected (src, dst) pairs, each once; weight = Σ|w|, kind = min kind."""
    pairs = list(zip(g.src.tolist(), g.dst.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs), "duplicate (src, dst) pairs left in the MGE"
    assert set(pairs) == set(expected), (
        f"missing {sorted(set(expected) - set(pairs))[:5]}, "
        f"extra {sorted(set(pairs) - set(expected))[:5]}"
    )
    got_w = dict(zip(pairs, g.weight.tolist(), strict=True))
    got_k = dict(zip(pairs, g.kind.tolist(), strict=True))
    for key, terms in expected.items():
        ws = [w for w, _ in terms]
        if len(ws) == 1:
            assert got_w[key] == np.float32(ws[0]), key  # a single |w|: bit for bit
        else:
            assert got_w[key] == pytest.approx(math.fsum(ws), rel=1e-6), key
        assert got_k[key] == min(k for _, k in terms), key
    assert g.weight.dtype == np.float32


def out_hw(model: nn.Module, input_shape: tuple[int, int, int], module: str = ""
           ) -> tuple[int, int]:
    """Spatial size of a module's output (or the model's), by running it."""
    seen: dict[str, torch.Tensor] = {}
    mod = dict(model.named_modules())[module]
    h = mod.register_forward_hook(lambda _m, _a, o: seen.__setitem__("o", o))
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    h.remove()
    return tuple(seen["o"].shape[2:4])  # type: ignore[return-value]


def npw(m: nn.Module) -> np.ndarray:
    return m.weight.detach().numpy()


# ---------------------------------------------------------------------------------------------
# one Conv2d: exact edges
# ---------------------------------------------------------------------------------------------
SINGLE_CONVS = {
    # id: (input shape, Conv2d kwargs)
    "k1": ((2, 5, 5), {"in_channels": 2, "out_channels": 3, "kernel_size": 1}),
    "k2-bias": ((3, 6, 7), {"in_channels": 3, "out_channels": 2, "kernel_size": 2, "bias": True}),
    "k3-p1": ((2, 5, 5), {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}),
    "k3-s2-p1": ((3, 6, 7), {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "stride": 2,
                                 "padding": 1}),
    "k3-s3-p2": ((2, 7, 5), {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "stride": 3,
                                 "padding": 2}),
    "k3-d2-p2": ((2, 6, 7), {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "dilation": 2,
                                 "padding": 2}),
    "k2-s2-p0": ((2, 5, 5), {"in_channels": 2, "out_channels": 2, "kernel_size": 2, "stride": 2}),
    "nonsquare-k23-s21-p10": ((3, 6, 7), {"in_channels": 3, "out_channels": 2,
                                              "kernel_size": (2, 3), "stride": (2, 1),
                                              "padding": (1, 0)}),
    "nonsquare-k13-s13-p02-d12": ((2, 5, 7), {"in_channels": 2, "out_channels": 2,
                                                  "kernel_size": (1, 3), "stride": (1, 3),
                                                  "padding": (0, 2), "dilation": (1, 2)}),
    "depthwise": ((3, 6, 7), {"in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": 1,
                                  "groups": 3}),
    "depthwise-mult2": ((3, 5, 5), {"in_channels": 3, "out_channels": 6, "kernel_size": 3,
                                        "groups": 3}),
    "groups2": ((4, 5, 6), {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "padding": 1,
                                "groups": 2}),
    "groups3-k31": ((6, 5, 5), {"in_channels": 6, "out_channels": 3, "kernel_size": (3, 1),
                                    "stride": (2, 1), "groups": 3}),
}


@pytest.mark.parametrize("case", list(SINGLE_CONVS))
def test_single_conv_exact_edges(case: str) -> None:
    shape, kw = SINGLE_CONVS[case]
    conv = nn.Conv2d(**kw)
    net = positive_masked(Fn(lambda s, x: s.conv(x), conv=conv), seed=len(case),
                          bias=kw.get("bias", True))
    g = check_reach(net, shape)
    ho, wo = out_hw(net, shape, "conv")
    assert [p.shape for p in g.partitions] == [shape, (conv.out_channels, ho, wo)]
    assert [p.kind for p in g.partitions] == [NodeKind.INPUT, NodeKind.CONV]
    expected: Edges = defaultdict(list)
    edges = conv_edges(npw(conv), shape, (ho, wo), conv.stride, conv.padding,  # type: ignore[arg-type]
                       conv.dilation, conv.groups)  # type: ignore[arg-type]
    add_block(expected, edges, 0, g.partitions[0].size, CONV)
    assert_edges(g, expected)
    (spec,) = g.layers
    assert (spec.op, spec.role, spec.groups, spec.partition) == ("conv", "main", conv.groups, 1)
    assert spec.nnz == int((npw(conv) != 0).sum())


def test_signed_weights_give_abs_and_bias_is_ignored() -> None:
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=True)
    with torch.no_grad():
        conv.weight.mul_(torch.rand_like(conv.weight) < 0.6)
        conv.bias.fill_(5.0)
    g = encode_model(Fn(lambda s, x: s.conv(x), conv=conv), input_shape=(2, 4, 5))
    assert isinstance(g, Graph)
    assert (npw(conv) < 0).any()
    expected: Edges = defaultdict(list)
    add_block(expected, conv_edges(npw(conv), (2, 4, 5), (4, 5), padding=(1, 1)), 0, 40, CONV)
    assert_edges(g, expected)


# ---------------------------------------------------------------------------------------------
# pooling → conv / linear: windows wired through, duplicates summed
# ---------------------------------------------------------------------------------------------
POOLS: dict[str, tuple[tuple[int, int, int], Callable[..., Any], Callable[..., Any]]] = {
    # id: (input shape, pooling as a function of x, expected members(in_shape, out_hw))
    "MaxPool2d-2": ((2, 6, 7), nn.MaxPool2d(2), lambda s, o: pool_members(s, o, 2)),
    "AvgPool2d-3-s2-overlap": ((2, 7, 7), nn.AvgPool2d(3, 2),
                               lambda s, o: pool_members(s, o, 3, 2)),
    "F.max_pool2d-3-s2-p1": ((2, 6, 7), lambda x: F.max_pool2d(x, 3, 2, padding=1),
                             lambda s, o: pool_members(s, o, 3, 2, 1)),
    "F.avg_pool2d-2-ceil": ((2, 5, 7), lambda x: F.avg_pool2d(x, 2, ceil_mode=True),
                            lambda s, o: pool_members(s, o, 2)),
    "MaxPool2d-3-s2-p1-ceil": ((3, 6, 6), nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
                               lambda s, o: pool_members(s, o, 3, 2, 1)),
    "MaxPool2d-k23-s12": ((2, 6, 7), nn.MaxPool2d((2, 3), (1, 2)),
                          lambda s, o: pool_members(s, o, (2, 3), (1, 2))),
    "MaxPool2d-2-dilation2": ((2, 6, 7), nn.MaxPool2d(2, 1, dilation=2),
                              lambda s, o: pool_members(s, o, 2, 1, 0, 2)),
    "AvgPool2d-3-s1-p1": ((2, 5, 6), nn.AvgPool2d(3, 1, padding=1),
                          lambda s, o: pool_members(s, o, 3, 1, 1)),
    "AdaptiveAvgPool2d-2x3-of-5x7": ((2, 5, 7), nn.AdaptiveAvgPool2d((2, 3)), adaptive_members),
    "adaptive_max_pool2d-3x2-of-7x5": ((2, 7, 5), lambda x: F.adaptive_max_pool2d(x, (3, 2)),
                                       adaptive_members),
}


def _pool_net(pool: Callable[..., Any], conv: nn.Module) -> Fn:
    mods = {"pool": pool} if isinstance(pool, nn.Module) else {}
    return Fn(lambda s, x: s.conv(s.pool(x) if mods else pool(x)), conv=conv, **mods)


@pytest.mark.parametrize("case", list(POOLS))
def test_pool_then_conv_exact_edges(case: str) -> None:
    shape, pool, members_of = POOLS[case]
    conv = nn.Conv2d(shape[0], 3, 2, padding=1)
    net = positive_masked(_pool_net(pool, conv), seed=7 + len(case))
    g = check_reach(net, shape)
    with torch.no_grad():
        pooled = (pool(torch.zeros(1, *shape)))
    p_hw = tuple(pooled.shape[2:])
    ho, wo = out_hw(net, shape, "conv")
    # pooling has no nodes: input → conv partition directly
    assert [p.shape for p in g.partitions] == [shape, (3, ho, wo)]
    members = members_of(shape, p_hw)
    assert len(members) == shape[0] * p_hw[0] * p_hw[1]
    edges = conv_edges(npw(conv), (shape[0], *p_hw), (ho, wo), padding=(1, 1))  # type: ignore[arg-type]
    expected: Edges = defaultdict(list)
    add_block(expected, through(members, edges), 0, g.partitions[0].size, CONV)
    assert_edges(g, expected)
    if "overlap" in case or "s1-p1" in case or "adaptive" in case:
        assert any(len(v) > 1 for v in expected.values()), "case should collapse duplicates"


@pytest.mark.parametrize("flatten", ["nn.Flatten", "torch.flatten", "view", "reshape"])
def test_flatten_then_linear_keeps_chw_order(flatten: str) -> None:
    shape = (2, 3, 4)
    fl = {
        "nn.Flatten": lambda s, x: s.flat(x),
        "torch.flatten": lambda s, x: torch.flatten(x, 1),
        "view": lambda s, x: x.view(x.size(0), -1),
        "reshape": lambda s, x: x.reshape(-1, 24),
    }[flatten]
    lin = nn.Linear(24, 5)
    net = positive_masked(Fn(lambda s, x: s.fc(fl(s, x)), fc=lin, flat=nn.Flatten()), seed=2)
    g = check_reach(net, shape)
    assert [p.shape for p in g.partitions] == [shape, (5, 1, 1)]
    assert g.partitions[1].kind == NodeKind.NEURON
    expected: Edges = defaultdict(list)
    add_block(expected, linear_edges(npw(lin)), 0, 24, LINEAR)
    assert_edges(g, expected)


@pytest.mark.parametrize("pool", ["MaxPool2d-3-s2", "AdaptiveAvgPool2d-2x2", "mean-keepdim",
                                  "avg_pool2d-global"])
def test_pool_flatten_linear_exact_edges(pool: str) -> None:
    shape = (2, 5, 6)
    fn, members = {
        "MaxPool2d-3-s2": (lambda x: F.max_pool2d(x, 3, 2),
                           lambda: pool_members(shape, (2, 2), 3, 2)),
        "AdaptiveAvgPool2d-2x2": (lambda x: F.adaptive_avg_pool2d(x, 2),
                                  lambda: adaptive_members(shape, (2, 2))),
        "mean-keepdim": (lambda x: x.mean((2, 3), keepdim=True),
                         lambda: pool_members(shape, (1, 1), (5, 6))),
        "avg_pool2d-global": (lambda x: F.avg_pool2d(x, (5, 6)),
                              lambda: pool_members(shape, (1, 1), (5, 6))),
    }[pool]
    m = members()
    lin = nn.Linear(len(m), 3)
    net = positive_masked(Fn(lambda s, x: s.fc(torch.flatten(fn(x), 1)), fc=lin), seed=4)
    g = check_reach(net, shape)
    assert [p.shape for p in g.partitions] == [shape, (3, 1, 1)]
    expected: Edges = defaultdict(list)
    add_block(expected, through(m, linear_edges(npw(lin))), 0, 60, LINEAR)
    assert_edges(g, expected)


def test_mean_without_keepdim_then_linear() -> None:
    shape = (2, 4, 5)
    lin = nn.Linear(2, 3)
    net = positive_masked(Fn(lambda s, x: s.fc(x.mean((2, 3))), fc=lin), seed=4)
    g = check_reach(net, shape)
    expected: Edges = defaultdict(list)
    add_block(expected, through(pool_members(shape, (1, 1), (4, 5)), linear_edges(npw(lin))),
              0, 40, LINEAR)
    assert_edges(g, expected)


# ---------------------------------------------------------------------------------------------
# residuals: identity skips, projection shortcuts, merged paths
# ---------------------------------------------------------------------------------------------
def _skip_fn(variant: str) -> Callable[..., torch.Tensor]:
    def fn(s: Fn, x: torch.Tensor) -> torch.Tensor:
        out = s.conv(x)
        if variant == "out + x":
            return out + x
        if variant == "x + out":
            return x + out
        if variant == "torch.add":
            return torch.add(out, x)
        if variant == "+=":
            out += x
            return out
        out.add_(x)
        return out

    return fn


@pytest.mark.parametrize("variant", ["out + x", "x + out", "torch.add", "+=", "add_"])
def test_identity_skip_exact_edges(variant: str) -> None:
    shape = (3, 4, 5)
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    net = positive_masked(Fn(_skip_fn(variant), conv=conv), seed=11)
    with torch.no_grad():  # one centre tap on the diagonal present, one absent
        conv.weight[0, 0, 1, 1], conv.weight[1, 1, 1, 1] = 0.75, 0.0
    g = check_reach(net, shape)
    assert [p.shape for p in g.partitions] == [shape, shape]
    n = 60
    expected: Edges = defaultdict(list)
    add_block(expected, conv_edges(npw(conv), shape, (4, 5), padding=(1, 1)), 0, n, CONV)
    add_block(expected, {(i, i): 1.0 for i in range(n)}, 0, n, SKIP)
    assert_edges(g, expected)
    # some skips coincide with a nonzero centre tap (weight |w| + 1, kind conv), some do not
    centre = np.array([npw(conv)[c, c, 1, 1] for c in range(3)])
    assert (centre == 0).any() and (centre != 0).any()
    assert g.edge_counts_by_kind()["skip"] == int((centre == 0).sum()) * 20


def test_identity_skip_around_pooling_sums_window_multiplicity() -> None:
    """``conv(pool(x)) + pool(x)``: the skip leaves every pixel of each (overlapping) window."""
    shape = (2, 6, 6)

    def fn(s: Fn, x: torch.Tensor) -> torch.Tensor:
        p = F.avg_pool2d(x, 3, 2, padding=1)
        return s.conv(p) + p

    conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    net = positive_masked(Fn(fn, conv=conv), seed=5)
    g = check_reach(net, shape)
    members = pool_members(shape, (3, 3), 3, 2, 1)
    expected: Edges = defaultdict(list)
    add_block(expected, through(members, conv_edges(npw(conv), (2, 3, 3), (3, 3), padding=(1, 1))),
              0, 72, CONV)
    add_block(expected, through(members, {(e, e): 1.0 for e in range(18)}), 0, 72, SKIP)
    assert_edges(g, expected)
    assert any({k for _, k in v} == {CONV, SKIP} for v in expected.values())


class ProjBlock(nn.Module):
    """conv1 → BN → ReLU → conv2 → BN, plus a 1×1 stride-2 projection; then ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.proj(x))


def test_projection_shortcut_exact_edges() -> None:
    shape = (2, 5, 6)
    net = positive_masked(ProjBlock(2, 3), seed=8)
    g = check_reach(net, shape, taps={"conv1": "conv1"})
    assert [p.name for p in g.partitions] == ["input", "conv1", "conv2"]
    assert [p.shape for p in g.partitions] == [shape, (3, 3, 3), (3, 3, 3)]
    o1, o2 = int(g.offsets[1]), int(g.offsets[2])
    expected: Edges = defaultdict(list)
    add_block(expected, conv_edges(npw(net.conv1), shape, (3, 3), (2, 2), (1, 1)), 0, o1, CONV)
    add_block(expected, conv_edges(npw(net.conv2), (3, 3, 3), (3, 3), padding=(1, 1)), o1, o2,
              CONV)
    add_block(expected, conv_edges(npw(net.proj[0]), shape, (3, 3), (2, 2)), 0, o2, SHORTCUT)
    assert_edges(g, expected)
    roles = {s.name: (s.role, s.partition) for s in g.layers}
    assert roles == {"conv1": ("main", 1), "conv2": ("main", 2), "proj.0": ("shortcut", 2)}


class Misnamed(nn.Module):
    """The main path's convs are called ``shortcut`` / ``downsample``, the projection ``conv``."""

    def __init__(self) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(2, 3, 3, 1, 1, bias=False)
        self.downsample = nn.Conv2d(3, 3, 3, 1, 1, bias=False)
        self.conv = nn.Conv2d(2, 3, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.downsample(F.relu(self.shortcut(x)))


def test_kinds_come_from_tracing_not_names() -> None:
    shape = (2, 4, 4)
    net = positive_masked(Misnamed(), seed=9)
    g = check_reach(net, shape, taps={"shortcut": "shortcut"})
    assert [p.name for p in g.partitions] == ["input", "shortcut", "downsample"]
    o1, o2 = int(g.offsets[1]), int(g.offsets[2])
    expected: Edges = defaultdict(list)
    add_block(expected, conv_edges(npw(net.shortcut), shape, (4, 4), padding=(1, 1)), 0, o1, CONV)
    add_block(expected, conv_edges(npw(net.downsample), (3, 4, 4), (4, 4), padding=(1, 1)),
              o1, o2, CONV)
    add_block(expected, conv_edges(npw(net.conv), shape, (4, 4)), 0, o2, SHORTCUT)
    assert_edges(g, expected)
    assert {s.name: s.role for s in g.layers} == {
        "shortcut": "main", "downsample": "main", "conv": "shortcut"}


def test_two_parallel_convs_merge_with_summed_weights() -> None:
    """``a(x) + b(x)``: one output partition; pairs joined by both convs keep one summed edge."""
    shape = (2, 4, 5)
    a, b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, (1, 3), padding=(0, 1))
    net = positive_masked(Fn(lambda s, x: s.a(x) + s.b(x), a=a, b=b), seed=12)
    g = check_reach(net, shape)
    assert len(g.partitions) == 2
    roles = {s.name: s.role for s in g.layers}
    assert sorted(roles.values()) == ["main", "shortcut"]  # the tie is broken by argument order
    kind = {"main": CONV, "shortcut": SHORTCUT}
    expected: Edges = defaultdict(list)
    add_block(expected, conv_edges(npw(a), shape, (4, 5), padding=(1, 1)), 0, 40, kind[roles["a"]])
    add_block(expected, conv_edges(npw(b), shape, (4, 5), padding=(0, 1)), 0, 40, kind[roles["b"]])
    assert_edges(g, expected)
    assert any(len(v) == 2 for v in expected.values())


def test_union_of_two_pooled_views_then_conv() -> None:
    """``conv(avg_pool(h) + max_pool(h))`` with different windows: their union feeds the conv."""
    shape = (2, 6, 6)
    conv = nn.Conv2d(2, 2, 2)

    def fn(s: Fn, x: torch.Tensor) -> torch.Tensor:
        return s.conv(F.avg_pool2d(x, 2, 2) + F.max_pool2d(x, 3, 2, padding=1))

    net = positive_masked(Fn(fn, conv=conv), seed=13)
    g = check_reach(net, shape)
    m1, m2 = pool_members(shape, (3, 3), 2, 2), pool_members(shape, (3, 3), 3, 2, 1)
    members = [a + b for a, b in zip(m1, m2, strict=True)]
    expected: Edges = defaultdict(list)
    add_block(expected, through(members, conv_edges(npw(conv), (2, 3, 3), (2, 2))), 0, 72, CONV)
    assert_edges(g, expected)


def test_elementwise_layers_pass_through() -> None:
    """BatchNorm, ReLU, Dropout, sigmoid, scalar multiply: no nodes, no edges of their own."""
    shape = (2, 5, 5)
    c1, c2 = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(3, 2, 3)

    def fn(s: Fn, x: torch.Tensor) -> torch.Tensor:
        h = s.drop(s.relu(s.bn(s.c1(x))))
        return s.c2(torch.sigmoid(h) * 2.0)

    net = positive_masked(Fn(fn, c1=c1, c2=c2, bn=nn.BatchNorm2d(3), relu=nn.ReLU(inplace=True),
                              drop=nn.Dropout(0.5)), seed=14)
    g = check_reach(net, shape, taps={"c1": "c1"})
    assert [p.shape for p in g.partitions] == [shape, (3, 5, 5), (2, 3, 3)]
    expected: Edges = defaultdict(list)
    add_block(expected, conv_edges(npw(c1), shape, (5, 5), padding=(1, 1)), 0, 50, CONV)
    add_block(expected, conv_edges(npw(c2), (3, 5, 5), (3, 3)), 50, 125, CONV)
    assert_edges(g, expected)


# ---------------------------------------------------------------------------------------------
# multi-layer nets with every supported op: reachability only
# ---------------------------------------------------------------------------------------------
class PoolNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.conv2 = nn.Conv2d(4, 6, (2, 3), stride=(1, 2), padding=(1, 1), groups=2)
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(6 * 2 * 1, 5)
        self.drop = nn.Dropout()
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(F.relu(self.bn(self.conv1(x))))
        h = F.avg_pool2d(F.relu(self.conv2(h)), 2, ceil_mode=True)
        return self.fc2(self.drop(F.relu(self.fc1(self.flat(h)))))


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.b1c1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.b1c2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.block2 = ProjBlock(4, 6)
        self.pool = nn.AdaptiveAvgPool2d((2, 3))
        self.fc = nn.Linear(36, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        out = self.b1c2(F.relu(self.b1c1(x)))
        out += x
        out = self.block2(F.relu(out))
        return self.fc(self.pool(out).view(out.size(0), -1))


class TinyMobile(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(2, 4, 1, bias=False)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.mult = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=4, bias=False)
        self.project = nn.Conv2d(8, 2, 1, bias=False)
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.silu(self.dw(F.relu(self.expand(x))))  # strictly increasing on x > 0 (not relu6)
        out = torch.add(x, self.project(F.relu(self.mult(out))))
        out = F.max_pool2d(out, 2)
        return self.fc(torch.flatten(out.mean((2, 3), keepdim=True), 1))


class SkipOverPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv3 = nn.Conv2d(3, 2, 2, stride=2)
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, padding=1)
        h = self.conv2(p) + p
        h = self.conv3(F.avg_pool2d(h, 3, 1, padding=1) + F.max_pool2d(h, 3, 1, padding=1))
        return self.fc(torch.flatten(h, 1))


DEEP_NETS = {
    "PoolNet": (PoolNet, (3, 6, 7), {"conv1": "conv1", "conv2": "conv2", "fc1": "fc1"}),
    "TinyResNet": (TinyResNet, (2, 7, 6), {"stem": "stem", "b1c1": "b1c1",
                                           "block2.conv1": "block2.conv1",
                                           "block2.conv2": "block2"}),
    "TinyMobile": (TinyMobile, (2, 6, 5), {"expand": "expand", "dw": "dw", "mult": "mult"}),
    "Misnamed": (Misnamed, (2, 5, 6), {"shortcut": "shortcut"}),
    "SkipOverPool": (SkipOverPool, (3, 7, 8), {"conv1": "conv1", "conv2": ""}),
}


@pytest.mark.parametrize("name", list(DEEP_NETS))
@pytest.mark.parametrize("seed", [0, 1])
def test_deep_net_reachability(name: str, seed: int) -> None:
    cls, shape, taps = DEEP_NETS[name]
    taps = {k: v for k, v in taps.items() if v}
    net = positive_masked(cls(), seed=seed, density=0.5)
    g = check_reach(net, shape, taps)
    src_p, dst_p = g.partition_of(g.src), g.partition_of(g.dst)
    assert (src_p < dst_p).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_deep_net_reachability_at_zero_base(seed: int) -> None:
    """Same check with base input 0 (outputs exactly 0 unless reached): no precision margin."""
    net = positive_masked(TinyResNet(), seed=seed, density=0.4)
    check_reach(net, (2, 7, 6), {"b1c1": "b1c1"}, base=None)


# ---------------------------------------------------------------------------------------------
# the zoo: a sample of input pixels, every partition checked
# ---------------------------------------------------------------------------------------------
def _zoo_taps(name: str, model: nn.Module) -> dict[str, str]:
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    if name == "conv6":
        return {n: n for n in convs}
    taps = {}
    for n in convs:
        if n.endswith("conv2"):
            taps[n] = n.rsplit(".", 1)[0]  # the block output (conv2 + skip / projection)
        elif "shortcut" not in n:
            taps[n] = n
    return taps


@pytest.mark.parametrize(("name", "sparsity"), [("resnet20", 0.9), ("conv6", 0.98)])
def test_zoo_reachability_sample(name: str, sparsity: float) -> None:
    """~20 input pixels; base 0 keeps deep products far from float64 rounding."""
    model = positive_masked(build_model(name), seed=0, density=1 - sparsity)
    pixels = np.random.default_rng(0).choice(3 * 32 * 32, 20, replace=False)
    pixels[:3] = [0, 31, 3 * 1024 - 1]  # corners: padding-adjacent pixels
    taps = _zoo_taps(name, model)
    g = check_reach(model, (3, 32, 32), taps, pixels=pixels, base=None)
    assert len(g.partitions) == len(taps) + 1
