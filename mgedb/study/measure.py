"""Measure a network: one pipeline from a source to its topometrics in the store.

:func:`measure` is what ``mgedb metrics`` (``--engine db|both``), ``mgedb ingest`` /
``ingest-graph`` and the study's measure stage all call: resolve the source's key, load or encode
the graph only when it is needed, compute the in-process metrics (``array``), store the network
(idempotently, with those metrics when asked), compute the metrics inside the database (``db``)
and compare the two engines (``both``). :class:`Source` names what is measured: a graph value, a
graph file (``.npz``), a checkpoint of a model, or the key of a stored network.

:func:`checkpoint_record` is the predictor's twin: a checkpoint's record (reference MGE metrics,
normalised) for ``mgedb predict score``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgedb.errors import CheckpointError, DataError, GraphFileError, MgedbError
from mgedb.graph import Graph, GraphSet
from mgedb.metrics.registry import INTEGER_METRICS, MGE_METRICS
from mgedb.store import GraphStore, MetricValues, Mismatch, compare_engines
from mgedb.store.protocol import ProgressFn
from mgedb.vocab import Encoding, Engine, flavour_of

log = logging.getLogger("mgedb.study")

if TYPE_CHECKING:
    import pandas as pd

    from mgedb.model_source import ModelSpec

__all__ = ["Measurement", "Source", "checkpoint_record", "compute", "measure", "timed"]

#: ``status(message)``: a context manager shown while a slow step runs (the CLI's spinner).
StatusFn = Callable[[str], contextlib.AbstractContextManager[Any]]
_SIZES = ("n_nodes", "n_edges")


def _quiet(message: str) -> contextlib.AbstractContextManager[Any]:
    del message
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Source:
    """What to measure: exactly one of ``value`` (a graph), ``path`` (a graph file, or a
    checkpoint of ``model``) or ``key`` (a stored network). ``meta`` is stored with the network."""

    value: Graph | GraphSet | None = None
    path: Path | None = None
    key: str | None = None
    model: str | ModelSpec | None = None  # any --model source (mgedb.model_source)
    classes: int = 10
    encoding: str | None = None
    allow_pickle: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, int, int] = (3, 32, 32)

    @property
    def model_label(self) -> str | None:
        """The model as recorded: the zoo key or the spec as written, plus ``@C,H,W`` when the
        input is not 3×32×32 (another input shape is another graph)."""
        if self.model is None:
            return None
        from mgedb.model_source import DEFAULT_INPUT_SHAPE, resolve

        label = resolve(self.model).label
        if tuple(self.input_shape) != DEFAULT_INPUT_SHAPE:
            label += "@" + ",".join(str(d) for d in self.input_shape)
        return label

    @classmethod
    def parse(cls, text: str | Path, **options: Any) -> Source:
        """A path, or — when no such file exists and the text has a key's shape — a stored key."""
        from mgedb.store.keys import is_graph_key

        path = Path(text)
        if not path.exists() and is_graph_key(str(text)):
            return cls(key=str(text), **options)
        return cls(path=path, **options)

    @property
    def label(self) -> str:
        return str(self.path or self.key or (self.value.encoding if self.value else "graph"))

    @property
    def checkpoint(self) -> bool:
        return self.path is not None and self.path.suffix != ".npz"

    def network_key(self) -> str | None:
        """The store key known before encoding: a checkpoint's (model, file digest, encoding,
        flavour) or the given key; None for a graph (its content key is made at ingest)."""
        if self.key is not None:
            return self.key
        if not self.checkpoint or self.model_label is None:
            return None
        assert self.path is not None
        if not self.path.is_file():
            return None  # load() reports it
        from mgedb.checkpoint import file_digest
        from mgedb.store.keys import network_key

        enc = self.encoding or Encoding.MGE
        assert self.model_label is not None
        return network_key(self.model_label, file_digest(self.path), str(enc),
                           str(flavour_of(enc)))

    def load(self, status: StatusFn = _quiet) -> Graph | GraphSet:
        """The graph: the value, the graph file, or the checkpoint encoded (one-line errors)."""
        if self.value is not None:
            return self.value
        if self.path is None:
            raise MgedbError(f"{self.key}: a stored network has no source to load; measure it "
                             "by its key")
        source = self.path
        if not source.is_file():
            kind = GraphFileError if source.suffix == ".npz" else CheckpointError
            raise kind(f"{source}: no such file; pass a graph file (.npz from `mgedb encode`) or "
                       "a checkpoint")
        if source.suffix == ".npz":
            from mgedb.graph import load_graph

            value = load_graph(source)
            if self.encoding is not None and str(self.encoding) != value.encoding:
                raise GraphFileError(
                    f"{source}: holds a {value.encoding!r} encoding, not {str(self.encoding)!r}; "
                    "drop --encoding or re-encode the checkpoint with `mgedb encode`")
            return value
        if self.model is None:
            raise CheckpointError(f"{source}: a checkpoint needs --model NAME (e.g. --model "
                                  "resnet20)")
        from mgedb.encode import encode_checkpoint

        enc = str(self.encoding or Encoding.MGE)
        with status(f"encoding {source} as {enc} …"):
            return encode_checkpoint(source, self.model, classes=self.classes, encoding=enc,
                                     allow_pickle=self.allow_pickle,
                                     input_shape=self.input_shape)

    def ingest_meta(self) -> dict[str, Any]:
        """What the store records with the network: a checkpoint's key and provenance first,
        then :attr:`meta`."""
        meta: dict[str, Any] = {}
        if self.checkpoint:
            assert self.path is not None
            enc = self.encoding or Encoding.MGE
            meta = {"key": self.network_key(), "model": self.model_label, "classes": self.classes,
                    "checkpoint": self.path.name, "flavour": str(flavour_of(enc))}
        meta.update(self.meta)
        return meta


@dataclass
class Measurement:
    """The outcome of :func:`measure`: the key, the array metrics (``array``/``both``), the
    database metrics (``db``/``both``), their disagreements and whether nothing was recomputed."""

    key: str
    metrics: dict[str, float] = field(default_factory=dict)
    db: MetricValues | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    reused: bool = False
    #: a stored network failed verification and was stored again
    replaced: bool = False

    @property
    def agree(self) -> bool:
        return not self.mismatches


@contextlib.contextmanager
def timed(timings: dict[str, float] | None, step: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[step]`` (nothing when ``timings`` is None)."""
    t = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[step] = timings.get(step, 0.0) + time.perf_counter() - t


def _mge(value: Graph | GraphSet, source: Source, engine: Engine | None,
         metrics_only: bool) -> Graph:
    if not isinstance(value, GraphSet):
        return value
    if metrics_only:
        raise MgedbError(f"{source.label}: --metrics-only stores MGE topometrics; encode with "
                         "--encoding mge or mge-reference (or drop --metrics-only to store the "
                         "BGE graphs)")
    raise MgedbError(f"{source.label}: --engine {engine} computes MGE topometrics; this is a "
                     f"{value.encoding} BGE (use --engine array)")


def measure(source: Source, store: GraphStore, engine: Engine | str | None = Engine.ARRAY, *,
            only: Iterable[str] | str | None = None, seed: int = 0, keep: bool = False,
            reuse: bool = False, metrics_only: bool = False, batch_size: int | None = None,
            progress: ProgressFn | None = None, status: StatusFn = _quiet,
            timings: dict[str, float] | None = None,
            computed: tuple[Graph, Mapping[str, float]] | None = None) -> Measurement:
    """Put ``source`` in ``store`` (idempotent) and compute its topometrics with ``engine``.

    ``engine``: ``array`` (in-process), ``db`` (in the database), ``both`` (both, compared), or
    None (store only). ``keep`` stores the array metrics with a newly ingested network;
    ``reuse`` takes the metrics a stored network already has instead of recomputing them (a
    stored network without metrics is then replaced); ``metrics_only`` stores the network node
    and its metrics, not its graph. A stored key must name a complete network. ``computed``: the
    source's graph and array metrics, already made by :func:`compute` elsewhere (a Ray worker);
    used instead of encoding and computing them again when the network is not stored.
    """
    eng = Engine(engine) if engine is not None else None
    want_array = eng in (Engine.ARRAY, Engine.BOTH)
    key = source.network_key()
    stored = key is not None and store.has_network(key)
    if source.key is not None and not stored:
        raise MgedbError(f"no complete network {source.key!r} in {store.location}; list them "
                         "with `mgedb ls`")
    out = Measurement(key=key or "")
    if stored and reuse and source.key is None:  # counts only: cheap next to a re-ingest
        assert key is not None
        problems = store.verify(key)
        if problems:
            log.warning("stored network %s fails verification (%s); storing it again", key,
                        problems[0])
            store.delete(key)
            stored = False
            out.replaced = True
    if stored and reuse and want_array:
        assert key is not None
        out.metrics = {m: int(v) if m in INTEGER_METRICS and math.isfinite(v) else v
                       for m, v in store.get_metrics(key).items()}
        out.reused = bool(out.metrics)
        if not out.reused and source.key is None:  # complete but without metrics: replace it
            store.delete(key)
            stored = False
    value: Graph | GraphSet | None = None
    given = not stored and computed is not None
    if given:
        assert computed is not None
        value, out.metrics = computed[0], dict(computed[1])
    elif not stored:
        with timed(timings, "encode"):
            value = source.load(status)
    if want_array and not out.reused and not given:
        if value is None:
            value = store.read_graph(out.key) if source.path is None and source.value is None \
                else source.load(status)
        graph = _mge(value, source, eng, metrics_only)
        from mgedb.metrics import compute_mge_metrics

        names: Sequence[str] | str | None = None if only is None else (
            only if isinstance(only, str) else list(only))
        if names is None and eng is Engine.BOTH and not keep:  # what the database computes
            names = [m for m in MGE_METRICS if m != "motifs"]
        with timed(timings, "metrics"), status("computing topometrics (array engine) …"):
            out.metrics = compute_mge_metrics(graph, only=names, seed=seed)
    if not stored:
        assert value is not None
        if eng in (Engine.DB, Engine.BOTH):
            _mge(value, source, eng, metrics_only)
        with timed(timings, "ingest"), status(f"storing {source.label} in {store.location} …"):
            out.key = store.ingest(value, source.ingest_meta(), batch_size=batch_size,
                                   progress=progress, metrics=out.metrics if keep else None,
                                   metrics_only=metrics_only)
    del value
    if eng in (Engine.DB, Engine.BOTH):
        with timed(timings, "db metrics"), status("computing topometrics in the database …"):
            out.db = store.compute_metrics(out.key, only, seed=seed)
        if eng is Engine.BOTH:
            out.mismatches = compare_engines(out.db, out.metrics)
    return out


def compute(source: Source, *, seed: int = 0, timings: dict[str, float] | None = None
            ) -> tuple[Graph, dict[str, float]]:
    """The store-free half of :func:`measure`: the source's MGE and all its topometrics (array
    engine) — what a Ray worker runs; :func:`measure` with ``computed=`` stores them."""
    from mgedb.metrics import compute_mge_metrics

    with timed(timings, "encode"):
        graph = _mge(source.load(), source, Engine.ARRAY, False)
    with timed(timings, "metrics"):
        return graph, compute_mge_metrics(graph, seed=seed)


def checkpoint_record(path: Path, arch: str, classes: int, dataset: str | None,
                      only: list[str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Encode a checkpoint (reference MGE), compute the metrics in ``only`` and make a record
    and its layer-density rows (the predictor's input; ``arch``: a zoo name or its published
    name)."""
    import numpy as np

    from mgedb.encode import encode_checkpoint, layer_specs
    from mgedb.metrics import compute_mge_metrics, normalise
    from mgedb.models import REFERENCE_NAMES
    from mgedb.predict.records import density_layers, record_from_metrics

    key = arch.lower().replace("-", "_")
    aliases = {v.lower().replace("-", "_"): k for k, v in REFERENCE_NAMES.items()}
    key = aliases.get(key, key)
    if key not in REFERENCE_NAMES:
        raise DataError(f"--arch {arch!r} is not a zoo model; choose one of "
                        f"{', '.join(REFERENCE_NAMES)}")
    g = encode_checkpoint(path, key, classes=classes, encoding=Encoding.MGE_REFERENCE.value)
    if not isinstance(g, Graph):
        raise DataError(f"{path}: the mge-reference encoding did not give one graph")
    raw = compute_mge_metrics(g, only=only or None)
    metrics = dict(normalise(raw))
    specs = layer_specs(g)
    nnz = float(sum(s.nnz for s in specs))
    numel = float(sum(s.numel for s in specs))
    meta = dict(getattr(g, "meta", {}) or {})
    sparsity = float(meta.get("sparsity_target", 1 - nnz / numel if numel else np.nan))
    rkey = f"mgedb/checkpoint/{meta.get('checkpoint_digest', path.name)}"
    rec = record_from_metrics(
        metrics, model=REFERENCE_NAMES[key],
        dataset=dataset or str(meta.get("dataset", "unknown")),
        pruner=str(meta.get("pruner", "unknown")), sparsity=sparsity,
        seed=int(meta.get("seed", 0)), nodes=float(g.n_nodes), edges=float(g.n_edges),
        key=rkey)
    return rec, density_layers(rkey, [(s.name, s.density) for s in specs])
