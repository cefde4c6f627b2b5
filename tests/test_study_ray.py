"""`mgedb study --executor ray` on a local 2-CPU Ray cluster started inside the test run (on
127.0.0.1): the quick study gives the local executor's keys, metrics, store contents and ranking;
a re-run resumes; Ctrl-C cancels the outstanding tasks and leaves only complete networks; a worker
killed mid-task is retried and the study completes with each network stored once.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.store import open_store
from mgedb.study import StudyConfig, run_study
from mgedb.study.executors import RayExecutor

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'mgedb[ray]')")
psutil = pytest.importorskip("psutil", reason="psutil (a Ray dependency) is not installed")

runner = CliRunner()


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray instance with 2 CPUs on 127.0.0.1, stopped at the end of the module (two
    tries: on a loaded machine the raylet can miss Ray's fixed 30 s start-up deadline)."""
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                     object_store_memory=300 * 2**20, logging_level="WARNING",
                     log_to_driver=False)
            break
        except Exception as e:  # any reason Ray cannot start here is a skip
            ray.shutdown()  # what did start
            if attempt == 2:
                pytest.skip(f"a local Ray instance cannot start here ({type(e).__name__}: {e})")
    try:
        yield
    finally:
        ray.shutdown()


def _networks(db: Path) -> pd.DataFrame:
    with open_store("embedded", db, read_only=True) as store:
        rows = store.query("MATCH (n:Network) RETURN n.key AS key, n.pruner AS pruner, "
                           "n.complete AS complete, n.digest AS digest, n.n_nodes AS n_nodes, "
                           "n.n_edges AS n_edges ORDER BY key")
        rows["metrics"] = [store.get_metrics(k) for k in rows["key"]]
    return rows


def _same_metrics(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.fixture(scope="module")
def ray_quick(cluster: None, quick: dict[str, Any]) -> dict[str, Any]:
    root = quick["root"]
    out, db = root / "ray-report", root / "ray-db"
    res = runner.invoke(app, ["study", "--quick", "--executor", "ray", "--out", str(out),
                              "--db", str(db)])
    return {"res": res, "out": out, "db": db}


def test_ray_quick_study_equals_the_local_one(quick: dict[str, Any],
                                              ray_quick: dict[str, Any]) -> None:
    res = ray_quick["res"]
    assert res.exit_code == 0, res.output
    assert "4 networks (0 reused)" in res.output
    local, remote = _networks(quick["db"]), _networks(ray_quick["db"])
    assert remote["complete"].all() and len(remote) == 4
    cols = ["key", "pruner", "digest", "n_nodes", "n_edges"]
    assert remote[cols].to_dict("records") == local[cols].to_dict("records")
    for a, b in zip(local["metrics"], remote["metrics"], strict=True):
        assert _same_metrics(a, b)
    ranking = [pd.read_csv(d / "ranking.csv") for d in (quick["out"], ray_quick["out"])]
    pd.testing.assert_frame_equal(*ranking)
    results = [pd.read_csv(d / "results.csv").drop(columns=["checkpoint"], errors="ignore")
               for d in (quick["out"], ray_quick["out"])]
    pd.testing.assert_frame_equal(*results)


def test_ray_rerun_resumes_without_recomputing(ray_quick: dict[str, Any]) -> None:
    ckpts = sorted((ray_quick["out"] / "checkpoints").glob("*.pt"))
    before = {p: p.stat().st_mtime_ns for p in ckpts}
    res = runner.invoke(app, ["study", "--quick", "--executor", "ray", "--out",
                              str(ray_quick["out"]), "--db", str(ray_quick["db"])])
    assert res.exit_code == 0, res.output
    assert "4 networks (4 reused)" in res.output
    assert {p: p.stat().st_mtime_ns for p in ckpts} == before


def _tasks(prefix: str) -> list[Any]:
    """This test run's Ray workers now running a task named ``prefix …``."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.cmdline()[:1] and p.cmdline()[0].startswith(f"ray::{prefix}"):
                found.append(p)
        except psutil.Error:
            continue
    return found


class _Killer(threading.Thread):
    """SIGKILLs the first worker seen running a measure task, on sight (once, within 120 s):
    a measure of the quick study's networks can take well under a second on a quiet machine,
    so waiting for it to have run a while misses it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline and not self.killed:
            for p in _tasks("measure"):
                os.kill(p.pid, signal.SIGKILL)
                self.killed.append(p.pid)
                break
            time.sleep(0.02)


def test_ctrl_c_cancels_tasks_then_a_killed_worker_is_retried(
        cluster: None, quick: dict[str, Any], ray_quick: dict[str, Any]) -> None:
    out, db = quick["root"] / "ray-fault", quick["root"] / "ray-fault-db"
    (out / "checkpoints").mkdir(parents=True)
    for p in (ray_quick["out"] / "checkpoints").glob("resnet20-[ue]*"):  # uniform, erk
        shutil.copy2(p, out / "checkpoints" / p.name)
    cfg = StudyConfig(out=out, db=db, pruners=("uniform", "erk"), sparsities=(0.98,),
                      synthetic_samples=512)

    def interrupt(stage: str, done: int, total: int, detail: str) -> None:
        if stage == "measure" and done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, executor=RayExecutor(), progress=interrupt, report=False)
    deadline = time.monotonic() + 30
    while _tasks("measure") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _tasks("measure"), "a measure task outlived Ctrl-C"
    stored = _networks(db)
    assert len(stored) == 1 and stored["complete"].all()

    killer = _Killer()
    killer.start()
    try:
        result = run_study(cfg, executor=RayExecutor(), report=False)
    finally:
        killer.stop.set()
        killer.join()
    assert len(killer.killed) == 1, "no measure task was caught running to kill it"
    assert [n.reused for n in result.networks].count(True) == 1
    stored = _networks(db)
    assert sorted(stored["pruner"]) == ["erk", "uniform"] and stored["complete"].all()
    local = _networks(quick["db"]).set_index("key")
    for row in stored.to_dict("records"):
        assert row["digest"] == local.loc[row["key"], "digest"]
        assert _same_metrics(row["metrics"], local.loc[row["key"], "metrics"])
