"""The links of a network's chain in a study: prune → (train) → encode+measure → store.

:class:`StudyWork` holds them (the config and the class count: picklable, so a Ray worker runs the
same code with the same inputs as this process); an executor (:mod:`mgedb.study.executors`)
decides where each link runs. ``prune``, ``train`` and ``encode`` touch files under ``--out`` but
not the store; ``store`` is the store's one writer (:func:`mgedb.study.measure.measure`).

Every link is resumable: checkpoints (and their sidecars) are written atomically to
``<out>/checkpoints``, training records to ``<out>/training``, and a network is marked complete in
the store only after its graph *and* its metrics are in; a re-run reuses all three. Each pruning
and training job draws its data from loaders started afresh from the run's seed, so a network
depends on its (pruner, sparsity, seed) only — not on the jobs that ran before it, nor on where.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgedb.atomic import write_json
from mgedb.errors import ClusterError
from mgedb.study.config import DATA_PRUNERS, NetworkResult, Run, StudyConfig, file_stem
from mgedb.study.measure import Source, compute, measure

if TYPE_CHECKING:
    from mgedb.graph import Graph
    from mgedb.store import GraphStore

__all__ = ["Measured", "Pruned", "StudyWork", "TrainJob", "stored_keys"]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _loaders(cfg: StudyConfig, classes: int, seed: int) -> Any:
    """The seed's training and test loaders, new for every job: their shuffling and augmentation
    start from the seed, whatever other jobs drew before (built only for jobs that need data)."""
    from mgedb.datasets import make_loaders

    n = cfg.synthetic_samples
    return make_loaders(cfg.dataset, cfg.data_dir, cfg.prune_batch, synthetic=cfg.synthetic,
                        seed=seed, classes=classes, synthetic_size=(n, max(1, n // 4)),
                        input_shape=cfg.input_shape)


def _sidecar_matches(meta: Mapping[str, Any] | None, cfg: StudyConfig, run: Run,
                     classes: int, data: str | None) -> bool:
    if not meta:
        return False
    want = {"model": cfg.model, "pruner": run.pruner, "sparsity": run.sparsity,
            "seed": run.seed, "classes": classes}
    if any(meta.get(k) != v for k, v in want.items()):
        return False
    if tuple(meta.get("input_shape", (3, 32, 32))) != tuple(cfg.input_shape):
        return False
    return run.pruner not in DATA_PRUNERS or meta.get("data") == data


def _prune_one(cfg: StudyConfig, run: Run, classes: int, path: Path) -> dict[str, Any]:
    from mgedb.checkpoint import save_checkpoint
    from mgedb.model_source import parse_model_spec, seeded
    from mgedb.prune import apply_masks, layer_densities, prune, realised_sparsity

    batches = data_name = None
    if run.pruner in DATA_PRUNERS:
        loaders = _loaders(cfg, classes, run.seed)
        batches, data_name = loaders.train, loaders.name
    net, gen = seeded(parse_model_spec(cfg.model), classes, run.seed)
    t = time.perf_counter()
    masks = prune(net, run.pruner, run.sparsity, run.seed, batches, generator=gen,
                  input_shape=cfg.input_shape)
    wall = time.perf_counter() - t
    apply_masks(net, masks)
    from mgedb import __version__

    meta: dict[str, Any] = {
        "model": cfg.model, "classes": classes, "pruner": run.pruner, "sparsity": run.sparsity,
        "seed": run.seed, "input_shape": list(cfg.input_shape),
        "realised_sparsity": realised_sparsity(masks),
        "layer_densities": layer_densities(masks), "wall_time_s": wall,
        "mgedb_version": __version__, "data": data_name,
    }
    if run.pruner in DATA_PRUNERS:
        meta["batch_size"] = cfg.prune_batch
    save_checkpoint(path, net)  # atomic; the sidecar (written last, atomically) marks it done
    write_json(path.with_name(path.name + ".json"), meta)
    return meta


def _data_name(cfg: StudyConfig, classes: int) -> str:
    return f"synthetic-{classes}" if cfg.synthetic else cfg.dataset


def _train_one(cfg: StudyConfig, classes: int, seed: int, record: Path, checkpoint: Path | None
               ) -> float:
    """Train a pruned checkpoint (fixed masks) or, with ``checkpoint=None``, the dense model."""
    from mgedb.model_source import parse_model_spec, seeded
    from mgedb.train import recipe, train_model

    masks = None
    if checkpoint is None:
        net, _ = seeded(parse_model_spec(cfg.model), classes, seed)
    else:
        from mgedb.checkpoint import load_checkpoint

        loaded = load_checkpoint(checkpoint, cfg.model, classes=classes)
        net, masks = loaded.model, loaded.masks
    conf = recipe(cfg.model, cfg.dataset, cfg.train_epochs, device=cfg.device)
    loaders = _loaders(cfg, classes, seed)
    result = train_model(net, loaders.train, loaders.test, masks=masks, config=conf)
    write_json(record, {"accuracy": result.accuracy, "epochs": result.epochs,
                         "train_loss": result.train_loss, "wall_time_s": result.wall_time_s,
                         "data": _data_name(cfg, classes), "checkpoint": str(checkpoint)})
    return result.accuracy


# -- the links of a network's chain (run by an executor: mgedb.study.executors) -----------------
@dataclass(frozen=True)
class Pruned:
    """A pruned run: its checkpoint (file digest), sidecar and whether it was reused."""

    run: Run
    path: Path
    meta: dict[str, Any]
    reused: bool
    digest: str
    wall_s: float = 0.0


@dataclass(frozen=True)
class TrainJob:
    """One training run: the dense model of a seed (``run`` None) or a pruned checkpoint."""

    seed: int
    run: Run | None
    record: Path
    checkpoint: Path | None

    @property
    def label(self) -> str:
        return "dense" if self.run is None else self.run.label


@dataclass
class Measured:
    """A network encoded and measured (by a worker), not yet stored; ``graph`` is None when the
    store already held the network (nothing was encoded)."""

    pruned: Pruned
    graph: Graph | None
    metrics: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyWork:
    """What a study does per network, as links an executor calls (in this process or in a Ray
    worker): :meth:`prune`, :meth:`train`, :meth:`encode` (no store: workers run it) and
    :meth:`store` (the store's writer: the driver). Picklable: the config and the class count."""

    cfg: StudyConfig
    classes: int

    @property
    def runs(self) -> list[Run]:
        return self.cfg.runs

    def checkpoint(self, run: Run) -> Path:
        return self.cfg.out / "checkpoints" / f"{run.name(self.cfg.model)}.pt"

    def prune(self, run: Run) -> Pruned:
        """The run's checkpoint: reused when its sidecar matches, else pruned (atomically)."""
        from mgedb.checkpoint import file_digest

        cfg, t = self.cfg, time.perf_counter()
        path = self.checkpoint(run)
        meta = _read_json(path.with_name(path.name + ".json")) if path.is_file() else None
        reused = _sidecar_matches(meta, cfg, run, self.classes, _data_name(cfg, self.classes))
        if not reused or meta is None:
            meta = _prune_one(cfg, run, self.classes, path)
        return Pruned(run, path, meta, reused, file_digest(path), time.perf_counter() - t)

    def check_shared(self, pruned: Pruned) -> None:
        """The checkpoint a worker wrote is here, byte for byte (``--out`` is a shared path)."""
        from mgedb.checkpoint import file_digest

        if not pruned.path.is_file() or file_digest(pruned.path) != pruned.digest:
            raise ClusterError(f"--out {self.cfg.out}: the checkpoint {pruned.path} that a worker "
                               "wrote is not here; give --out a path every node shares")

    def train_jobs(self) -> list[TrainJob]:
        """The dense model of every seed, then every pruned run (none without training)."""
        cfg = self.cfg
        if cfg.train_epochs == 0:
            return []
        tag = f"{_data_name(cfg, self.classes)}-e{cfg.train_epochs}"
        folder = cfg.out / "training"
        jobs = [TrainJob(s, None, folder / f"{file_stem(cfg.model)}-dense-seed{s}-{tag}.json", None)
                for s in cfg.seeds]
        for run in self.runs:
            ckpt = self.checkpoint(run)
            jobs.append(TrainJob(run.seed, run, folder / f"{ckpt.stem}-{tag}.json", ckpt))
        return jobs

    def train(self, job: TrainJob) -> float:
        """The job's test accuracy: its record in ``<out>/training`` if there, else trained."""
        done = _read_json(job.record)
        if done is not None and "accuracy" in done and (
                job.checkpoint is None or done.get("checkpoint") == str(job.checkpoint)):
            return float(done["accuracy"])
        return _train_one(self.cfg, self.classes, job.seed, job.record, job.checkpoint)

    def labels(self, run: Run, accuracy: Mapping[TrainJob, float]) -> tuple[float, float] | None:
        """(accuracy, dense accuracy) of a run once both training jobs are done."""
        mine = dense = None
        for job, acc in accuracy.items():
            if job.run == run:
                mine = acc
            elif job.run is None and job.seed == run.seed:
                dense = acc
        return None if mine is None or dense is None else (mine, dense)

    def source(self, pruned: Pruned, labels: tuple[float, float] | None) -> Source:
        cfg, run = self.cfg, pruned.run
        info: dict[str, Any] = {
            "pruner": run.pruner, "sparsity": run.sparsity, "seed": run.seed,
            "dataset": pruned.meta.get("data") or _data_name(cfg, self.classes),
            "realised_sparsity": pruned.meta.get("realised_sparsity"), "study": str(cfg.out),
        }
        if labels is not None:
            info["accuracy"], info["dense_accuracy"] = labels
        return Source(path=pruned.path, model=cfg.model, classes=self.classes,
                      encoding=cfg.encoding, meta=info, input_shape=cfg.input_shape)

    def encode(self, pruned: Pruned, stored: Set[str] = frozenset()) -> Measured:
        """Encode and measure (array engine) a pruned network, unless its key is in ``stored``."""
        timings: dict[str, float] = {}
        source = self.source(pruned, None)
        if source.network_key() in stored:
            return Measured(pruned, None, {}, timings)
        graph, metrics = compute(source, seed=self.cfg.metric_seed, timings=timings)
        return Measured(pruned, graph, metrics, timings)

    def store(self, store: GraphStore, measured: Measured, labels: tuple[float, float] | None,
              timings: dict[str, float]) -> NetworkResult:
        """Put a measured network in the store (or reuse the stored one): its result."""
        pruned = measured.pruned
        computed = None if measured.graph is None else (measured.graph, measured.metrics)
        m = measure(self.source(pruned, labels), store, self.cfg.engine,
                    seed=self.cfg.metric_seed, keep=True, reuse=True, computed=computed,
                    timings=timings)
        res = NetworkResult(run=pruned.run, checkpoint=pruned.path, key=m.key,
                            metrics=dict(m.metrics),
                            realised_sparsity=float(pruned.meta.get("realised_sparsity",
                                                                    math.nan)),
                            reused=m.reused, mismatches=[str(x) for x in m.mismatches])
        if labels is not None:
            res.accuracy, res.dense_accuracy = labels
        return res


def stored_keys(store: GraphStore) -> frozenset[str]:
    """The keys of the complete networks in a store (a worker skips encoding those)."""
    rows = store.list_networks()
    return frozenset(rows.loc[rows["complete"].astype(bool), "key"]) if len(rows) else frozenset()
