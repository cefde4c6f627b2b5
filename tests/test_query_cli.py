"""``mgedb query`` bad input (issue #11, item 4): parameters the backend cannot bind, a string
property given a number, an unbound ``$param``, an empty query, an ``http://`` Neo4j URI — each
one line ``Error: …`` naming the parameter, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_fixtures import tiny_graph
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.graph import save_graph

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("query")
    path = root / "db"
    res = runner.invoke(app, ["ingest-graph", str(save_graph(root / "g.npz", tiny_graph())),
                              "--db", str(path)])
    assert res.exit_code == 0, res.output
    return str(path)


@pytest.mark.parametrize(("args", "message"), [
    (["RETURN $missing AS x"], "the query uses $missing but no value is given; pass --param "
                               "missing=VALUE"),
    (["RETURN $k AS x", "-p", 'k=[1,"a"]'], "--param k: a list mixing int and str values"),
    (["RETURN $k AS x", "-p", "k=99999999999999999999999"], "--param k: an integer beyond 64"),
    (["MATCH (g:Network) WHERE g.key = $k RETURN g.key", "-p", "k=123"], "quote strings"),
    ([" "], "the query is empty"),
])
def test_bad_query_parameters_are_one_line_errors(db: str, args: list[str],
                                                  message: str) -> None:
    res = runner.invoke(app, ["query", *args, "--db", db])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and message in res.output.replace("\n", " ")
    assert res.output.count("\n") <= 2


def test_a_bound_string_parameter_works(db: str) -> None:
    res = runner.invoke(app, ["query", "MATCH (g:Network) WHERE g.key = $k RETURN g.n_edges AS e",
                              "-p", 'k="nope"', "--db", db, "-f", "csv"])
    assert res.exit_code == 0, res.output


def test_an_http_uri_names_the_bolt_scheme(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("NEO4J_PASSWORD", "secret")
    res = runner.invoke(app, ["ls", "--store", "neo4j", "--uri", "http://u:secret@localhost:7474"])
    assert res.exit_code == 2
    assert res.output.startswith("Error: http://localhost:7474 is Neo4j's HTTP address")
    assert "bolt://" in res.output and "secret" not in res.output


# -- bounded, streaming reads (issue #11, item 5) -------------------------------------------------
_RANGE = "UNWIND range(1, 250) AS i RETURN i, i * 2 AS twice"


def test_a_table_shows_the_first_rows_and_says_how_many_more(db: str) -> None:
    res = runner.invoke(app, ["query", _RANGE, "--db", db])
    assert res.exit_code == 0, res.output
    assert "│ 100 │" in res.output and "│ 101 │" not in res.output
    assert "150 more rows not shown; use --limit N (0: all) or --format csv" in res.output
    res = runner.invoke(app, ["query", _RANGE, "--db", db, "--limit", "0"])
    assert "│ 250 │" in res.output and "more rows" not in res.output


@pytest.mark.parametrize(("fmt", "expected"), [
    ("csv", "i,twice\n1,2\n2,4\n3,6\n"),
    ("jsonl", '{"i": 1, "twice": 2}\n{"i": 2, "twice": 4}\n{"i": 3, "twice": 6}\n'),
    ("json",
     '[\n  {"i": 1, "twice": 2},\n  {"i": 2, "twice": 4},\n  {"i": 3, "twice": 6}\n]\n'),
])
def test_csv_and_json_stream_every_row_and_honour_limit(db: str, fmt: str,
                                                        expected: str) -> None:
    full = runner.invoke(app, ["query", _RANGE, "--db", db, "-f", fmt])
    assert full.exit_code == 0, full.output
    assert len(full.stdout.strip().splitlines()) == 250 + {"csv": 1, "jsonl": 0, "json": 2}[fmt]
    cut = runner.invoke(app, ["query", _RANGE, "--db", db, "-f", fmt, "--limit", "3"])
    assert cut.exit_code == 0 and cut.stdout == expected
    assert "247 more rows not printed (--limit 3)" in cut.stderr


def test_no_rows_keep_their_columns(db: str) -> None:
    res = runner.invoke(app, ["query", "UNWIND range(1, 0) AS i RETURN i AS empty", "--db", db,
                              "-f", "csv"])
    assert res.exit_code == 0 and res.output == "empty\n"
    res = runner.invoke(app, ["query", "UNWIND range(1, 0) AS i RETURN i", "--db", db, "-f",
                              "json"])
    assert res.output == "[]\n"


def test_the_timeout_bounds_fetching_too(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mgedb.cli.store as cli_store

    clock = iter(range(0, 10_000, 40))  # 40 s pass between two reads of the clock
    monkeypatch.setattr(cli_store.time, "monotonic", lambda: float(next(clock)))
    res = runner.invoke(app, ["query", _RANGE, "--db", db, "-f", "csv", "--timeout", "100"])
    assert res.exit_code == 2
    assert ("Error: the query's rows took longer than --timeout 100 s to fetch; raise "
            "--timeout, add --limit or narrow the query") in res.output
    assert res.output.count("\n1") <= 3  # stopped after a few rows, not all 250


@pytest.mark.parametrize("text", [
    "EXPORT DATABASE '/tmp/mgedb-should-not-exist'",
    "IMPORT DATABASE '/tmp/mgedb-should-not-exist'",
    "INSTALL algo",
    "LOAD EXTENSION algo",
    "COPY (MATCH (n:Network) RETURN n.key) TO '/tmp/mgedb-should-not-exist.csv'",
    "LOAD FROM '/etc/hostname' RETURN *",
    "LOAD CSV FROM 'http://example.com/x.csv' AS row RETURN row",
    "ATTACH '/tmp/other.lbug' AS other (dbtype lbug)",
    "CALL apoc.export.csv.all('x.csv', {})",
])
def test_statements_that_reach_files_or_the_network_need_write(db: str, text: str) -> None:
    res = runner.invoke(app, ["query", text, "--db", db])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: '") and "such statements run only with --write" in (
        res.output.replace("\n", " "))
    assert res.output.count("\n") <= 2
    assert not Path("/tmp/mgedb-should-not-exist").exists()
    assert not Path("/tmp/mgedb-should-not-exist.csv").exists()


def test_names_and_properties_that_merely_look_like_keywords_pass(db: str) -> None:
    res = runner.invoke(app, ["query", "MATCH (g:Network) RETURN 'COPY' AS `load`, g.key AS k",
                              "--db", db, "-f", "csv"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("load,k\nCOPY,")


def test_a_named_write_query_needs_write(db: str) -> None:
    res = runner.invoke(app, ["query", "--named", "network/delete_parts", "-p", "key=x", "-p",
                              "limit=1", "--db", db])
    assert res.exit_code == 2
    assert res.output.startswith("Error: --named network/delete_parts is a write query; pass "
                                 "--write")
