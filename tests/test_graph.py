"""The graph value type: hand-computed tiny cases, and lossless save/load (Hypothesis)."""

from __future__ import annotations

import gc
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgedb.errors import GraphFileError
from mgedb.graph import (
    ENCODINGS,
    EdgeKind,
    Graph,
    GraphSet,
    LayerSpec,
    NodeKind,
    Partition,
    load_graph,
    save_graph,
)


def tiny() -> Graph:
    """input (1, 2, 2) → conv (2, 1, 2) → neuron (3, 1, 1); ids 0-3, 4-7, 8-10."""
    parts = (Partition("input", NodeKind.INPUT, (1, 2, 2)),
             Partition("conv", NodeKind.CONV, (2, 1, 2)),
             Partition("fc", NodeKind.NEURON, (3, 1, 1)))
    return Graph(
        src=np.array([3, 0, 1, 4, 7, 0], np.int32), dst=np.array([6, 4, 5, 8, 10, 9], np.int32),
        weight=np.array([0.5, 1, 2, 3, 4, 5], np.float32),
        kind=np.array([0, 0, 0, 1, 1, 3], np.uint8), partitions=parts, encoding="mge",
        layers=(LayerSpec("conv", "conv", "main", (2, 1, 1, 2), (1, 2, 2), (2, 1, 2), nnz=3,
                          partition=1),),
        meta={"model": "tiny"},
    )


def test_sizes_and_offsets() -> None:
    g = tiny()
    assert g.dimension.tolist() == [4, 4, 3]
    assert g.offsets.tolist() == [0, 4, 8, 11]
    assert (g.n_nodes, g.n_edges) == (11, 6)
    assert g.partition_of(np.array([0, 3, 4, 7, 8, 10])).tolist() == [0, 0, 1, 1, 2, 2]
    assert g.node_partition.tolist() == [0] * 4 + [1] * 4 + [2] * 3


def test_node_table_hand_computed() -> None:
    t = tiny().node_table()
    assert t["id"].tolist() == list(range(11))
    assert t["kind"].tolist() == [0] * 4 + [1] * 4 + [2] * 3
    assert t["channel"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 2]
    assert t["row"].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert t["col"].tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0]


def test_sorted_and_counts() -> None:
    g = tiny()
    s = g.sorted()
    assert list(zip(s.src.tolist(), s.dst.tolist(), strict=True)) == [
        (0, 4), (0, 9), (1, 5), (3, 6), (4, 8), (7, 10)]
    assert s.weight.tolist() == [1, 5, 2, 0.5, 3, 4] and s.kind.tolist() == [0, 3, 0, 0, 1, 1]
    assert s.partitions == g.partitions and s.layers == g.layers and s.meta == g.meta
    assert s.meta is not g.meta
    assert g.edge_counts_by_partition_pair() == {(0, 1): 3, (1, 2): 2, (0, 2): 1}
    assert g.edge_counts_by_kind() == {"conv": 3, "linear": 2, "skip": 1}


def test_summary_hand_computed() -> None:
    s = tiny().summary()
    assert s == {
        "encoding": "mge", "n_nodes": 11, "n_edges": 6,
        "partitions": [
            {"index": 0, "name": "input", "kind": "input", "shape": [1, 2, 2], "size": 4},
            {"index": 1, "name": "conv", "kind": "conv", "shape": [2, 1, 2], "size": 4},
            {"index": 2, "name": "fc", "kind": "neuron", "shape": [3, 1, 1], "size": 3},
        ],
        "edges_by_kind": {"conv": 3, "linear": 2, "skip": 1},
        "edges_by_partition_pair": {"0->1": 3, "0->2": 1, "1->2": 2},
        "meta": {"model": "tiny"},
    }
    json.dumps(s)  # plain JSON


def test_arrays_are_read_only_and_lengths_checked() -> None:
    g = tiny()
    with pytest.raises(ValueError, match="read-only"):
        g.src[0] = 1
    with pytest.raises(ValueError, match="same length"):
        Graph(src=np.zeros(2, np.int32), dst=np.zeros(3, np.int32), weight=np.zeros(2, np.float32),
              kind=np.zeros(2, np.uint8), partitions=tiny().partitions)


def test_from_edges_defaults() -> None:
    g = Graph.from_edges([0, 1], [2, 3], [1.5, 2], [2, 2])
    assert g.src.dtype == np.int32 and g.weight.dtype == np.float32
    assert g.kind.tolist() == [EdgeKind.CONV] * 2
    assert [p.shape for p in g.partitions] == [(2, 1, 1), (2, 1, 1)]
    assert [p.kind for p in g.partitions] == [NodeKind.INPUT, NodeKind.NEURON]
    big = Graph.from_edges([0], [2**31], [1.0], [2**31, 2])
    assert big.src.dtype == np.int64 and big.n_nodes == 2**31 + 2


def test_layer_spec_helpers() -> None:
    spec = tiny().layers[0]
    assert spec.numel == 4 and spec.density == 0.75
    assert LayerSpec.from_dict(json.loads(json.dumps(spec.__dict__))) == spec
    assert LayerSpec("x", "linear", "main", (0, 3), (3,), (0,)).density == 0.0


# ---------------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                         st.text(max_size=6), st.floats(allow_nan=False, allow_infinity=False))
metas = st.dictionaries(st.text(max_size=6), st.one_of(
    json_scalars, st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=4), json_scalars, max_size=2)), max_size=4)
small = st.integers(1, 4)


@st.composite
def layer_specs(draw: st.DrawFn) -> LayerSpec:
    tup = st.tuples(small, small)
    return LayerSpec(
        name=draw(st.text(max_size=8)), op=draw(st.sampled_from(["conv", "linear"])),
        role=draw(st.sampled_from(["main", "shortcut"])),
        weight_shape=draw(st.tuples(small, small, small, small)),
        in_shape=draw(st.tuples(small, small, small)), out_shape=draw(st.tuples(small)),
        stride=draw(tup), padding=draw(tup), dilation=draw(tup), groups=draw(small),
        nnz=draw(st.integers(0, 100)), partition=draw(st.integers(-1, 5)),
    )


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    parts = tuple(
        Partition(draw(st.text(max_size=8)), draw(st.sampled_from(list(NodeKind))),
                  (draw(small), draw(small), draw(small)))
        for _ in range(draw(st.integers(1, 4)))
    )
    n = sum(p.size for p in parts)
    m = draw(st.integers(0, 40))
    ids = st.lists(st.integers(0, n - 1), min_size=m, max_size=m)
    idt = draw(st.sampled_from([np.int32, np.int64]))
    weight = draw(st.lists(st.floats(width=32), min_size=m, max_size=m))  # NaN/inf included
    return Graph(
        src=np.array(draw(ids), idt), dst=np.array(draw(ids), idt),
        weight=np.array(weight, np.float32),
        kind=np.array(draw(st.lists(st.sampled_from(list(EdgeKind)), min_size=m, max_size=m)),
                      np.uint8),
        partitions=parts, encoding=draw(st.sampled_from(ENCODINGS)),
        layers=tuple(draw(st.lists(layer_specs(), max_size=3))), meta=draw(metas),
    )


def assert_same(a: Graph, b: Graph) -> None:
    for name in ("src", "dst", "weight", "kind"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name  # bit for bit (NaN payloads too)
    assert a.partitions == b.partitions
    assert a.layers == b.layers
    assert a.meta == b.meta and a.encoding == b.encoding


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(g=graphs(), compress=st.booleans())
def test_graph_round_trip(tmp_path: Path, g: Graph, compress: bool) -> None:
    path = save_graph(tmp_path / "g.npz", g, compress=compress)
    assert path == tmp_path / "g.npz" and not list(tmp_path.glob("*.tmp"))
    back = load_graph(path)
    assert isinstance(back, Graph)
    assert_same(g, back)


@SETTINGS
@given(gs=st.lists(graphs(), min_size=0, max_size=3), meta=metas,
       enc=st.sampled_from(["rolled", "rolled-channel"]))
def test_graphset_round_trip(tmp_path: Path, gs: list[Graph], meta: dict[str, Any],
                             enc: str) -> None:
    value = GraphSet(graphs=tuple(gs), encoding=enc, meta=meta)
    back = load_graph(save_graph(tmp_path / "s.npz", value))
    assert isinstance(back, GraphSet)
    assert back.encoding == enc and back.meta == meta and len(back) == len(gs)
    for a, b in zip(gs, back, strict=True):
        assert_same(a, b)


def test_round_trip_keeps_derived_views(tmp_path: Path) -> None:
    g = tiny()
    back = load_graph(save_graph(tmp_path / "t.npz", g, compress=True))
    assert isinstance(back, Graph)
    assert back.summary() == g.summary()
    assert all((back.node_table()[k] == v).all() for k, v in g.node_table().items())


def load_error(path: Path) -> tuple[str, list[warnings.WarningMessage]]:
    """The GraphFileError message, and the ResourceWarnings (leaked file handles) seen meanwhile."""
    msg = ""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            load_graph(path)
        except GraphFileError as e:
            msg = str(e)
        gc.collect()
    return msg, [r for r in rec if issubclass(r.category, ResourceWarning)]


def test_truncated_file_is_closed(tmp_path: Path) -> None:
    path = save_graph(tmp_path / "g.npz", tiny())
    path.write_bytes(path.read_bytes()[:200])
    msg, leaks = load_error(path)
    assert "cannot read graph file" in msg
    assert leaks == []


@pytest.mark.parametrize("what", ["missing", "garbage", "no-header", "wrong-format",
                                  "truncated", "missing-array"])
def test_load_errors(tmp_path: Path, what: str) -> None:
    path = tmp_path / "g.npz"
    if what == "garbage":
        path.write_bytes(b"\x00garbage" * 10)
    elif what == "no-header":
        np.savez(path, src=np.arange(3))
    elif what == "wrong-format":
        header = json.dumps({"format": "mgedb-graph/999"}).encode()
        np.savez(path, header=np.frombuffer(header, np.uint8))
    elif what == "truncated":
        save_graph(path, tiny())
        path.write_bytes(path.read_bytes()[:200])
    elif what == "missing-array":
        save_graph(tmp_path / "ok.npz", tiny())
        with np.load(tmp_path / "ok.npz") as z:
            np.savez(path, **{k: z[k] for k in z.files if k != "g0.weight"})
    msg, _ = load_error(path)
    assert msg.startswith(str(path)) and "\n" not in msg
    if what == "no-header":
        assert "not an mgedb graph file" in msg
    if what == "wrong-format":
        assert "mgedb-graph/999" in msg
