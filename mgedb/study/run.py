"""The study's stages and :func:`run_study` (see :mod:`mgedb.study` for the package layout).

Stages: prune every run (checkpoints + sidecars, reused when they match), train (optional,
records reused), measure (:func:`mgedb.study.measure.measure` per network, in the graph store),
score and rank (:mod:`mgedb.study.score`), report (:mod:`mgedb.study.report`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mgedb.atomic import write_json
from mgedb.errors import DataError
from mgedb.store import GraphStore
from mgedb.study.config import (
    DATA_PRUNERS,
    NetworkResult,
    Run,
    StudyConfig,
    StudyProgress,
    StudyResult,
)
from mgedb.study.measure import Source, measure, timed
from mgedb.study.score import rank, score

__all__ = ["run_study"]

log = logging.getLogger("mgedb.study")


def _noop(stage: str, done: int, total: int, detail: str) -> None:
    del stage, done, total, detail


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# -- stage 1: prune ------------------------------------------------------------------------------
class _Data:
    """Training data per seed, built on first use (data-free runs never build any)."""

    def __init__(self, cfg: StudyConfig, classes: int) -> None:
        self.cfg, self.classes = cfg, classes
        self._cache: dict[int, Any] = {}

    def loaders(self, seed: int) -> Any:
        if seed not in self._cache:
            from mgedb.datasets import make_loaders

            n = self.cfg.synthetic_samples
            self._cache[seed] = make_loaders(
                self.cfg.dataset, self.cfg.data_dir, self.cfg.prune_batch,
                synthetic=self.cfg.synthetic, seed=seed, classes=self.classes,
                synthetic_size=(n, max(1, n // 4)))
        return self._cache[seed]


def _sidecar_matches(meta: Mapping[str, Any] | None, cfg: StudyConfig, run: Run,
                     classes: int, data: str | None) -> bool:
    if not meta:
        return False
    want = {"model": cfg.model, "pruner": run.pruner, "sparsity": run.sparsity,
            "seed": run.seed, "classes": classes}
    if any(meta.get(k) != v for k, v in want.items()):
        return False
    return run.pruner not in DATA_PRUNERS or meta.get("data") == data


def _prune_one(cfg: StudyConfig, run: Run, classes: int, path: Path, data: _Data
               ) -> dict[str, Any]:
    from mgedb.checkpoint import save_checkpoint
    from mgedb.models import seeded_model
    from mgedb.prune import apply_masks, layer_densities, prune, realised_sparsity

    batches = data_name = None
    if run.pruner in DATA_PRUNERS:
        loaders = data.loaders(run.seed)
        batches, data_name = loaders.train, loaders.name
    net, gen = seeded_model(cfg.model, classes, run.seed)
    t = time.perf_counter()
    masks = prune(net, run.pruner, run.sparsity, run.seed, batches, generator=gen)
    wall = time.perf_counter() - t
    apply_masks(net, masks)
    from mgedb import __version__

    meta: dict[str, Any] = {
        "model": cfg.model, "classes": classes, "pruner": run.pruner, "sparsity": run.sparsity,
        "seed": run.seed, "realised_sparsity": realised_sparsity(masks),
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


def _prune_stage(cfg: StudyConfig, classes: int, data: _Data, progress: StudyProgress
                 ) -> dict[Run, tuple[Path, dict[str, Any], bool]]:
    out: dict[Run, tuple[Path, dict[str, Any], bool]] = {}
    runs = cfg.runs
    progress("prune", 0, len(runs), "")
    for i, run in enumerate(runs, 1):
        path = cfg.out / "checkpoints" / f"{run.name(cfg.model)}.pt"
        meta = _read_json(path.with_name(path.name + ".json")) if path.is_file() else None
        reused = _sidecar_matches(meta, cfg, run, classes, _data_name(cfg, classes))
        if not reused or meta is None:
            meta = _prune_one(cfg, run, classes, path, data)
        out[run] = (path, meta, reused)
        progress("prune", i, len(runs), run.label)
    return out


# -- stage 2: train (optional) -------------------------------------------------------------------
def _train_one(cfg: StudyConfig, classes: int, data: _Data, seed: int, record: Path,
               checkpoint: Path | None) -> float:
    """Train a pruned checkpoint (fixed masks) or, with ``checkpoint=None``, the dense model."""
    from mgedb.models import seeded_model
    from mgedb.train import recipe, train_model

    masks = None
    if checkpoint is None:
        net, _ = seeded_model(cfg.model, classes, seed)
    else:
        from mgedb.checkpoint import load_checkpoint

        loaded = load_checkpoint(checkpoint, cfg.model, classes=classes)
        net, masks = loaded.model, loaded.masks
    conf = recipe(cfg.model, cfg.dataset, cfg.train_epochs, device="cpu")
    result = train_model(net, data.loaders(seed).train, data.loaders(seed).test, masks=masks,
                         config=conf)
    write_json(record, {"accuracy": result.accuracy, "epochs": result.epochs,
                         "train_loss": result.train_loss, "wall_time_s": result.wall_time_s,
                         "data": _data_name(cfg, classes), "checkpoint": str(checkpoint)})
    return result.accuracy


def _train_stage(cfg: StudyConfig, classes: int, data: _Data,
                 pruned: Mapping[Run, tuple[Path, dict[str, Any], bool]],
                 progress: StudyProgress) -> dict[Run, tuple[float, float]]:
    """(accuracy, dense accuracy) per run; records in ``<out>/training`` are reused."""
    if cfg.train_epochs == 0:
        return {}
    jobs: list[tuple[int, Path | None, Path]] = []
    tag = f"{_data_name(cfg, classes)}-e{cfg.train_epochs}"
    for seed in cfg.seeds:
        jobs.append((seed, None, cfg.out / "training" / f"{cfg.model}-dense-seed{seed}-{tag}.json"))
    for run, (path, _, _) in pruned.items():
        jobs.append((run.seed, path, cfg.out / "training" / f"{path.stem}-{tag}.json"))
    acc: dict[Path, float] = {}
    progress("train", 0, len(jobs), "")
    for i, (seed, ckpt, record) in enumerate(jobs, 1):
        done = _read_json(record)
        if done is not None and "accuracy" in done and (
                ckpt is None or done.get("checkpoint") == str(ckpt)):
            acc[record] = float(done["accuracy"])
        else:
            acc[record] = _train_one(cfg, classes, data, seed, record, ckpt)
        progress("train", i, len(jobs), "dense" if ckpt is None else ckpt.stem.split("-", 1)[1])
    out = {}
    for run, (path, _, _) in pruned.items():
        dense = acc[cfg.out / "training" / f"{cfg.model}-dense-seed{run.seed}-{tag}.json"]
        out[run] = (acc[cfg.out / "training" / f"{path.stem}-{tag}.json"], dense)
    return out


# -- stage 3: encode, measure, store -------------------------------------------------------------
def _measure_one(cfg: StudyConfig, store: GraphStore, run: Run, path: Path, classes: int,
                 meta: Mapping[str, Any], labels: tuple[float, float] | None,
                 timings: dict[str, float]) -> tuple[str, dict[str, float], bool, list[str]]:
    info: dict[str, Any] = {
        "pruner": run.pruner, "sparsity": run.sparsity, "seed": run.seed,
        "dataset": meta.get("data") or _data_name(cfg, classes),
        "realised_sparsity": meta.get("realised_sparsity"), "study": str(cfg.out),
    }
    if labels is not None:
        info["accuracy"], info["dense_accuracy"] = labels
    source = Source(path=path, model=cfg.model, classes=classes, encoding=cfg.encoding,
                    meta=info)
    m = measure(source, store, cfg.engine, seed=cfg.metric_seed, keep=True, reuse=True,
                timings=timings)
    return m.key, m.metrics, m.reused, [str(x) for x in m.mismatches]


def _measure_stage(cfg: StudyConfig, store: GraphStore, classes: int,
                   pruned: Mapping[Run, tuple[Path, dict[str, Any], bool]],
                   labels: Mapping[Run, tuple[float, float]], progress: StudyProgress,
                   timings: dict[str, float]) -> list[NetworkResult]:
    results = []
    progress("measure", 0, len(pruned), "")
    for i, (run, (path, meta, _)) in enumerate(pruned.items(), 1):
        key, metrics, reused, mism = _measure_one(cfg, store, run, path, classes, meta,
                                                  labels.get(run), timings)
        res = NetworkResult(run=run, checkpoint=path, key=key, metrics=dict(metrics),
                            realised_sparsity=float(meta.get("realised_sparsity", math.nan)),
                            reused=reused, mismatches=mism)
        if run in labels:
            res.accuracy, res.dense_accuracy = labels[run]
        results.append(res)
        progress("measure", i, len(pruned), run.label)
    return results


# -- the job -------------------------------------------------------------------------------------
def run_study(cfg: StudyConfig, *, progress: StudyProgress | None = None,
              report: bool = True) -> StudyResult:
    """Run the whole study (see the module docstring); returns what it found and where."""
    from mgedb.datasets import DATASETS
    from mgedb.models import canonical_name
    from mgedb.store import open_store

    cfg = replace(cfg, model=canonical_name(cfg.model))
    if cfg.dataset not in DATASETS:
        raise DataError(f"unknown dataset {cfg.dataset!r}; choose from {', '.join(DATASETS)}")
    if cfg.data_dir is not None and not cfg.data_dir.is_dir():
        raise DataError(f"--data-dir {cfg.data_dir}: no such directory")
    classes = cfg.classes or DATASETS[cfg.dataset][0]
    progress = progress or _noop
    timings: dict[str, float] = {}
    data = _Data(cfg, classes)
    cfg.out.mkdir(parents=True, exist_ok=True)
    with timed(timings, "prune"):
        pruned = _prune_stage(cfg, classes, data, progress)
    labels: dict[Run, tuple[float, float]] = {}
    if cfg.train_epochs:
        with timed(timings, "train"):
            labels = _train_stage(cfg, classes, data, pruned, progress)
    measure: dict[str, float] = {}
    with open_store(None, cfg.db) as store, timed(timings, "measure"):
        results = _measure_stage(cfg, store, classes, pruned, labels, progress, measure)
        location = str(store.location)
    progress("score", 0, 1, "")
    with timed(timings, "score"):
        predictor = score(cfg, results, classes)
        ranking, tau = rank(results)
    progress("score", 1, 1, "")
    result = StudyResult(cfg, results, ranking, tau, timings, location, predictor=predictor)
    result.timings.update({f"measure: {k}": v for k, v in measure.items()})
    if report:
        from mgedb.study.report import write_report

        progress("report", 0, 1, "")
        with timed(timings, "report"):
            result.report = write_report(result)
        progress("report", 1, 1, "")
    return result

