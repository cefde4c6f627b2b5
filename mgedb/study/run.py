"""The main job: prune → (train) → encode → store → measure → score → rank → report.

:func:`run_study` prunes a zoo model with each pruner at each sparsity and seed, encodes every
pruned network as an MGE, computes its topometrics, stores graph and metrics in the graph store,
scores it with the predictor trained on the published table, and ranks the pruners per sparsity.

Every stage is resumable: checkpoints (and their sidecars) are written atomically to
``<out>/checkpoints``, training results to ``<out>/training``, and a network is marked complete in
the store only after its graph *and* its metrics are in; a re-run reuses all three. Ctrl-C between
or inside stages leaves nothing half-written marked complete.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mgedb.errors import DataError, MgedbError, PruningError

if TYPE_CHECKING:
    from mgedb.graph import Graph
    from mgedb.store.base import GraphStore

__all__ = ["ALL_PRUNERS", "QUICK", "NetworkResult", "Run", "StudyConfig", "StudyResult",
           "run_study"]

log = logging.getLogger(__name__)

ALL_PRUNERS = ("uniform", "er", "erk", "snip", "grasp", "synflow", "prospr")
DATA_PRUNERS = ("snip", "grasp", "prospr")
ENCODINGS = ("mge-reference", "mge")
ENGINES = ("array", "both")
#: Published dataset names (the predictor's reference accuracies are keyed by them).
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tinyimagenet": "tinyimagenet"}
#: The stages in order; the progress callback and the timings use these names.
STAGES = ("prune", "train", "measure", "score", "report")

#: Stage progress: ``(stage, done, total, detail)``.
StudyProgress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class Run:
    """One pruned network of the study."""

    pruner: str
    sparsity: float
    seed: int

    @property
    def label(self) -> str:
        """Short label for progress lines: ``snip 0.98 seed 0``."""
        return f"{self.pruner} {self.sparsity:g} seed {self.seed}"

    def name(self, model: str) -> str:
        return f"{model}-{self.pruner}-s{self.sparsity:g}-seed{self.seed}"


@dataclass(frozen=True)
class StudyConfig:
    """What to prune, how to measure it and where to write (see ``mgedb study --help``)."""

    out: Path = Path("mgedb-study")
    model: str = "resnet20"
    pruners: tuple[str, ...] = ALL_PRUNERS
    sparsities: tuple[float, ...] = (0.9, 0.98)
    seeds: tuple[int, ...] = (0,)
    dataset: str = "cifar10"
    data_dir: Path | None = None
    classes: int | None = None
    encoding: str = "mge-reference"
    engine: str = "array"
    train_epochs: int = 0
    synthetic_samples: int = 2000
    prune_batch: int = 128
    features: str = "mge-structural"
    metric_seed: int = 0
    db: Path | None = None

    def __post_init__(self) -> None:
        bad = [p for p in self.pruners if p not in ALL_PRUNERS]
        if bad:
            raise PruningError(f"unknown pruner {bad[0]!r}; choose from {', '.join(ALL_PRUNERS)}")
        if not self.pruners or not self.sparsities or not self.seeds:
            raise MgedbError("a study needs at least one pruner, one sparsity and one seed")
        for s in self.sparsities:
            if not 0.0 < s < 1.0:
                raise PruningError(f"sparsity {s} is outside (0, 1); give e.g. --sparsity 0.9")
        if self.encoding not in ENCODINGS:
            raise MgedbError(f"unknown encoding {self.encoding!r}; use {' or '.join(ENCODINGS)}")
        if self.engine not in ENGINES:
            raise MgedbError(f"unknown engine {self.engine!r}; use {' or '.join(ENGINES)}")
        if self.train_epochs < 0:
            raise MgedbError(f"--train-epochs must be ≥ 0, got {self.train_epochs}")

    @property
    def runs(self) -> list[Run]:
        return [Run(p, float(s), int(seed)) for s, p, seed in
                itertools.product(self.sparsities, self.pruners, self.seeds)]

    @property
    def synthetic(self) -> bool:
        return self.data_dir is None

    @property
    def flavour(self) -> str:
        from mgedb.store.keys import flavour_of

        return flavour_of(self.encoding)


#: The ``--quick`` preset: four pruners (two data-free, two data-driven) at sparsity 0.98.
QUICK: dict[str, Any] = {"pruners": ("uniform", "erk", "snip", "synflow"), "sparsities": (0.98,),
                         "synthetic_samples": 512}


@dataclass
class NetworkResult:
    """One network: where it is, its metrics, its predicted (and true) drop."""

    run: Run
    checkpoint: Path
    key: str
    metrics: dict[str, float]
    realised_sparsity: float
    reused: bool = False
    accuracy: float = math.nan
    dense_accuracy: float = math.nan
    predicted_drop: float = math.nan
    predicted_accuracy: float = math.nan
    attribution: dict[str, float] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def true_drop(self) -> float:
        if math.isnan(self.accuracy) or not self.dense_accuracy > 0:
            return math.nan
        return (self.dense_accuracy - self.accuracy) / self.dense_accuracy


@dataclass
class StudyResult:
    """Everything :func:`run_study` produced."""

    config: StudyConfig
    networks: list[NetworkResult]
    ranking: pd.DataFrame
    tau: dict[float, float]
    timings: dict[str, float]
    store: str
    report: Path | None = None
    predictor: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatches(self) -> list[str]:
        return [f"{n.run.name(self.config.model)}: {m}" for n in self.networks
                for m in n.mismatches]

    @property
    def sparsities(self) -> list[float]:
        return sorted({n.run.sparsity for n in self.networks})

    def ranking_at(self, sparsity: float) -> pd.DataFrame:
        """The ranking rows of one sparsity, best first."""
        return self.ranking[self.ranking["sparsity"] == sparsity]

    def table(self) -> pd.DataFrame:
        """One row per network: identity, metrics, predicted and true drop."""
        rows = []
        for n in self.networks:
            row: dict[str, Any] = {"key": n.key, "pruner": n.run.pruner,
                                   "sparsity": n.run.sparsity, "seed": n.run.seed,
                                   "realised_sparsity": n.realised_sparsity,
                                   "predicted_drop": n.predicted_drop,
                                   "predicted_accuracy": n.predicted_accuracy,
                                   "accuracy": n.accuracy, "dense_accuracy": n.dense_accuracy,
                                   "true_drop": n.true_drop}
            row.update(n.metrics)
            rows.append(row)
        return pd.DataFrame(rows)


def _noop(stage: str, done: int, total: int, detail: str) -> None:
    del stage, done, total, detail


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON atomically (a temp file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t


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
    _write_json(path.with_name(path.name + ".json"), meta)
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
    _write_json(record, {"accuracy": result.accuracy, "epochs": result.epochs,
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
    from mgedb.checkpoint import file_digest
    from mgedb.metrics.registry import INTEGER_METRICS
    from mgedb.store import compare_engines, network_key

    key = network_key(cfg.model, file_digest(path), cfg.encoding, cfg.flavour)
    stored = store.has_network(key)
    metrics = {m: int(v) if m in INTEGER_METRICS and math.isfinite(v) else v
               for m, v in (store.get_metrics(key) if stored else {}).items()}
    reused = bool(metrics)
    if not reused:
        if stored:  # complete but without metrics: an older, partial study
            store.delete(key)
        from mgedb.encode import encode_checkpoint
        from mgedb.metrics import compute_mge_metrics

        with _timed(timings, "encode"):
            graph: Graph = encode_checkpoint(path, cfg.model, classes=classes,  # type: ignore[assignment]
                                             encoding=cfg.encoding)
        with _timed(timings, "metrics"):
            metrics = compute_mge_metrics(graph, seed=cfg.metric_seed)
        info: dict[str, Any] = {
            "key": key, "model": cfg.model, "classes": classes, "checkpoint": path.name,
            "flavour": cfg.flavour, "pruner": run.pruner, "sparsity": run.sparsity,
            "seed": run.seed, "dataset": meta.get("data") or _data_name(cfg, classes),
            "realised_sparsity": meta.get("realised_sparsity"), "study": str(cfg.out),
        }
        if labels is not None:
            info["accuracy"], info["dense_accuracy"] = labels
        with _timed(timings, "ingest"):
            store.ingest(graph, info, metrics=metrics)
        del graph
    mismatches: list[str] = []
    if cfg.engine == "both":
        with _timed(timings, "db metrics"):
            db = store.compute_metrics(key, seed=cfg.metric_seed)
        mismatches = [str(m) for m in compare_engines(db, metrics)]
    return key, metrics, reused, mismatches


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


# -- stage 4: score and rank ---------------------------------------------------------------------
def _score(cfg: StudyConfig, results: Sequence[NetworkResult]) -> dict[str, Any]:
    from mgedb.metrics import normalise
    from mgedb.models import REFERENCE_NAMES
    from mgedb.predict.attribution import occlusion
    from mgedb.predict.predictor import default_predictor
    from mgedb.predict.records import record_from_metrics

    predictor = default_predictor(cfg.features)
    dataset = DATASET_NAMES.get(cfg.dataset, cfg.dataset)
    records = pd.concat([
        record_from_metrics(normalise(r.metrics), model=REFERENCE_NAMES[cfg.model],
                            dataset=dataset, pruner=r.run.pruner, sparsity=r.run.sparsity,
                            seed=r.run.seed, key=r.key, accuracy=r.accuracy,
                            dense_accuracy=r.dense_accuracy)
        for r in results], ignore_index=True)
    pred = predictor.predict(records)
    drops = dict(zip(pred["key"], pred["predicted_drop"].astype(float), strict=True))
    accs = dict(zip(pred["key"], pred["predicted_accuracy"].astype(float), strict=True))
    attr = occlusion(predictor, records)
    for r in results:
        r.predicted_drop, r.predicted_accuracy = drops[r.key], accs[r.key]
        r.attribution = {str(c): float(v) for c, v in
                         zip(attr.columns, attr.loc[r.key].to_numpy(dtype=float), strict=True)}
    cv = predictor.manifest.get("cv_summary") or []
    return {"feature_set": predictor.feature_set, "n_train": predictor.manifest.get("n_train"),
            "regressor": predictor.manifest.get("regressor"), "cv_summary": cv,
            "relative_to": str(pred["relative_to"].iloc[0]),
            "architectures": predictor.manifest.get("architectures")}


def _kendall(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 2:
        return math.nan
    from scipy.stats import kendalltau

    tau = kendalltau(x[ok], y[ok]).statistic
    return float(tau) if tau is not None else math.nan


def rank(results: Sequence[NetworkResult]) -> tuple[pd.DataFrame, dict[float, float]]:
    """Pruners ranked per sparsity by mean predicted drop (1 = smallest drop), with the three most
    influential metrics (mean occlusion attribution over seeds) and, where known, the true drop
    and Kendall τ between the predicted and the true drop over the pruners of a sparsity."""
    rows = []
    key = lambda r: (r.run.sparsity, r.run.pruner)  # noqa: E731
    for (sparsity, pruner), group in itertools.groupby(sorted(results, key=key), key=key):
        nets = list(group)
        drops = np.array([n.predicted_drop for n in nets])
        attr = pd.DataFrame([n.attribution for n in nets]).mean()
        top = attr.abs().sort_values(ascending=False, kind="stable").index[:3]
        true = np.array([n.true_drop for n in nets])
        rows.append({
            "sparsity": sparsity, "pruner": pruner, "seeds": len(nets),
            "predicted_drop": float(drops.mean()),
            "predicted_drop_std": float(drops.std(ddof=1)) if len(nets) > 1 else math.nan,
            "predicted_accuracy": float(np.mean([n.predicted_accuracy for n in nets])),
            "true_drop": float(np.nanmean(true)) if not np.isnan(true).all() else math.nan,
            "top_metrics": [(str(c), float(attr[c])) for c in top],
        })
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("sparsity")["predicted_drop"].rank(method="min").astype(int)
    table["true_rank"] = table.groupby("sparsity")["true_drop"].rank(method="min")
    table = table.sort_values(["sparsity", "rank", "pruner"]).reset_index(drop=True)
    tau = {float(s): _kendall(table.loc[table["sparsity"] == s, "predicted_drop"].tolist(),
                              table.loc[table["sparsity"] == s, "true_drop"].tolist())
           for s in sorted(set(table["sparsity"]))}
    return table, tau


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
    with _timed(timings, "prune"):
        pruned = _prune_stage(cfg, classes, data, progress)
    labels: dict[Run, tuple[float, float]] = {}
    if cfg.train_epochs:
        with _timed(timings, "train"):
            labels = _train_stage(cfg, classes, data, pruned, progress)
    measure: dict[str, float] = {}
    with open_store(None, cfg.db) as store, _timed(timings, "measure"):
        results = _measure_stage(cfg, store, classes, pruned, labels, progress, measure)
        location = str(store.location)
    progress("score", 0, 1, "")
    with _timed(timings, "score"):
        predictor = _score(cfg, results)
        ranking, tau = rank(results)
    progress("score", 1, 1, "")
    result = StudyResult(cfg, results, ranking, tau, timings, location, predictor=predictor)
    result.timings.update({f"measure: {k}": v for k, v in measure.items()})
    if report:
        from mgedb.report import write_report

        progress("report", 0, 1, "")
        with _timed(timings, "report"):
            result.report = write_report(result)
        progress("report", 1, 1, "")
    return result

