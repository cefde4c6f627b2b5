"""The MGE topometric suite (§3 of the reference spec) and the published normalisation."""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from mgedb.errors import MgedbError
from mgedb.graph import Graph, GraphSet
from mgedb.metrics import connectivity, local, neighbourhood, spectral
from mgedb.metrics.registry import MGE_METRICS, published_order, resolve, spec
from mgedb.metrics.views import GraphView

__all__ = ["compute_metrics_on_view", "compute_mge_metrics", "normalise"]

_LOCAL = ("sink_nodes", "source_nodes", "disconnected_nodes", "removable_out", "removable_in")
_IGRAPH = ("cut_edges", "cut_nodes", "motifs", "k_core")


@contextlib.contextmanager
def _timed(timings: dict[str, float] | None, step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[step] = timings.get(step, 0.0) + time.perf_counter() - t0


def compute_metrics_on_view(view: GraphView, names: Sequence[str], *, reference: bool,
                            rng: random.Random, seed: int,
                            timings: dict[str, float] | None = None) -> dict[str, float]:
    """Compute ``names`` (raw names, already validated) on ``view``.

    Shared views are built once, each before its first user, and dropped after their last one
    (the igraph graph before the eigensolves) to keep the peak memory down. ``timings``, if given,
    receives the seconds spent per step (view builds are steps of their own).
    """
    want = set(names)
    out: dict[str, float] = {}
    comp = {"n_components", "mean_component_size"}
    use_igraph = bool(want & set(_IGRAPH))  # then components come from igraph, almost free
    if want & set(_LOCAL):
        with _timed(timings, "[degrees]"):
            o, i = view.out_in
        with _timed(timings, "sink/source/removable"):
            out.update(local.local_counts(view.graph, o, i, reference=reference))
    if "strength" in want:
        with _timed(timings, "strength"):
            out["strength"] = local.strength(view.graph)
    scipy_comp = bool(want & comp) and not use_igraph
    if want & {"one_hop", "two_hop"} or scipy_comp:
        with _timed(timings, "[A + I pattern]"):
            closed = view.closed
        if "one_hop" in want:
            with _timed(timings, "one_hop"):
                out["one_hop"] = local.one_hop(closed)
        if "two_hop" in want:
            with _timed(timings, "two_hop"):
                out["two_hop"] = neighbourhood.two_hop(closed)
        if scipy_comp:
            with _timed(timings, "components"):
                out["n_components"], out["mean_component_size"] = connectivity.components(closed)
        del closed
    view.release("closed", "out_in")
    igraph_work: dict[str, Callable[[], float]] = {
        "cut_edges": lambda: connectivity.cut_edges(view.igraph),
        "cut_nodes": lambda: connectivity.cut_nodes(view.igraph),
        "motifs": lambda: neighbourhood.motif_estimate(view.igraph, rng),
        "k_core": lambda: connectivity.k_core(view.igraph),
    }
    if want & set(_IGRAPH):
        with _timed(timings, "[igraph graph]"):
            view.igraph  # noqa: B018  (builds the cached view)
    for name in _IGRAPH:
        if name in want:
            with _timed(timings, name):
                out[name] = igraph_work[name]()
    if use_igraph and want & comp:
        with _timed(timings, "components"):
            out["n_components"], out["mean_component_size"] = connectivity.components_igraph(
                view.igraph)
    view.release("igraph")
    if want & {"spectral_gap", "spectral_radius"}:
        with _timed(timings, "[adjacency]"):
            view.adjacency  # noqa: B018
    if "spectral_gap" in want:
        with _timed(timings, "spectral_gap"):
            out["spectral_gap"] = spectral.spectral_gap(view.adjacency, seed=seed)
    if "spectral_radius" in want:
        with _timed(timings, "[laplacian]"):
            lap = spectral.laplacian_operator(view.adjacency)
            view.release("adjacency")
        with _timed(timings, "spectral_radius"):
            out["spectral_radius"] = spectral.operator_radius(lap, seed=seed)
        del lap
    view.release("adjacency")
    return {n: out[n] for n in names}


def compute_mge_metrics(graph: Graph, *, only: Sequence[str] | str | None = None, seed: int = 0,
                        reference: bool | None = None,
                        timings: dict[str, float] | None = None) -> dict[str, float]:
    """The MGE topometrics of ``graph`` (raw, un-normalised), with ``n_nodes`` and ``n_edges``.

    ``only`` limits the work to those metrics (raw or published names). The flavour comes from
    ``graph.encoding`` (``"mge-reference"`` → the reference's definitions, anything else → clean),
    unless ``reference`` says otherwise. ``seed`` drives the motif sample (``random.Random(seed)``)
    and the eigensolvers' start vectors. ``timings`` receives seconds per step.
    """
    if isinstance(graph, GraphSet):
        raise MgedbError(f"compute_mge_metrics needs one graph, got a {graph.encoding} GraphSet; "
                         "use compute_bge_metrics for per-layer graphs")
    names = resolve(only, MGE_METRICS)
    ref = graph.encoding == "mge-reference" if reference is None else reference
    view = GraphView(graph)
    values = compute_metrics_on_view(view, names, reference=ref, rng=random.Random(seed),
                                     seed=seed, timings=timings)
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
