"""The offline bulk path into Neo4j: an import set for ``neo4j-admin database import full``.

``neo4j-admin database import full`` builds a new database from CSV files several times faster
than any write over Bolt (docker/README.md), but only while the server is stopped and only by
replacing the whole database — and Neo4j Community has one user database. So an import set holds
every network the database is to hold: :func:`write_import_set` writes exactly the nodes and
relationships the Bolt ingest (:meth:`~mgedb.store.base.BaseStore.ingest`) creates — the
``(:Network)`` nodes (marked complete, with their integrity counts), ``(:Layer)``, ``(:Channel)``
and unit nodes, ``OF``, ``IN_LAYER``, ``IN_CHANNEL`` and ``W`` relationships — from the same rows
(:func:`~mgedb.store.tables.build_tables`) and properties (:func:`~mgedb.store.base.network_props`),
a header file for each data file, the command as ``import.sh`` and a manifest,
``import-set.json``, that ``python tools/neo4j/server.py import DIR`` reads. Files only: no
database is touched here. mgedb's constraints and indexes are not part of it (Community's record
format imports no schema, ``--schema`` needs the block format): mgedb creates them when it first
opens the store for writing (``server.py import`` does so right after the import).

Import ids are integers in four id groups (Network, Layer, Channel, Unit), numbered across the
set; unit ids are offset node indices, so an edge's endpoints are its uids less the network's
uid base.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mgedb.errors import MgedbError, StoreIntegrityError
from mgedb.graph import Graph, GraphSet
from mgedb.store.base import NETWORK_FIELDS, ingest_key, network_props
from mgedb.store.protocol import mgedb_version
from mgedb.store.tables import GraphTables, build_tables

__all__ = ["MANIFEST", "ImportSet", "import_args", "write_import_set"]

MANIFEST = "import-set.json"
FORMAT = 1
_LONG = ("uid_base", "seed", "classes", "n_nodes", "n_edges")
_DOUBLE = ("sparsity", "accuracy", "dense_accuracy")
_ARRAYS = ("input_shape", "dimension")
_UNIT_COLUMNS = ("uid", "network", "partition", "idx", "channel", "row", "col", "graph")
_CSV = pacsv.WriteOptions(include_header=False)


@dataclass
class ImportSet:
    """What :func:`write_import_set` wrote into ``directory``."""

    directory: Path
    keys: list[str] = field(default_factory=list)
    n_nodes: int = 0
    n_edges: int = 0
    #: the arguments of ``neo4j-admin database import full`` after the database name (paths
    #: relative to ``directory``)
    args: list[str] = field(default_factory=list)

    def command(self, database: str = "neo4j", admin: str = "neo4j-admin") -> list[str]:
        """The import command, to run in :attr:`directory` with the server stopped."""
        return import_args(admin, database, self.args)


def import_args(admin: str, database: str, args: Iterable[str]) -> list[str]:
    """``ADMIN database import full DATABASE ARGS… --overwrite-destination`` (the database name
    before the options: ``--nodes`` takes several values)."""
    return [admin, "database", "import", "full", database, *args, "--overwrite-destination"]


class _Files:
    """The data files of an import set, each with its header, written as rows come."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._writers: dict[str, pacsv.CSVWriter] = {}
        self._headers: dict[str, str] = {}
        self.groups: list[tuple[str, str, str]] = []  # (--nodes|--relationships, label(s), name)

    def write(self, option: str, what: str, name: str, header: str, rows: pa.Table) -> None:
        if name not in self._writers:
            (self.root / f"{name}.header.csv").write_text(header + "\n")
            self._writers[name] = pacsv.CSVWriter(self.root / f"{name}.csv", rows.schema,
                                                     write_options=_CSV)
            self._headers[name] = header
            self.groups.append((option, what, name))
        self._writers[name].write_table(rows)

    def close(self) -> None:
        for w in self._writers.values():
            w.close()

    def args(self) -> list[str]:
        return [f"{opt}={what}={name}.header.csv,{name}.csv" for opt, what, name in self.groups]


def _ids(keys: pa.Array | pa.ChunkedArray, of: pa.Array | pa.ChunkedArray, offset: int
         ) -> pa.Array:
    """The import ids of ``keys``: their positions in ``of`` (which holds them all) + ``offset``."""
    pos = pc.index_in(keys, value_set=of)
    if pos.null_count:
        raise AssertionError("an import-set row refers to a key the network does not have")
    return pc.add(pc.cast(pos, pa.int64()), offset)


def _array_cell(v: Any) -> str | None:
    return None if v is None else ";".join(str(int(x)) for x in v)


def _network_row(key: str, props: Mapping[str, Any], nid: int) -> tuple[pa.Table, str]:
    cols: dict[str, pa.Array] = {"id": pa.array([nid], pa.int64())}
    header = [":ID(Network)"]
    for name in (*NETWORK_FIELDS[:2], "complete", *NETWORK_FIELDS[2:]):
        v = key if name == "key" else True if name == "complete" else props.get(name)
        if name == "complete":
            cols[name], typ = pa.array([True]), "boolean"
        elif name in _LONG:
            cols[name], typ = pa.array([v], pa.int64()), "long"
        elif name in _DOUBLE:
            cols[name], typ = pa.array([v], pa.float64()), "double"
        elif name in _ARRAYS:
            cols[name], typ = pa.array([_array_cell(v)], pa.string()), "long[]"
        else:
            if isinstance(v, str) and ("\n" in v or "\r" in v):
                raise MgedbError(f"network {key}: its {name} holds a line break, which "
                                 "neo4j-admin import reads only with --multiline-fields; ingest "
                                 "it over Bolt (`mgedb ingest-graph … --store neo4j`) instead")
            cols[name], typ = pa.array([v], pa.string()), ""
        header.append(f"{name}:{typ}" if typ else name)
    return pa.table(cols), ",".join(header)


def _add_network(files: _Files, tables: GraphTables, key: str, base: int, nid: int,
                 offsets: dict[str, int]) -> None:
    """Write one network's layers, channels, units and relationships; advance ``offsets``."""
    lo, co, uo = offsets["Layer"], offsets["Channel"], offsets["Unit"]
    layers, channels = tables.layers, tables.channels
    lid = pc.add(pa.array(np.arange(layers.num_rows, dtype=np.int64)), lo)
    shape = pa.array([_array_cell(s) for s in layers["shape"].to_pylist()], pa.string())
    files.write("--nodes", "Layer", "Layer",
                ":ID(Layer),key,network,position:long,name,kind,shape:long[],size:long",
                pa.table({"id": lid, "key": layers["key"], "network": layers["network"],
                          "position": layers["position"], "name": layers["name"],
                          "kind": layers["kind"], "shape": shape, "size": layers["size"]}))
    files.write("--relationships", "OF", "OF", ":START_ID(Layer),:END_ID(Network)",
                pa.table({"from": _ids(tables.of["from"], layers["key"], lo),
                          "to": pa.array(np.full(tables.of.num_rows, nid, np.int64))}))
    if channels.num_rows:
        files.write("--nodes", "Channel", "Channel",
                    ":ID(Channel),key,network,layer:long,position:long",
                    pa.table({"id": pc.add(pa.array(np.arange(channels.num_rows,
                                                              dtype=np.int64)), co),
                              "key": channels["key"], "network": channels["network"],
                              "layer": channels["layer"], "position": channels["position"]}))

    def unit_ids(uids: pa.Array | pa.ChunkedArray) -> pa.Array:
        return pc.add(pc.subtract(pc.cast(uids, pa.int64()), base), uo)

    for label, units in tables.units.items():
        names = [c for c in _UNIT_COLUMNS if c in units.column_names]
        header = ":ID(Unit)," + ",".join(c if c == "network" else f"{c}:long" for c in names)
        files.write("--nodes", f"Unit:{label}", f"Unit-{label}", header,
                    pa.table({"id": unit_ids(units["uid"]), **{c: units[c] for c in names}}))
    for label, pairs in tables.in_layer.items():
        if label == "Channel":
            start, name = _ids(pairs["from"], channels["key"], co), "IN_LAYER-Channel"
            header = ":START_ID(Channel),:END_ID(Layer)"
        else:
            start, name = unit_ids(pairs["from"]), "IN_LAYER-Unit"
            header = ":START_ID(Unit),:END_ID(Layer)"
        files.write("--relationships", "IN_LAYER", name, header,
                    pa.table({"from": start, "to": _ids(pairs["to"], layers["key"], lo)}))
    for pairs in tables.in_channel.values():
        files.write("--relationships", "IN_CHANNEL", "IN_CHANNEL",
                    ":START_ID(Unit),:END_ID(Channel)",
                    pa.table({"from": unit_ids(pairs["from"]),
                              "to": _ids(pairs["to"], channels["key"], co)}))
    for block in tables.edges:
        t = block.table
        files.write("--relationships", "W", "W",
                    ":START_ID(Unit),:END_ID(Unit),w:double,kind:long,eid:long",
                    pa.table({"from": unit_ids(t["from"]), "to": unit_ids(t["to"]),
                              # the double of the float32 weight, as Bolt sends it
                              "w": pc.cast(t["w"], pa.float64()),
                              "kind": pc.cast(t["kind"], pa.int64()),
                              "eid": pc.cast(t["eid"], pa.int64())}))
    offsets["Layer"] += layers.num_rows
    offsets["Channel"] += channels.num_rows
    offsets["Unit"] += tables.n_nodes


def write_import_set(directory: Path,
                     networks: Iterable[tuple[Graph | GraphSet, Mapping[str, Any]]]
                     ) -> ImportSet:
    """Write the import set of ``networks`` (each a graph and the ``meta`` the Bolt ingest would
    be given) into ``directory``, which must not exist or be empty; all or nothing (written
    beside it and renamed). A network given twice is written once; two networks whose uid
    prefixes clash are refused, as the store refuses them."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise MgedbError(f"{directory}: exists and is not an empty directory; an import set "
                         "goes into a new one (choose another path or remove it)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    out = ImportSet(directory)
    try:
        files = _Files(tmp)
        offsets = {"Layer": 0, "Channel": 0, "Unit": 0}
        bases: dict[int, str] = {}
        network_rows: list[pa.Table] = []
        network_header = ""
        try:
            for graph, meta in networks:
                m = dict(meta)
                key, digest = ingest_key(graph, m)
                if key in out.keys:
                    continue
                props = network_props(key, graph, m, False, digest)
                base = int(props["uid_base"])
                if base in bases:
                    raise StoreIntegrityError(
                        f"networks {key!r} and {bases[base]!r} share a uid prefix (a 31-bit hash "
                        "clash); put them in different stores")
                bases[base] = key
                row, network_header = _network_row(key, props, len(out.keys))
                network_rows.append(row)
                _add_network(files, build_tables(graph, key), key, base << 32, len(out.keys),
                             offsets)
                out.keys.append(key)
                out.n_nodes += int(props["n_nodes"])
                out.n_edges += int(props["n_edges"])
            if not out.keys:
                raise MgedbError("no networks to import; give at least one graph file")
        finally:
            files.close()
        (tmp / "Network.header.csv").write_text(network_header + "\n")
        pacsv.write_csv(pa.concat_tables(network_rows), tmp / "Network.csv", _CSV)
        out.args = ["--nodes=Network=Network.header.csv,Network.csv", *files.args(),
                    "--id-type=integer", "--bad-tolerance=0"]
        (tmp / MANIFEST).write_text(json.dumps({
            "format": FORMAT, "mgedb_version": mgedb_version(), "networks": out.keys,
            "n_nodes": out.n_nodes, "n_edges": out.n_edges, "args": out.args}, indent=1) + "\n")
        _write_script(tmp / "import.sh", out)
        if directory.exists():
            directory.rmdir()
        os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_script(path: Path, s: ImportSet) -> None:
    admin, db = '"${NEO4J_ADMIN:-neo4j-admin}"', '"${NEO4J_DATABASE:-neo4j}"'
    cmd = f"{admin} database import full {db}" + "".join(
        f" \\\n    {shlex.quote(a)}" for a in s.command(db, admin)[5:])
    path.write_text(
        "#!/bin/sh\n"
        f"# mgedb import set: {len(s.keys)} network(s), {s.n_nodes} unit nodes, {s.n_edges} W "
        "edges.\n"
        "# Stop the Neo4j server first: this REPLACES database ${NEO4J_DATABASE:-neo4j} (all its\n"
        "# data) with these networks; then start it (`mgedb ls --store neo4j` lists them). A\n"
        "# failed import leaves that database unusable: fix the cause and run this again.\n"
        "# The dev server of tools/neo4j: `python tools/neo4j/server.py import DIR`.\n"
        "set -e\n"
        'cd "$(dirname "$0")"\n'
        f"exec {cmd}\n")
    path.chmod(0o755)
