"""``mge-reference``: bit-identical to the published reference on the two shared fixtures, the
reference's partition lists for other zoo models, its stride-2 mis-wiring, and what it refuses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nets import random_masked
from torch import nn

from mgedb.encode import encode_checkpoint, encode_model
from mgedb.errors import ReferenceUnsupported
from mgedb.graph import Graph
from mgedb.models import build_model

TAGS = {"resnet20": "Resnet-20-er-0.98-seed0", "conv6": "CONV-6-er-0.98-seed0"}


@pytest.fixture(scope="module", params=list(TAGS))
def case(request: pytest.FixtureRequest, reference_dir: Path) -> dict[str, Any]:
    model = request.param
    tag = TAGS[model]
    g = encode_checkpoint(reference_dir / f"{tag}.pt", model, encoding="mge-reference")
    assert isinstance(g, Graph)
    with np.load(reference_dir / f"{tag}.npz") as z:
        npz = {k: z[k] for k in z.files}
    return {
        "model": model, "graph": g, "sorted": g.sorted(), "npz": npz,
        "json": json.loads((reference_dir / f"{tag}.graph.json").read_text()),
        "sd": torch.load(reference_dir / f"{tag}.pt", weights_only=True),
    }


def test_dimension_and_counts(case: dict[str, Any]) -> None:
    g, npz, js = case["graph"], case["npz"], case["json"]
    assert g.dimension.tolist() == npz["dimension"].tolist() == js["dimension"]
    assert (g.n_nodes, g.n_edges) == (js["n_nodes"], js["n_edges"])
    assert g.encoding == "mge-reference"


def test_sorted_edges_bit_for_bit(case: dict[str, Any]) -> None:
    s, npz = case["sorted"], case["npz"]
    assert np.array_equal(s.src, npz["src"]) and np.array_equal(s.dst, npz["dst"])
    assert npz["weight"].dtype == np.float16 and s.weight.dtype == np.float32
    ref = npz["weight"].astype(np.float32)
    assert np.array_equal(s.weight.view(np.uint32), ref.view(np.uint32))


def test_sha256_fingerprints(case: dict[str, Any]) -> None:
    """``sha256_sorted_edges_int64``: sha256 of the (m, 2) int64 array of sorted (src, dst)."""
    s, js = case["sorted"], case["json"]
    pairs = np.stack([s.src, s.dst], axis=1).astype(np.int64)
    assert hashlib.sha256(pairs.tobytes()).hexdigest() == js["sha256_sorted_edges_int64"]
    assert (hashlib.sha256(s.weight.astype(np.float16).tobytes()).hexdigest()
            == js["sha256_sorted_weights_f16"])


def test_block_pair_counts_and_per_block_sums(case: dict[str, Any]) -> None:
    g, js = case["graph"], case["json"]
    got = {f"{a}->{b}": n for (a, b), n in g.edge_counts_by_partition_pair().items()}
    assert got == js["block_pair_edge_counts"]
    assert g.summary()["edges_by_partition_pair"] == js["block_pair_edge_counts"]
    ps, pt = g.partition_of(g.src), g.partition_of(g.dst)
    nb = len(g.partitions)
    deg = np.bincount(g.src, minlength=g.n_nodes) + np.bincount(g.dst, minlength=g.n_nodes)
    isolated = np.bincount(g.node_partition[deg == 0], minlength=nb)
    assert [{"size": int(g.dimension[b]), "in_edges": int((pt == b).sum()),
             "out_edges": int((ps == b).sum()), "isolated": int(isolated[b])}
            for b in range(nb)] == js["per_block"]
    srt = case["sorted"]
    dup = int(((srt.src[1:] == srt.src[:-1]) & (srt.dst[1:] == srt.dst[:-1])).sum())
    assert dup == js["duplicate_edges"] == 0
    assert int((g.src == g.dst).sum()) == js["self_loops"]
    assert int((g.weight == 0).sum()) == js["zero_weight_edges"]
    assert float(g.weight.astype(np.float64).sum()) == pytest.approx(js["weight_sum_f64"],
                                                                     rel=1e-12)


def test_weights_are_float16_rounded_abs(case: dict[str, Any]) -> None:
    w = case["graph"].weight
    assert (w >= 0).all()
    assert np.array_equal(w, w.astype(np.float16).astype(np.float32))


def test_layer_names_match_reference(case: dict[str, Any]) -> None:
    g, js = case["graph"], case["json"]
    kinds = {"conv": "conv", "residual": "conv", "linear": "linear"}
    ref = {(name, kinds[kind]) for _, kind, name in js["layers"] if kind in kinds}
    assert {(s.name, s.op) for s in g.layers} == ref
    roles = {s.name: s.role for s in g.layers}
    assert {n for n, r in roles.items() if r == "shortcut"} == {
        name for _, kind, name in js["layers"] if kind == "residual"}
    nnz = sum(int((v != 0).sum()) for k, v in case["sd"].items() if v.dim() > 1)
    assert g.meta["n_weights_nonzero"] == sum(s.nnz for s in g.layers) == nnz


def test_partition_zero_is_the_padded_input(case: dict[str, Any]) -> None:
    g = case["graph"]
    assert g.partitions[0].shape == (3, 34, 34)  # 3468 nodes, 396 of them padding
    t = g.node_table()
    src0 = g.src[g.partition_of(g.src) == 0]
    border = (t["row"][src0] == 0) | (t["row"][src0] == 33) | (t["col"][src0] == 0) | (
        t["col"][src0] == 33)
    assert border.any(), "padding pixels have out-edges in the reference"


# ---------------------------------------------------------------------------------------------
# the stride-2 mis-wiring of ResNet-20 (spec §2.4), from the state dict
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet20(reference_dir: Path) -> tuple[Graph, dict[str, torch.Tensor]]:
    pt = reference_dir / f"{TAGS['resnet20']}.pt"
    g = encode_checkpoint(pt, "resnet20", encoding="mge-reference")
    assert isinstance(g, Graph)
    return g, torch.load(pt, weights_only=True)


@pytest.mark.parametrize(("block", "layer", "size"), [(7, "layer2.0.conv1", 32),
                                                      (13, "layer3.0.conv1", 16)])
def test_stride2_exact_rule(resnet20: tuple[Graph, dict[str, torch.Tensor]], block: int,
                            layer: str, size: int) -> None:
    """Source ``prev + c·(I−1)² + r·(I−1) + q``, target ``prev + Cin·(I−1)² + o·out² + y·out + x``,
    with ``r = 2y + a − 1``, ``q = 2x + b − 1`` kept only when ``0 ≤ r, q ≤ I − 2``."""
    g, sd = resnet20
    w = sd[f"{layer}.weight"].numpy()
    cin, out, n = w.shape[1], size // 2, size - 1
    prev = int(g.offsets[block])
    expected = set()
    for o, c, a, b in np.argwhere(w != 0):
        for y in range(out):
            r = 2 * y + a - 1
            for x in range(out):
                q = 2 * x + b - 1
                if 0 <= r <= size - 2 and 0 <= q <= size - 2:
                    expected.add((prev + c * n * n + r * n + q,
                                  prev + cin * n * n + o * out * out + y * out + x))
    ps, pt = g.partition_of(g.src), g.partition_of(g.dst)
    sel = (ps == block) & ((pt == block) | (pt == block + 1))
    got = set(zip(g.src[sel].tolist(), g.dst[sel].tolist(), strict=True))
    assert got == expected
    delta = cin * (size * size - n * n)  # 1008 and 992 outputs land in the previous block
    assert delta == {32: 1008, 16: 992}[size]
    inner = g.dst[sel & (pt == block)] - prev
    assert inner.min() >= cin * n * n and len(inner) == g.edge_counts_by_partition_pair()[
        (block, block)]
    # …and the last Δ nodes of the new block get no conv edges
    start = int(g.offsets[block + 1])
    assert not (g.dst[sel] >= start + int(g.dimension[block + 1]) - delta).any()


def test_resnet20_shortcuts_span_two_blocks(resnet20: tuple[Graph, dict[str, torch.Tensor]]
                                            ) -> None:
    g, sd = resnet20
    pairs = g.edge_counts_by_partition_pair()
    for block, key, out in ((7, "layer2.0.shortcut.0.weight", 16),
                            (13, "layer3.0.shortcut.0.weight", 8)):
        assert pairs[(block, block + 2)] == int((sd[key] != 0).sum()) * out * out


# ---------------------------------------------------------------------------------------------
# other zoo models
# ---------------------------------------------------------------------------------------------
def _sparse(name: str, density: float = 0.002) -> nn.Module:
    return random_masked(build_model(name), density)


@pytest.mark.parametrize(("name", "dims"), [
    ("resnet32", [3468] + [16384] * 11 + [8192] * 10 + [4096] * 10 + [10]),
    ("wrn28_2", [3468, 16384] + [32768] * 8 + [16384] * 8 + [8192] * 8 + [10]),
    ("resnet20", [3468] + [16384] * 7 + [8192] * 6 + [4096] * 6 + [10]),
    ("conv6", [3468, 65536, 65536, 32768, 32768, 16384, 16384, 256, 256, 10]),
])
def test_reference_partition_lists(name: str, dims: list[int]) -> None:
    g = encode_model(_sparse(name), encoding="mge-reference")
    assert isinstance(g, Graph)
    assert g.dimension.tolist() == dims
    assert g.n_nodes == {"resnet32": 306582, "wrn28_2": 478614, "resnet20": 191894,
                         "conv6": 233366}[name]


def test_reference_partition_list_with_100_classes() -> None:
    model = build_model("resnet20", classes=100)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.zero_()
    g = encode_model(model, encoding="mge-reference")
    assert isinstance(g, Graph)
    assert g.n_nodes == 191894 + 90 and g.n_edges == 0


def test_mobilenet_v2_is_reference_unsupported() -> None:
    with pytest.raises(ReferenceUnsupported, match="--encoding mge"):
        encode_model(_sparse("mobilenet_v2", 0.0), encoding="mge-reference")


class _Net(nn.Module):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant
        kw: dict[str, Any] = {
            "dilation": {"kernel_size": 3, "padding": 2, "dilation": 2},
            "nonsquare": {"kernel_size": (1, 3), "padding": (0, 1)},
            "groups": {"kernel_size": 3, "padding": 1, "groups": 2},
        }.get(variant, {"kernel_size": 3, "padding": 1})
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, **kw)
        self.other = nn.Conv2d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "input-feeds-two":
            return self.conv2(self.conv1(x)) + self.other(x)
        if self.variant == "pool-padding":
            return self.conv2(nn.functional.max_pool2d(self.conv1(x), 3, 2, padding=1))
        return self.conv2(self.conv1(x))


@pytest.mark.parametrize("variant", ["dilation", "nonsquare", "groups", "input-feeds-two",
                                     "pool-padding"])
def test_reference_refuses_what_it_cannot_reproduce(variant: str) -> None:
    with pytest.raises(ReferenceUnsupported, match="--encoding mge"):
        encode_model(_Net(variant), encoding="mge-reference", input_shape=(2, 8, 8))


def test_plain_chain_is_accepted() -> None:
    g = encode_model(_Net("plain"), encoding="mge-reference", input_shape=(2, 8, 8))
    assert isinstance(g, Graph)
    assert g.dimension.tolist() == [2 * 10 * 10, 128, 128]
