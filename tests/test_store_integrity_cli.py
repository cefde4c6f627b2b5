"""``mgedb verify``, ``ls --verify`` and ``mgedb migrate`` (a store written by Kùzu 0.11.3, as
older mgedb versions wrote it, made by a child process: kuzu and ladybug cannot share one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from store_fixtures import random_graph, tiny_graph
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.graph import save_graph
from mgedb.store.keys import graph_key

runner = CliRunner()
TESTS = Path(__file__).resolve().parent
SCHEMA = TESTS.parent / "cypher" / "kuzu" / "schema" / "tables.cypher"

# what mgedb <= 0.1 wrote: Kùzu 0.11.3, Layer/Channel.index, no Network.counts
_LEGACY = """
import sys
import kuzu
sys.path.insert(0, sys.argv[3])
from store_fixtures import random_graph, tiny_graph
from mgedb.store.keys import graph_key, uid_base
from mgedb.store.tables import build_tables, graph_layout

text = open(sys.argv[2], encoding="utf-8").read()
text = "\\n".join(x for x in text.splitlines() if not x.startswith("//"))
text = text.replace("position INT64", "index INT64").replace(" counts STRING,", "")
conn = kuzu.Connection(kuzu.Database(sys.argv[1]))
for statement in (x.strip() for x in text.split(";")):
    if statement:
        conn.execute(statement)
for g, cut in ((tiny_graph(), 0), (random_graph(4), 1)):  # the second lost an edge
    key = graph_key(g)
    t = build_tables(g, key)
    conn.execute("CREATE (:Network {key: $k, kind: 'mge', complete: true, uid_base: $b, "
                 "encoding: 'mge', flavour: 'mge', dimension: $d, n_nodes: $n, n_edges: $m, "
                 "layout: $l})", {"k": key, "b": uid_base(key), "d": [int(x) for x in
                 g.dimension], "n": g.n_nodes, "m": g.n_edges, "l": graph_layout(g)})
    layers = t.layers.rename_columns(["index" if c == "position" else c
                                      for c in t.layers.column_names])
    conn.execute("COPY Layer FROM layers")
    channels = t.channels.rename_columns(["index" if c == "position" else c
                                          for c in t.channels.column_names])
    if channels.num_rows:
        conn.execute("COPY Channel FROM channels")
    for label, rows in t.units.items():
        conn.execute(f"COPY {label} FROM rows")
    for i, block in enumerate(t.edges):
        rows = block.table.slice(0, block.table.num_rows - (cut if i == 0 else 0))
        if rows.num_rows:
            conn.execute(f"COPY W FROM rows (from='{block.from_label}', to='{block.to_label}')")
print(graph_key(tiny_graph()), graph_key(random_graph(4)))
"""


def _cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def test_verify_and_ls_verify_report_a_lost_edge(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    f = save_graph(tmp_path / "g.npz", tiny_graph())
    key = graph_key(tiny_graph())
    assert _cli("ingest-graph", str(f), "--db", db)[0] == 0
    code, out = _cli("verify", "--db", db, "-f", "csv")
    assert code == 0 and f"{key},True,ok,0" in out
    code, out = _cli("query", "MATCH (a)-[r:W]->() WHERE a.network = $k AND a.idx = 6 DELETE r",
                     "-p", f"k={key}", "--write", "--db", db)
    assert code == 0, out
    code, out = _cli("verify", key, "--db", db, "-f", "csv")
    assert code == 1 and "FAILED: edges 1>2: 2 stored, 3 recorded (+1 more)" in out
    assert "1 network(s) fail verification" in out
    code, out = _cli("ls", "--verify", "--db", db, "-f", "csv")
    assert code == 1 and "FAILED: edges 1>2" in out
    assert _cli("ingest-graph", str(f), "--db", db)[0] == 0  # replaces it
    assert _cli("verify", "--db", db)[0] == 0
    code, out = _cli("verify", "0" * 20, "--db", db)
    assert code == 2 and "Error: no network" in out


@pytest.fixture
def legacy_store(tmp_path: Path) -> tuple[Path, list[str]]:
    db = tmp_path / "old"
    db.mkdir()
    done = subprocess.run([sys.executable, "-c", _LEGACY, str(db / "graph.kuzu"), str(SCHEMA),
                           str(TESTS)], capture_output=True, text=True, check=False)
    if done.returncode and "No module named 'kuzu'" in done.stderr:
        pytest.skip("kuzu 0.11.3 is not installed: no old store to migrate")
    assert done.returncode == 0, done.stderr
    return db, done.stdout.split()


def test_an_old_store_is_refused_until_migrated(legacy_store: tuple[Path, list[str]]) -> None:
    db, (intact, damaged) = legacy_store
    code, out = _cli("ls", "--db", str(db))
    assert code == 2 and out.count("\n") == 1
    assert out.startswith("Error: the store at") and f"`mgedb migrate --db {db}`" in out
    code, out = _cli("migrate", "--db", str(db), "-f", "csv")
    assert code == 0, out
    assert "store,verified,marked incomplete,old file" in out and "graph.lbug,1,1," in out
    assert f"{damaged}: edges: 219 stored, 220 recorded" in out  # Kùzu had lost one
    assert (db / "graph.kuzu.pre-migrate").is_file() and not (db / "graph.kuzu").exists()
    code, out = _cli("ls", "--db", str(db), "-f", "csv")
    assert code == 0 and f"{intact},mge,True" in out and f"{damaged},mge,False" in out
    assert _cli("verify", intact, "--db", str(db))[0] == 0
    code, out = _cli("metrics", intact, "--db", str(db), "--engine", "db", "-f", "csv")
    assert code == 0, out
    # the damaged one: ingesting it again replaces it
    f = save_graph(db.parent / "r.npz", random_graph(4))
    assert _cli("ingest-graph", str(f), "--db", str(db))[0] == 0
    assert _cli("verify", "--db", str(db))[0] == 0
    code, out = _cli("migrate", "--db", str(db))
    assert code == 2 and "already current" in out
