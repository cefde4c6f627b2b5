"""``kill -9`` fault injection on the embedded store: ``mgedb ingest-graph`` and ``mgedb rm`` are
killed at random moments (fixed seeds, a bounded loop); after every kill each network marked
complete passes ``mgedb verify``, the bystander network is intact, and the next run converges to
the store an uninterrupted run makes. (The study: tests/test_study.py.)

The CLI runs in a child interpreter (fork + exec), which is SIGKILLed: no cleanup
handler, no ``finally``, no atexit runs — what a power cut or the OOM killer leaves.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from store_fixtures import chain_graph, random_graph

from mgedb.graph import load_graph, save_graph
from mgedb.store.keys import graph_key
from mgedb.store.kuzu_store import KuzuStore

#: the CLI in a fresh interpreter (fork + exec): a bare fork of the test process can inherit
#: locks held by its other threads (database, driver, Ray) and hang
_CHILD = "import sys; from mgedb.cli import app; app(sys.argv[1:], prog_name='mgedb')"


def _run(args: list[str], kill_after: float | None = None) -> tuple[int | None, float]:
    """Run the CLI in a child; SIGKILL it after ``kill_after`` s. (exit code or None, seconds)."""
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        code = child.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait()
        return None, time.perf_counter() - t
    return code, time.perf_counter() - t


def _state(db: Path) -> dict[str, Any]:
    """Every network: (complete, verification problems, recounted units/edges)."""
    from mgedb.store.integrity import recount

    with KuzuStore(db) as store:
        rows = store.list_networks()
        return {str(k): (bool(c), store.verify(str(k)), recount(store, str(k)))
                for k, c in zip(rows["key"], rows["complete"], strict=True)}


def _check_after_kill(db: Path, bystander: str, expected: dict[str, Any]) -> dict[str, Any]:
    state = _state(db)
    for key, (complete, problems, _) in state.items():
        if complete:
            assert problems == [], f"{key} is marked complete but fails verification"
    assert state[bystander] == expected[bystander], "the bystander network changed"
    return state


@pytest.fixture
def graphs(tmp_path: Path) -> tuple[Path, Path]:
    """A small bystander network and a 12,502-node one that takes a while to store."""
    return (save_graph(tmp_path / "a.npz", random_graph(3)),
            save_graph(tmp_path / "b.npz", chain_graph(12_000, seed=1, inputs=500)))


def _key(path: Path) -> str:
    return graph_key(load_graph(path))


def _kills(n: int, seed: int, duration: float) -> list[float]:
    """``n`` moments in (0.05, 1) × ``duration``, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return sorted(float(x) for x in rng.uniform(0.05, 1.0, n) * duration)


def _ingest(path: Path, db: Path) -> float:
    code, took = _run(["ingest-graph", str(path), "--db", str(db)])
    assert code == 0
    return took


def _ingest_kills(tmp_path: Path, graphs: tuple[Path, Path], n: int, seed: int) -> None:
    a, b = graphs
    ref, db = tmp_path / "ref", tmp_path / "db"
    _ingest(a, ref)
    took = _ingest(b, ref)
    expected = _state(ref)
    _ingest(a, db)
    for delay in _kills(n, seed, took):
        _run(["ingest-graph", str(b), "--db", str(db)], kill_after=delay)
        _check_after_kill(db, _key(a), expected)
    _ingest(b, db)  # converges: the leftover of a killed run is replaced
    assert _state(db) == expected


def _rm_kills(tmp_path: Path, graphs: tuple[Path, Path], n: int, seed: int) -> None:
    a, b = graphs
    victim = _key(b)
    ref, db = tmp_path / "ref", tmp_path / "db"
    for g in (a, b):
        _ingest(g, ref)
        _ingest(g, db)
    full = _state(db)
    code, took = _run(["rm", victim, "--db", str(ref)])
    assert code == 0
    expected = _state(ref)
    assert list(expected) == [_key(a)]
    for delay in _kills(n, seed, took):
        if victim not in _state(db):  # the last kill came after the delete: store it again
            _ingest(b, db)
        _run(["rm", victim, "--db", str(db)], kill_after=delay)
        state = _check_after_kill(db, _key(a), full)
        if victim in state and state[victim][0]:  # killed before it began: untouched
            assert state[victim] == full[victim]
    if victim in _state(db):
        assert _run(["rm", victim, "--db", str(db)])[0] == 0
    assert _state(db) == expected


def test_killed_ingest_never_leaves_a_bad_complete_network(
        tmp_path: Path, graphs: tuple[Path, Path]) -> None:
    _ingest_kills(tmp_path, graphs, n=3, seed=11)


def test_killed_rm_never_leaves_a_half_network_complete(
        tmp_path: Path, graphs: tuple[Path, Path]) -> None:
    _rm_kills(tmp_path, graphs, n=3, seed=12)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_killed_ingest_and_rm_many_times(tmp_path: Path, graphs: tuple[Path, Path],
                                         seed: int) -> None:
    _ingest_kills(tmp_path / "ingest", graphs, n=8, seed=seed)
    _rm_kills(tmp_path / "rm", graphs, n=8, seed=seed)
