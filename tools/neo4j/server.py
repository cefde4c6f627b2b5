"""A Docker-free Neo4j 5 Community + Graph Data Science server for development and CI.

    python tools/neo4j/server.py start      # background; writes .neo4j/env, prints the URI
    python tools/neo4j/server.py stop       # stops it and removes its temporary directory
    python tools/neo4j/server.py run -- CMD # start, run CMD with NEO4J_* set, always stop
    python tools/neo4j/server.py import DIR # a new server whose database is the import set DIR

The jars come from Maven Central through ``tools/neo4j/pom.xml`` (``mvn package`` copies Neo4j
into ``target/lib`` and GDS into ``target/plugins``; ``~/.m2`` caches them, so later starts are
offline). The server listens on a free 127.0.0.1 port (Bolt only, no HTTP), with a random
password (set over Bolt, never on a command line, never printed), ``gds.*`` unrestricted and its
data, logs and import folder in a fresh temporary directory. A failed start keeps that directory
and prints the server log's last lines. Needs only the standard library and the ``neo4j`` driver
(``import`` also mgedb, for its schema).

``import DIR`` stops a running server, builds a fresh one's database offline from an import set
(``mgedb neo4j import-set DIR GRAPH…``: ``neo4j-admin database import full`` with the set's
arguments, ``--overwrite-destination``), starts it and creates mgedb's constraints and indexes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STATE = Path(os.environ.get("MGEDB_NEO4J_STATE", REPO / ".neo4j"))
TARGET = HERE / "target"
ENTRY = "org.neo4j.server.CommunityEntryPoint"
START_TIMEOUT = float(os.environ.get("MGEDB_NEO4J_START_TIMEOUT", "180"))
# 1 GiB of heap made G1 take ~40 % of the server's CPU during bulk writes (37 % of thread CPU in
# GC threads at 50k-row UNWIND batches); at 2 GiB it is ~3 %.
HEAP = os.environ.get("MGEDB_NEO4J_HEAP", "2g")
PAGECACHE = os.environ.get("MGEDB_NEO4J_PAGECACHE", "1g")
DATABASE = "neo4j"
# off-heap memory of neo4j-admin import (its own default is 90 % of the free memory)
IMPORT_MEMORY = os.environ.get("MGEDB_NEO4J_IMPORT_MEMORY", "1g")
MANIFEST = "import-set.json"  # mgedb.store.neo4j_import.MANIFEST
IMPORT_FORMAT = 1
# The JVM options Neo4j's own launcher passes (conf/neo4j.conf defaults of the distribution).
JVM_OPTS = [
    "-XX:+UseG1GC", "-XX:-OmitStackTraceInFastThrow", "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields", "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true", "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--enable-native-access=ALL-UNNAMED",
    "-XX:+ExitOnOutOfMemoryError",
]


class Unavailable(Exception):
    """Java or Maven is missing: the live tests skip (exit code 3 from ``start``)."""


class StartFailed(Exception):
    """The server did not come up."""


class BadInput(Exception):
    """What was asked cannot work (exit code 2)."""


def _say(msg: str) -> None:
    print(f"neo4j: {msg}", file=sys.stderr, flush=True)


def java_cmd() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH, version 17 or 21 (what Neo4j 5.26 runs on)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise Unavailable("no Java found (install a JDK 17 or 21, or set JAVA_HOME)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    line = out.splitlines()[0] if out else "?"
    ver = line.split('"')[1] if '"' in line else "?"
    major = ver.split(".")[0]
    if major not in ("17", "21"):
        raise Unavailable(f"{java} is Java {ver}; Neo4j 5.26 needs Java 17 or 21 (set JAVA_HOME)")
    return java


def ensure_jars() -> None:
    """``mvn package`` (offline first) unless target/ already matches pom.xml."""
    pom = HERE / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    stamp = TARGET / ".pom-sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise Unavailable("Maven (mvn) not found: it fetches Neo4j and GDS from Maven Central")
    shutil.rmtree(TARGET, ignore_errors=True)
    base = [mvn, "-B", "-q", "-f", str(pom), "package"]
    t0 = time.monotonic()
    if subprocess.run([*base, "-o"], capture_output=True).returncode != 0:
        _say("fetching Neo4j and GDS from Maven Central (first start; cached in ~/.m2) ...")
        r = subprocess.run(base, capture_output=True, text=True)
        if r.returncode != 0:
            tail = "\n".join((r.stdout + r.stderr).splitlines()[-20:])
            raise StartFailed(f"mvn package failed in {HERE}:\n{tail}")
    stamp.write_text(digest)
    _say(f"jars ready in {time.monotonic() - t0:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _conf(home: Path, port: int) -> str:
    settings = {
        "server.default_listen_address": "127.0.0.1",
        "server.bolt.listen_address": f"127.0.0.1:{port}",
        "server.bolt.advertised_address": f"127.0.0.1:{port}",
        "server.http.enabled": "false",
        "server.https.enabled": "false",
        "server.directories.data": str(home / "data"),
        "server.directories.logs": str(home / "logs"),
        "server.directories.import": str(home / "import"),
        "server.directories.plugins": str(TARGET / "plugins"),
        "server.directories.run": str(home / "run"),
        "server.memory.pagecache.size": PAGECACHE,
        "dbms.security.auth_enabled": "true",
        "dbms.security.procedures.unrestricted": "gds.*",
        "dbms.usage_report.enabled": "false",
        "db.tx_log.rotation.retention_policy": "2 files",
        "initial.dbms.default_database": DATABASE,
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def _log_tail(home: Path, n: int = 30) -> str:
    lines: list[str] = []
    for name in ("console.log", "neo4j.log", "debug.log"):
        p = home / "logs" / name
        if p.is_file():
            lines += [f"--- {p}", *p.read_text(errors="replace").splitlines()[-n:]]
    return "\n".join(lines) or f"(no log in {home / 'logs'})"


def _set_password(uri: str, password: str, deadline: float, proc: subprocess.Popen[bytes],
                  home: Path) -> None:
    """Wait for Bolt, change the initial ``neo4j`` password over Bolt, check GDS loaded."""
    import neo4j
    from neo4j import exceptions as ne

    while True:
        if proc.poll() is not None:
            raise StartFailed(f"the server exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise StartFailed(f"no Bolt answer on {uri} within {START_TIMEOUT:.0f} s")
        try:
            with neo4j.GraphDatabase.driver(uri, auth=("neo4j", "neo4j")) as d, \
                    d.session(database="system") as s:
                s.run("ALTER CURRENT USER SET PASSWORD FROM $old TO $new",
                      old="neo4j", new=password).consume()
            break
        except (ne.ServiceUnavailable, ne.SessionExpired, OSError, ne.DatabaseUnavailable):
            time.sleep(0.5)
    with neo4j.GraphDatabase.driver(uri, auth=("neo4j", password)) as d:
        while True:
            try:
                with d.session(database=DATABASE) as s:
                    v = s.run("CALL gds.version() YIELD gdsVersion").single(strict=True)[0]
                _say(f"GDS {v} loaded")
                return
            except (ne.ServiceUnavailable, ne.DatabaseUnavailable, ne.TransientError):
                if time.monotonic() > deadline:
                    raise StartFailed(f"database {DATABASE} not online within "
                                      f"{START_TIMEOUT:.0f} s") from None
                time.sleep(0.5)


def _pid() -> int | None:
    p = STATE / "pid"
    if not p.is_file():
        return None
    pid = int(p.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _import_args(directory: Path) -> list[str]:
    """The ``neo4j-admin database import full`` arguments of the import set in ``directory``."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"{directory}: not an import set ({path}: {type(e).__name__}); write one "
                       "with `mgedb neo4j import-set DIR GRAPH.npz …`") from None
    if manifest.get("format") != IMPORT_FORMAT:
        raise BadInput(f"{path}: import set format {manifest.get('format')!r}, this launcher "
                       f"reads {IMPORT_FORMAT}; write it again with this mgedb")
    return ["database", "import", "full", DATABASE, *manifest["args"], "--overwrite-destination"]


def _import(java: str, home: Path, directory: Path, args: list[str]) -> float:
    """Run neo4j-admin import of ``directory`` into ``home``'s (stopped, new) database."""
    cmd = [java, f"-Xmx{HEAP}", "-cp", str(TARGET / "lib" / "*"), "org.neo4j.cli.AdminTool",
           *args, f"--report-file={home / 'logs' / 'import.report'}",
           f"--max-off-heap-memory={IMPORT_MEMORY}"]
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(home / "conf")}
    t0 = time.monotonic()
    with open(home / "logs" / "import.log", "wb") as log:
        code = subprocess.call(cmd, env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    if code != 0:
        tail = "\n".join((home / "logs" / "import.log").read_text(errors="replace")
                         .splitlines()[-15:])
        raise StartFailed(f"neo4j-admin import of {directory} failed (exit {code}); files kept "
                          f"in {home}\n{tail}")
    return time.monotonic() - t0


def _create_schema(uri: str, password: str) -> None:
    """mgedb's constraints and indexes (cypher/schema/constraints), as any mgedb write makes."""
    try:
        from mgedb.store.neo4j_store import Neo4jStore
    except ImportError as e:
        raise StartFailed(f"cannot import mgedb ({e}) to create its schema; run this with the "
                          "project's Python (.venv/bin/python)") from None
    with Neo4jStore.connect(uri, "neo4j", password, DATABASE) as store:
        store.ensure_schema()


def start(import_set: Path | None = None) -> str:
    """Start the server in the background (its database first imported offline from
    ``import_set``, when given); returns the Bolt URI."""
    args = _import_args(import_set) if import_set is not None else None
    if _pid() is not None:
        raise StartFailed(f"a server is already running (pid file {STATE / 'pid'}); "
                          "run `make neo4j-stop` first")
    java = java_cmd()
    ensure_jars()
    home = Path(tempfile.mkdtemp(prefix="mgedb-neo4j-"))
    for d in ("conf", "data", "logs", "import", "run"):
        (home / d).mkdir()
    port = free_port()
    uri = f"bolt://127.0.0.1:{port}"
    (home / "conf" / "neo4j.conf").write_text(_conf(home, port))
    if import_set is not None and args is not None:
        _say(f"importing {import_set} (neo4j-admin database import full) ...")
        took = _import(java, home, import_set, args)
        _say(f"imported in {took:.1f} s")
    cp = os.pathsep.join([str(TARGET / "lib" / "*"), str(TARGET / "plugins" / "*")])
    cmd = [java, f"-Xms{HEAP}", f"-Xmx{HEAP}", *JVM_OPTS, "-cp", cp, ENTRY,
           f"--home-dir={home}", f"--config-dir={home / 'conf'}"]
    t0 = time.monotonic()
    with open(home / "logs" / "console.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=home)
    STATE.mkdir(exist_ok=True)
    (STATE / "pid").write_text(f"{proc.pid}\n{home}\n")
    password = secrets.token_urlsafe(18)
    try:
        _set_password(uri, password, t0 + START_TIMEOUT, proc, home)
        if import_set is not None:
            _create_schema(uri, password)
    except BaseException as e:
        _kill(proc.pid)
        (STATE / "pid").unlink(missing_ok=True)
        raise StartFailed(f"{e}; server files kept in {home}\n{_log_tail(home)}") from None
    env = STATE / "env"
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"export NEO4J_URI={shlex.quote(uri)}\nexport NEO4J_USER=neo4j\n"
                f"export NEO4J_PASSWORD={shlex.quote(password)}\n"
                f"export NEO4J_DATABASE={DATABASE}\n"
                f"export MGEDB_NEO4J_IMPORT_DIR={shlex.quote(str(home / 'import'))}\n")
    _say(f"Neo4j up on {uri} in {time.monotonic() - t0:.1f} s (data in {home}); "
         f"settings in {env}")
    return uri


def _kill(pid: int, grace: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + grace
        while time.monotonic() < end:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:  # not our child: poll until it is gone
                os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)


def stop() -> None:
    """Stop the server started by :func:`start` and remove its temporary directory."""
    p = STATE / "pid"
    if not p.is_file():
        _say("no server to stop")
        return
    lines = p.read_text().split("\n")
    home = Path(lines[1]) if len(lines) > 1 and lines[1] else None
    pid = _pid()
    if pid is not None:
        _kill(pid)
    p.unlink(missing_ok=True)
    (STATE / "env").unlink(missing_ok=True)
    if home is not None and home.name.startswith("mgedb-neo4j-"):
        shutil.rmtree(home, ignore_errors=True)
    _say("stopped")


def run(cmd: list[str]) -> int:
    """Start (unless ``NEO4J_URI`` is set), run ``cmd`` with the settings, always stop.

    Without Java or Maven the command runs without a server (the live tests skip, with the
    reason) unless ``MGEDB_REQUIRE_NEO4J=1`` (CI), where that is an error."""
    env = dict(os.environ)
    started = False
    if not env.get("NEO4J_URI"):
        try:
            if _pid() is None:  # else reuse the server `make neo4j` left running
                start()
                started = True
            for line in (STATE / "env").read_text().splitlines():
                k, _, v = line.removeprefix("export ").partition("=")
                env[k] = shlex.split(v)[0] if v else ""
        except (Unavailable, StartFailed) as e:
            if os.environ.get("MGEDB_REQUIRE_NEO4J") == "1":
                _say(f"cannot start: {e}")
                return 3
            _say(f"{e}\nneo4j: running without a Neo4j server (the live tests skip)")
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        if started:
            stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("start")
    sub.add_parser("stop")
    sub.add_parser("jars", help="only resolve the jars (mvn package)")
    i = sub.add_parser("import", help="stop, build a new database from an import set, start")
    i.add_argument("directory", type=Path, help="an import set (mgedb neo4j import-set)")
    r = sub.add_parser("run")
    r.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run's finally stops the server
    try:
        if a.cmd == "start":
            print(start())
        elif a.cmd == "stop":
            stop()
        elif a.cmd == "jars":
            ensure_jars()
        elif a.cmd == "import":
            _import_args(a.directory)  # refuse a wrong directory before stopping anything
            if _pid() is not None:
                _say("stopping the running server (its database is replaced)")
                stop()
            print(start(a.directory))
        else:
            cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
            return run(cmd)
    except Unavailable as e:
        _say(str(e))
        return 3
    except BadInput as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    except StartFailed as e:
        _say(f"start failed: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
