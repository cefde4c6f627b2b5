"""Deterministic keys and the rows a graph becomes (pure: no database)."""

from __future__ import annotations

import numpy as np
import pytest
from store_fixtures import random_graph, tiny_graph, tiny_graphset

from mgedb.graph import Graph
from mgedb.store import compare_engines, flavour_params
from mgedb.store.keys import (
    graph_digest,
    graph_key,
    is_graph_key,
    network_key,
    uid_base,
    uid_range,
)
from mgedb.store.tables import build_tables


def _permuted(g: Graph, seed: int) -> Graph:
    p = np.random.default_rng(seed).permutation(g.n_edges)
    return Graph(src=g.src[p], dst=g.dst[p], weight=g.weight[p], kind=g.kind[p],
                 partitions=g.partitions, encoding=g.encoding, meta=g.meta)


def test_graph_key_ignores_edge_order_but_not_content() -> None:
    g = random_graph(3)
    assert graph_key(_permuted(g, 1)) == graph_key(g) and is_graph_key(graph_key(g))
    w = g.weight.copy()
    w[0] = np.nextafter(w[0], np.float32(10))
    changed = Graph(src=g.src, dst=g.dst, weight=w, kind=g.kind, partitions=g.partitions)
    assert graph_key(changed) != graph_key(g)
    assert graph_key(random_graph(3, encoding="mge-reference")) != graph_key(g)
    assert graph_digest(tiny_graphset()) != graph_digest(tiny_graph())


def test_network_key_depends_on_every_field() -> None:
    base = network_key("resnet20", "ab" * 32, "mge", "mge")
    assert base == network_key("resnet20", "ab" * 32, "mge", "mge") and is_graph_key(base)
    others = {network_key("conv6", "ab" * 32, "mge", "mge"),
              network_key("resnet20", "cd" * 32, "mge", "mge"),
              network_key("resnet20", "ab" * 32, "mge-reference", "mge"),
              network_key("resnet20", "ab" * 32, "mge", "mge-reference")}
    assert base not in others and len(others) == 4


def test_uid_ranges_are_31_bit_prefixes() -> None:
    lo, hi = uid_range("k1")
    assert hi - lo == 2**32 and lo == uid_base("k1") << 32 and 0 <= uid_base("k1") < 2**31
    assert hi <= 2**63 - 1


def test_tables_of_the_tiny_graph() -> None:
    key = "k" * 20
    t = build_tables(tiny_graph(), key)
    base = uid_base(key) << 32
    assert {k: v.num_rows for k, v in t.units.items()} == {"InputPixel": 4, "ConvUnit": 3,
                                                           "Neuron": 2}
    assert t.layers.column("name").to_pylist() == ["input", "conv1", "fc"]
    assert t.layers.column("shape").to_pylist() == [[1, 2, 2], [3, 1, 1], [2, 1, 1]]
    assert t.channels.column("key").to_pylist() == [f"{key}:0:0", f"{key}:1:0", f"{key}:1:1",
                                                    f"{key}:1:2"]
    conv = t.in_channel["ConvUnit"]
    assert conv.column("from").to_pylist() == [base + 4, base + 5, base + 6]
    assert conv.column("to").to_pylist() == [f"{key}:1:0", f"{key}:1:1", f"{key}:1:2"]
    pix = t.units["InputPixel"].to_pydict()
    assert (pix["row"], pix["col"], pix["channel"]) == ([0, 0, 1, 1], [0, 1, 0, 1], [0] * 4)
    assert t.in_layer["Neuron"].column("to").to_pylist() == [f"{key}:2", f"{key}:2"]
    assert t.in_layer["Channel"].column("to").to_pylist() == [f"{key}:0"] + [f"{key}:1"] * 3
    blocks = {(b.from_label, b.to_label): b.table.to_pydict() for b in t.edges}
    assert set(blocks) == {("InputPixel", "ConvUnit"), ("ConvUnit", "Neuron"),
                           ("InputPixel", "Neuron")}
    assert blocks[("InputPixel", "Neuron")]["eid"] == [6]
    assert blocks[("ConvUnit", "Neuron")]["w"] == [3.0, 0.25, 4.0]
    assert (t.n_nodes, t.n_edges) == (9, 7)


def test_tables_of_a_graph_set_are_bge_nodes() -> None:
    t = build_tables(tiny_graphset(), "g" * 20)
    assert list(t.units) == ["BgeNode"] and t.units["BgeNode"].num_rows == 8
    assert t.units["BgeNode"].column("graph").to_pylist() == [0] * 5 + [1] * 3
    assert t.edges[0].table.column("eid").to_pylist() == [0, 1, 2, 3, 4]
    base = uid_base("g" * 20) << 32
    assert t.edges[0].table.column("from").to_pylist()[3:] == [base + 5, base + 6]


def test_flavour_parameters() -> None:
    assert flavour_params("mge", [4, 3, 2]) == {
        "sink_nodes": {"below": 7, "offset": 0}, "source_nodes": {"first": 4, "offset": 0},
        "removable_out": {"below": 7}, "removable_in": {"above": 3}}
    assert flavour_params("mge-reference", [4, 3, 2]) == {
        "sink_nodes": {"below": 9, "offset": 2}, "source_nodes": {"first": 0, "offset": 4},
        "removable_out": {"below": 6}, "removable_in": {"above": 4}}


def test_compare_engines_tolerances() -> None:
    a = {"sink_nodes": 3, "one_hop": 1.5, "spectral_gap": 2.0, "motifs": 1.0, "k_core": np.nan}
    assert compare_engines(a, dict(a, motifs=9.0, spectral_gap=2.0 * (1 + 5e-7))) == []
    bad = compare_engines(a, dict(a, sink_nodes=4, one_hop=1.5 * (1 + 1e-8), spectral_gap=2.1))
    assert [m.name for m in bad] == ["sink_nodes", "one_hop", "spectral_gap"]
    assert "exact" in str(bad[0])


@pytest.mark.parametrize("seed", range(3))
def test_permuted_edges_give_the_same_tables_up_to_order(seed: int) -> None:
    g = random_graph(seed)
    a, b = build_tables(g, "x" * 20), build_tables(_permuted(g, seed), "x" * 20)
    assert [(x.from_label, x.to_label) for x in a.edges] == \
        [(x.from_label, x.to_label) for x in b.edges]
    for x, y in zip(a.edges, b.edges, strict=True):
        ka = sorted(zip(*(x.table.column(c).to_pylist() for c in ("from", "to", "w")),
                        strict=True))
        kb = sorted(zip(*(y.table.column(c).to_pylist() for c in ("from", "to", "w")),
                        strict=True))
        assert ka == kb
