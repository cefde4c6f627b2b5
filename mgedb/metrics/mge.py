"""The MGE topometric suite (§3 of the reference spec) and the published normalisation."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import numpy as np

from mgedb.errors import MetricError, MgedbError
from mgedb.graph import Graph, GraphSet
from mgedb.metrics.engine import run_suite
from mgedb.metrics.motifs import MotifMode
from mgedb.metrics.registry import MGE_METRICS, published_order, resolve, spec
from mgedb.metrics.views import GraphView
from mgedb.vocab import Flavour, flavour_of

__all__ = ["check_finite_weights", "compute_metrics_on_view", "compute_mge_metrics", "normalise"]


def check_finite_weights(graph: Graph, names: Sequence[str]) -> None:
    """Refuse a graph with a NaN or infinite weight when a weighted metric of ``names`` would
    read it (the eigensolvers would return NaN or fail to converge)."""
    weighted = [n for n in names if spec(n).weighted]
    if not weighted or graph.n_edges == 0:
        return
    bad = ~np.isfinite(graph.weight)
    if bad.any():
        i = int(np.argmax(bad))
        raise MetricError(
            f"{int(bad.sum()):,} edges have a NaN or infinite weight (the first: node "
            f"{int(graph.src[i])} → {int(graph.dst[i])}); {', '.join(weighted)} need finite "
            "weights: fix the network's weights, or leave those metrics out with --only")


def compute_metrics_on_view(view: GraphView, names: Sequence[str], *, reference: bool,
                            rng: random.Random, seed: int,
                            timings: dict[str, float] | None = None,
                            motifs: MotifMode = "fast", workers: int | None = None,
                            cpu: dict[str, float] | None = None,
                            products: dict[str, int] | None = None) -> dict[str, float]:
    """Compute ``names`` (raw names, already validated) on ``view``'s graph with the array engine
    (:func:`mgedb.metrics.engine.run_suite`). ``timings`` / ``cpu``, if given, receive the wall /
    CPU seconds per task, ``products`` the eigensolvers' matrix–vector products per task."""
    check_finite_weights(view.graph, names)
    return run_suite(view.graph, names, reference=reference, rng=rng, seed=seed, motifs=motifs,
                     workers=workers, timings=timings, cpu=cpu, products=products)


def compute_mge_metrics(graph: Graph, *, only: Sequence[str] | str | None = None, seed: int = 0,
                        reference: bool | None = None,
                        timings: dict[str, float] | None = None, motifs: MotifMode = "fast",
                        workers: int | None = None,
                        cpu: dict[str, float] | None = None,
                        products: dict[str, int] | None = None) -> dict[str, float]:
    """The MGE topometrics of ``graph`` (raw, un-normalised), with ``n_nodes`` and ``n_edges``.

    ``only`` limits the work to those metrics (raw or published names). The flavour comes from
    ``graph.encoding`` (``"mge-reference"`` → the reference's definitions, anything else → clean),
    unless ``reference`` says otherwise. ``seed`` drives the motif sample (``random.Random(seed)``)
    and the eigensolvers' start vectors. ``motifs``: ``"fast"`` (counted, the default) or
    ``"exact"`` (igraph's enumeration), equal values (:mod:`mgedb.metrics.motifs`). ``workers``:
    threads (default: up to 2 on a big graph). ``timings`` / ``cpu`` receive wall / CPU seconds
    per task, ``products`` the number of matrix–vector products of each ARPACK eigensolve (the
    fast spectral paths only).
    """
    if isinstance(graph, GraphSet):
        raise MgedbError(f"compute_mge_metrics needs one graph, got a {graph.encoding} GraphSet; "
                         "use compute_bge_metrics for per-layer graphs")
    names = resolve(only, MGE_METRICS)
    ref = flavour_of(graph.encoding) is Flavour.MGE_REFERENCE if reference is None else reference
    view = GraphView(graph)
    values = compute_metrics_on_view(view, names, reference=ref, rng=random.Random(seed),
                                     seed=seed, timings=timings, motifs=motifs, workers=workers,
                                     cpu=cpu, products=products)
    return {"n_nodes": graph.n_nodes, "n_edges": graph.n_edges, **values}


def normalise(raw: Mapping[str, float]) -> dict[str, float]:
    """Raw metrics → the published table's columns (``nodes, edges`` first, then its order).

    Divides by ``n_nodes`` / ``n_edges`` as the registry says; metrics absent from ``raw`` are left
    out; a division by zero gives NaN.
    """
    try:
        nodes, edges = float(raw["n_nodes"]), float(raw["n_edges"])
    except KeyError:
        raise KeyError("normalise needs 'n_nodes' and 'n_edges' in the raw metrics") from None
    out: dict[str, float] = {"nodes": nodes, "edges": edges}
    for name in published_order():
        if name not in raw:
            continue
        s = spec(name)
        value = float(raw[name])
        div = {"N": nodes, "E": edges, None: 1.0}[s.divisor]
        out[s.column] = value / div if div else math.nan
    return out
