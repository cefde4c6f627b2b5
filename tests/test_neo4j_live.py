"""What users hit on a real Neo4j 5 + GDS server (marked ``neo4j``; skipped without ``NEO4J_URI``,
which ``make test`` sets where Java and Maven can start one: tools/neo4j/server.py).

The CLI's engines agree on the server (``mgedb metrics --engine both --store neo4j``), a wrong
password is one line without the password, a server gone mid-ingest leaves nothing marked complete
and the next ingest replaces it, ``mgedb neo4j check`` reports the versions, and the database name
is honoured. Every test deletes the networks it creates.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from store_fixtures import random_graph, tiny_graph
from typer.testing import CliRunner

import mgedb.cli.metrics
import mgedb.cli.store  # noqa: F401  (the two imports register the commands)
from mgedb.cli import app
from mgedb.errors import BackendUnavailable
from mgedb.graph import Graph, save_graph
from mgedb.store.keys import graph_key

pytestmark = pytest.mark.neo4j

runner = CliRunner()


@pytest.fixture(scope="module")
def conn() -> dict[str, Any]:
    if not os.environ.get("NEO4J_URI"):
        pytest.skip("NEO4J_URI unset: no Neo4j 5 server to test against (`make test` starts one "
                    "where Java 17/21 and Maven are installed; see docker/README.md)")
    from mgedb.store.neo4j_store import neo4j_settings

    return neo4j_settings()


@pytest.fixture
def store(conn: dict[str, Any]) -> Iterator[Any]:
    """A connected store; networks created during the test are deleted afterwards."""
    from mgedb.store.neo4j_store import Neo4jStore

    s = Neo4jStore.connect(**conn)
    s.ensure_schema()
    before = set(s.list_networks()["key"])
    try:
        yield s
    finally:
        for key in set(s.list_networks()["key"]) - before:
            s.delete(key)
        s.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


def _hand_made() -> list[Graph]:
    """A chain, a star with a pendant, two triangles sharing a node (one articulation point),
    a graph of isolated nodes only and one with parallel edges (not bridges)."""
    def g(edges: list[tuple[int, int]], dims: list[int]) -> Graph:
        s, d = (np.array(x, np.int64) for x in zip(*edges, strict=True)) if edges else (
            np.zeros(0, np.int64), np.zeros(0, np.int64))
        w = np.linspace(0.25, 2.0, len(s)).astype(np.float32)
        return Graph.from_edges(s, d, w, dims, encoding="mge")
    return [
        g([(0, 2), (2, 4), (4, 6)], [2, 2, 2, 1]),
        g([(0, 3), (1, 3), (2, 3), (3, 4), (3, 5), (5, 6)], [3, 1, 2, 1]),
        g([(0, 2), (1, 2), (0, 3), (2, 3), (2, 4), (3, 4)], [2, 2, 1]),
        g([], [2, 2]),
        g([(0, 2), (0, 2), (1, 2), (2, 3), (2, 3)], [2, 1, 1]),
    ]


def _agree(tmp_path: Path, name: str, graph: Graph) -> None:
    path = save_graph(tmp_path / f"{name}.npz", graph)
    code, out, err = _cli("metrics", str(path), "--engine", "both", "--store", "neo4j",
                          "--format", "json")
    assert code == 0, f"{name}: engines disagree on Neo4j\n{out}\n{err}"


def test_engines_agree_on_neo4j_for_hand_made_and_random_graphs(store: Any,
                                                                tmp_path: Path) -> None:
    graphs = {"tiny": tiny_graph(), "tiny-ref": tiny_graph("mge-reference")}
    graphs |= {f"hand{i}": g for i, g in enumerate(_hand_made())}
    graphs |= {f"random{s}": random_graph(s, encoding="mge-reference" if s % 2 else "mge")
               for s in range(10, 16)}
    for name, g in graphs.items():
        _agree(tmp_path, name, g)


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["Resnet-20", "CONV-6"])
def test_engines_agree_on_neo4j_for_the_reference_fixtures(store: Any, tmp_path: Path,
                                                           reference_dir: Path, tag: str) -> None:
    with np.load(reference_dir / f"{tag}-er-0.98-seed0.npz") as z:
        g = Graph.from_edges(z["src"], z["dst"], z["weight"].astype(np.float32),
                             [int(x) for x in z["dimension"]], encoding="mge-reference")
    _agree(tmp_path, tag, g)


def test_wrong_password_is_one_line_without_the_password(conn: dict[str, Any]) -> None:
    env = {"NEO4J_URI": str(conn["uri"]), "NEO4J_USER": "neo4j",
           "NEO4J_PASSWORD": "not-the-pw-4711", "MGEDB_STORE": "neo4j"}
    code, out, err = _cli("ls", env=env)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "refused the credentials" in err and "not-the-pw-4711" not in out + err


def test_neo4j_check_reports_versions_and_nothing_missing(conn: dict[str, Any]) -> None:
    code, out, err = _cli("neo4j", "check", "--format", "json")
    assert code == 0, err
    import json

    report = json.loads(out)
    assert report["version"].startswith("5.26.") and report["edition"] == "community"
    assert report["gds"].startswith("2.13.") and report["missing"] == "nothing"


def test_database_name_is_honoured(conn: dict[str, Any]) -> None:
    from mgedb.store.neo4j_store import Neo4jStore

    with Neo4jStore.connect(**{**conn, "database": "neo4j"}) as s:
        assert s.location.endswith("(database neo4j)")
        assert int(s.query("RETURN 1 AS one").iloc[0]["one"]) == 1
        assert s.query("CALL db.info() YIELD name").iloc[0]["name"] == "neo4j"
    with pytest.raises(BackendUnavailable, match="no such database"), \
            Neo4jStore.connect(**{**conn, "database": "nosuchdb"}) as s:
        s.list_networks()
    env = {"NEO4J_DATABASE": "nosuchdb", "MGEDB_STORE": "neo4j"}
    code, _, err = _cli("ls", env=env)
    assert code == 2 and "no such database" in err and len(err.strip().splitlines()) == 1


class _Proxy:
    """A TCP relay on a free 127.0.0.1 port to the server's Bolt port; :meth:`cut` drops it and
    every connection through it, which the client sees exactly as a server that went away."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.closed = True
        self.listener.close()
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_server_gone_mid_ingest_leaves_nothing_complete(conn: dict[str, Any], store: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mgedb.store.neo4j_store import DriverRunner, Neo4jStore

    monkeypatch.setattr(DriverRunner, "RETRY_TIME", 1.0)
    host, port = str(conn["uri"]).rsplit("//", 1)[1].rsplit(":", 1)
    proxy = _Proxy(host, int(port))
    g = random_graph(21, n_parts=4)
    key = graph_key(g)
    cut = Neo4jStore.connect(**{**conn, "uri": f"bolt://127.0.0.1:{proxy.port}"},
                             batch_size=5)
    batches = []

    def progress(stage: str, done: int, total: int) -> None:
        batches.append(done)
        if stage == "edges" and len(batches) >= 3:
            proxy.cut()  # the server is gone for this client from here on

    try:
        with pytest.raises(BackendUnavailable, match="cannot reach Neo4j"):
            cut.ingest(g, progress=progress)
    finally:
        cut.close()
        proxy.cut()
    assert not store.has_network(key)  # nothing marked complete
    assert store.has_network(key, complete=False)  # the partial one is visible as incomplete
    assert store.ingest(g) == key  # the next ingest replaces it
    assert store.has_network(key)
    got = store.read_graph(key)
    assert got.n_edges == g.n_edges and np.array_equal(np.sort(got.src), np.sort(g.src))


def test_a_server_that_does_not_come_up_in_time_is_a_clear_error(tmp_path: Path) -> None:
    """``server.py start`` gives up after MGEDB_NEO4J_START_TIMEOUT with the log's last lines,
    stops the server and keeps its files (here: 3 s, far too short for a JVM to open Bolt)."""
    import re
    import shutil
    import subprocess
    import sys

    tool = Path(__file__).resolve().parent.parent / "tools" / "neo4j" / "server.py"
    if not (tool.parent / "target" / ".pom-sha256").is_file() or not shutil.which("java"):
        pytest.skip("no Neo4j jars in tools/neo4j/target (make neo4j resolves them)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env |= {"MGEDB_NEO4J_STATE": str(tmp_path / "state"), "MGEDB_NEO4J_START_TIMEOUT": "3"}
    r = subprocess.run([sys.executable, str(tool), "start"], env=env, capture_output=True,
                       text=True, timeout=120)
    kept = re.search(r"server files kept in (\S+)", r.stderr)
    try:
        assert r.returncode == 1, r.stderr
        assert "no Bolt answer" in r.stderr and "within 3 s" in r.stderr
        assert kept and "--- " in r.stderr and "console.log" in r.stderr  # the log tail
        assert not (tmp_path / "state" / "pid").exists() and r.stdout == ""
    finally:
        if kept and Path(kept[1]).name.startswith("mgedb-neo4j-"):
            shutil.rmtree(kept[1], ignore_errors=True)


@pytest.mark.slow
def test_an_imported_set_lists_verifies_and_measures_like_an_ingested_one(tmp_path: Path
                                                                         ) -> None:
    """``mgedb neo4j import-set`` + ``server.py import`` (neo4j-admin import into a server of its
    own): ``mgedb ls``, ``verify`` and ``metrics --engine both`` pass on the imported networks,
    and ``ingest-graph`` of one of them finds it stored (nothing to do)."""
    import shlex
    import shutil
    import subprocess
    import sys

    tool = Path(__file__).resolve().parent.parent / "tools" / "neo4j" / "server.py"
    if not (tool.parent / "target" / ".pom-sha256").is_file() or not shutil.which("java"):
        pytest.skip("no Neo4j jars in tools/neo4j/target (make neo4j resolves them)")
    graphs = {"hand1": _hand_made()[1], "random12": random_graph(12),
              "ref13": random_graph(13, encoding="mge-reference"), "tiny": tiny_graph()}
    files = [str(save_graph(tmp_path / f"{n}.npz", g)) for n, g in graphs.items()]
    code, out, err = _cli("neo4j", "import-set", str(tmp_path / "set"), *files)
    assert code == 0, err
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env |= {"MGEDB_NEO4J_STATE": str(tmp_path / "state"), "MGEDB_NEO4J_HEAP": "1g",
            "MGEDB_NEO4J_PAGECACHE": "256m"}
    r = subprocess.run([sys.executable, str(tool), "import", str(tmp_path / "set")], env=env,
                       capture_output=True, text=True, timeout=400)
    try:
        assert r.returncode == 0, r.stderr
        for line in (tmp_path / "state" / "env").read_text().splitlines():
            k, _, v = line.removeprefix("export ").partition("=")
            env[k] = shlex.split(v)[0]
        neo = {k: env[k] for k in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD",
                                   "NEO4J_DATABASE")} | {"MGEDB_STORE": "neo4j"}
        code, out, err = _cli("ls", "--format", "json", env=neo)
        import json

        listed = {row["key"]: row for row in json.loads(out)}
        assert code == 0 and set(listed) == {graph_key(g) for g in graphs.values()}, err
        assert all(row["complete"] for row in listed.values())
        code, out, err = _cli("verify", "--format", "json", env=neo)
        assert code == 0 and all(row["verified"] == "ok" for row in json.loads(out)), out + err
        for name, g in graphs.items():
            code, out, err = _cli("metrics", graph_key(g), "--engine", "both",
                                  "--format", "json", env=neo)
            assert code == 0, f"{name}: engines disagree on the imported network\n{out}\n{err}"
        code, out, err = _cli("ingest-graph", files[3], "--format", "json", env=neo)
        assert code == 0 and json.loads(out)["key"] == graph_key(graphs["tiny"]), err
        from mgedb.store.neo4j_store import Neo4jStore

        with Neo4jStore.connect(neo["NEO4J_URI"], "neo4j", neo["NEO4J_PASSWORD"]) as s:
            names = set(s.query("SHOW CONSTRAINTS YIELD name")["name"])
            assert {"unit_uid", "network_key", "layer_key", "channel_key"} <= names
            g = graphs["random12"]
            got = s.read_graph(graph_key(g))
            assert np.array_equal(got.src, g.src) and np.array_equal(got.dst, g.dst)
            assert np.array_equal(got.weight, g.weight)
    finally:
        subprocess.run([sys.executable, str(tool), "stop"], env=env, capture_output=True,
                       timeout=120)
