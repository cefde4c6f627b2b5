"""Ingest speed of the embedded store (or Neo4j), database size per edge, and metric query times.

    python bench/ingest.py [--edges 6400000] [--graph FILE.npz] [--metrics] [--skip-variants]
    python bench/ingest.py --store neo4j [--edges 19000000] [--batch 10000,50000] [--keep]

The default graph is a random layered graph with ResNet-20's partition sizes
(3468, 16384 × 7, 8192 × 6, 4096 × 6, 10) and ~6.4 M edges (ResNet-20 ER-0.9 has 6.38 M), edges
sorted by (src, dst) as an encoder emits them; ``--graph`` takes a real graph file instead. It
prints:

1. ``mgedb ingest`` end to end (tables + COPY of nodes, membership edges and W edges) and its
   edge rate;
2. raw ``COPY W`` variants on a bare Ladybug table (Arrow vs DataFrame, int32 vs int64 ids, which
   edge properties, one table vs a FROM/TO group, one COPY vs chunks) with database bytes per edge;
3. with ``--metrics``: the time of each metric in the database vs the array engine.

``--store neo4j`` (a server in ``NEO4J_URI``…, e.g. ``make neo4j && . .neo4j/env``) instead
times ``mgedb ingest`` into Neo4j with batched ``UNWIND $rows`` writes over Bolt (each batch size
given) and with ``LOAD CSV`` from the server's import folder (``MGEDB_NEO4J_IMPORT_DIR``, which
``make neo4j`` exports), and prints the server's heap and page cache.

Timings are wall clock, measured once; on a shared machine they are inflated.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mgedb.graph import Graph, NodeKind, Partition, load_graph

RESNET20 = [3468] + [16384] * 7 + [8192] * 6 + [4096] * 6 + [10]


def resnet20_like(m: int, seed: int = 0) -> Graph:
    """Random layered graph: ResNet-20 partition sizes, ~m edges between consecutive partitions
    (in proportion to the target partition's size), sorted by (src, dst)."""
    rng = np.random.default_rng(seed)
    dims = np.array(RESNET20)
    off = np.concatenate([[0], np.cumsum(dims)])
    share = dims[1:] / dims[1:].sum()
    counts = np.round(share * m).astype(np.int64)
    src = np.concatenate([rng.integers(off[b], off[b + 1], c) for b, c in enumerate(counts)])
    dst = np.concatenate([rng.integers(off[b + 1], off[b + 2], c) for b, c in enumerate(counts)])
    order = np.lexsort((dst, src))
    parts = [Partition("input", NodeKind.INPUT, (3, 34, 34))]
    parts += [Partition(f"conv{i}", NodeKind.CONV, (d // {16384: 1024, 8192: 256, 4096: 64}[d],
                                                     {16384: 32, 8192: 16, 4096: 8}[d],
                                                     {16384: 32, 8192: 16, 4096: 8}[d]))
              for i, d in enumerate(RESNET20[1:-1], start=1)]
    parts += [Partition("linear", NodeKind.NEURON, (10, 1, 1))]
    w = rng.random(len(src)).astype(np.float32)
    return Graph.from_edges(src[order], dst[order], w, RESNET20, partitions=parts,
                            encoding="mge")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_ingest(g: Graph, root: Path) -> list[dict[str, Any]]:
    from mgedb.store.kuzu_store import KuzuStore
    from mgedb.store.tables import build_tables

    t_tables = _timed(lambda: build_tables(g, "x" * 20))
    path = root / "mgedb"
    with KuzuStore(path) as store:
        t = _timed(lambda: store.ingest(g))
        steps = dict(store.ingest_timings)
    size = _size(path)
    note = ", ".join(f"{k} {v:.2f} s" for k, v in steps.items())
    return [{"what": "mgedb ingest (end to end)", "edges": g.n_edges, "seconds": round(t, 2),
             "edges/s": round(g.n_edges / t), "bytes/edge": round(size / g.n_edges, 1),
             "note": f"{note} (Arrow tables alone: {t_tables:.2f} s)"},
            {"what": "  of which COPY W (the edges)", "edges": g.n_edges,
             "seconds": round(steps["edges"], 2), "edges/s": round(g.n_edges / steps["edges"]),
             "bytes/edge": "", "note": "units, channels, layers: 'nodes' step"}]


def bench_copy_variants(g: Graph, root: Path) -> list[dict[str, Any]]:
    """COPY W on a bare embedded (Ladybug) database: which choices make the edge load fast."""
    import ladybug

    n = g.n_nodes
    rows: list[dict[str, Any]] = []
    base = 5 << 32
    variants: list[tuple[str, dict[str, Any]]] = [
        ("Arrow, w+kind+eid (mgedb)", {"props": ("w", "kind", "eid")}),
        ("Arrow, w+kind", {"props": ("w", "kind")}),
        ("Arrow, w only", {"props": ("w",)}),
        ("Arrow, no properties", {"props": ()}),
        ("DataFrame, w+kind+eid", {"props": ("w", "kind", "eid"), "frame": True}),
        ("Arrow int32 ids, w+kind+eid", {"props": ("w", "kind", "eid"), "int32": True}),
        ("Arrow, w+kind+eid, FROM/TO group of 3", {"props": ("w", "kind", "eid"),
                                                   "group": True}),
        ("Arrow, w+kind+eid, 8 chunked COPYs", {"props": ("w", "kind", "eid"), "chunks": 8}),
        ("Arrow, w+kind+eid, unsorted edges", {"props": ("w", "kind", "eid"),
                                               "shuffle": True}),
    ]
    types = {"w": "FLOAT", "kind": "UINT8", "eid": "INT32"}
    for name, v in variants:
        path = root / f"v{len(rows)}"
        path.mkdir()
        db = ladybug.Database(str(path / "db.lbug"))
        conn = ladybug.Connection(db)
        conn.execute("CREATE NODE TABLE U(uid INT64, idx INT64, PRIMARY KEY(uid))")
        props = "".join(f", {p} {types[p]}" for p in v["props"])
        if v.get("group"):
            conn.execute("CREATE NODE TABLE V(uid INT64, PRIMARY KEY(uid))")
            conn.execute("CREATE NODE TABLE X(uid INT64, PRIMARY KEY(uid))")
            conn.execute(f"CREATE REL TABLE W(FROM V TO U, FROM U TO U, FROM U TO X{props})")
        else:
            conn.execute(f"CREATE REL TABLE W(FROM U TO U{props})")
        offset = 0 if v.get("int32") else base  # int32 ids: the keys must fit in 32 bits
        nodes = pa.table({"uid": offset + np.arange(n, dtype=np.int64),  # noqa: F841
                          "idx": np.arange(n, dtype=np.int64)})
        conn.execute("COPY U FROM nodes")
        idt = np.int32 if v.get("int32") else np.int64
        src = g.src.astype(np.int64) + offset
        dst = g.dst.astype(np.int64) + offset
        order = np.random.default_rng(0).permutation(len(src)) if v.get("shuffle") \
            else np.arange(len(src))
        cols: dict[str, Any] = {"from": src[order].astype(idt), "to": dst[order].astype(idt)}
        if "w" in v["props"]:
            cols["w"] = pa.array(g.weight[order], pa.float32())
        if "kind" in v["props"]:
            cols["kind"] = pa.array(g.kind[order], pa.uint8())
        if "eid" in v["props"]:
            cols["eid"] = pa.array(np.arange(len(src), dtype=np.int32))
        edges = pa.table(cols)
        frame = edges.to_pandas() if v.get("frame") else None  # noqa: F841 (Ladybug scans it)
        chunks = v.get("chunks", 1)
        t = time.perf_counter()
        if v.get("frame"):
            conn.execute("COPY W FROM frame")
        elif v.get("group"):
            conn.execute("COPY W FROM edges (from='U', to='U')")
        else:
            step = -(-edges.num_rows // chunks)
            for i in range(chunks):
                part = edges.slice(i * step, step)  # noqa: F841 (Ladybug scans it)
                conn.execute("COPY W FROM part")
        sec = time.perf_counter() - t
        conn.close()
        db.close()
        size = _size(path)
        rows.append({"what": f"COPY W: {name}", "edges": g.n_edges, "seconds": round(sec, 2),
                     "edges/s": round(g.n_edges / sec), "bytes/edge": round(size / g.n_edges, 1),
                     "note": ""})
        shutil.rmtree(path)
    return rows


def bench_metrics(g: Graph, root: Path) -> list[dict[str, Any]]:
    from mgedb.metrics import compute_mge_metrics
    from mgedb.metrics.registry import MGE_METRICS
    from mgedb.store.kuzu_store import KuzuStore

    rows: list[dict[str, Any]] = []
    with KuzuStore(root / "metrics") as store:
        key = store.ingest(g)
        names = [m for m in MGE_METRICS if m != "motifs"]
        for name in names:
            t = time.perf_counter()
            db = store.compute_metrics(key, only=[name])
            t_db = time.perf_counter() - t
            t = time.perf_counter()
            array = compute_mge_metrics(g, only=[name])
            t_array = time.perf_counter() - t
            same = db[name] == array[name] or (
                name.startswith("spectral") and abs(db[name] - array[name]) <= 1e-6 * abs(
                    array[name]))
            rows.append({"metric": name, "db s": round(t_db, 2), "array s": round(t_array, 2),
                         "where": db.provenance[name], "equal": same})
        t = time.perf_counter()
        store.compute_metrics(key)
        t_all_db = time.perf_counter() - t
    t = time.perf_counter()
    compute_mge_metrics(g, only=names)
    t_all_array = time.perf_counter() - t
    rows.append({"metric": "all (one call)", "db s": round(t_all_db, 2),
                 "array s": round(t_all_array, 2), "where": "", "equal": ""})
    return rows


def _server_cpu(store: Any) -> float:
    """Seconds of CPU the server's JVM has used (JMX ``ProcessCpuTime``)."""
    rows = store.query('CALL dbms.queryJmx("java.lang:type=OperatingSystem") YIELD attributes '
                       "RETURN attributes.ProcessCpuTime.value AS ns")
    return float(rows.iloc[0]["ns"]) / 1e9


def bench_neo4j(g: Graph, batches: list[int], keep: bool = False) -> list[dict[str, Any]]:
    """mgedb ingest into Neo4j: UNWIND batches over Bolt vs LOAD CSV; each network deleted after
    (unless ``keep``: a throw-away server), with the server's CPU per edge (whole ingest)."""
    from mgedb.store.neo4j_store import Neo4jStore

    import_dir = os.environ.get("MGEDB_NEO4J_IMPORT_DIR")
    runs: list[tuple[str, dict[str, Any]]] = [(f"UNWIND, batch {b}", {"batch_size": b})
                                              for b in batches]
    if import_dir:
        runs.append(("LOAD CSV (IN TRANSACTIONS of 10000)",
                     {"batch_size": 10_000, "import_dir": Path(import_dir)}))
    rows = []
    for i, (name, opts) in enumerate(runs):
        with Neo4jStore.connect(**opts) as store:
            store.ensure_schema()
            cpu = _server_cpu(store)
            t0 = time.perf_counter()
            key = store.ingest(g, {"key": f"bench-{i}-{g.n_edges}"} if keep else None)
            t = time.perf_counter() - t0
            cpu = _server_cpu(store) - cpu
            steps = dict(store.ingest_timings)
            t_del = 0.0 if keep else _timed(lambda: store.delete(key))  # noqa: B023
        rows.append({"what": name, "edges": g.n_edges, "seconds": round(t, 1),
                     "edges/s (edge step)": round(g.n_edges / steps["edges"]),
                     "nodes/s": round(g.n_nodes / steps["nodes"]),
                     "note": f"edges {steps['edges']:.1f} s, nodes {steps['nodes']:.1f} s, "
                             f"server CPU {cpu:.0f} s = {1e6 * cpu / g.n_edges:.0f} µs/edge, "
                             + ("kept" if keep else f"delete {t_del:.1f} s")
                             + f", load {os.getloadavg()[0]:.1f}"})
    return rows


def bench_neo4j_import(g: Graph, root: Path, heap: str = "2g") -> list[dict[str, Any]]:
    """``mgedb neo4j import-set`` of one network, then ``neo4j-admin database import full`` of it
    (offline, into a fresh store) with the jars of tools/neo4j."""
    import json

    from mgedb.store.neo4j_import import MANIFEST, write_import_set

    lib = Path(__file__).resolve().parent.parent / "tools" / "neo4j" / "target" / "lib"
    if not lib.is_dir():
        return [{"what": "neo4j-admin import", "note": f"no jars in {lib} (make neo4j first)"}]
    t0 = time.perf_counter()
    out = write_import_set(root / "set", [(g, {})])
    t_set = time.perf_counter() - t0
    home = root / "home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "neo4j.conf").write_text(f"server.directories.data={home / 'data'}\n"
                                              f"server.directories.logs={home / 'logs'}\n")
    args = json.loads((out.directory / MANIFEST).read_text())["args"]
    cmd = ["java", f"-Xmx{heap}", "-cp", f"{lib}/*", "org.neo4j.cli.AdminTool", "database",
           "import", "full", "neo4j", *args, "--threads=2", "--max-off-heap-memory=2G",
           f"--report-file={root / 'import.report'}", "--overwrite-destination"]
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(home / "conf")}
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out.directory)
    t_imp = time.perf_counter() - t0
    if run.returncode != 0:
        tail = " / ".join((run.stdout + run.stderr).strip().splitlines()[-3:])
        return [{"what": "neo4j-admin import", "note": f"failed: {tail}"}]
    size = _size(home / "data")
    return [{"what": f"neo4j-admin database import full (heap {heap}, off-heap 2G, 2 threads)",
             "edges": g.n_edges, "seconds": round(t_imp, 1),
             "edges/s (edge step)": round(g.n_edges / t_imp), "nodes/s": "",
             "note": f"import set (mgedb neo4j import-set) {t_set:.1f} s first; store "
                     f"{size / g.n_edges:.0f} B/edge"}]


def _neo4j_memory() -> str:
    from mgedb.store.neo4j_store import Neo4jStore

    with Neo4jStore.connect() as store:
        heap = store.query('CALL dbms.queryJmx("java.lang:type=Memory") YIELD attributes '
                           "RETURN attributes.HeapMemoryUsage.value.properties.max AS heap")
        pc = store.query("SHOW SETTINGS YIELD name, value WHERE name = "
                         "'server.memory.pagecache.size' RETURN value")
    return (f"heap max {int(heap.iloc[0]['heap']) / 2**30:.2f} GiB, page cache "
            f"{pc.iloc[0]['value']}")


def _print(rows: list[dict[str, Any]], title: str) -> None:
    print(f"\n## {title}\n")
    print(pd.DataFrame(rows).to_markdown(index=False) if _has_tabulate()
          else pd.DataFrame(rows).to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", type=int, default=6_400_000)
    ap.add_argument("--graph", type=Path, help="a graph file (.npz) instead of the random graph")
    ap.add_argument("--metrics", action="store_true", help="also time every metric")
    ap.add_argument("--skip-variants", action="store_true", help="no raw COPY variants")
    ap.add_argument("--store", choices=["embedded", "neo4j"], default="embedded")
    ap.add_argument("--import-only", action="store_true",
                    help="--store neo4j: only neo4j-admin import (no server needed)")
    ap.add_argument("--batch", default="10000,50000",
                    help="--store neo4j: UNWIND batch sizes, comma-separated")
    ap.add_argument("--keep", action="store_true",
                    help="--store neo4j: leave the networks (a throw-away server: no deletes)")
    args = ap.parse_args()
    if args.graph:
        value = load_graph(args.graph)
        assert isinstance(value, Graph), "--graph needs an MGE graph file"
        g = value
    else:
        g = resnet20_like(args.edges)
    print(f"graph: {g.n_nodes} nodes, {g.n_edges} edges; cpus: {os.cpu_count()}; "
          f"load average: {os.getloadavg()[0]:.1f}")
    if args.store == "neo4j":
        with tempfile.TemporaryDirectory(prefix="mgedb-bench-") as tmp:
            _print(bench_neo4j_import(g, Path(tmp)), "neo4j-admin import (offline, new store)")
        if not args.import_only:
            print(f"Neo4j: {_neo4j_memory()}")
            _print(bench_neo4j(g, [int(b) for b in args.batch.split(",")], args.keep),
                   "ingest into Neo4j")
        return
    with tempfile.TemporaryDirectory(prefix="mgedb-bench-") as tmp:
        root = Path(tmp)
        _print(bench_ingest(g, root), "ingest into the embedded store")
        if not args.skip_variants:
            _print(bench_copy_variants(g, root), "COPY W variants (bare Ladybug)")
        if args.metrics:
            _print(bench_metrics(g, root), "metric times: database vs array engine")


if __name__ == "__main__":
    main()
