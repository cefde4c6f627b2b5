"""``rolled`` / ``rolled-channel``: one bipartite graph per weighted layer (spec §4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mgedb.encode import encode_checkpoint, encode_model
from mgedb.graph import EdgeKind, Graph, GraphSet, NodeKind
from mgedb.models import build_model


def bge(model: nn.Module, encoding: str, shape: tuple[int, int, int] = (3, 32, 32)) -> GraphSet:
    gs = encode_model(model, encoding=encoding, input_shape=shape)
    assert isinstance(gs, GraphSet)
    assert gs.encoding == encoding and all(g.encoding == encoding for g in gs)
    return gs


def edge_dict(g: Graph) -> dict[tuple[int, int], float]:
    pairs = list(zip(g.src.tolist(), g.dst.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs)
    return dict(zip(pairs, g.weight.tolist(), strict=True))


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, (2, 3), padding=1)
        self.grouped = nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False)
        self.dw = nn.Conv2d(6, 12, 3, padding=1, groups=6, bias=False)  # channel multiplier 2
        self.fc = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dw(self.grouped(torch.relu(self.conv(x))))
        return self.fc(h.mean((2, 3), keepdim=True).flatten(1))


@pytest.fixture(scope="module")
def small() -> Small:
    torch.manual_seed(0)
    net = Small()
    with torch.no_grad():
        for m in (net.conv, net.grouped, net.dw, net.fc):
            m.weight.mul_(torch.rand(m.weight.shape) < 0.5)
        net.grouped.weight[0, 1].zero_()  # one all-zero kernel: no rolled-channel edge
    return net


def test_rolled_exact_edges(small: Small) -> None:
    gs = bge(small, "rolled", (2, 5, 6))
    assert [g.layers[0].name for g in gs] == ["conv", "grouped", "dw", "fc"]
    for g, m in zip(gs, (small.conv, small.grouped, small.dw, small.fc), strict=True):
        w = m.weight.detach().numpy()
        expected = {}
        if w.ndim == 4:
            cout, cin_g, kh, kw = w.shape
            left = cin_g * kh * kw
            for o in range(cout):
                for ci in range(cin_g):
                    for a in range(kh):
                        for b in range(kw):
                            if w[o, ci, a, b] != 0:
                                expected[(ci * kh * kw + a * kw + b, left + o)] = abs(
                                    float(w[o, ci, a, b]))
            assert g.partitions[0].shape == (cin_g, kh, kw)
            assert g.partitions[0].kind == NodeKind.WEIGHT
        else:
            left = w.shape[1]
            expected = {(i, left + o): abs(float(w[o, i])) for o in range(w.shape[0])
                        for i in range(left) if w[o, i] != 0}
        assert g.dimension.tolist() == [left, w.shape[0]]
        got = edge_dict(g)
        assert got.keys() == expected.keys()
        assert all(got[k] == np.float32(v) for k, v in expected.items())
        assert g.n_edges == int((w != 0).sum()) == g.layers[0].nnz


def test_rolled_channel_exact_edges(small: Small) -> None:
    gs = bge(small, "rolled-channel", (2, 5, 6))
    for g, m in zip(gs, (small.conv, small.grouped, small.dw, small.fc), strict=True):
        w = m.weight.detach().numpy().astype(np.float64)
        if w.ndim == 4:
            cout, cin_g = w.shape[:2]
            groups = m.groups  # type: ignore[union-attr]
            cin = cin_g * groups
            expected = {}
            for o in range(cout):
                for ci in range(cin_g):
                    norm = float(np.sqrt((w[o, ci] ** 2).sum()))
                    if norm:
                        expected[((o // (cout // groups)) * cin_g + ci, cin + o)] = norm
            assert g.dimension.tolist() == [cin, cout]
            assert g.partitions[0].kind == NodeKind.CONV
        else:
            cin = w.shape[1]
            expected = {(i, cin + o): abs(w[o, i]) for o in range(w.shape[0]) for i in range(cin)
                        if w[o, i] != 0}
        got = edge_dict(g)
        assert got.keys() == expected.keys()
        for k, v in expected.items():
            assert got[k] == pytest.approx(v, rel=1e-6)
    grouped = gs.graphs[1]
    assert (1, 4 + 0) not in edge_dict(grouped)  # the zeroed kernel W[0, 1]: input 1 → output 0
    # groups=2: outputs 0-2 read channels 0-1, outputs 3-5 read channels 2-3
    src, dst = grouped.src, grouped.dst - 4
    assert ((src // 2) == (dst // 3)).all()


@pytest.fixture(scope="module")
def fixture_sets(reference_dir: Path) -> dict[str, GraphSet | dict[str, torch.Tensor]]:
    pt = reference_dir / "Resnet-20-er-0.98-seed0.pt"
    out: dict[str, GraphSet | dict[str, torch.Tensor]] = {}
    for enc in ("rolled", "rolled-channel"):
        gs = encode_checkpoint(pt, "resnet20", encoding=enc)
        assert isinstance(gs, GraphSet)
        out[enc] = gs
    out["sd"] = torch.load(pt, weights_only=True)
    return out


def test_resnet20_fixture_bges(fixture_sets: dict) -> None:
    sd = fixture_sets["sd"]
    rolled, channel = fixture_sets["rolled"], fixture_sets["rolled-channel"]
    assert len(rolled) == len(channel) == 22
    conv1_r, conv1_c = rolled.graphs[0], channel.graphs[0]
    assert conv1_r.n_nodes == 27 + 16 and conv1_r.dimension.tolist() == [27, 16]
    assert conv1_c.n_nodes == 3 + 16 and conv1_c.dimension.tolist() == [3, 16]
    names = [g.layers[0].name for g in rolled]
    assert names == [g.layers[0].name for g in channel]
    assert set(names) == {k[: -len(".weight")] for k, v in sd.items() if v.dim() > 1}
    for g_r, g_c in zip(rolled, channel, strict=True):
        w = sd[g_r.layers[0].name + ".weight"].numpy()
        assert g_r.n_edges == int((w != 0).sum())
        assert float(g_r.weight.astype(np.float64).sum()) == pytest.approx(
            float(np.abs(w).astype(np.float64).sum()), rel=1e-6)
        if w.ndim == 4:
            norms = np.sqrt((w.astype(np.float64) ** 2).sum(axis=(2, 3)))
            assert g_c.n_edges == int((norms != 0).sum())
            assert np.sort(g_c.weight) == pytest.approx(np.sort(norms[norms != 0]), rel=1e-6)
            assert g_c.dimension.tolist() == [w.shape[1], w.shape[0]]
        else:
            assert g_c.n_edges == g_r.n_edges
        role = g_r.layers[0].role
        kind = EdgeKind.SHORTCUT if role == "shortcut" else (
            EdgeKind.LINEAR if w.ndim == 2 else EdgeKind.CONV)
        assert (g_r.kind == kind).all() and (g_c.kind == kind).all()
        assert (g_r.partition_of(g_r.src) == 0).all() and (g_r.partition_of(g_r.dst) == 1).all()
    assert sum(g.n_edges for g in rolled) == 5053  # the fixture's nonzero weights
    shortcuts = [g.layers[0].name for g in rolled if g.layers[0].role == "shortcut"]
    assert shortcuts == ["layer2.0.shortcut.0", "layer3.0.shortcut.0"]
    s = rolled.summary()
    assert s["n_graphs"] == 22 and s["n_edges"] == 5053
    assert s["layers"][0] == {"layer": "conv1", "n_nodes": 43, "n_edges": conv1_r.n_edges,
                              "dimension": [27, 16]}


@pytest.mark.parametrize(("name", "n_layers", "first"), [
    ("conv6", 9, (27, 64)), ("wrn28_2", 29, (27, 16)), ("resnet32", 34, (27, 16)),
])
def test_layer_graph_counts(name: str, n_layers: int, first: tuple[int, int]) -> None:
    model = build_model(name)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.mul_(torch.rand(m.weight.shape) < 0.01)
    rolled, channel = bge(model, "rolled"), bge(model, "rolled-channel")
    assert len(rolled) == len(channel) == n_layers
    assert tuple(rolled.graphs[0].dimension.tolist()) == first
    assert tuple(channel.graphs[0].dimension.tolist()) == (3, first[1])
    last = rolled.graphs[-1]
    assert last.layers[0].op == "linear" and last.dimension[-1] == 10
