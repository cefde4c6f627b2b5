"""The database metric engine: the MGE topometrics of a stored network, computed by its database.

:class:`DbMetricEngine` (a base of :class:`~mgedb.store.base.BaseStore`) runs the query files of
``cypher/metrics/`` with the parameters of the network's flavour (:func:`flavour_params`) and
turns their raw results into metric values: every division, ratio and normalisation happens here,
never in a backend, and every metric is computed as its registry spec says
(:attr:`mgedb.metrics.registry.MetricSpec.db`). A backend contributes raw graph-algorithm counts
only (:meth:`DbMetricEngine._algo_counts`: the sum of core numbers, the number of weakly connected
components, bridges, articulation points) and names what its database cannot compute, which the
array engine then computes over the graph read out of the store. :func:`compare_engines` is the
one place that decides whether two engines agree.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mgedb.errors import MgedbError, StoreIntegrityError, UnknownMetric
from mgedb.graph import Graph, GraphSet
from mgedb.metrics.registry import (
    ALGORITHM_COUNTS,
    ARRAY_ONLY,
    MGE_METRICS,
    MetricSpec,
    resolve,
    spec,
)
from mgedb.store.protocol import MetricValues, NetworkInfo
from mgedb.vocab import Flavour

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ARRAY_ONLY", "FLAVOURS", "DbMetricEngine", "Mismatch", "compare_engines",
           "flavour_params"]

log = logging.getLogger("mgedb.store")

FLAVOURS: tuple[str, ...] = Flavour.values()


@dataclass(frozen=True)
class Mismatch:
    """One metric on which two engines disagree beyond its tolerance."""

    name: str
    db: float
    array: float
    tolerance: str

    def __str__(self) -> str:
        return f"{self.name}: db={self.db!r} array={self.array!r} ({self.tolerance})"


def compare_engines(db: Mapping[str, float], array: Mapping[str, float], *,
                    rel_tol: float = 1e-9, spectral_rel_tol: float = 1e-6) -> list[Mismatch]:
    """Metrics present in both results that differ: counts (``kind`` integer) exactly, spectra to
    ``spectral_rel_tol`` (both use the same module, but ARPACK start vectors and summation order
    differ), every other float to ``rel_tol`` (sums taken in another order). NaN equals NaN; a
    metric the registry marks not ``compared`` (the motif estimate) and names it does not know
    are skipped."""
    out: list[Mismatch] = []
    for name in db:
        if name not in array:
            continue
        try:
            s = spec(name)
        except UnknownMetric:
            continue
        if not s.compared:
            continue
        a, b = float(db[name]), float(array[name])
        if math.isnan(a) and math.isnan(b):
            continue
        if s.kind == "integer":
            if a != b:
                out.append(Mismatch(name, a, b, "exact"))
            continue
        tol = spectral_rel_tol if s.family == "spectral" else rel_tol
        if not math.isclose(a, b, rel_tol=tol, abs_tol=0.0):
            out.append(Mismatch(name, a, b, f"rel {tol:g}"))
    return out


def flavour_params(flavour: str, dimension: Sequence[int]) -> dict[str, dict[str, int]]:
    """Parameters of the degree-based queries for a flavour (docs/metrics.md, docs/schema.md).

    ``mge``: sinks outside the output partition, sources outside the input partition, no offsets.
    ``mge-reference``: the reference's formulas — whole-graph counts minus the output / input
    partition size, and its off-by-one id bounds for the removable connections.
    """
    if flavour not in FLAVOURS:
        raise StoreIntegrityError(f"unknown metric flavour {flavour!r}; use one of "
                                  f"{', '.join(FLAVOURS)}")
    dims = [int(d) for d in dimension]
    n = sum(dims)
    first = dims[0] if dims else 0
    last = dims[-1] if dims else 0
    if flavour == Flavour.MGE_REFERENCE:
        return {
            "sink_nodes": {"below": n, "offset": last},
            "source_nodes": {"first": 0, "offset": first},
            "removable_out": {"below": n - 1 - last},
            "removable_in": {"above": first},
        }
    return {
        "sink_nodes": {"below": n - last, "offset": 0},
        "source_nodes": {"first": first, "offset": 0},
        "removable_out": {"below": n - last},
        "removable_in": {"above": first - 1},
    }


class DbMetricEngine(ABC):
    """``compute_metrics`` on top of a backend's named queries and raw algorithm counts."""

    kind: str = ""
    #: provenance label of the metrics computed by graph algorithms inside the database
    algo_provenance: str = "db"
    #: seconds per metric (or step) of the last :meth:`compute_metrics` call
    last_timings: dict[str, float]

    @abstractmethod
    def network(self, key: str) -> NetworkInfo: ...

    @abstractmethod
    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame: ...

    @abstractmethod
    def read_graph(self, key: str) -> Graph | GraphSet: ...

    @abstractmethod
    def _algo_counts(self, key: str, counts: Collection[str]) -> dict[str, float]:
        """The raw graph-algorithm results named in ``counts`` (``k_core_sum``: Σ core numbers,
        ``components``: weakly connected components with isolated nodes, ``bridges``,
        ``articulation_points``) for network ``key``; a count left out of the result is one this
        database cannot compute (its metrics go to the array engine)."""

    def compute_metrics(self, key: str, only: Iterable[str] | str | None = None, *,
                        seed: int = 0) -> MetricValues:
        """The MGE topometrics of a stored network, computed by the database (see
        :class:`MetricValues` for what is not), under the raw names of
        :func:`mgedb.metrics.compute_mge_metrics`; the default is every metric the engines
        compare (all but the motif estimate).

        Each metric is computed as its registry spec says (:attr:`MetricSpec.db`): query files,
        the backend's raw algorithm counts (what the backend cannot count goes to the array
        engine), or — ``array_only`` — in-process over the graph read out of the store. A metric
        with no database path that is not marked ``array_only`` is an error, never left out.
        """
        info = self.network(key)
        if not info.complete:
            raise StoreIntegrityError(f"network {key!r} is incomplete (an interrupted ingest); "
                                      f"remove it with `mgedb rm {key}` and ingest it again")
        if info.kind != "mge":
            raise StoreIntegrityError(
                f"network {key!r} is of kind {info.kind!r}; topometrics in the database need an "
                "MGE unit graph (ingest it without --metrics-only and with an mge encoding)")
        default = [m for m in MGE_METRICS if spec(m).compared]
        names = default if only is None else resolve(only, MGE_METRICS)
        if only is None:
            log.info("motifs: computed by the array engine only (igraph sampler), not in the DB")
        specs = [spec(m) for m in ("n_nodes", "n_edges", *names)]
        missing = [s.name for s in specs if s.db is None and not s.array_only]
        if missing:
            raise MgedbError(f"{', '.join(missing)}: no database query in the metric registry and "
                             "not marked array_only; add its DbPath (mgedb/metrics/registry.py) "
                             "or compute it with --engine array")
        flavour = info.flavour or Flavour.MGE
        params = {f"metrics/{m}": p for m, p in flavour_params(flavour, info.dimension).items()}
        values: dict[str, float] = {}
        prov: dict[str, str] = {}
        timings: dict[str, float] = {}
        got: dict[str, float] = {}  # source → value, each query run once

        def source(name: str, metric: str, per_partition: bool) -> float:
            if name not in got:
                t = time.perf_counter()
                parts = range(len(info.dimension)) if per_partition else (None,)
                got[name] = sum(self._scalar(name, {"key": key, **params.get(name, {}),
                                                    **({} if p is None else {"partition": p})})
                                for p in parts)
                timings[metric] = timings.get(metric, 0.0) + time.perf_counter() - t
            return got[name]

        queried = [s for s in specs if s.db is not None and not s.db.algorithm]
        for s in queried:
            assert s.db is not None
            v = {q: source(q, s.name, q in s.db.per_partition) for q in s.db.sources}
            values[s.name] = _typed(s, s.db.combine(v, values.get("n_nodes", 0)))
            prov[s.name] = "db"
        n = values["n_nodes"]
        algo = [s for s in specs if s.db is not None and s.db.algorithm]
        fallback: list[str] = []
        if algo:
            wanted = sorted({c for s in algo for c in ALGORITHM_COUNTS[s.name]})
            t = time.perf_counter()
            counts = {f"algo:{c}": v for c, v in self._algo_counts(key, wanted).items()}
            timings["algorithms"] = time.perf_counter() - t
            for s in algo:
                assert s.db is not None
                if all(c in counts for c in s.db.sources):
                    values[s.name] = _typed(s, s.db.combine(counts, n))
                    prov[s.name] = self.algo_provenance
                else:
                    fallback.append(s.name)
        array = [s.name for s in specs if s.array_only] + fallback
        if array:
            t = time.perf_counter()
            graph = self.read_graph(key)
            if not isinstance(graph, Graph):
                raise StoreIntegrityError(f"network {key!r} holds a graph set, not an MGE")
            from mgedb.metrics import compute_mge_metrics

            got_array = compute_mge_metrics(graph, only=array, seed=seed,
                                            reference=flavour == Flavour.MGE_REFERENCE)
            timings["array"] = time.perf_counter() - t
            for m in array:
                values[m] = got_array[m]
                prov[m] = "array"
            if fallback:
                log.info("%s: no algorithm in the %s database; computed by the array engine over "
                         "the graph read out of the store", ", ".join(fallback), self.kind)
        self.last_timings = timings
        ordered = {m: values[m] for m in ("n_nodes", "n_edges", *names) if m in values}
        return MetricValues(ordered, {m: prov[m] for m in ordered})

    def _scalar(self, query: str, params: Mapping[str, Any]) -> float:
        """The ``value`` of a one-row query (no row, None or NaN: 0)."""
        rows = self.run_query(query, params)
        v = rows.iloc[0]["value"] if not rows.empty else 0
        return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _typed(s: MetricSpec, value: float) -> float:
    return int(value) if s.kind == "integer" and math.isfinite(value) else value
