"""The array engine: the MGE topometrics as a few tasks over one shared CSR, on up to two threads.

One directed CSR (rows = sources, sorted, float32 weights) is built once from the edge arrays;
every task reads it, none copies it:

========== ======================================================= ==========================
task       metrics                                                 work
========== ======================================================= ==========================
laplacian  spectral_radius (float64 ARPACK on ``D − A``)            30–250 matvecs
spectral   spectral_gap (float32 ARPACK, ``A = U + Uᵀ`` matvec)     100–170 matvecs
graph      cut_edges, cut_nodes, n_components, mean_component_size,
           k_core, motifs (one undirected adjacency, compiled DFS,
           Batagelj–Zaversnik cores, counted motif roots)          linear (+ motif roots)
hop        one_hop, two_hop (marker sweep over 2-step walks, in    Σ_u Σ_{v∈N⁺(u)} deg⁺(v)
           two halves of equal work, one task each)
local      sink/source/disconnected nodes, removable edges,        linear
           strength
========== ======================================================= ==========================

Every kernel releases the GIL (numba ``nogil``; ARPACK spends its time in the matvec callback),
so two threads really run at once and share the arrays without copies or pickling. Tasks start
longest first on ``workers`` threads (default: 2 when two CPUs are available to this process and
the graph is big enough to be worth it, else 1); each task is deterministic and independent of the
others, so the values do not depend on the number of threads. The two eigensolves go first: they
are the floor (on CONV-6 the two largest Laplacian eigenvalues are 0.05 % apart and the radius
alone takes half the CPU time), and the short tasks fill the other thread around them. The motif
sample is drawn from ``rng`` before any task starts (the caller's RNG advances exactly as igraph
would advance it).

The fast spectral paths need a simple DAG in id order (every MGE): otherwise (parallel edges,
loops, reverse pairs) the spectral tasks build the scipy symmetrised adjacency of
:mod:`mgedb.metrics.spectral` with its first-edge-wins weights.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse.linalg import LinearOperator

from mgedb.errors import MetricError
from mgedb.graph import Graph
from mgedb.metrics import kernels, local, spectral
from mgedb.metrics.motifs import MotifMode, motif_estimate_counted, motif_sample
from mgedb.metrics.neighbourhood import motif_estimate
from mgedb.metrics.registry import metrics_of_task
from mgedb.metrics.views import to_igraph

__all__ = ["PARALLEL_MIN_EDGES", "TASKS", "SuiteArrays", "run_suite", "workers_available"]

#: Below this many edges the suite runs on one thread (thread start-up would dominate).
PARALLEL_MIN_EDGES = 200_000

#: The tasks (each metric's task is its registry spec's ``array`` field), in start order.
TASKS = ("spectral_radius", "spectral_gap", "graph", "hop", "local")
_LOCAL = metrics_of_task("local")
_HOP = metrics_of_task("hop")
_GRAPH = metrics_of_task("graph")


def workers_available() -> int:
    """CPUs this process may run on, capped at 2 (the suite has two long tasks)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


@dataclass
class SuiteArrays:
    """The shared views of one graph, each built once."""

    graph: Graph
    n: int = field(init=False)
    indptr: npt.NDArray[np.int64] = field(init=False)
    indices: npt.NDArray[np.int32] = field(init=False)
    data: npt.NDArray[np.float32] = field(init=False)
    forward: bool = field(init=False)

    def __post_init__(self) -> None:
        g = self.graph
        self.n = g.n_nodes
        self.indptr, self.indices, self.data = kernels.directed_csr_arrays(
            g.src, g.dst, g.n_nodes, g.weight)
        self.forward = kernels.is_simple_forward(self.indptr, self.indices)

    @cached_property
    def adjacency(self) -> kernels.Adjacency:
        return kernels.undirected_adjacency(self.indptr, self.indices, simple=self.forward)

    def bipartite_layers(self) -> bool:
        """True when every edge joins partitions of different parity (then no triangle)."""
        dims = [int(d) for d in self.graph.dimension]
        if not dims or sum(dims) != self.n:
            return False
        parity = np.repeat(np.arange(len(dims), dtype=np.int8) % 2, dims)
        return kernels.edges_cross_parity(self.indptr, self.indices, parity)


def _local(a: SuiteArrays, want: set[str], reference: bool) -> dict[str, float]:
    g = a.graph
    out: dict[str, float] = {}
    if want & (set(_LOCAL) - {"strength"}):
        o = np.diff(a.indptr)
        i = np.bincount(a.indices, minlength=a.n).astype(np.int64)
        out.update(local.local_counts(g, o, i, reference=reference))
    if "strength" in want:
        out["strength"] = local.strength(g)
    return out


def _hop(a: SuiteArrays, want: set[str], nodes: tuple[int, int]) -> dict[str, float]:
    """Partial sums (over the source ids ``nodes``) of the closed 1- and 2-step neighbourhood
    sizes; :func:`run_suite` adds the parts and divides by n."""
    one, two = kernels.closed_neighbourhood_counts(a.indptr, a.indices, two="two_hop" in want,
                                                   nodes=nodes)
    return {"one_hop": one, "two_hop": two}


def _graph(a: SuiteArrays, want: set[str], sample: npt.NDArray[np.int64] | None,
           motifs: MotifMode, rng_state: Any) -> dict[str, float]:
    n = a.n
    out: dict[str, float] = {}
    if want & {"cut_edges", "cut_nodes", "n_components", "mean_component_size"}:
        b, p, c = kernels.bridges_articulation_components(a.adjacency)
        out.update(cut_edges=b, cut_nodes=p, n_components=c,
                   mean_component_size=n / c if c else math.nan)
    if "k_core" in want:
        out["k_core"] = float(np.mean(kernels.coreness(a.adjacency))) if n else math.nan
    if "motifs" in want:
        if motifs == "exact":
            rng = random.Random()
            rng.setstate(rng_state)
            g = a.graph
            out["motifs"] = motif_estimate(to_igraph(g.src, g.dst, n), rng)
        else:
            out["motifs"] = motif_estimate_counted(
                a.adjacency, n, sample, triangles=not a.bipartite_layers())
    return out


def _gap(a: SuiteArrays, seed: int, count: list[int]) -> float:
    n = a.n
    if not a.forward or n <= spectral.DENSE_MAX:
        g = a.graph
        return spectral.spectral_gap(spectral.symmetric_adjacency(g), seed=seed)
    ip, ix, d = a.indptr, kernels.unsigned(a.indices), a.data

    def matvec(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        count[0] += 1
        y = np.empty(n, dtype=np.float32)
        kernels.sym_matvec(ip, ix, d, np.ascontiguousarray(x, dtype=np.float32).ravel(), y)
        return y

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float32)
    return spectral.gap_of_operator(op, seed=seed)


def _radius(a: SuiteArrays, seed: int, count: list[int]) -> float:
    n = a.n
    if not a.forward or n <= spectral.DENSE_MAX:
        g = a.graph
        lap = spectral.laplacian_operator(spectral.symmetric_adjacency(g))
        return spectral.operator_radius(lap, seed=seed)
    ip, ix, d = a.indptr, kernels.unsigned(a.indices), a.data
    deg = kernels.sym_row_sums_f32(ip, a.indices, d)

    def matvec(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        count[0] += 1
        y = np.empty(n, dtype=np.float64)
        kernels.sym_laplacian_matvec(ip, ix, d, deg,
                                     np.ascontiguousarray(x, dtype=np.float64).ravel(), y)
        return y

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    return spectral.radius_of_operator(op, seed=seed)


Task = Callable[[], dict[str, float]]


def run_suite(graph: Graph, names: Sequence[str], *, reference: bool, rng: random.Random,
              seed: int, motifs: MotifMode = "fast", workers: int | None = None,
              timings: dict[str, float] | None = None,
              cpu: dict[str, float] | None = None,
              products: dict[str, int] | None = None) -> dict[str, float]:
    """Compute ``names`` (raw, validated) on ``graph``; see the module notes.

    ``timings`` / ``cpu`` receive the wall / CPU seconds of every task (``[csr]`` = building the
    shared arrays), ``products`` the matrix–vector products of each eigensolve on the fast
    spectral paths (the scipy and dense paths count none).
    """
    want = set(names)
    t0, c0 = time.perf_counter(), time.thread_time()
    a = SuiteArrays(graph)
    _record(timings, cpu, "[csr]", t0, c0)
    sample: npt.NDArray[np.int64] | None = None
    rng_state = rng.getstate()
    if "motifs" in want:
        sample = motif_sample(graph.n_nodes, rng)  # advances rng as igraph would
    tasks: list[tuple[str, Task]] = []
    counts = {"spectral_radius": [0], "spectral_gap": [0]}
    if "spectral_radius" in want:
        tasks.append(("spectral_radius",
                      lambda: {"spectral_radius": _radius(a, seed, counts["spectral_radius"])}))
    if "spectral_gap" in want:
        tasks.append(("spectral_gap",
                      lambda: {"spectral_gap": _gap(a, seed, counts["spectral_gap"])}))
    if want & set(_GRAPH):
        tasks.append(("graph", lambda: _graph(a, want, sample, motifs, rng_state)))
    if want & set(_HOP):  # the 2-step sweep in two halves of equal work: either thread takes one
        cut = kernels.two_step_split(a.indptr, a.indices) if "two_hop" in want else a.n
        for part in ((0, cut), (cut, a.n)):
            tasks.append(("hop", lambda part=part: _hop(a, want, part)))  # type: ignore[misc]
    if want & set(_LOCAL):
        tasks.append(("local", lambda: _local(a, want, reference)))
    if workers is None:
        workers = workers_available() if graph.n_edges >= PARALLEL_MIN_EDGES else 1
    out: dict[str, float] = {}

    def timed(name: str, task: Task) -> dict[str, float]:
        t, c = time.perf_counter(), time.thread_time()
        r = task()
        _record(timings, cpu, name, t, c)
        return r

    results: list[tuple[str, dict[str, float]]] = []
    with spectral.one_blas_thread():
        if workers <= 1 or len(tasks) <= 1:
            results = [(name, timed(name, task)) for name, task in tasks]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mgedb-metrics") as ex:
                futures = [(name, ex.submit(timed, name, task)) for name, task in tasks]
                results = [(name, f.result()) for name, f in futures]
    if products is not None:
        products.update({t: c[0] for t, c in counts.items() if c[0]})
    hop_parts = [r for name, r in results if name == "hop"]
    for name, r in results:
        if name != "hop":
            out.update(r)
    if hop_parts:
        for m in _HOP:
            out[m] = sum(p[m] for p in hop_parts) / a.n if a.n else math.nan
    missing = [m for m in names if m not in out]
    if missing:
        raise MetricError(f"{', '.join(missing)}: no array engine task computes it; give its spec "
                          "an `array` task (mgedb/metrics/registry.py) and wire it into "
                          "mgedb/metrics/engine.py")
    return {m: out[m] for m in names}


_RECORD_LOCK = threading.Lock()


def _record(timings: dict[str, float] | None, cpu: dict[str, float] | None, name: str,
            t: float, c: float) -> None:
    with _RECORD_LOCK:
        _add(timings, cpu, name, t, c)


def _add(timings: dict[str, float] | None, cpu: dict[str, float] | None, name: str,
         t: float, c: float) -> None:
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
    if cpu is not None:
        cpu[name] = cpu.get(name, 0.0) + time.thread_time() - c

