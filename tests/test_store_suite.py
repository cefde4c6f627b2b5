"""Backend-agnostic store tests: the same suite runs on every GraphStore.

The ``store`` fixture is parametrised over the embedded store (Kùzu, always) and ``neo4j_store``
(a live Neo4j 5 server, marked ``neo4j``: skipped unless ``NEO4J_URI`` is set — ``make test``
starts a throw-away Neo4j 5.26 + GDS 2.13 where Java and Maven are installed, see
tools/neo4j/server.py; docker/README.md has the other ways). ``neo4j_store`` is built
from the ``neo4j_connection`` fixture (uri/user/password/database from the ``NEO4J_*`` variables):
override ``neo4j_connection`` in a conftest to point the very same suite at another Bolt server.
On a live server the suite only touches networks it creates and
deletes them afterwards.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from store_fixtures import (
    TINY_METRICS,
    chain_graph,
    random_graph,
    same_graph,
    tiny_graph,
    tiny_graphset,
)

from mgedb.errors import (
    GdsNotInstalled,
    ReadOnlyViolation,
    StoreIntegrityError,
    UnknownNetwork,
)
from mgedb.graph import Graph, GraphSet
from mgedb.metrics import compute_mge_metrics
from mgedb.store import compare_engines
from mgedb.store.base import BaseStore
from mgedb.store.keys import graph_key

_ALGO = ("k_core", "n_components", "mean_component_size", "cut_edges", "cut_nodes")


@pytest.fixture(scope="session")
def neo4j_connection() -> dict[str, Any]:
    """How to reach the live server (override this fixture to test another Bolt server)."""
    if not os.environ.get("NEO4J_URI"):
        pytest.skip("NEO4J_URI unset: no Neo4j 5 server to test against (`make test` starts one "
                    "where Java 17/21 and Maven are installed; see docker/README.md)")
    from mgedb.store.neo4j_store import neo4j_settings

    return neo4j_settings()


@pytest.fixture
def neo4j_store(neo4j_connection: dict[str, Any]) -> Iterator[BaseStore]:
    from mgedb.store.neo4j_store import Neo4jStore

    store = Neo4jStore.connect(**neo4j_connection)
    store.ensure_schema()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    """A store; networks the test creates are removed afterwards (live servers are shared)."""
    if request.param == "embedded":
        from mgedb.store.kuzu_store import KuzuStore

        s: BaseStore = KuzuStore(tmp_path / "store")
    else:
        s = request.getfixturevalue("neo4j_store")
    before = set(s.list_networks()["key"])
    try:
        yield s
    finally:
        if request.param != "embedded":
            for key in set(s.list_networks()["key"]) - before:
                s.delete(key)
        else:
            s.close()


def _has_gds(store: BaseStore) -> bool:
    gds = getattr(store, "gds_version", None)
    return gds is None or gds() is not None


def _counts(store: BaseStore, key: str) -> dict[str, int]:
    """Nodes of a network by label (+ its edges), through portable Cypher."""
    out = {}
    for label in ("Layer", "Channel", "Metric", "InputPixel", "ConvUnit", "Neuron", "BgeNode"):
        df = store.query(f"MATCH (n:{label}) WHERE n.network = $key RETURN count(n) AS c",
                         {"key": key})
        out[label] = int(df.iloc[0]["c"])
    df = store.query("MATCH (a)-[r:W]->() WHERE a.network = $key RETURN count(r) AS c",
                     {"key": key})
    out["W"] = int(df.iloc[0]["c"])
    return out


def test_ingest_stores_the_multipartite_graph(store: BaseStore) -> None:
    g = tiny_graph()
    key = store.ingest(g, {"model": "tiny", "seed": 3})
    assert key == graph_key(g)
    assert _counts(store, key) == {"Layer": 3, "Channel": 4, "Metric": 0, "InputPixel": 4,
                                   "ConvUnit": 3, "Neuron": 2, "BgeNode": 0, "W": 7}
    info = store.network(key)
    assert (info.kind, info.complete, info.encoding, info.flavour) == ("mge", True, "mge", "mge")
    assert info.dimension == (4, 3, 2) and (info.n_nodes, info.n_edges) == (9, 7)
    assert info.props["model"] == "tiny" and info.props["seed"] == 3
    # conv unit 4 = channel 0 of partition 1, wired through Channel and Layer to its Network
    row = store.query(
        "MATCH (u:ConvUnit {network: $key, idx: 4})-[:IN_CHANNEL]->(c:Channel)-[:IN_LAYER]->"
        "(l:Layer)-[:OF]->(g:Network) RETURN c.position AS ch, l.position AS layer, "
        "l.name AS name, g.key AS net", {"key": key}).iloc[0]
    assert (int(row["ch"]), int(row["layer"]), row["name"], row["net"]) == (0, 1, "conv1", key)
    w = store.query("MATCH (a {idx: 6})-[r:W]->(b {idx: 8}) WHERE a.network = $key "
                    "RETURN r.w AS w, r.kind AS kind", {"key": key}).iloc[0]
    assert float(w["w"]) == 4.0 and int(w["kind"]) == 1


def test_reingest_is_a_no_op(store: BaseStore) -> None:
    g = tiny_graph()
    key = store.ingest(g)
    before = _counts(store, key)
    created = store.network(key).props["created"]
    assert store.ingest(g) == key
    assert _counts(store, key) == before
    assert store.network(key).props["created"] == created
    assert list(store.list_networks()["key"]).count(key) == 1


def test_delete_removes_exactly_one_network(store: BaseStore) -> None:
    a = store.ingest(tiny_graph())
    b = store.ingest(random_graph(4))
    store.set_metrics(a, {"n_nodes": 9, "sink_nodes": 1})
    kept = _counts(store, b)
    assert store.delete(a) is True
    assert _counts(store, a) == dict.fromkeys(kept, 0)
    assert _counts(store, b) == kept
    assert not store.has_network(a) and store.has_network(b)
    assert store.delete(a) is False
    with pytest.raises(UnknownNetwork, match="mgedb ls"):
        store.network(a)


@pytest.mark.parametrize("encoding", ["mge", "mge-reference"])
def test_metrics_of_a_hand_computed_graph(store: BaseStore, encoding: str) -> None:
    key = store.ingest(tiny_graph(encoding))
    names = None if _has_gds(store) else [m for m in TINY_METRICS[encoding] if m not in _ALGO
                                          and m not in ("n_nodes", "n_edges")]
    got = store.compute_metrics(key, only=names)
    for name, value in TINY_METRICS[encoding].items():
        if name in got:
            assert got[name] == pytest.approx(value, rel=1e-12), name
    assert got.provenance["sink_nodes"] == "db" and got.provenance["two_hop"] == "db"
    assert "motifs" not in got


@pytest.mark.parametrize("seed", range(6))
def test_database_and_array_engine_agree(store: BaseStore, seed: int) -> None:
    if not _has_gds(store):
        pytest.skip("GDS plugin not present on the server")
    g = random_graph(seed, encoding="mge-reference" if seed % 2 else "mge")
    key = store.ingest(g)
    db = store.compute_metrics(key)
    array = compute_mge_metrics(g)
    assert compare_engines(db, array) == []
    assert set(db) == set(array) - {"motifs"}


def test_gds_missing_is_a_clear_error(store: BaseStore) -> None:
    if _has_gds(store):
        pytest.skip("needs a Neo4j server without GDS")
    key = store.ingest(tiny_graph())
    with pytest.raises(GdsNotInstalled, match="Graph Data Science"):
        store.compute_metrics(key, only=["k_core"])


def test_read_graph_round_trips(store: BaseStore) -> None:
    g = random_graph(7, encoding="mge-reference")
    assert same_graph(store.read_graph(store.ingest(g)), g)
    gs = tiny_graphset()
    back = store.read_graph(store.ingest(gs))
    assert isinstance(back, GraphSet) and back.encoding == "rolled" and len(back) == 2
    assert same_graph(back, gs) and back.meta == gs.meta
    with pytest.raises(StoreIntegrityError, match="MGE"):
        store.compute_metrics(graph_key(gs))


def test_metrics_only_network_has_no_units(store: BaseStore) -> None:
    g = tiny_graph()
    values = compute_mge_metrics(g, only=["sink_nodes", "one_hop"])
    key = store.ingest(g, metrics=values, metrics_only=True)
    assert store.network(key).kind == "metrics"
    assert _counts(store, key)["W"] == 0 and _counts(store, key)["ConvUnit"] == 0
    assert store.get_metrics(key) == pytest.approx(values)
    with pytest.raises(StoreIntegrityError, match="no stored graph"):
        store.read_graph(key)


def test_set_metrics_upserts_with_normalised_values(store: BaseStore) -> None:
    key = store.ingest(tiny_graph())
    store.set_metrics(key, {"n_nodes": 9, "n_edges": 7, "sink_nodes": 1, "one_hop": 2.0})
    store.set_metrics(key, {"sink_nodes": 3})
    assert store.get_metrics(key) == {"n_nodes": 9, "n_edges": 7, "sink_nodes": 3,
                                      "one_hop": 2.0}
    rows = store.query("MATCH (g:Network {key: $key})-[:HAS_METRIC]->(m:Metric) "
                       "RETURN m.name AS name, m.normalised AS norm", {"key": key})
    norm = dict(zip(rows["name"], rows["norm"], strict=True))
    assert norm["one_hop"] == pytest.approx(2.0 / 7) and norm["n_nodes"] == 9
    assert math.isnan(norm["sink_nodes"]) or norm["sink_nodes"] is None  # no n_nodes in that call
    with pytest.raises(UnknownNetwork):
        store.set_metrics("0" * 20, {"sink_nodes": 1})


def test_interrupted_ingest_leaves_no_complete_network(store: BaseStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    g = tiny_graph()
    real = type(store)._load_tables

    def boom(self: BaseStore, *a: Any, **k: Any) -> None:
        real(self, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(type(store), "_load_tables", boom)
    with pytest.raises(KeyboardInterrupt):
        store.ingest(g)
    monkeypatch.undo()
    key = graph_key(g)
    assert not store.has_network(key, complete=False)
    assert _counts(store, key)["W"] == 0


def test_killed_ingest_is_reported_and_replaced(store: BaseStore) -> None:
    g = tiny_graph()
    key = graph_key(g)
    props = store._network_props(key, g, {}, False)
    store._begin(key, props)  # what a killed process leaves: a Network with complete = false
    rows = store.list_networks()
    assert not bool(rows.loc[rows["key"] == key, "complete"].iloc[0])
    assert store.has_network(key, complete=False) and not store.has_network(key)
    with pytest.raises(StoreIntegrityError, match="incomplete"):
        store.compute_metrics(key)
    assert store.ingest(g) == key
    assert store.has_network(key) and _counts(store, key)["W"] == 7


def test_read_only_query_refuses_writes(store: BaseStore) -> None:
    key = store.ingest(tiny_graph())
    with pytest.raises(ReadOnlyViolation, match="--write"):
        store.query("MATCH (g:Network {key: $key}) SET g.model = 'x'", {"key": key})
    assert store.network(key).props["model"] == "tiny"
    store.query("MATCH (g:Network {key: $key}) SET g.model = 'x'", {"key": key}, write=True)
    assert store.network(key).props["model"] == "x"


def test_records_round_trip(store: BaseStore) -> None:
    rec = pd.DataFrame({
        "key": ["t/a", "t/b"], "source": ["test", "test"], "model": ["m1", "m2"],
        "dataset": ["d", "d"], "pruner": ["er", "snip"], "sparsity": [0.9, 0.98],
        "seed": [0, 1], "accuracy": [0.91, np.nan], "dense_accuracy": [0.95, 0.95],
        "nodes": [100, 200], "edges": [1000, 2000],
        "r-out": [0.1, 0.2], "2-hop_nei": [3.5, np.nan], "k-core": [1.0, 2.0],
    })
    layers = pd.DataFrame({"key": ["t/a", "t/a"], "encoding": ["rolled", "rolled"],
                           "layer_id": [0, 1], "layer_name": ["conv1", "fc"],
                           "density": [0.1, 0.2], "spectral_gap": [1.5, np.nan],
                           "degree_bound": [0.3, 0.4]})
    assert store.write_records(rec, layers) == 2
    assert store.write_records(rec, layers) == 2  # idempotent
    back = store.read_records(source="test")
    assert list(back.columns) == list(rec.columns)
    pd.testing.assert_frame_equal(back.reset_index(drop=True), rec, check_dtype=False)
    lay = store.read_layers(source="test")
    assert list(lay.columns) == list(layers.columns)
    pd.testing.assert_frame_equal(lay, layers, check_dtype=False)
    assert store.read_records(source="nobody").empty
    rec2 = rec.drop(columns=["k-core"]).assign(**{"r-out": [0.5, 0.6]})
    store.write_records(rec2.iloc[:1])
    again = store.read_records(source="test").set_index("key")
    assert again.loc["t/a", "r-out"] == 0.5 and math.isnan(again.loc["t/a", "k-core"])
    assert again.loc["t/b", "k-core"] == 2.0


# -- delete never touches another network (issue #11) ---------------------------------------------
_UNIT_LABELS = ("InputPixel", "ConvUnit", "Neuron")


def _pair_counts(store: BaseStore, key: str) -> dict[str, int]:
    """Units per (label, partition) and W edges per (partition, partition), counted from the
    source side and from the target side, through portable Cypher (independent of the store's
    own counting)."""
    out: dict[str, int] = {}
    for label in _UNIT_LABELS:
        rows = store.query(f"MATCH (u:{label}) WHERE u.network = $key "
                           "RETURN u.partition AS p, count(u) AS n", {"key": key})
        out.update({f"{label}[{int(p)}]": int(n) for p, n in zip(rows["p"], rows["n"],
                                                                  strict=True)})
    for side in ("a", "b"):
        rows = store.query(f"MATCH (a)-[r:W]->(b) WHERE {side}.network = $key "
                           "RETURN a.partition AS p, b.partition AS q, count(r) AS n",
                           {"key": key})
        out.update({f"W{side}[{int(p)},{int(q)}]": int(n)
                    for p, q, n in zip(rows["p"], rows["q"], rows["n"], strict=True)})
    return out


def _expected_pair_counts(g: Graph) -> dict[str, int]:
    from mgedb.store.tables import unit_label

    out = {f"{unit_label(p.kind)}[{i}]": p.size for i, p in enumerate(g.partitions)}
    for (p, q), n in g.edge_counts_by_partition_pair().items():
        out[f"Wa[{p},{q}]"] = out[f"Wb[{p},{q}]"] = n
    return out


@pytest.fixture
def reopenable(request: pytest.FixtureRequest, tmp_path: Path
               ) -> Iterator[Callable[[BaseStore | None], BaseStore]]:
    """``reopen(old)``: closes ``old`` (after a checkpoint) and opens the same store again; the
    embedded one with 1 or 2 threads (where Kùzu's COPY puts nodes depends on it)."""
    kind, threads = request.param[:2]
    opened: list[BaseStore] = []
    before: set[str] = set()

    def reopen(old: BaseStore | None) -> BaseStore:
        if old is not None:
            if kind == "embedded":
                old.query("CHECKPOINT", write=True)
            old.close()
        if kind == "embedded":
            from mgedb.store.kuzu_store import KuzuStore

            s: BaseStore = KuzuStore(tmp_path / "store", threads=threads)
        else:
            from mgedb.store.neo4j_store import Neo4jStore

            s = Neo4jStore.connect(**request.getfixturevalue("neo4j_connection"))
            s.ensure_schema()
        if not opened:
            before.update(s.list_networks()["key"])
        opened.append(s)
        return s

    yield reopen
    if kind != "embedded" and opened:  # a live server is shared: remove what the test left
        with contextlib.closing(reopen(None)) as s:
            for key in set(s.list_networks()["key"]) - before:
                s.delete(key)
    for s in opened:
        s.close()


# sizes of the networks, in ingest order (ConvUnit nodes; the other tables stay small): the
# 1,024 + 1 minimal trigger (a 1-node network deleted first, in the middle and last, between
# 1,024-node ones), and 1,024-node networks (one CSR region each) between networks that fill
# whole node groups: 263,168 ConvUnit nodes ≥ 2 × 131,072
_NODE_GROUPS = (1024, 130_048, 1024, 130_048, 1024)


_MINIMAL = (1, 1024, 1, 1024, 1)
_SLOW = pytest.mark.slow
_NEO4J = pytest.mark.neo4j


@pytest.mark.parametrize("reopenable", [
    pytest.param(("embedded", 1, _MINIMAL), id="embedded-1t-1024+1"),
    pytest.param(("embedded", 2, _MINIMAL), id="embedded-2t-1024+1"),
    pytest.param(("neo4j", 0, _MINIMAL), id="neo4j-1024+1", marks=_NEO4J),
    pytest.param(("embedded", 1, _NODE_GROUPS), id="embedded-1t-node-groups"),
    pytest.param(("embedded", 2, _NODE_GROUPS), id="embedded-2t-node-groups", marks=_SLOW),
    pytest.param(("neo4j", 0, _NODE_GROUPS), id="neo4j-node-groups", marks=[_NEO4J, _SLOW]),
], indirect=True)
def test_deleting_a_network_leaves_every_other_one_intact(
        reopenable: Callable[[BaseStore | None], BaseStore],
        request: pytest.FixtureRequest) -> None:
    """Delete the first, a middle and the last ingested network in turn; after each delete, after
    a checkpoint and after reopening, every other network has exactly its node counts per
    partition and its edge counts per partition pair."""
    sizes = request.node.callspec.params["reopenable"][2]
    store = reopenable(None)
    graphs = [chain_graph(n, seed=i) for i, n in enumerate(sizes)]
    keys = [store.ingest(g) for g in graphs]
    expected = {k: _expected_pair_counts(g) for k, g in zip(keys, graphs, strict=True)}
    for k in keys:
        assert _pair_counts(store, k) == expected[k]
    alive = list(keys)
    order = [alive[0], alive[len(alive) // 2], alive[-1]]  # first, middle, last
    for victim in order:
        position = alive.index(victim)
        assert store.delete(victim)
        alive.remove(victim)
        for when in ("after delete", "after checkpoint + reopen"):
            if when != "after delete":
                store = reopenable(store)
            assert not store.has_network(victim, complete=False)
            assert _pair_counts(store, victim) == {}, when
            for k in alive:
                assert _pair_counts(store, k) == expected[k], (
                    f"network {alive.index(k)} of {len(alive)} {when} deleting the one at "
                    f"position {position}")
                assert store.has_network(k)


def test_streamed_rows_keep_their_columns_and_file_statements_are_refused(
        store: BaseStore) -> None:
    """An empty result keeps its columns (Neo4j's used to come back with none); rows stream in
    order; a statement that reaches files or the network needs ``write``."""
    key = store.ingest(tiny_graph())
    text = "MATCH (u) WHERE u.network = $key AND u.partition = $p RETURN u.idx AS i ORDER BY i"
    with store.stream(text, {"key": key, "p": 7}) as r:
        assert r.columns == ["i"] and list(r.rows) == []
    assert list(store.query(text, {"key": key, "p": 7}).columns) == ["i"]
    with store.stream(text, {"key": key, "p": 1}) as r:
        assert [int(row[0]) for row in r.rows] == [4, 5, 6]
    for refused in ("LOAD CSV FROM 'file:///etc/hostname' AS row RETURN row",
                    "COPY Network FROM '/etc/hostname'"):
        with pytest.raises(ReadOnlyViolation, match="run only with --write"):
            store.query(refused)


# -- integrity counts (issue #11) ----------------------------------------------------------------
def test_verify_finds_a_lost_edge_and_reingest_replaces_the_network(store: BaseStore) -> None:
    g = tiny_graph()
    key = store.ingest(g)
    assert store.verify(key) == []
    store.query("MATCH (a)-[r:W]->(b) WHERE a.network = $key AND a.idx = 6 DELETE r",
                {"key": key}, write=True)  # conv 6 → neuron 8: one edge of the pair 1>2
    assert store.verify(key) == ["edges 1>2: 2 stored, 3 recorded",
                                 "edges (from the target side) 1>2: 2 stored, 3 recorded"]
    assert store.has_network(key)  # still marked complete: only a recount can tell
    assert store.ingest(g) == key  # fails verification: replaced, not a silent no-op
    assert store.verify(key) == [] and _counts(store, key)["W"] == 7
    with pytest.raises(UnknownNetwork, match="mgedb ls"):
        store.verify("0" * 20)


def test_metrics_only_networks_verify_trivially(store: BaseStore) -> None:
    key = store.ingest(tiny_graph(), metrics={"sink_nodes": 1}, metrics_only=True)
    assert store.verify(key) == []


def test_an_interrupted_delete_leaves_the_network_incomplete(
        store: BaseStore, monkeypatch: pytest.MonkeyPatch) -> None:
    g = tiny_graph()
    key = store.ingest(g)
    other = store.ingest(random_graph(5))
    real = type(store)._write

    def killed(self: BaseStore, name: str, params: Any = None) -> Any:
        if name == "network/delete_parts":  # the units and edges are gone, the rest is not
            raise KeyboardInterrupt
        return real(self, name, params)

    monkeypatch.setattr(type(store), "_write", killed)
    with pytest.raises(KeyboardInterrupt):
        store.delete(key)
    monkeypatch.undo()
    assert not store.has_network(key) and store.has_network(key, complete=False)
    assert store.verify(other) == []
    assert store.ingest(g) == key and store.verify(key) == []
    assert _counts(store, key)["W"] == 7
