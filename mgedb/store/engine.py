"""The database metric engine: the MGE topometrics of a stored network, computed by its database.

:class:`DbMetricEngine` (a base of :class:`~mgedb.store.base.BaseStore`) runs the query files of
``cypher/metrics/`` with the parameters of the network's flavour (:func:`flavour_params`) and
turns their raw results into metric values: every division, ratio and normalisation happens here,
never in a backend. A backend contributes raw graph-algorithm counts only
(:meth:`DbMetricEngine._algo_counts`: the sum of core numbers, the number of weakly connected
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
from typing import Any

import pandas as pd

from mgedb.errors import StoreIntegrityError
from mgedb.graph import Graph, GraphSet
from mgedb.metrics.registry import INTEGER_METRICS
from mgedb.store.protocol import MetricValues, NetworkInfo
from mgedb.vocab import Flavour

__all__ = ["ALGORITHM_COUNTS", "ARRAY_ONLY", "FLAVOURS", "DbMetricEngine", "Mismatch",
           "compare_engines", "flavour_params"]

log = logging.getLogger("mgedb.store")

FLAVOURS: tuple[str, ...] = Flavour.values()
#: Metrics the database does not compute: the motif estimate (igraph's sampler) and the two
#: eigenvalue metrics (the Python spectral module, over the adjacency read out of the store).
ARRAY_ONLY = ("motifs", "spectral_gap", "spectral_radius")
#: The raw count a backend's graph algorithms give for each algorithm metric: ``k_core_sum``
#: (Σ core numbers), ``components`` (weakly connected components, isolated nodes included),
#: ``bridges``, ``articulation_points``.
ALGORITHM_COUNTS: dict[str, str] = {
    "k_core": "k_core_sum", "n_components": "components", "mean_component_size": "components",
    "cut_edges": "bridges", "cut_nodes": "articulation_points",
}
_SPECTRAL = frozenset({"spectral_gap", "spectral_radius"})


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
    """Metrics present in both results that differ: counts exactly, spectra to ``spectral_rel_tol``
    (both use the same module, but ARPACK start vectors and summation order differ), every other
    float to ``rel_tol`` (sums taken in another order). NaN equals NaN; the motif estimate is not
    compared (the database does not compute it)."""
    out: list[Mismatch] = []
    for name in db:
        if name not in array or name == "motifs":
            continue
        a, b = float(db[name]), float(array[name])
        if math.isnan(a) and math.isnan(b):
            continue
        if name in INTEGER_METRICS:
            if a != b:
                out.append(Mismatch(name, a, b, "exact"))
            continue
        tol = spectral_rel_tol if name in _SPECTRAL else rel_tol
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


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


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
        """The raw graph-algorithm results named in ``counts`` (values of
        :data:`ALGORITHM_COUNTS`) for network ``key``; a count left out of the result is one this
        database cannot compute (its metrics go to the array engine)."""

    def compute_metrics(self, key: str, only: Iterable[str] | str | None = None, *,
                        seed: int = 0) -> MetricValues:
        """The MGE topometrics of a stored network, computed by the database (see
        :class:`MetricValues` for what is not), under the raw names of
        :func:`mgedb.metrics.compute_mge_metrics`; the default is every metric except the motif
        estimate."""
        from mgedb.metrics.registry import MGE_METRICS, resolve

        info = self.network(key)
        if not info.complete:
            raise StoreIntegrityError(f"network {key!r} is incomplete (an interrupted ingest); "
                                      f"remove it with `mgedb rm {key}` and ingest it again")
        if info.kind != "mge":
            raise StoreIntegrityError(
                f"network {key!r} is of kind {info.kind!r}; topometrics in the database need an "
                "MGE unit graph (ingest it without --metrics-only and with an mge encoding)")
        default = [m for m in MGE_METRICS if m != "motifs"]
        names = default if only is None else resolve(only, MGE_METRICS)
        if only is None:
            log.info("motifs: computed by the array engine only (igraph sampler), not in the DB")
        flavour = info.flavour or Flavour.MGE
        values: dict[str, float] = {}
        prov: dict[str, str] = {}
        timings: dict[str, float] = {}

        def db(name: str, query: str, params: Mapping[str, Any] | None = None) -> float:
            t = time.perf_counter()
            rows = self.run_query(query, {"key": key, **(params or {})})
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t
            v = rows.iloc[0]["value"] if not rows.empty else 0
            return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        n = int(db("n_nodes", "metrics/n_nodes"))
        values["n_nodes"] = n
        values["n_edges"] = int(db("n_edges", "metrics/n_edges"))
        prov.update(n_nodes="db", n_edges="db")
        fp = flavour_params(flavour, info.dimension)
        for name in ("sink_nodes", "source_nodes", "disconnected_nodes", "removable_out",
                     "removable_in"):
            if name in names:
                values[name] = int(db(name, f"metrics/{name}", fp.get(name)))
                prov[name] = "db"
        if "one_hop" in names or "two_hop" in names:
            s1 = db("one_hop", "metrics/out_pairs")
            if "one_hop" in names:
                values["one_hop"] = _ratio(n + s1, n)
                prov["one_hop"] = "db"
            if "two_hop" in names:  # per source partition: the distinct pairs stay bounded
                s2 = s12 = 0.0
                for p in range(len(info.dimension)):
                    s2 += db("two_hop", "metrics/two_step_pairs", {"partition": p})
                    s12 += db("two_hop", "metrics/two_step_direct_pairs", {"partition": p})
                values["two_hop"] = _ratio(n + s1 + s2 - s12, n)
                prov["two_hop"] = "db"
        if "strength" in names:
            values["strength"] = _ratio(2.0 * db("strength", "metrics/weight_sum"), n)
            prov["strength"] = "db"
        algo = [m for m in ALGORITHM_COUNTS if m in names]
        fallback: list[str] = []
        if algo:
            t = time.perf_counter()
            counts = self._algo_counts(key, sorted({ALGORITHM_COUNTS[m] for m in algo}))
            timings["algorithms"] = time.perf_counter() - t
            got = _from_counts(algo, counts, n)
            fallback = [m for m in algo if m not in got]
            values.update(got)
            prov.update(dict.fromkeys(got, self.algo_provenance))
        array = [m for m in names if m in ARRAY_ONLY] + fallback
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


def _from_counts(names: Sequence[str], counts: Mapping[str, float], n: int) -> dict[str, float]:
    """Algorithm metrics from a backend's raw counts (those whose count it gave)."""
    out: dict[str, float] = {}
    for m in names:
        c = counts.get(ALGORITHM_COUNTS[m])
        if c is None:
            continue
        if m == "k_core":
            out[m] = _ratio(float(c), n)
        elif m == "mean_component_size":
            out[m] = _ratio(n, int(c))
        else:
            out[m] = int(c)
    return out
