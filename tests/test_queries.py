"""The query registry: every file loads, headers match bodies, bad files and calls fail early."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mgedb.errors import QueryFileError, QueryParameterError, UnknownQuery
from mgedb.metrics.registry import DB_QUERIES
from mgedb.store.queries import (
    QueryRegistry,
    cypher_parameters,
    registry,
    split_statements,
    strip_comments_and_strings,
)

STORE = Path(__file__).resolve().parent.parent / "mgedb" / "store"


def _registry(tmp_path: Path, files: dict[str, str]) -> QueryRegistry:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return QueryRegistry(tmp_path)


def test_every_shipped_file_loads_from_the_package() -> None:
    reg = registry()
    assert len(reg) >= 60
    for q in reg:
        assert q.params == cypher_parameters(q.text), q.path
        assert q.statements and q.description, q.path
        assert q.mode in ("read", "write", "schema")
    assert reg.get("metrics/sink_nodes").params == {"key", "below", "offset"}


def test_every_query_the_stores_run_exists_in_its_dialect() -> None:
    reg = registry()
    used = set()
    for path in STORE.glob("*.py"):
        used |= set(re.findall(r'"((?:network|ingest|metrics|graph|records|gds|algo|schema|'
                               r'server)/[a-z_]+)"', path.read_text()))
    used |= {f"metrics/{m}" for m in ("sink_nodes", "source_nodes", "disconnected_nodes",
                                      "removable_out", "removable_in")}  # built from names
    used |= DB_QUERIES  # the metric engine runs what the registry's specs name
    assert "metrics/out_pairs" in used
    for name in sorted(used):
        kuzu_only = name.startswith(("algo/", "schema/tables"))
        neo4j_only = name.startswith(("gds/", "ingest/", "server/", "schema/constraints")) or \
            name in ("metrics/create", "records/create_layer_metrics")
        if not kuzu_only:
            assert reg.get(name, "neo4j").name == name
        if not neo4j_only:
            assert reg.get(name, "kuzu").name == name


def test_kuzu_overrides_win_and_gds_is_neo4j_only() -> None:
    reg = registry()
    assert reg.get("metrics/n_nodes", "kuzu").path == "kuzu/metrics/n_nodes.cypher"
    assert ":Unit" not in reg.get("metrics/n_nodes", "kuzu").body
    assert reg.get("metrics/n_nodes", "neo4j").path == "metrics/n_nodes.cypher"
    assert reg.get("network/begin", "kuzu").path == "network/begin.cypher"  # portable
    with pytest.raises(UnknownQuery, match="GDS"):
        reg.get("gds/version", "kuzu")
    with pytest.raises(UnknownQuery, match="no query named 'schema/tables' for neo4j"):
        reg.get("schema/tables", "neo4j")
    assert "gds/version" not in reg.names("kuzu") and "schema/tables" in reg.names("kuzu")


def test_bind_checks_parameters() -> None:
    reg = registry()
    q, p = reg.bind("metrics/sink_nodes", {"key": "k", "below": 1, "offset": 0})
    assert p == {"key": "k", "below": 1, "offset": 0} and q.name == "metrics/sink_nodes"
    with pytest.raises(QueryParameterError, match=r"missing \$below, \$offset.*takes \$below, "
                                                  r"\$key, \$offset"):
        reg.bind("metrics/sink_nodes", {"key": "k"})
    with pytest.raises(QueryParameterError, match=r"unexpected \$extra"):
        reg.bind("metrics/n_nodes", {"key": "k", "extra": 1})
    with pytest.raises(UnknownQuery, match="no query named 'metrics/nope'"):
        reg.bind("metrics/nope")
    with pytest.raises(UnknownQuery, match="dialect"):
        reg.get("metrics/n_nodes", "sqlite")


def test_parameters_in_comments_and_strings_do_not_count() -> None:
    text = ("// uses $notme\nMATCH (n {a: '$nor_me', b: \"$nor\\\"this\"}) /* $x */\n"
            "WHERE n.`$y` = $real RETURN n")
    assert cypher_parameters(text) == {"real"}
    assert "$notme" not in strip_comments_and_strings(text)


def test_statements_split_on_semicolons_outside_strings() -> None:
    text = "// head\nCREATE (:A {s: 'a;b'});\n// between\nCREATE (:B) // c;\n;\n"
    assert split_statements(text) == ("CREATE (:A {s: 'a;b'})", "CREATE (:B) // c;")


HEAD = "// A query.\n// params: $key\n// returns: value\n"


@pytest.mark.parametrize(("text", "message"), [
    ("MATCH (n) RETURN n", "missing `// params:`"),
    ("// params: $key\nMATCH (n {k: $key}) RETURN n", "missing `// params:` or `// returns:`"),
    (HEAD + "MATCH (n {k: $key, j: $other}) RETURN n", r"uses undeclared \$other"),
    (HEAD + "MATCH (n) RETURN n", r"declares unused \$key"),
    (HEAD, "no query body"),
    (HEAD.replace("$key", "key") + "RETURN $key", "bad parameter 'key'"),
    (HEAD + "// mode: sometimes\nRETURN $key", "unknown mode 'sometimes'"),
])
def test_a_broken_file_fails_at_load_time_naming_it(tmp_path: Path, text: str,
                                                     message: str) -> None:
    with pytest.raises(QueryFileError, match=message) as info:
        _registry(tmp_path, {"metrics/bad.cypher": text, "metrics/good.cypher": HEAD +
                             "RETURN $key AS value"})
    assert str(info.value).startswith("metrics/bad.cypher:")


def test_a_good_file_parses(tmp_path: Path) -> None:
    reg = _registry(tmp_path, {
        "a/q.cypher": "// Purpose line.\n// More words.\n// params: $key, $n\n"
                      "// returns: value, other\n// mode: write\nMATCH (n {k: $key})\n"
                      "RETURN $n AS value, 1 AS other",
        "kuzu/a/q.cypher": "// Kùzu variant.\n// params: $key, $n\n// returns: value, other\n"
                           "RETURN $key AS value, $n AS other",
        "_private/skip.cypher": "not a query",
    })
    q = reg.get("a/q")
    assert (q.mode, q.returns, q.description) == ("write", ("value", "other"),
                                                  "Purpose line. More words.")
    assert q.body == "MATCH (n {k: $key})\nRETURN $n AS value, 1 AS other"
    assert reg.get("a/q", "kuzu").dialect == "kuzu"
    assert len(reg) == 2
