"""``mgedb migrate``: an embedded store of an older mgedb (Kùzu 0.11.3, ``graph.kuzu``) becomes a
current one (Ladybug, ``graph.lbug``).

Kùzu and Ladybug cannot be loaded into one process (their native modules register the same
types), so a child process opens the old file read-only and runs Kùzu's ``EXPORT DATABASE …
(format='parquet')``. This process loads the exported tables, by name and column, into a fresh
Ladybug store in a temporary directory beside the old file (``Layer.index`` / ``Channel.index``
become ``position``), then checks every network against what it recorded (its node and edge
totals: the old stores have no per-partition counts): a network that matches gets its counts
recorded, one that does not (Kùzu's delete bug may have cut it) is marked incomplete, so
``mgedb ls`` shows it and the next ingest replaces it. Only then is the new file moved into place
and the old one renamed to ``graph.kuzu.pre-migrate`` (kept: delete it when satisfied). An
interrupted migration leaves the old store as it was.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mgedb.errors import BackendUnavailable, StoreIntegrityError

__all__ = ["BACKUP_SUFFIX", "MigrationReport", "migrate_store"]

log = logging.getLogger("mgedb.store.migrate")

BACKUP_SUFFIX = ".pre-migrate"
_RENAMED = {("Layer", "index"): "position", ("Channel", "index"): "position"}
_COPY_LINE = re.compile(r'^COPY `(?P<table>\w+)`(?: \((?P<cols>[^)]*)\))? FROM "(?P<file>[^"]+)"'
                        r'(?: \((?P<opts>[^)]*)\))?;\s*$')
_OPT = re.compile(r"(\w+)='(\w+)'")
_EXPORT = """
import sys
import kuzu
db = kuzu.Database(sys.argv[1], read_only=True)
conn = kuzu.Connection(db)
conn.execute("EXPORT DATABASE '" + sys.argv[2].replace("'", "\\\\'") + "' (format='parquet')")
"""


@dataclass
class MigrationReport:
    """What a migration did: the networks kept complete and those marked incomplete (why)."""

    store: Path
    backup: Path
    verified: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _export(old: Path, out: Path) -> None:
    try:
        done = subprocess.run([sys.executable, "-c", _EXPORT, str(old), str(out)],
                              capture_output=True, text=True, check=False)
    except OSError as e:  # pragma: no cover - the interpreter itself is there
        raise BackendUnavailable(f"cannot start the Kùzu export ({e})") from None
    if done.returncode != 0:
        lines = [x for x in done.stderr.strip().splitlines() if x.strip()]
        why = lines[-1] if lines else f"exit code {done.returncode}"
        if "No module named 'kuzu'" in why:
            why = "the kuzu package is not installed (pip install kuzu==0.11.3)"
        raise BackendUnavailable(f"cannot export the old store {old} ({why}); it is unchanged")


def _columns(conn: object, table: str) -> list[str]:
    rows = conn.execute(f"CALL table_info('{table}') RETURN name").get_as_arrow()  # type: ignore[attr-defined]
    return [str(x) for x in rows.column("name").to_pylist()]


def _node_rows(table: str, data: pa.Table, schema: list[str]) -> pa.Table:
    names = [c.split(".", 1)[-1] for c in data.column_names]
    names = [_RENAMED.get((table, c), c) for c in names]
    data = data.rename_columns(names)
    unknown = sorted(set(names) - set(schema))
    if unknown:
        raise StoreIntegrityError(f"the old store's table {table} has columns {unknown} that this "
                                  "mgedb does not know; migrate it with the mgedb that wrote it")
    cols = {c: data.column(c) if c in names else pa.nulls(data.num_rows, pa.string())
            for c in schema}
    return pa.table(cols)


def _rel_rows(data: pa.Table, schema: list[str]) -> pa.Table:
    props = {c.split(".", 1)[-1]: data.column(c) for c in data.column_names[2:]}
    cols = {"from": data.column(0), "to": data.column(1)}
    for c in schema:
        cols[c] = props[c] if c in props else pa.nulls(data.num_rows, pa.string())
    return pa.table(cols)


def migrate_store(path: Path) -> MigrationReport:
    """Convert the store directory ``path`` (see the module docstring)."""
    from mgedb.store.kuzu_store import DB_FILE, LEGACY_DB_FILE, KuzuStore

    path = Path(path).expanduser()
    old, new = path / LEGACY_DB_FILE, path / DB_FILE
    if new.exists():
        raise BackendUnavailable(f"the store at {path} is already current ({new.name}); "
                                 "nothing to migrate")
    if not old.is_file():
        raise BackendUnavailable(f"no old store at {path} (no {LEGACY_DB_FILE}); point --db at "
                                 "the directory of the store to migrate")
    work = path / f".migrate-{os.getpid()}"
    for stale in path.glob(".migrate-*"):  # left by an interrupted migration
        shutil.rmtree(stale, ignore_errors=True)
    try:
        work.mkdir()
        export = work / "export"
        _export(old, export)
        report = MigrationReport(store=new, backup=old.with_name(old.name + BACKUP_SUFFIX))
        with KuzuStore(work / "store") as store:
            conn = store._conn
            lines = (export / "copy.cypher").read_text(encoding="utf-8").splitlines()
            for line in (x for x in lines if x.strip()):
                m = _COPY_LINE.match(line)
                if not m:
                    raise StoreIntegrityError(f"unexpected line in the old store's export: "
                                              f"{line[:80]!r}")
                table, opts = m["table"], dict(_OPT.findall(m["opts"] or ""))
                data = pq.read_table(export / m["file"])
                schema = _columns(conn, table)
                if "from" in opts:
                    rows = _rel_rows(data, schema)
                    store._copy(table, rows, opts["from"], opts["to"])
                else:
                    store._copy(table, _node_rows(table, data, schema))
            for key in store.list_networks()["key"]:
                problems = store.verify(str(key))
                if problems:
                    store._write("network/incomplete", {"key": str(key)})
                    report.failed[str(key)] = "; ".join(problems)
                else:
                    store.record_counts(str(key))
                    report.verified.append(str(key))
        built = work / "store" / DB_FILE
        for f in sorted((work / "store").iterdir()):
            if f.name.startswith(DB_FILE) and f != built:  # a WAL left after close
                f.replace(path / f.name)
        built.replace(new)
        old.replace(report.backup)
        for f in path.glob(LEGACY_DB_FILE + ".*"):
            if f != report.backup and not f.name.endswith(BACKUP_SUFFIX):
                f.replace(f.with_name(f.name + BACKUP_SUFFIX))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("migrated %s: %d networks verified, %d marked incomplete", path,
             len(report.verified), len(report.failed))
    return report
