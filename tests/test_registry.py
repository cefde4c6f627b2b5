"""The metric registry drives both engines: the registry, the query files and the record schema
name the same metrics, and a metric the database cannot compute is never silently left out."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import mgedb.metrics.registry as reg
from mgedb.errors import MetricError, MgedbError
from mgedb.graph import Graph
from mgedb.metrics import compute_mge_metrics
from mgedb.metrics.engine import TASKS
from mgedb.metrics.registry import DB_QUERIES, METRICS, MGE_METRICS, published_order, spec
from mgedb.predict.records import MGE_METRICS as RECORD_METRICS
from mgedb.predict.records import RECORD_COLUMNS
from mgedb.store.neo4j_store import Neo4jStore
from mgedb.store.queries import registry
from mgedb.store.recording import RecordingRunner
from mgedb.store.records import RECORD_META

#: The store's own Metric-node queries (not metric values).
METRIC_NODE_QUERIES = {"metrics/create", "metrics/delete_keys", "metrics/get"}


def test_every_spec_has_an_array_task_and_a_db_path_or_is_array_only() -> None:
    for m in METRICS:
        assert m.array in (*TASKS, "size") and (m.array == "size") == (m.family == "size"), m.name
        assert (m.db is None) == m.array_only, m.name
        assert m.kind in ("integer", "float"), m.name


def test_the_query_files_are_the_registry_s_queries() -> None:
    files = {n for n in registry().names("neo4j") if n.startswith("metrics/")}
    assert files - METRIC_NODE_QUERIES == DB_QUERIES
    for q in DB_QUERIES:
        for dialect in ("neo4j", "kuzu"):
            assert registry().get(q, dialect).returns == ("value",), (q, dialect)


def test_the_record_schema_is_the_registry_s_metrics() -> None:
    assert tuple(spec(n).column for n in published_order()) == RECORD_METRICS
    assert set(RECORD_METRICS) == {spec(m).column for m in MGE_METRICS}
    assert (*RECORD_META, *RECORD_METRICS) == RECORD_COLUMNS


def _store() -> Neo4jStore:
    net = {"key": "k", "kind": "mge", "complete": True, "encoding": "mge", "flavour": "mge",
           "dimension": [4, 3, 2], "n_nodes": 9, "n_edges": 7, "layout": None}
    return Neo4jStore(RecordingRunner({"network/get": [net], "metrics/n_nodes": [{"value": 9}],
                                       "metrics/n_edges": [{"value": 7}],
                                       "metrics/weight_sum": [{"value": 11.75}]}))


def test_a_metric_without_a_db_path_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(spec("strength"), db=None)
    monkeypatch.setitem(reg._BY_NAME, "strength", broken)
    with pytest.raises(MgedbError, match=r"strength: no database query .* not marked array_only"):
        _store().compute_metrics("k", only=["strength"])
    monkeypatch.setitem(reg._BY_NAME, "strength", dataclasses.replace(broken, array_only=True))
    called: list[Any] = []
    monkeypatch.setattr(Neo4jStore, "read_graph", lambda self, key: called.append(key))
    with pytest.raises(Exception, match="graph set, not an MGE"):  # went to the array engine
        _store().compute_metrics("k", only=["strength"])
    assert called == ["k"]


def test_the_db_engine_follows_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    s = spec("strength")
    assert s.db is not None
    doubled = dataclasses.replace(s, db=dataclasses.replace(
        s.db, combine=lambda v, n: 4.0 * v["metrics/weight_sum"] / n))
    monkeypatch.setitem(reg._BY_NAME, "strength", doubled)
    assert _store().compute_metrics("k", only=["strength"])["strength"] == 47.0 / 9


def test_every_metric_is_computed_by_its_array_task(monkeypatch: pytest.MonkeyPatch) -> None:
    g = Graph.from_edges([0, 1], [1, 2], [1.0, 2.0], [1, 1, 1])
    assert set(compute_mge_metrics(g, seed=0)) == {m.name for m in METRICS}
    monkeypatch.setitem(reg._BY_NAME, "k_core", dataclasses.replace(spec("k_core"), array="x"))
    monkeypatch.setattr("mgedb.metrics.engine._GRAPH",
                        tuple(m for m in reg.metrics_of_task("graph") if m != "k_core"))
    with pytest.raises(MetricError, match="k_core: no array engine task computes it"):
        compute_mge_metrics(g, only=["k_core"])
