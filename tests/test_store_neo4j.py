"""The Neo4j backend without a server: a recording query runner checks the exact query names,
parameters, batches and transaction boundaries; errors are mapped to one-line MgedbErrors.

(The same backend against a live server: tests/test_store_suite.py, marked ``neo4j``.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from store_fixtures import tiny_graph

from mgedb.errors import (
    BackendUnavailable,
    GdsNotInstalled,
    QueryError,
    QueryParameterError,
    QueryTimeout,
    ReadOnlyViolation,
    UnknownQuery,
)
from mgedb.store.keys import graph_key, uid_base
from mgedb.store.neo4j_store import DriverRunner, Neo4jStore, _map_error, neo4j_settings, safe_uri
from mgedb.store.queries import registry
from mgedb.store.recording import RecordingRunner
from mgedb.store.tables import graph_counts

KEY = graph_key(tiny_graph())
#: what the database answers when the tiny graph is intact (its counts, recounted)
_PAIRS = [{"src": 0, "dst": 1, "n": 3}, {"src": 1, "dst": 2, "n": 3}, {"src": 0, "dst": 2, "n": 1}]
COUNTS: dict[str, Any] = {
    "network/count_units": [{"partition": 0, "n": 4}, {"partition": 1, "n": 3},
                            {"partition": 2, "n": 2}],
    "network/count_edges_out": _PAIRS, "network/count_edges_in": _PAIRS}
_RECOUNT = [("read", "network/count_units"), ("read", "network/count_edges_out"),
            ("read", "network/count_edges_in")]


def _net(complete: bool = True, **extra: Any) -> dict[str, Any]:
    row = {"key": KEY, "kind": "mge", "complete": complete, "encoding": "mge", "flavour": "mge",
           "dimension": [4, 3, 2], "n_nodes": 9, "n_edges": 7, "layout": None,
           "counts": json.dumps(graph_counts(tiny_graph()))}
    return {**row, **extra}


def _rows(call_params: dict[str, Any]) -> int:
    return len(call_params["rows"] if "rows" in call_params else call_params["s"])


def test_ingest_batches_each_in_its_own_write_transaction() -> None:
    runner = RecordingRunner(COUNTS)
    store = Neo4jStore(runner, batch_size=3)
    assert store.ingest(tiny_graph()) == KEY
    txs = runner.transactions()
    assert all(len(tx) == 1 for tx in txs)  # one statement per transaction
    assert [(c.access, c.name) for c in runner.calls] == [
        ("read", "network/get"),
        ("read", "network/uid_clash"),
        ("write", "network/begin"),
        ("write", "ingest/layers"),
        ("write", "ingest/channels"), ("write", "ingest/channels"),
        ("write", "ingest/input_pixels"), ("write", "ingest/input_pixels"),
        ("write", "ingest/conv_units"),
        ("write", "ingest/neurons"),
        ("write", "ingest/edges"), ("write", "ingest/edges"), ("write", "ingest/edges"),
        *_RECOUNT,  # complete only once the database holds what was loaded
        ("write", "network/complete"),
    ]
    assert [_rows(c.params) for c in runner.named("ingest/edges")] == [3, 3, 1]
    assert [_rows(c.params) for c in runner.named("ingest/input_pixels")] == [3, 1]
    begin = runner.named("network/begin")[0].params
    assert begin["key"] == KEY and begin["kind"] == "mge" and begin["model"] == "tiny"
    assert begin["uid_base"] == uid_base(KEY) and begin["dimension"] == [4, 3, 2]
    assert json.loads(begin["counts"]) == {"units": {"0": 4, "1": 3, "2": 2},
                                           "edges": {"0>1": 3, "0>2": 1, "1>2": 3}}
    assert (begin["n_nodes"], begin["n_edges"]) == (9, 7)
    assert set(begin) == registry().get("network/begin").params
    base = uid_base(KEY) << 32
    edges = [r for c in runner.named("ingest/edges")
             for r in zip(*(c.params[k] for k in "stwke"), strict=True)]
    assert {(s - base, t - base, w, k, e) for s, t, w, k, e in edges} == {
        (0, 4, 0.5, 0, 0), (1, 4, 1.0, 0, 1), (2, 5, 2.0, 0, 2), (4, 7, 3.0, 1, 3),
        (4, 8, 0.25, 1, 4), (6, 8, 4.0, 1, 5), (0, 7, 1.0, 2, 6)}
    pix = runner.named("ingest/input_pixels")[0].params["rows"][0]
    assert pix == {"uid": base, "partition": 0, "idx": 0, "channel": 0, "row": 0, "col": 0}
    assert runner.named("ingest/neurons")[0].params["rows"][1]["idx"] == 8
    layers = runner.named("ingest/layers")[0].params
    assert layers["key"] == KEY and [r["name"] for r in layers["rows"]] == ["input", "conv1", "fc"]
    assert runner.named("network/complete")[0].params == {"key": KEY}


def test_reingest_of_a_complete_network_only_reads_and_verifies() -> None:
    runner = RecordingRunner({"network/get": [_net()], **COUNTS})
    assert Neo4jStore(runner).ingest(tiny_graph()) == KEY
    assert runner.names() == ["network/get"] + [n for _, n in _RECOUNT]


def test_an_incomplete_network_is_deleted_in_batches_then_ingested() -> None:
    units = [2, 1, 0]
    gets: list[list[dict[str, Any]]] = [[_net(complete=False)], [_net(complete=False)]]
    runner = RecordingRunner({
        "network/get": lambda p: gets.pop(0) if gets else [],
        "network/delete_units": lambda p: [{"deleted": units.pop(0)}],
        "network/delete_parts": [{"deleted": 0}], **COUNTS,
    })
    Neo4jStore(runner, batch_size=100).ingest(tiny_graph())
    names = runner.names()
    assert names[:8] == ["network/get", "network/get", "network/incomplete",
                         "network/delete_units", "network/delete_units", "network/delete_units",
                         "network/delete_parts", "network/delete"]
    assert names[-1] == "network/complete"
    assert runner.named("network/delete_units")[0].params == {"key": KEY, "limit": 50_000}


def test_a_failed_ingest_removes_what_it_wrote() -> None:
    runner = RecordingRunner(
        {"network/get": lambda p: [_net(complete=False)] if runner.named("network/begin") else [],
         "network/delete_units": [{"deleted": 0}], "network/delete_parts": [{"deleted": 0}]},
        errors={"ingest/edges": QueryError("boom")})
    with pytest.raises(QueryError, match="boom"):
        Neo4jStore(runner).ingest(tiny_graph())
    names = runner.names()
    assert "network/complete" not in names
    assert names[-3:] == ["network/delete_units", "network/delete_parts", "network/delete"]


def _metric_responses(gds: bool = True) -> dict[str, Any]:
    r: dict[str, Any] = {
        "network/get": [_net()],
        "metrics/n_nodes": [{"value": 9}], "metrics/n_edges": [{"value": 7}],
        "metrics/sink_nodes": [{"value": 1}], "metrics/source_nodes": [{"value": 1}],
        "metrics/disconnected_nodes": [{"value": 1}], "metrics/removable_out": [{"value": 1}],
        "metrics/removable_in": [{"value": 1}], "metrics/out_pairs": [{"value": 7}],
        "metrics/two_step_pairs": lambda p: [{"value": [4, 0, 0][p["partition"]]}],
        "metrics/two_step_direct_pairs": lambda p: [{"value": [1, 0, 0][p["partition"]]}],
        "metrics/weight_sum": [{"value": 11.75}],
        "gds/project_network": [{"graph": "g", "nodes": 9, "relationships": 7}],
        "gds/k_core_sum": [{"value": 11}], "gds/component_count": [{"value": 3}],
        "gds/bridge_count": [{"value": 4}], "gds/articulation_point_count": [{"value": 2}],
    }
    if gds:
        r["gds/version"] = [{"version": "2.13.2"}]
    return r


def test_compute_metrics_runs_the_queries_and_gds_in_order() -> None:
    runner = RecordingRunner(_metric_responses())
    store = Neo4jStore(runner)
    names = ["sink_nodes", "source_nodes", "removable_out", "removable_in", "one_hop", "two_hop",
             "strength", "k_core", "n_components", "mean_component_size", "cut_edges",
             "cut_nodes"]
    got = store.compute_metrics(KEY, only=names)
    assert got == pytest.approx({
        "n_nodes": 9, "n_edges": 7, "sink_nodes": 1, "source_nodes": 1, "removable_out": 1,
        "removable_in": 1, "one_hop": 16 / 9, "two_hop": 19 / 9, "strength": 23.5 / 9,
        "k_core": 11 / 9, "n_components": 3, "mean_component_size": 3.0, "cut_edges": 4,
        "cut_nodes": 2})
    assert got.provenance["k_core"] == "db:gds" and got.provenance["sink_nodes"] == "db"
    assert all(c.access == "read" for c in runner.calls)
    p = {c.name: c.params for c in runner.calls}
    # clean flavour bounds for dimension [4, 3, 2]
    assert p["metrics/sink_nodes"] == {"key": KEY, "below": 7, "offset": 0}
    assert p["metrics/source_nodes"] == {"key": KEY, "first": 4, "offset": 0}
    assert p["metrics/removable_out"] == {"key": KEY, "below": 7}
    assert p["metrics/removable_in"] == {"key": KEY, "above": 3}
    assert [c.params["partition"] for c in runner.named("metrics/two_step_pairs")] == [0, 1, 2]
    gds = [c for c in runner.calls if c.name.startswith("gds/")]
    graph = gds[1].params["graph"]
    assert [c.name for c in gds] == ["gds/version", "gds/project_network", "gds/k_core_sum",
                                     "gds/component_count", "gds/bridge_count",
                                     "gds/articulation_point_count", "gds/drop_graph"]
    assert gds[1].params == {"key": KEY, "graph": graph} and graph.startswith(f"mgedb-{KEY}-")
    assert all(c.params == {"graph": graph} for c in gds[2:])
    store.compute_metrics(KEY, only=["k_core"])
    assert runner.names().count("gds/version") == 1  # probed once per store


def test_reference_flavour_passes_the_reference_bounds() -> None:
    resp = _metric_responses()
    resp["network/get"] = [_net(flavour="mge-reference", encoding="mge-reference")]
    runner = RecordingRunner(resp)
    Neo4jStore(runner).compute_metrics(KEY, only=["sink_nodes", "source_nodes",
                                                  "removable_out", "removable_in"])
    p = {c.name: c.params for c in runner.calls}
    assert p["metrics/sink_nodes"] == {"key": KEY, "below": 9, "offset": 2}
    assert p["metrics/source_nodes"] == {"key": KEY, "first": 0, "offset": 4}
    assert p["metrics/removable_out"] == {"key": KEY, "below": 6}
    assert p["metrics/removable_in"] == {"key": KEY, "above": 4}


def test_projection_is_dropped_when_an_algorithm_fails() -> None:
    runner = RecordingRunner(_metric_responses(), errors={"gds/bridge_count": QueryError("x")})
    with pytest.raises(QueryError):
        Neo4jStore(runner).compute_metrics(KEY, only=["cut_edges"])
    assert runner.names()[-1] == "gds/drop_graph"


def test_missing_gds_is_a_clear_error_before_any_projection() -> None:
    err = QueryError("There is no procedure with the name `gds.version`")
    err.code = "Neo.ClientError.Procedure.ProcedureNotFound"  # type: ignore[attr-defined]
    runner = RecordingRunner(_metric_responses(gds=False), errors={"gds/version": err})
    store = Neo4jStore(runner, uri="bolt://db.example:7687")
    with pytest.raises(GdsNotInstalled, match=r"k_core need the Neo4j Graph Data Science plugin"
                                              r".*bolt://db.example:7687.*compose"):
        store.compute_metrics(KEY, only=["k_core", "sink_nodes"])
    assert "gds/project_network" not in runner.names()
    # metrics that need no GDS still work
    assert store.compute_metrics(KEY, only=["sink_nodes"])["sink_nodes"] == 1


def test_schema_ddl_runs_statement_by_statement_in_autocommit() -> None:
    runner = RecordingRunner()
    Neo4jStore(runner).ensure_schema()
    q = registry().get("schema/constraints")
    assert [(c.access, c.name, c.text) for c in runner.calls] == [
        ("autocommit", "schema/constraints", t) for t in q.statements]
    assert any("REQUIRE u.uid IS UNIQUE" in t for t in q.statements)


def test_adhoc_queries_read_unless_write() -> None:
    runner = RecordingRunner({"adhoc": [{"n": 1}]})
    store = Neo4jStore(runner)
    assert store.query("MATCH (n) RETURN count(n) AS n").iloc[0]["n"] == 1
    store.query("CREATE (:X)", write=True, timeout=2.0)
    assert [(c.access, c.name) for c in runner.calls] == [("read", "adhoc"), ("write", "adhoc")]


def test_named_queries_check_parameters_before_the_server() -> None:
    runner = RecordingRunner()
    store = Neo4jStore(runner)
    with pytest.raises(QueryParameterError, match=r"missing \$offset"):
        store.run_query("metrics/sink_nodes", {"key": KEY, "below": 3})
    with pytest.raises(UnknownQuery):
        store.run_query("metrics/nope", {})
    assert runner.calls == []


def test_records_are_upserted_in_batches() -> None:
    import pandas as pd

    runner = RecordingRunner()
    store = Neo4jStore(runner, batch_size=2)
    rec = pd.DataFrame({"key": ["a", "b", "c"], "source": "s", "model": "m", "dataset": "d",
                        "pruner": "er", "sparsity": 0.9, "seed": 0, "accuracy": 0.5,
                        "dense_accuracy": 0.6, "nodes": 10, "edges": 20, "r-out": [1.0, 2.0, 3.0]})
    assert store.write_records(rec) == 3
    assert runner.names() == ["network/list", "records/upsert_networks", "records/delete_metrics",
                              "metrics/create", "metrics/create"]
    assert runner.named("records/delete_metrics")[0].params == {"keys": ["a", "b", "c"]}
    rows = [r for c in runner.named("metrics/create") for r in c.params["rows"]]
    assert [(r["key"], r["name"], r["value"]) for r in rows] == [
        ("a#r-out", "r-out", 1.0), ("b#r-out", "r-out", 2.0), ("c#r-out", "r-out", 3.0)]


def test_huge_graphs_can_load_edges_with_load_csv(tmp_path: Path) -> None:
    seen: list[str] = []

    def load(params: dict[str, Any]) -> list[dict[str, Any]]:
        name = params["url"].removeprefix("file:///")
        seen.append((tmp_path / name).read_text())
        return []

    runner = RecordingRunner({"ingest/edges_csv": load, **COUNTS})
    Neo4jStore(runner, import_dir=tmp_path, batch_size=500).ingest(tiny_graph())
    calls = runner.named("ingest/edges_csv")
    assert [c.access for c in calls] == ["autocommit"] * len(calls)
    assert all(c.params["batch"] == 500 for c in calls)
    assert "ingest/edges" not in runner.names()
    lines = [ln for text in seen for ln in text.splitlines()[1:]]
    assert len(lines) == 7 and seen[0].splitlines()[0] == '"s","t","w","k","e"'
    assert list(tmp_path.iterdir()) == []  # CSV files removed


def test_check_reports_version_gds_and_what_is_missing() -> None:
    runner = RecordingRunner({"server/components": [
        {"name": "Neo4j Kernel", "versions": ["5.26.0"], "edition": "community"}]},
        errors={"gds/version": QueryError("There is no procedure with the name `gds.version`")})
    report = Neo4jStore(runner).check()
    assert report["version"] == "5.26.0" and report["gds"] == "missing"
    assert len(report["missing"]) == 1 and "Graph Data Science" in report["missing"][0]


def test_driver_errors_become_one_line_errors_without_secrets() -> None:
    from neo4j import exceptions as ne

    def err(code: str, msg: str) -> Exception:
        return ne.Neo4jError._hydrate_neo4j(code=code, message=msg)

    uri = "bolt://alice:hunter2@db:7687"
    assert isinstance(_map_error(err("Neo.ClientError.Statement.AccessMode", "no"), uri, "a"),
                      ReadOnlyViolation)
    assert isinstance(_map_error(err("Neo.ClientError.Transaction.TransactionTimedOut", "t"),
                                 uri, "a"), QueryTimeout)
    e = _map_error(err("Neo.ClientError.Statement.SyntaxError", "Invalid input 'X'"), uri, "a")
    assert isinstance(e, QueryError) and "Invalid input" in str(e)
    auth = _map_error(ne.AuthError("bad"), uri, "alice")
    assert isinstance(auth, BackendUnavailable) and "hunter2" not in str(auth)
    assert "bolt://db:7687" in str(auth) and "NEO4J_PASSWORD" in str(auth)
    assert safe_uri(uri) == "bolt://db:7687"


def test_unreachable_server_names_the_uri_and_the_fix_not_the_password() -> None:
    with pytest.raises(BackendUnavailable) as info:
        DriverRunner("bolt://127.0.0.1:1", "neo4j", "s3cret-pw")
    msg = str(info.value)
    assert "bolt://127.0.0.1:1" in msg and "docker compose" in msg and "s3cret" not in msg
    assert "\n" not in msg


def test_settings_come_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "bolt://env:7687")
    monkeypatch.setenv("NEO4J_USER", "envuser")
    monkeypatch.setenv("NEO4J_PASSWORD", "pw")
    monkeypatch.delenv("NEO4J_DATABASE", raising=False)
    assert neo4j_settings() == {"uri": "bolt://env:7687", "user": "envuser", "password": "pw",
                                "database": None}
    assert neo4j_settings("bolt://arg:1", database="g")["uri"] == "bolt://arg:1"
    assert neo4j_settings(database="g")["database"] == "g"


def test_layout_json_travels_in_begin() -> None:
    runner = RecordingRunner(COUNTS)
    Neo4jStore(runner).ingest(tiny_graph())
    layout = json.loads(runner.named("network/begin")[0].params["layout"])
    assert [p["name"] for p in layout["graphs"][0]["partitions"]] == ["input", "conv1", "fc"]


def test_compose_file_runs_neo4j_5_with_gds() -> None:
    root = Path(__file__).resolve().parent.parent / "docker"
    text = (root / "compose.yml").read_text()
    settings = dict(re.findall(r"^\s+(NEO4J_\w+): (.+)$", text, flags=re.M))
    assert re.search(r"^\s+image: neo4j:5", text, flags=re.M)
    assert json.loads(settings["NEO4J_PLUGINS"].strip("'")) == ["graph-data-science"]
    assert "${NEO4J_PASSWORD" in settings["NEO4J_AUTH"] and "env_file:" not in text
    assert re.search(r"healthcheck:\n(.*\n)*\s+test: .*gds\.version", text)
    assert '"127.0.0.1:7687:7687"' in text
    example = (root / ".env.example").read_text()
    assert {"NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"} <= {
        line.split("=")[0] for line in example.splitlines() if "=" in line}
