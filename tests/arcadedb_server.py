"""An in-process ArcadeDB server with its Bolt plugin: a Bolt-compatible stand-in (ArcadeDB), not
Neo4j, for the Neo4j backend's integration tests (tests/test_store_arcadedb.py).

``arcadedb-embedded`` (a test extra) bundles ArcadeDB and a Java runtime driven through JPype; the
server runs inside the test process, listens on a free 127.0.0.1 port, has a random root password
and a fresh temporary root directory, and speaks Bolt 5.4 as "Neo4j/5.26.0 compatible". It is not
Neo4j: no GDS, another planner, and the differences listed in docs/schema.md ("Testing over Bolt").

:func:`arcadedb_bolt_server` starts it, creates the database, waits until Bolt answers a query and
always stops the server and deletes its files afterwards — also when a test or the start fails.
:class:`ArcadeUnavailable` means the wheel or its JVM cannot start here: callers skip with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["DATABASE", "LABEL", "USER", "ArcadeBoltServer", "ArcadeUnavailable",
           "arcadedb_bolt_server"]

#: How every test, id and skip reason names this server.
LABEL = "Bolt-compatible stand-in (ArcadeDB), not Neo4j"
DATABASE = "mgedb"
USER = "root"  # ArcadeDB's administrator; the password is random per session
_HOST = "127.0.0.1"
_BOLT_PLUGIN = "Bolt:com.arcadedb.bolt.BoltProtocolPlugin"
# ArcadeDB's default logging writes ./log/arcadedb.log* into the working directory (the repo) and
# INFO lines for every index it builds; keep the console to errors and write no log files.
_LOGGING = """\
handlers = java.util.logging.ConsoleHandler
.level = WARNING
com.arcadedb.level = WARNING
io.undertow.level = SEVERE
org.xnio.level = SEVERE
org.jboss.level = SEVERE
java.util.logging.ConsoleHandler.level = SEVERE
"""


class ArcadeUnavailable(RuntimeError):
    """The ArcadeDB wheel, its JVM or its Bolt listener cannot start on this machine."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


def _start_jvm(workdir: Path) -> None:
    """Start the JVM (once per process) with quiet logging and crash logs outside the repo."""
    import jpype
    import jpype.config
    from arcadedb_embedded.jvm import start_jvm

    if jpype.isJVMStarted():
        start_jvm()  # join the running JVM (its settings were fixed by whoever started it)
        return
    props = workdir / "logging.properties"
    props.write_text(_LOGGING)
    old = os.environ.get("ARCADEDB_JVM_ERROR_FILE")
    os.environ["ARCADEDB_JVM_ERROR_FILE"] = str(
        Path(tempfile.gettempdir()) / "mgedb-arcadedb-hs_err_pid%p.log")
    try:
        start_jvm(jvm_args=[f"-Djava.util.logging.config.file={props}"])
    finally:
        if old is None:
            os.environ.pop("ARCADEDB_JVM_ERROR_FILE", None)
        else:
            os.environ["ARCADEDB_JVM_ERROR_FILE"] = old
    # A Bolt connection thread that outlives its server is a non-daemon Java thread, and JPype's
    # exit hook would wait for it forever (measured: the test process hangs at exit). Nothing in the
    # JVM needs an orderly shutdown once the servers are stopped and their files deleted.
    jpype.config.destroy_jvm = False


def _drop_bolt_connections(java_server: Any) -> int:
    """Close the sockets of the Bolt connections of one server still open after its stop
    (ArcadeDB's stop() closes the listener but leaves established connections answering, as
    unauthenticated ones); a stopped Neo4j drops them. Returns how many were closed."""
    import jpype

    thread = jpype.JClass("java.lang.Thread")
    executor = jpype.JClass("com.arcadedb.bolt.BoltNetworkExecutor")
    sock_field = executor.class_.getDeclaredField("socket")
    server_field = executor.class_.getDeclaredField("server")
    sock_field.setAccessible(True)
    server_field.setAccessible(True)
    closed = 0
    for t in list(thread.getAllStackTraces().keySet()):
        if isinstance(t, executor) and java_server.equals(server_field.get(t)):
            sock = sock_field.get(t)
            if sock is not None and not sock.isClosed():
                sock.close()
                closed += 1
    return closed


class ArcadeBoltServer:
    """One ArcadeDB server (Bolt on ``127.0.0.1:bolt_port``) over a temporary root directory."""

    def __init__(self, root: Path, *, password: str | None = None,
                 database: str = DATABASE) -> None:
        self.root = root
        self.password = password or secrets.token_urlsafe(18)
        self.database = database
        self.bolt_port = free_port()
        self.http_port = free_port()
        self.start_seconds = 0.0
        self._server: Any = None

    @property
    def uri(self) -> str:
        return f"bolt://{_HOST}:{self.bolt_port}"

    @property
    def running(self) -> bool:
        return self._server is not None and bool(self._server.is_started())

    def connection(self, **changes: Any) -> dict[str, Any]:
        """``Neo4jStore.connect`` keyword arguments (``NEO4J_*``-style settings)."""
        return {"uri": self.uri, "user": USER, "password": self.password,
                "database": self.database, **changes}

    def start(self, timeout: float = 90.0) -> None:
        """Start the server (again: same root, port and password), create the database if it
        does not exist, and return once a Bolt query on it answers."""
        t0 = time.perf_counter()
        try:
            import arcadedb_embedded as adb

            _start_jvm(self.root)
            server = adb.create_server(str(self.root / "server"), self.password, config={
                "host": _HOST, "http_port": self.http_port,
                "server_plugins": _BOLT_PLUGIN, "bolt_port": self.bolt_port,
            })
            server.start()
        except Exception as e:  # ImportError, a JVM that cannot start, a port in use, …
            first = str(e).splitlines()[0] if str(e) else ""
            raise ArcadeUnavailable(f"{type(e).__name__}: {first}") from e
        self._server = server
        try:
            server.create_database(self.database)  # opens it when it exists (a restart)
            self._wait_for_bolt(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - t0

    def _wait_for_bolt(self, deadline: float) -> None:
        import neo4j

        last: Exception | None = None
        while time.perf_counter() < deadline:
            try:
                with neo4j.GraphDatabase.driver(self.uri, auth=(USER, self.password)) as d:
                    d.verify_connectivity()
                    with d.session(database=self.database) as s:
                        if s.run("RETURN 1 AS one").single(strict=True)["one"] == 1:
                            return
            except Exception as e:  # not listening yet
                last = e
            time.sleep(0.2)
        raise ArcadeUnavailable(f"ArcadeDB's Bolt listener on {self.uri} did not answer "
                                f"({type(last).__name__ if last else 'timeout'})")

    def stop(self) -> None:
        """Stop the server and drop its open Bolt connections (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        try:
            server.stop()
        finally:
            with contextlib.suppress(Exception):
                _drop_bolt_connections(server._java_server)

    def close(self) -> None:
        """Stop the server and delete its root directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def arcadedb_bolt_server(database: str = DATABASE) -> Iterator[ArcadeBoltServer]:
    """A started server in a fresh temporary directory; stopped and deleted on exit, always.

    A start that fails on a taken port (the free port was grabbed in between) is retried once on
    new ports; :class:`ArcadeUnavailable` says why it cannot start at all.
    """
    root = Path(tempfile.mkdtemp(prefix="mgedb-arcadedb-"))
    server = ArcadeBoltServer(root, database=database)
    try:
        try:
            server.start()
        except ArcadeUnavailable:
            server.stop()
            server.bolt_port, server.http_port = free_port(), free_port()
            server.start()
        yield server
    finally:
        server.close()
