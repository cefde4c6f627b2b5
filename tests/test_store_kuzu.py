"""The embedded (Kùzu) store for real: the reference fixtures, its own behaviour, and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_fixtures import random_graph, same_graph, tiny_graph
from typer.testing import CliRunner

import mgedb.cli.store  # noqa: F401  (registers the store commands)
from mgedb.cli import app
from mgedb.errors import (
    BackendUnavailable,
    QueryError,
    QueryTimeout,
    ReadOnlyViolation,
    StoreIntegrityError,
)
from mgedb.graph import Graph, save_graph
from mgedb.metrics import compute_mge_metrics
from mgedb.store import compare_engines, network_key, open_store
from mgedb.store.keys import graph_key
from mgedb.store.kuzu_store import KuzuStore

# reference-metrics.csv column -> raw metric name
_CSV = {"n_nodes": "n_nodes", "n_edges": "n_edges", "sink_nodes": "sink_nodes",
        "source_nodes": "source_nodes", "disconnected_nodes": "disconnected_nodes",
        "removable_out_edges": "removable_out", "removable_in_edges": "removable_in",
        "1-hop": "one_hop", "2-hop": "two_hop", "strenght": "strength", "k-core": "k_core",
        "cut-edges": "cut_edges", "cut-nodes": "cut_nodes",
        "connected_components": "n_components",
        "avg_connected_components": "mean_component_size", "spectral-gap": "spectral_gap",
        "spectral-radius": "spectral_radius"}
_FAST = ["sink_nodes", "source_nodes", "disconnected_nodes", "removable_out", "removable_in",
         "one_hop", "strength", "n_components", "mean_component_size"]


def _fixture(reference_dir: Path, tag: str) -> tuple[Graph, dict[str, float]]:
    z = np.load(reference_dir / f"{tag}.npz")
    g = Graph.from_edges(z["src"], z["dst"], z["weight"], z["dimension"],
                         encoding="mge-reference")
    csv = pd.read_csv(reference_dir / "reference-metrics.csv")
    row = csv[csv["model"] == tag.split("-er-")[0]].iloc[0]
    return g, {raw: float(row[col]) for col, raw in _CSV.items()}


def _check_against_reference(got: dict[str, float], ref: dict[str, float]) -> None:
    for name, value in got.items():
        if name == "spectral_gap":  # float32 ARPACK: the reference meets 2e-5 between runs
            assert value == pytest.approx(ref[name], rel=2e-5)
        elif name == "spectral_radius":
            assert value == pytest.approx(ref[name], rel=1e-9)
        else:
            assert value == pytest.approx(ref[name], rel=1e-12, abs=0), name


def test_resnet20_fixture_fast_metrics_equal_the_reference(reference_dir: Path,
                                                           tmp_path: Path) -> None:
    """The published ResNet-20 graph (1.2 M edges): ingest, then the fast database metrics.
    (All metrics, and CONV-6: the slow tests below.)"""
    g, ref = _fixture(reference_dir, "Resnet-20-er-0.98-seed0")
    with KuzuStore(tmp_path / "db") as store:
        key = store.ingest(g)
        got = store.compute_metrics(key, only=_FAST)
        # components: the array engine (Ladybug's ALGO extension cannot be installed offline)
        assert {m for m in got if got.provenance[m] != "db"} == {"n_components",
                                                                 "mean_component_size"}
        assert {got.provenance[m] for m in ("n_components", "mean_component_size")} == {"array"}
        _check_against_reference(got, ref)


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["Resnet-20-er-0.98-seed0", "CONV-6-er-0.98-seed0"])
def test_reference_fixtures_all_metrics_db_equals_array_and_reference(
        reference_dir: Path, tmp_path: Path, tag: str) -> None:
    g, ref = _fixture(reference_dir, tag)
    with KuzuStore(tmp_path / "db") as store:
        key = store.ingest(g)
        db = store.compute_metrics(key)
        array = compute_mge_metrics(g, seed=0)
    assert compare_engines(db, array) == []
    if tag.startswith("CONV-6"):  # |λ|₁ ≈ |λ|₃: compare the gap absolutely (fixtures README)
        assert db.pop("spectral_gap") == pytest.approx(ref.pop("spectral_gap"), abs=1e-4)
    _check_against_reference(db, ref)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), reference=st.booleans(), n_parts=st.integers(1, 5))
def test_db_engine_equals_array_engine_on_random_graphs(tmp_path: Path, seed: int,
                                                        reference: bool, n_parts: int) -> None:
    g = random_graph(seed, encoding="mge-reference" if reference else "mge", n_parts=n_parts)
    with KuzuStore(tmp_path / "hyp") as store:
        key = store.ingest(g)
        assert compare_engines(store.compute_metrics(key), compute_mge_metrics(g)) == []
        assert same_graph(store.read_graph(key), g)


def test_batched_copies_store_the_same_graph(tmp_path: Path) -> None:
    g = random_graph(11)
    seen: list[tuple[str, int, int]] = []
    with KuzuStore(tmp_path / "a") as a, KuzuStore(tmp_path / "b") as b:
        ka = a.ingest(g, batch_size=3, progress=lambda *x: seen.append(x))
        kb = b.ingest(g)
        assert same_graph(a.read_graph(ka), b.read_graph(kb))
        assert a.compute_metrics(ka) == b.compute_metrics(kb)
    edges = [done for stage, done, total in seen if stage == "edges"]
    assert edges[0] == 0 and edges[-1] == g.n_edges and edges == sorted(edges)
    assert len(edges) > 3


def test_records_with_all_nan_numeric_columns(tmp_path: Path) -> None:
    """An all-NaN float column (no dense accuracy anywhere) is still DOUBLE, not STRING: the
    records are written, read back as NaN, and a later real value lands in the same column."""
    rec = pd.DataFrame({
        "key": ["t/a", "t/b"], "source": ["test", "test"], "model": ["m1", "m2"],
        "dataset": ["d", "d"], "pruner": [None, None], "sparsity": [0.9, 0.98],
        "seed": [0, 1], "accuracy": [np.nan, np.nan], "dense_accuracy": [np.nan, np.nan],
        "nodes": [100, 200], "edges": [1000, 2000],
        "r-out": [np.nan, np.nan], "k-core": [1.0, 2.0],
    })
    assert rec["dense_accuracy"].dtype == np.float64
    with KuzuStore(tmp_path / "db") as s:
        assert s.write_records(rec) == 2
        back = s.read_records(source="test").set_index("key")
        assert back["dense_accuracy"].dtype == np.float64
        assert back["dense_accuracy"].isna().all() and back["accuracy"].isna().all()
        assert back["r-out"].isna().all()
        assert back.loc["t/a", "sparsity"] == 0.9 and back.loc["t/b", "k-core"] == 2.0
        assert back.loc["t/b", "seed"] == 1 and back.loc["t/b", "edges"] == 2000
        assert back["pruner"].isna().all()
        nulls = s.query("MATCH (g:Network) WHERE g.dense_accuracy IS NULL RETURN count(g) AS n")
        assert int(nulls["n"].iloc[0]) == 2  # stored as typed nulls, not as strings
        s.write_records(rec.iloc[:1].assign(dense_accuracy=[0.95]))
        again = s.read_records(source="test").set_index("key")
        assert again.loc["t/a", "dense_accuracy"] == 0.95
        assert math.isnan(again.loc["t/b", "dense_accuracy"])


def test_read_only_store(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="no embedded store"):
        KuzuStore(tmp_path / "none", read_only=True)
    with KuzuStore(tmp_path / "db") as s:
        key = s.ingest(tiny_graph())
    with KuzuStore(tmp_path / "db", read_only=True) as ro:
        assert ro.has_network(key)
        with pytest.raises(ReadOnlyViolation):
            ro.query("MATCH (g:Network) SET g.model = 'x'")
        with pytest.raises(ReadOnlyViolation):
            ro.query("MATCH (g:Network) SET g.model = 'x'", write=True)
        with pytest.raises(ReadOnlyViolation):
            ro.ingest(random_graph(2))


def test_adhoc_query_guards(tmp_path: Path) -> None:
    with KuzuStore(tmp_path / "db") as s:
        s.ingest(tiny_graph())
        with pytest.raises(QueryError, match="one statement"):
            s.query("MATCH (n:Layer) RETURN n.key; MATCH (n:Layer) RETURN n.key")
        with pytest.raises(ReadOnlyViolation, match="transaction control"):
            s.query("COMMIT")
        with pytest.raises(QueryError, match="rejected"):
            s.query("MATCH (n:Nope) RETURN n")
        slow = ("UNWIND range(1, 3000) AS a UNWIND range(1, 3000) AS b WITH a, b "
                "WHERE (a * b) % 7 = 3 RETURN count(*) AS c")
        with pytest.raises(QueryTimeout, match="--timeout"):
            s.query(slow, timeout=0.005)
        assert int(s.query("MATCH (l:Layer) RETURN count(l) AS c").iloc[0]["c"]) == 3
        df = s.query("MATCH (u:Neuron) RETURN u.idx AS idx ORDER BY idx")
        assert df["idx"].tolist() == [7, 8]


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "db"
    code = ("import sys, time; from mgedb.store.kuzu_store import KuzuStore; "
            f"s = KuzuStore({str(path)!r}); print('open', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(BackendUnavailable, match="in use by another process"):
            KuzuStore(path)
    finally:
        holder.communicate("", timeout=30)


def test_uid_prefix_clash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mgedb.store.base as base

    monkeypatch.setattr(base, "uid_base", lambda key: 7)
    with KuzuStore(tmp_path / "db") as s:
        s.ingest(tiny_graph())
        with pytest.raises(StoreIntegrityError, match="share a uid prefix"):
            s.ingest(random_graph(5))


def test_open_store_selects_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGEDB_DB", str(tmp_path / "env-db"))
    monkeypatch.delenv("MGEDB_STORE", raising=False)
    with open_store() as s:
        assert s.kind == "embedded" and s.location == str(tmp_path / "env-db")
    monkeypatch.setenv("MGEDB_STORE", "sqlite")
    with pytest.raises(BackendUnavailable, match="unknown store 'sqlite'"):
        open_store()
    monkeypatch.setenv("MGEDB_STORE", "neo4j")
    monkeypatch.setenv("NEO4J_URI", "bolt://127.0.0.1:1")
    monkeypatch.setenv("NEO4J_PASSWORD", "pw-not-shown")
    with pytest.raises(BackendUnavailable, match=r"bolt://127\.0\.0\.1:1") as info:
        open_store()
    assert "pw-not-shown" not in str(info.value)


# -- the command line ---------------------------------------------------------------------------
def _cli(*args: str, **env: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"MGEDB_STORE": "embedded", **env})
    return result


def test_cli_ingest_metrics_query_rm_end_to_end(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    gfile = tmp_path / "tiny.npz"
    save_graph(gfile, tiny_graph())
    r = _cli("ingest-graph", str(gfile), "--db", db, "-f", "json")
    assert r.exit_code == 0, r.output
    key = json.loads(r.stdout)["key"]
    assert key == graph_key(tiny_graph())
    assert _cli("ingest-graph", str(gfile), "--db", db, "-f", "json").exit_code == 0  # no-op
    ls = json.loads(_cli("ls", "--db", db, "-f", "json").stdout)
    assert [(n["key"], n["complete"], n["n_edges"]) for n in ls] == [(key, True, 7)]
    # metrics: database engine vs array engine, from the library (the CLI command is the lead's)
    with KuzuStore(tmp_path / "db") as s:
        assert compare_engines(s.compute_metrics(key), compute_mge_metrics(tiny_graph())) == []
    q = _cli("query", "MATCH (u:ConvUnit {network: $k}) RETURN u.idx AS idx ORDER BY idx",
             "--param", f'k="{key}"', "--db", db, "-f", "csv")
    assert q.exit_code == 0, q.output
    assert q.stdout.splitlines() == ["idx", "4", "5", "6"]
    qfile = tmp_path / "q.cypher"
    qfile.write_text("MATCH (l:Layer {network: $k}) RETURN l.name AS name ORDER BY l.position")
    q = _cli("query", "--file", str(qfile), "-p", f"k={key}", "--db", db, "-f", "json")
    assert [r["name"] for r in json.loads(q.stdout)] == ["input", "conv1", "fc"]
    q = _cli("query", "--named", "metrics/n_edges", "-p", f"key={key}", "--db", db, "-f", "csv")
    assert q.stdout.splitlines() == ["value", "7"]
    bad = _cli("query", "MATCH (g:Network) SET g.model = 'x'", "--db", db)
    assert bad.exit_code == 2 and "--write" in bad.output
    ok = _cli("query", "MATCH (g:Network) SET g.model = 'x' RETURN g.model AS m", "--write",
              "--db", db, "-f", "csv")
    assert ok.exit_code == 0 and ok.stdout.splitlines() == ["m", "x"]
    rm = _cli("rm", key, "--db", db)
    assert rm.exit_code == 0 and f"deleted {key}" in rm.output
    assert json.loads(_cli("ls", "--db", db, "-f", "json").stdout) == []
    missing = _cli("rm", key, "--db", db)
    assert missing.exit_code == 2 and "mgedb ls" in missing.output


def test_cli_lists_and_removes_incomplete_networks(tmp_path: Path) -> None:
    db = tmp_path / "db"
    g = tiny_graph()
    with KuzuStore(db) as s:
        s._begin(graph_key(g), s._network_props(graph_key(g), g, {}, False))
    r = _cli("ls", "--db", str(db))
    assert r.exit_code == 0 and "incomplete" in r.output
    assert _cli("rm", "--incomplete", "--db", str(db)).exit_code == 0
    assert json.loads(_cli("ls", "--db", str(db), "-f", "json").stdout) == []


def test_cli_metrics_only_ingest(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    gfile = tmp_path / "tiny.npz"
    save_graph(gfile, tiny_graph())
    r = _cli("ingest-graph", str(gfile), "--metrics-only", "--db", db, "-f", "json")
    assert r.exit_code == 0, r.output
    key = json.loads(r.stdout)["key"]
    with KuzuStore(tmp_path / "db") as s:
        assert s.network(key).kind == "metrics"
        stored = s.get_metrics(key)
    array = compute_mge_metrics(tiny_graph())
    assert stored.keys() == array.keys()
    assert compare_engines(stored, array) == []


def test_cli_ingest_checkpoint(reference_dir: Path, tmp_path: Path) -> None:
    ckpt = reference_dir / "Resnet-20-er-0.98-seed0.pt"
    db = str(tmp_path / "db")
    r = _cli("ingest", str(ckpt), "--model", "resnet20", "--encoding", "mge-reference",
             "--db", db, "-f", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    from mgedb.checkpoint import file_digest

    assert out["key"] == network_key("resnet20", file_digest(ckpt), "mge-reference",
                                     "mge-reference")
    assert (out["n_nodes"], out["n_edges"]) == (191_894, 1_244_886)
    with KuzuStore(tmp_path / "db") as s:
        info = s.network(out["key"])
        assert info.props["model"] == "resnet20" and info.props["classes"] == 10
        assert info.flavour == "mge-reference"


def test_cli_neo4j_check_without_a_server() -> None:
    r = _cli("neo4j", "check", NEO4J_URI="bolt://127.0.0.1:1", NEO4J_PASSWORD="pw-x")
    assert r.exit_code == 2
    assert "cannot reach Neo4j at bolt://127.0.0.1:1" in r.output and "pw-x" not in r.output
