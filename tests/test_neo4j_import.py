"""The Neo4j import set (``mgedb neo4j import-set``) holds exactly what the Bolt ingest writes.

Each network is ingested through :class:`~mgedb.store.neo4j_store.Neo4jStore` on a recording
runner, and the nodes and relationships its recorded batches create (as the ingest/* queries
define them) are compared, property by property, with the nodes and relationships the import
set's CSV files declare (typed by their headers). The import into a real server:
tests/test_neo4j_live.py.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from store_fixtures import random_graph, tiny_graph, tiny_graphset
from typer.testing import CliRunner

import mgedb.cli.store  # noqa: F401  (registers the commands)
from mgedb.cli import app
from mgedb.errors import MgedbError, StoreIntegrityError
from mgedb.graph import Graph, GraphSet, save_graph
from mgedb.store.keys import graph_key
from mgedb.store.neo4j_import import MANIFEST, write_import_set
from mgedb.store.neo4j_store import Neo4jStore
from mgedb.store.recording import RecordingRunner
from mgedb.store.tables import graph_counts

Node = tuple[str, tuple[tuple[str, Any], ...]]  # (labels, sorted properties)
Rel = tuple[str, Any, Any, tuple[tuple[str, Any], ...]]  # (type, start key, end key, props)


def _props(d: dict[str, Any], drop: tuple[str, ...] = ()) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()
                        if v is not None and k not in drop))


def _bolt(graph: Graph | GraphSet, meta: dict[str, Any]) -> tuple[list[Node], list[Rel]]:
    """What the Bolt ingest creates, read off the batches it sends."""
    counts = graph_counts(graph)
    pairs = [{"src": int(k.split(">")[0]), "dst": int(k.split(">")[1]), "n": n}
             for k, n in counts["edges"].items()]
    runner = RecordingRunner({
        "network/count_units": [{"partition": int(p), "n": n}
                                for p, n in counts["units"].items()],
        "network/count_edges_out": pairs, "network/count_edges_in": pairs})
    key = Neo4jStore(runner, batch_size=4).ingest(graph, dict(meta))
    nodes: list[Node] = []
    rels: list[Rel] = []
    (begin,) = runner.named("network/begin")
    assert [c.params["key"] for c in runner.named("network/complete")] == [key]
    nodes.append(("Network", _props({**begin.params, "complete": True})))
    for c in runner.named("ingest/layers"):
        for r in c.params["rows"]:
            nodes.append(("Layer", _props({**r, "network": key})))
            rels.append(("OF", r["key"], key, ()))
    for c in runner.named("ingest/channels"):
        for r in c.params["rows"]:
            nodes.append(("Channel", _props({**r, "network": key})))
            rels.append(("IN_LAYER", r["key"], f"{key}:{r['layer']}", ()))
    for label, query in (("InputPixel", "input_pixels"), ("ConvUnit", "conv_units"),
                         ("Neuron", "neurons"), ("BgeNode", "bge_nodes")):
        for c in runner.named(f"ingest/{query}"):
            for r in c.params["rows"]:
                nodes.append((f"Unit:{label}", _props({**r, "network": key})))
                if label in ("InputPixel", "ConvUnit"):
                    rels.append(("IN_CHANNEL", r["uid"],
                                 f"{key}:{r['partition']}:{r['channel']}", ()))
                else:
                    layer = r["graph"] if label == "BgeNode" else r["partition"]
                    rels.append(("IN_LAYER", r["uid"], f"{key}:{layer}", ()))
    for c in runner.named("ingest/edges"):
        p = c.params
        for s, t, w, k, e in zip(p["s"], p["t"], p["w"], p["k"], p["e"], strict=True):
            rels.append(("W", s, t, _props({"w": w, "kind": k, "eid": e})))
    return nodes, rels


def _cell(text: str, typ: str) -> Any:
    if text == "":
        return None
    if typ == "long":
        return int(text)
    if typ == "double":
        return float(text)
    if typ == "boolean":
        return {"true": True, "false": False}[text]
    if typ == "long[]":
        return [int(x) for x in text.split(";")]
    assert typ == "string", typ
    return text


def _imported(directory: Path) -> tuple[list[Node], list[Rel]]:
    """What neo4j-admin import would create from the set: its files read by their headers."""
    args = json.loads((directory / MANIFEST).read_text())["args"]
    ids: dict[tuple[str, int], Any] = {}  # (id group, import id) -> key or uid
    nodes: list[Node] = []
    rels: list[tuple[str, str, str, int, int, tuple[tuple[str, Any], ...]]] = []
    for arg in args:
        if not arg.startswith(("--nodes=", "--relationships=")):
            continue
        option, what, files = arg.split("=", 2)
        header_file, data_file = files.split(",")
        header = (directory / header_file).read_text().strip().split(",")
        with open(directory / data_file, newline="") as f:
            for row in csv.reader(f):
                props: dict[str, Any] = {}
                special: dict[str, tuple[str, int]] = {}
                for h, text in zip(header, row, strict=True):
                    name, _, typ = h.partition(":")
                    if not name:  # :ID(G), :START_ID(G), :END_ID(G)
                        field, group = typ.rstrip(")").split("(")
                        special[field] = (group, int(text))
                    else:
                        props[name] = _cell(text, typ or "string")
                if option == "--nodes":
                    group, nid = special["ID"]
                    ids[(group, nid)] = props["uid"] if group == "Unit" else props["key"]
                    nodes.append((what, _props(props)))
                else:
                    (sg, si), (eg, ei) = special["START_ID"], special["END_ID"]
                    rels.append((what, sg, eg, si, ei, _props(props)))
    return nodes, [(t, ids[(sg, si)], ids[(eg, ei)], p) for t, sg, eg, si, ei, p in rels]


def test_import_set_holds_exactly_what_the_bolt_ingest_writes(tmp_path: Path) -> None:
    networks: list[tuple[Graph | GraphSet, dict[str, Any]]] = [
        (tiny_graph(), {"graph_file": "tiny.npz"}),
        (random_graph(7, encoding="mge-reference"), {"graph_file": "r7.npz", "model": "m"}),
        (tiny_graphset(), {}),
        (tiny_graph(), {"graph_file": "again.npz"}),  # the same network again: written once
    ]
    out = write_import_set(tmp_path / "set", networks)
    expected_nodes: list[Node] = []
    expected_rels: list[Rel] = []
    for graph, meta in networks[:3]:
        n, r = _bolt(graph, meta)
        expected_nodes += n
        expected_rels += r
    nodes, rels = _imported(tmp_path / "set")
    # the creation time is the only property that may differ between two writes
    def timeless(ns: list[Node]) -> Counter[Node]:
        return Counter((lab, tuple(p for p in props if p[0] != "created")) for lab, props in ns)

    assert Counter(lab for lab, _ in nodes) == Counter(lab for lab, _ in expected_nodes)
    assert Counter(t for t, *_ in rels) == Counter(t for t, *_ in expected_rels)
    assert timeless(nodes) == timeless(expected_nodes)
    assert Counter(rels) == Counter(expected_rels)
    assert out.keys == [graph_key(g) for g, _ in networks[:3]]
    assert out.n_edges == sum(
        g.n_edges for g in (networks[0][0], networks[1][0], *tiny_graphset().graphs))
    # a few exact rows: the tiny graph's first W edge and its network's completeness and counts
    key = graph_key(tiny_graph())
    g = tiny_graph()
    uid0 = next(dict(p)["uid"] for lab, p in nodes
                if lab == "Unit:InputPixel" and dict(p)["network"] == key and dict(p)["idx"] == 0)
    first_w = next(r for r in rels if r[0] == "W" and r[1] == uid0 and dict(r[3])["eid"] == 0)
    assert first_w[2] - uid0 == int(g.dst[0]) - int(g.src[0])
    assert dict(first_w[3])["w"] == float(g.weight[0])
    net = next(dict(p) for lab, p in nodes if lab == "Network" and dict(p)["key"] == key)
    assert net["complete"] is True and json.loads(net["counts"]) == graph_counts(g)
    assert json.loads(net["extra"]) == {"graph_file": "tiny.npz"}
    script = (tmp_path / "set" / "import.sh").read_text()
    assert "database import full \"${NEO4J_DATABASE:-neo4j}\"" in script
    assert all(a in script for a in out.args) and script.rstrip().endswith(
        "--overwrite-destination")


def test_import_set_refusals_leave_nothing(tmp_path: Path) -> None:
    target = tmp_path / "set"
    with pytest.raises(MgedbError, match="no networks"):
        write_import_set(target, [])
    assert list(tmp_path.iterdir()) == []  # nothing partial beside it either
    (target / "x").parent.mkdir()
    (target / "x").write_text("keep")
    with pytest.raises(MgedbError, match="not an empty directory"):
        write_import_set(target, [(tiny_graph(), {})])
    assert [p.name for p in target.iterdir()] == ["x"]
    with pytest.raises(StoreIntegrityError, match="uid prefix"):
        write_import_set(tmp_path / "c", _clashing())
    assert not (tmp_path / "c").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def _clashing() -> list[tuple[Graph, dict[str, Any]]]:
    """Two networks under keys whose uid prefixes (31-bit hashes) are equal."""
    from mgedb.store.keys import uid_base

    assert uid_base("k17421") == uid_base("k137735")
    return [(tiny_graph(), {"key": "k17421"}), (random_graph(3), {"key": "k137735"})]


def test_cli_import_set_prints_the_command_and_refuses_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    graph = save_graph(tmp_path / "tiny.npz", tiny_graph())
    r = runner.invoke(app, ["neo4j", "import-set", str(tmp_path / "set"), str(graph)])
    assert r.exit_code == 0, r.output
    assert "neo4j-admin database import full neo4j --nodes=Network=" in r.stdout
    assert (tmp_path / "set" / "import.sh").is_file()
    for args, msg in ((["neo4j", "import-set", str(tmp_path / "set"), str(graph)],
                       "not an empty directory"),
                      (["neo4j", "import-set", str(tmp_path / "s2"), str(tmp_path / "no.npz")],
                       "no such file"),
                      (["neo4j", "import-set", str(tmp_path / "s3"), str(tmp_path / "c.pt")],
                       "not a graph file")):
        r = runner.invoke(app, args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), r.output
        assert msg in lines[0]
    assert not (tmp_path / "s2").exists() and not (tmp_path / "s3").exists()


def test_server_import_refuses_a_directory_that_is_no_import_set(tmp_path: Path) -> None:
    """``tools/neo4j/server.py import DIR`` refuses (one Error line, exit 2) before it stops or
    starts anything: no Java needed."""
    import os
    import subprocess
    import sys

    tool = Path(__file__).resolve().parent.parent / "tools" / "neo4j" / "server.py"
    env = {**os.environ, "MGEDB_NEO4J_STATE": str(tmp_path / "state")}
    (tmp_path / "set").mkdir()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / MANIFEST).write_text('{"format": 0, "args": []}')
    for d, msg in (("set", "not an import set"), ("old", "import set format 0")):
        r = subprocess.run([sys.executable, str(tool), "import", str(tmp_path / d)], env=env,
                           capture_output=True, text=True, timeout=60)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
        assert msg in lines[0] and r.stdout == ""
    assert not (tmp_path / "state").exists()
