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
