"""Backend-agnostic store tests: the same suite runs on every GraphStore.

The ``store`` fixture is parametrised over the embedded store (Kùzu, always) and ``neo4j_store``
(a live Neo4j 5 server, marked ``neo4j``: skipped unless ``NEO4J_URI`` is set — ``make test``
starts a throw-away Neo4j 5.26 + GDS 2.13 where Java and Maven are installed, see
tools/neo4j/server.py; docker/README.md has the other ways). ``neo4j_store`` is built
from the ``neo4j_connection`` fixture (uri/user/password/database from the ``NEO4J_*`` variables):
override ``neo4j_connection`` in a conftest to point the very same suite at another Bolt server
(e.g. an ArcadeDB stand-in). On a live server the suite only touches networks it creates and
deletes them afterwards.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from store_fixtures import (
    TINY_METRICS,
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
from mgedb.graph import GraphSet
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
        "(l:Layer)-[:OF]->(g:Network) RETURN c.index AS ch, l.index AS layer, l.name AS name, "
        "g.key AS net", {"key": key}).iloc[0]
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
