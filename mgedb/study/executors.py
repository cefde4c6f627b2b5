"""Where a study's per-network work runs: in this process (``local``) or on a Ray cluster (``ray``).

Every network of a study is a chain of links — prune → (train) → encode+measure — and is then
stored; the links are the methods of :class:`~mgedb.study.links.StudyWork`, and both executors call
the same links with the same inputs, so they give the same networks, keys and metrics.

* :class:`LocalExecutor` runs the links in this process, stage by stage: every prune, then every
  training run, then encode+measure+store per network (the behaviour of ``mgedb study``).
* :class:`RayExecutor` submits every chain at once as Ray tasks (a link starts when the one before
  it is done; training asks for a GPU with ``--device cuda``, the other links for one CPU) and
  stores each network in this process, the driver, as its measure task finishes — the embedded
  store has one writer. A graph travels as a Ray object (its NumPy arrays, zero-copy in the
  object store) and waits there, not in the driver's memory, until it is stored; checkpoints and
  training records are files under ``--out``, which every node must see at the same path.

A task whose worker dies is retried (``retries`` times); an error raised by a link (bad input) is
not. Ctrl-C or a failure cancels every outstanding task; a network enters the store through one
all-or-nothing ingest, so the store holds each network completely or not at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mgedb.errors import ClusterError, MgedbError
from mgedb.study.config import NetworkResult, Run, StudyProgress
from mgedb.study.links import Measured, Pruned, StudyWork, TrainJob, stored_keys
from mgedb.study.measure import timed
from mgedb.vocab import ExecutorKind

if TYPE_CHECKING:
    from mgedb.store import GraphStore

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "make_executor"]


class Executor(Protocol):
    """Runs the links of every network of a study; returns the results in ``work.runs`` order."""

    name: str

    def networks(self, work: StudyWork, store: GraphStore, progress: StudyProgress,
                 timings: dict[str, float]) -> list[NetworkResult]: ...


def _add(timings: dict[str, float], more: dict[str, float], prefix: str = "") -> None:
    for k, v in more.items():
        timings[prefix + k] = timings.get(prefix + k, 0.0) + v


class LocalExecutor:
    """Stage by stage, in this process (the default)."""

    name = "local"

    def networks(self, work: StudyWork, store: GraphStore, progress: StudyProgress,
                 timings: dict[str, float]) -> list[NetworkResult]:
        runs, jobs = work.runs, work.train_jobs()
        pruned: dict[Run, Pruned] = {}
        with timed(timings, "prune"):
            progress("prune", 0, len(runs), "")
            for i, run in enumerate(runs, 1):
                pruned[run] = work.prune(run)
                progress("prune", i, len(runs), run.label)
        accuracy: dict[TrainJob, float] = {}
        if jobs:
            with timed(timings, "train"):
                progress("train", 0, len(jobs), "")
                for i, job in enumerate(jobs, 1):
                    accuracy[job] = work.train(job)
                    progress("train", i, len(jobs), job.label)
        results = []
        steps: dict[str, float] = {}
        with timed(timings, "measure"):
            stored = stored_keys(store)
            progress("measure", 0, len(runs), "")
            for i, run in enumerate(runs, 1):
                measured = work.encode(pruned[run], stored)
                _add(steps, measured.timings)
                results.append(work.store(store, measured, work.labels(run, accuracy), steps))
                progress("measure", i, len(runs), run.label)
        _add(timings, steps, "measure: ")
        return results


# -- Ray -----------------------------------------------------------------------------------------
# The task bodies: module-level functions, so that Ray workers import them by name.
def _prune_link(work: StudyWork, run: Run) -> Pruned:
    return work.prune(run)


def _train_link(work: StudyWork, job: TrainJob, pruned: Pruned | None) -> float:
    del pruned  # waited for: the job reads the checkpoint at its path
    return work.train(job)


def _measure_link(work: StudyWork, pruned: Pruned, stored: frozenset[str]) -> Measured:
    return work.encode(pruned, stored)


def _version_link() -> str:
    from mgedb import __version__

    return __version__


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError("--executor ray needs Ray: pip install 'mgedb[ray]'") from None
    return ray


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


class RayExecutor:
    """Every link a Ray task; the driver (this process) stores the networks.

    ``address``: None uses the Ray instance this process is connected to, or else starts a local
    one for the study (``num_cpus``, default all cores) and stops it afterwards; ``"auto"`` joins
    the cluster this machine belongs to (``ray start``, ``RAY_ADDRESS``); ``"ray://HOST:PORT"``
    connects through Ray Client. ``retries``: how often a task whose worker died is rerun.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 retries: int = 3) -> None:
        self.address, self.num_cpus, self.retries = address, num_cpus, retries

    def networks(self, work: StudyWork, store: GraphStore, progress: StudyProgress,
                 timings: dict[str, float]) -> list[NetworkResult]:
        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            opts: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
            if self.address is None:
                opts.update(num_cpus=self.num_cpus, include_dashboard=False)
            with timed(timings, "ray start"):
                try:
                    ray.init(address=self.address, **opts)
                except Exception as e:  # Ray raises bare Exceptions too (a start-up timeout)
                    ray.shutdown()  # stops whatever part of a local instance did start
                    where = f"--address {self.address}" if self.address else "a local Ray"
                    raise ClusterError(f"{where}: Ray cannot start or connect "
                                       f"({_first_line(e)}); start a cluster with `ray start "
                                       "--head` and pass --address auto") from None
            started = True
        try:
            return _Driver(self, ray, work, store, progress, timings).run()
        finally:
            if started:
                ray.shutdown()


def describe(ray: Any) -> str:
    """The cluster as it is now: ``1 node · 2 CPUs · 0 GPUs``."""
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return (f"{nodes} node{'s' * (nodes != 1)} · {res.get('CPU', 0):g} CPUs · "
            f"{res.get('GPU', 0):g} GPUs")


@dataclass
class _Task:
    stage: str  # prune | train | measure
    run: Run | None
    label: str
    job: TrainJob | None = None


class _Driver:
    """One study on Ray: every chain submitted up front (Ray starts a link once its input is
    ready), then the finished tasks followed and each measured network stored, one at a time."""

    def __init__(self, ex: RayExecutor, ray: Any, work: StudyWork, store: GraphStore,
                 progress: StudyProgress, timings: dict[str, float]) -> None:
        self.ex, self.ray, self.work, self.store = ex, ray, work, store
        self.progress, self.timings = progress, timings
        self.runs, self.jobs = work.runs, work.train_jobs()
        self.pending: dict[Any, _Task] = {}
        self.done = {"prune": 0, "train": 0, "measure": 0}
        self.accuracy: dict[TrainJob, float] = {}
        self.measured: dict[Run, Any] = {}  # run → the ref of its finished measure task
        self.results: dict[Run, NetworkResult] = {}
        self.steps: dict[str, float] = {}

    def run(self) -> list[NetworkResult]:
        ray, work = self.ray, self.work
        self.check_version()
        once = {"max_retries": self.ex.retries, "retry_exceptions": False}
        gpu = 1 if str(work.cfg.device).startswith("cuda") else 0
        prune = ray.remote(num_cpus=1, **once)(_prune_link)
        train = ray.remote(num_cpus=0 if gpu else 1, num_gpus=gpu, **once)(_train_link)
        measure = ray.remote(num_cpus=1, **once)(_measure_link)
        t0 = time.perf_counter()
        try:
            self.work_ref = ray.put(work)
            stored = ray.put(stored_keys(self.store))
            self.progress("cluster", 1, 1, describe(ray))
            for stage, total in (("prune", len(self.runs)), ("train", len(self.jobs)),
                                 ("measure", len(self.runs))):
                if total:
                    self.progress(stage, 0, total, "")
            pruned = {run: self.submit(prune, _Task("prune", run, run.label), run)
                      for run in self.runs}
            for job in self.jobs:
                self.submit(train, _Task("train", job.run, job.label, job), job,
                            None if job.run is None else pruned[job.run])
            for run in self.runs:
                self.submit(measure, _Task("measure", run, run.label), pruned[run], stored)
            del pruned
            while self.pending or self.measured:
                if self.pending:
                    ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=1.0)
                    for ref in ready:
                        self.finished(ref, self.pending.pop(ref))
                self.store_ready()
        except BaseException:
            self.cancel()
            raise
        _add(self.timings, self.steps, "measure: ")
        self.timings["ray wall"] = time.perf_counter() - t0
        return [self.results[run] for run in self.runs]

    def submit(self, fn: Any, task: _Task, *args: Any) -> Any:
        ref = fn.options(name=f"{task.stage} {task.label}").remote(self.work_ref, *args)
        self.pending[ref] = task
        return ref

    def tick(self, stage: str, detail: str) -> None:
        self.done[stage] += 1
        total = len(self.jobs) if stage == "train" else len(self.runs)
        self.progress(stage, self.done[stage], total, detail)

    def get(self, ref: Any, task: _Task) -> Any:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, MgedbError):
                raise e.cause from None
            raise
        except ray.exceptions.RayError as e:
            raise ClusterError(f"{task.stage} {task.label}: {type(e).__name__} "
                               f"({_first_line(e)}), after {self.ex.retries} retries") from None

    def finished(self, ref: Any, task: _Task) -> None:
        if task.stage == "prune":
            pruned: Pruned = self.get(ref, task)
            _add(self.timings, {"prune": pruned.wall_s})
            self.tick("prune", task.label)
        elif task.stage == "train":
            assert task.job is not None
            self.accuracy[task.job] = float(self.get(ref, task))
            self.tick("train", task.label)
        else:
            assert task.run is not None
            self.measured[task.run] = ref  # fetched when stored: the graph waits in Ray

    def store_ready(self) -> None:
        """Store the measured networks whose labels (when training) are in, one at a time."""
        for run in list(self.measured):
            labels = self.work.labels(run, self.accuracy)
            if labels is None and self.jobs:
                continue
            measured: Measured = self.get(self.measured.pop(run), _Task("measure", run,
                                                                        run.label))
            self.work.check_shared(measured.pruned)
            _add(self.steps, measured.timings)
            self.results[run] = self.work.store(self.store, measured, labels, self.steps)
            del measured
            self.tick("measure", run.label)

    def cancel(self) -> None:
        """Cancel every outstanding task (its worker is stopped) and drop finished graphs."""
        for ref in [*self.pending, *self.measured.values()]:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # finished or gone: nothing to cancel
                continue
        self.pending.clear()
        self.measured.clear()

    def check_version(self) -> None:
        """The workers must run this mgedb: the same links give the same keys and metrics."""
        from mgedb import __version__

        ray = self.ray
        theirs = ray.get(ray.remote(num_cpus=0, max_retries=self.ex.retries)(_version_link)
                         .remote())
        if theirs != __version__:
            raise ClusterError(f"the Ray workers run mgedb {theirs}, this driver "
                               f"{__version__}; install the same mgedb on every node")


def make_executor(kind: str, address: str | None = None) -> Executor:
    """The executor ``kind`` (``local``, ``ray``); ``address`` goes with ``ray`` only."""
    if ExecutorKind(kind) is ExecutorKind.LOCAL:
        if address is not None:
            raise MgedbError("--address goes with --executor ray; add --executor ray or drop "
                             "--address")
        return LocalExecutor()
    return RayExecutor(address)
